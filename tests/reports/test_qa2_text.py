"""textfile.txt of the QA2 report folder (reports.qa2_text): pure text from plain dicts."""

import re

import pytest

from reports.qa2_text import NA, report_header, textfile

ANTENNAS = [f"DA{41 + i}" for i in range(10)]
SPWS = [17, 19, 21]  # the MS's ids; caltables made on the split use 0, 1, 2
SPLIT = {"0": 17, "1": 19, "2": 21}
FIELDS = ["J1924-2914", "J1751+0939", "Sgr_A_star"]


def observation() -> dict:
    scans = []
    for number, (field, intents) in enumerate(
        [
            (0, ["CALIBRATE_BANDPASS#ON_SOURCE", "CALIBRATE_FLUX#ON_SOURCE"]),
            (1, ["CALIBRATE_PHASE#ON_SOURCE"]),
            (2, ["OBSERVE_TARGET#ON_SOURCE"]),
            (1, ["CALIBRATE_PHASE#ON_SOURCE"]),
            (2, ["OBSERVE_TARGET#ON_SOURCE"]),
            (1, ["CALIBRATE_PHASE#ON_SOURCE"]),
        ],
        start=1,
    ):
        scans.append(
            {
                "number": number,
                "field": FIELDS[field],
                "intents": intents,
                "start_utc": f"2024-06-01 05:{number * 6:02d}:00",
                "duration_s": 302.4,
            }
        )
    return {
        "ms": "uid___A002_Xb1a2c3_X4d5.ms",
        "eb_uid": "uid://A002/Xb1a2c3/X4d5",
        "start_utc": "2024-06-01 05:00:00",
        "end_utc": "2024-06-01 06:02:30",
        "duration_min": 62.5,
        "antennas": [
            {"name": a, "station": f"A{100 + i:03d}", "diameter_m": 12.0} for i, a in enumerate(ANTENNAS)
        ],
        "baselines_m": {"min": 15.1, "median": 122.4, "max": 313.7},
        "spws": [
            {
                "id": spw,
                "name": f"X{spw}#ALMA_RB_06#BB_{i + 1}#SW-01#FULL_RES",
                "centre_ghz": 230.538 + 2 * i,
                "width_mhz": 0.4883,
                "bandwidth_mhz": 1875.0,
                "nchan": 3840,
                "correlations": ["XX", "YY"],
            }
            for i, spw in enumerate(SPWS)
        ],
        "fields": [
            {
                "id": 0,
                "name": FIELDS[0],
                "intents": ["CALIBRATE_BANDPASS#ON_SOURCE", "CALIBRATE_FLUX#ON_SOURCE"],
                "ra": "19:24:51.056",
                "dec": "-29.14.30.12",
            },
            {
                "id": 1,
                "name": FIELDS[1],
                "intents": ["CALIBRATE_PHASE#ON_SOURCE"],
                "ra": "17:51:32.819",
                "dec": "+09.39.00.73",
            },
            {
                "id": 2,
                "name": FIELDS[2],
                "intents": ["OBSERVE_TARGET#ON_SOURCE"],
                "ra": "17:45:40.036",
                "dec": "-29.00.28.17",
            },
        ],
        "scans": scans,
        "time_on_source_min": {FIELDS[0]: 5.04, FIELDS[1]: 15.12, FIELDS[2]: 31.6},
        "pwv_mm": {"min": 0.52, "median": 0.61, "max": 0.74},
        "elevation_deg": {name: {"min": 41.25, "max": 68.5} for name in FIELDS},
    }


def _per_antenna(metrics) -> dict:
    return {a: {str(s): metrics(i, s) for s in range(3)} for i, a in enumerate(ANTENNAS)}


def calibration() -> list[dict]:
    tsys = {
        "antennas": ANTENNAS,
        "spws": SPWS,
        "per_antenna": {
            a: {
                str(s): {"median": 300.0 if a == "DA45" else 80.0 + i, "max": 140.0, "rms": 3.0} for s in SPWS
            }
            for i, a in enumerate(ANTENNAS)
        },
        "array_median": {"17": 85.25, "19": 90.0, "21": None},
        "atm_lines": {"17": {"freq_ghz": 231.9, "dip": 0.23, "tsys_rise": 0.4}},
        "vis": "uid___A002_Xb1a2c3_X4d5.ms",
        "ms_spw": {},
    }
    wvr = {
        "antennas": ANTENNAS,
        "report": {
            "Name": ANTENNAS,
            "WVR": [True] * 10,
            "Flag": [a == "DA49" for a in ANTENNAS],
            "RMS_um": [95.0 + i for i in range(10)],
            "Disc_um": [40.0 + i for i in range(10)],
        },
        "phase_rms_before": {a: 40.0 + i for i, a in enumerate(ANTENNAS)},
        "phase_rms_after": {a: (60.0 if a == "DA44" else 20.0 + i) for i, a in enumerate(ANTENNAS)},
        "improvement": 1.87,
        "reference_antenna": "DA41",
    }

    def bp(i, s):
        return {
            "chan2chan": 0.05 if (i, s) == (7, 1) else 0.004,
            "notch_depth": 0.55 if (i, s) == (3, 2) else 0.95,
            "notch_channels": [1200, 1260] if (i, s) == (3, 2) else [],
            "phase_jump_deg": 2.0,
            "jump_channel": 100,
            "dd_outlier_fraction": 0.0,
            "flagged_fraction": 0.0,
            "snr_median": 55.0,
        }

    bandpass = {
        "antennas": ANTENNAS,
        "spws": [0, 1, 2],
        "per_antenna": _per_antenna(bp),
        "spw_snr": {"0": 61.5, "1": 58.25, "2": None},
        "nchan": {"0": 3840, "1": 3840, "2": 3840},
        "vis": "uid___A002_Xb1a2c3_X4d5.ms.split",
        "ms_spw": SPLIT,
    }

    def g(i, s):
        return {
            "phase_rms_deg": 35.5 if (i, s) == (5, 0) else 8.0 + i * 0.1,
            "max_jump_deg": 12.0,
            "amp_median": 1.0,
            "flagged_fraction": 0.0,
        }

    gains = {
        "antennas": ANTENNAS,
        "spws": [0, 1, 2],
        "calmode": "p",
        "per_antenna": _per_antenna(g),
        "spw_snr": {"0": 45.0, "1": 44.0, "2": 40.0},
        "flagged_antennas": [],
        "vis": "uid___A002_Xb1a2c3_X4d5.ms.split",
        "ms_spw": SPLIT,
    }
    flux = {
        "fields": {
            FIELDS[1]: {
                "0": {"flux": 1.2345, "error": 0.0123, "freq_ghz": 230.538, "bandwidth_mhz": 1875.0},
                "1": {"flux": 1.2201, "error": 0.0119, "freq_ghz": 232.538, "bandwidth_mhz": 1875.0},
                "2": {"flux": 1.2113, "error": None, "freq_ghz": 234.538, "bandwidth_mhz": 1875.0},
            }
        },
        "spectral_index": {FIELDS[1]: -0.6123},
        "reference": FIELDS[0],
        "ms_spw": SPLIT,
    }
    flags_first = {
        "stage": "BeforeApplycal",
        "vis": "uid___A002_Xb1a2c3_X4d5.ms",
        "total_fraction": 0.123,
        "antenna": {a: (0.45 if a == "DA48" else 0.1) for a in ANTENNAS},
        "spw": {"17": 0.12, "19": 0.125, "21": 0.13},
        "quack": {},
        "previous": None,
    }
    flags_later = {
        **flags_first,
        "stage": "AfterApplycal",
        "total_fraction": 0.2,
        "previous": {"stage": "BeforeApplycal", "fraction": 0.123, "step": 7},
    }
    calibrated = {
        "vis": "uid___A002_Xb1a2c3_X4d5.ms.split.cal",
        "column": "DATA",
        "antennas": ANTENNAS,
        "fields": FIELDS[:2],
        "spws": [0, 1, 2],
        "per_field": {
            f: {
                str(s): {"amp_mean": 1.23, "amp_freq_dev": 0.021, "phase_freq_rms_deg": 1.5} for s in range(3)
            }
            for f in FIELDS[:2]
        },
        "ms_spw": SPLIT,
    }
    return [
        {"topic": "refant", "name": "refant", "summary": {"refant": "DA41"}},
        {"topic": "tsys", "name": "uid___A002_Xb1a2c3_X4d5.ms.tsys", "summary": tsys},
        {"topic": "wvr", "name": "uid___A002_Xb1a2c3_X4d5.ms.wvr", "summary": wvr},
        {"topic": "bandpass", "name": "uid___A002_Xb1a2c3_X4d5.ms.split.bandpass", "summary": bandpass},
        {"topic": "gains", "name": "uid___A002_Xb1a2c3_X4d5.ms.split.phase_int", "summary": gains},
        {
            "topic": "gains",
            "name": "uid___A002_Xb1a2c3_X4d5.ms.split.ampli_inf",
            "summary": {"cannot_assess": "every gain solution is flagged"},
        },
        {"topic": "flux", "name": "uid___A002_Xb1a2c3_X4d5.ms.split.flux_inf", "summary": flux},
        {"topic": "flags", "name": "ms: BeforeApplycal", "summary": flags_first},
        {"topic": "flags", "name": "ms: AfterApplycal", "summary": flags_later},
        {"topic": "calibrated", "name": "uid___A002_Xb1a2c3_X4d5.ms.split.cal", "summary": calibrated},
    ]


FINDINGS = [
    {
        "topic": "tsys",
        "antenna": "DA45",
        "spw": 17,
        "score": 0.4,
        "message": "DA45 Tsys 3.5 x the array median",
    },
    {
        "topic": "wvr",
        "antenna": "DA44",
        "spw": None,
        "score": 0.1,
        "message": "DA44 phase rms worse with WVR " * 5,
    },
    {"topic": "flags", "antenna": "", "spw": None, "score": 0.9, "message": "12.3 % flagged a priori"},
]
EDITS = [
    {
        "version": 2,
        "description": "wvrgcal: wvrflag=['DA44'] (interpolate its WVR correction)",
        "expect": "DA44 phase rms after WVR below before",
        "verdict": "worked: 60.0 -> 24.1 deg",
    },
    {"version": 1, "description": "flag DA45 in spw 17", "expect": "no Tsys outlier", "verdict": "worked"},
]


@pytest.fixture()
def text() -> str:
    return textfile(observation(), calibration(), FINDINGS, EDITS)


def test_every_part_and_section_is_there(text):
    for heading in (
        "1. THE OBSERVATION",
        "2. THE CALIBRATION",
        "3. FINDINGS AND EDITS",
        "Antennas",
        "Spectral windows",
        "Fields",
        "Scans",
        "Imaging hints (estimates, science spws)",
        "System temperature (Tsys)",
        "Water vapour radiometers (WVR)",
        "Bandpass",
        "Gains",
        "Flux scale",
        "Flags",
        "Calibrated visibilities of the calibrators",
        "Findings (score 0 to 1, lower is worse; worst first; n/a: could not be assessed)",
        "Script edits",
    ):
        assert re.search(rf"^{re.escape(heading)}$", text, re.M), heading
    assert text.index("1. THE OBSERVATION") < text.index("2. THE CALIBRATION") < text.index("3. FINDINGS")


def test_the_observation_is_described(text):
    assert "uid://A002/Xb1a2c3/X4d5" in text
    assert "2024-06-01 05:00:00" in text
    assert "62.5 min" in text
    assert "10 (12 m: 10)" in text
    assert "313.7 m (max)" in text
    assert "0.61 mm (median)" in text
    for antenna in ANTENNAS:
        assert antenna in text
    assert "A109" in text  # a station
    assert "230.5380" in text and "3840" in text and "XX YY" in text
    assert "0.635" in text  # 0.4883 MHz at 230.5 GHz in km/s
    assert "17:51:32.819" in text and "+09.39.00.73" in text
    assert "BANDPASS, FLUX" in text  # intents, shortened
    assert "31.6" in text  # time on source (min)
    assert "41.2 - 68.5" in text  # elevation range
    assert "302.4" in text  # a scan's duration
    # 12 m primary beam at 230.5 GHz: 1.13 lambda/D = 25.3 arcsec
    assert "primary beam 12 m (arcsec)" in text and "25.3" in text


def test_the_calibration_numbers_appear_formatted(text):
    assert re.search(r"Reference antenna\s*: DA41", text)
    # Tsys: the array median and the antenna above 1.5 x it; a null median is not available.
    assert "85.2" in text and "DA45 (300 K)" in text
    assert "231.900 GHz: transmission dip 23.0 %, Tsys rise 40.0 %" in text
    # WVR
    assert "1.87 x" in text
    assert re.search(r"Worse with WVR\s*: DA44", text)
    assert re.search(r"Flagged in wvrgcal\s*: DA49", text)
    # Bandpass: spw labels with the split's id; worst antennas
    assert "spw 19 (split 1)" in text
    assert "61.5" in text and "DA48 (0.0500)" in text and "DA44 (0.55)" in text
    # Gains: phase rms median and the worst antenna
    assert "DA46 (35.5 deg)" in text
    assert re.search(r"Solution mode\s*: p", text)
    # Flux and the spectral index
    assert "1.2345 +/- 0.0123 Jy" in text
    assert "alpha = -0.612" in text
    assert "1.2113 Jy (error not available)" in text
    # Flags: percentages per stage, newly flagged, the most flagged antennas
    assert "12.3 %" in text and "20.0 %" in text
    assert "7.7 % (since BeforeApplycal)" in text
    assert "DA48 45.0 %" in text
    # Calibrated visibilities
    assert "2.1 %" in text


def test_findings_are_sorted_worst_first_and_edits_by_version(text):
    findings = text[text.index("Findings (score") : text.index("Script edits")]
    assert findings.index("0.10") < findings.index("0.40") < findings.index("0.90")
    edits = text[text.index("Script edits") :]
    assert edits.index("Version 1: flag DA45") < edits.index("Version 2: wvrgcal")
    assert "worked: 60.0 -> 24.1 deg" in edits
    assert "DA44 phase rms after WVR below before" in edits


def test_cannot_assess_prints_its_text(text):
    assert "cannot assess: every gain solution is flagged" in text


def test_plain_text_without_tabs(text):
    assert "\t" not in text
    assert all(line == line.rstrip() for line in text.splitlines())
    assert text.endswith("\n")


def test_tables_are_aligned(text):
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("antenna  station"))
    rule = lines[header + 1]
    assert set(rule.strip()) <= {"-", " "}
    # every row of the antenna table puts its station at the same column
    column = lines[header].index("station")
    for row in lines[header + 2 : header + 12]:
        assert row[column - 2 : column] == "  " and row[column] != " "


def test_missing_keys_print_not_available():
    text = textfile({}, [], [], [])
    for label in ("Measurement set", "Execution block", "Start (UTC)", "Duration", "Baselines", "PWV"):
        assert re.search(rf"{re.escape(label)}\s*: {NA}", text), label
    assert re.search(rf"Reference antenna\s*: {NA}", text)
    calibration_part = text[text.index("2. THE CALIBRATION") : text.index("3. FINDINGS")]
    assert calibration_part.count(NA) >= 8  # the reference antenna and each topic


def test_partial_summaries_print_not_available_where_keys_are_missing():
    obs = {"ms": "x.ms", "antennas": [{"name": "DA41"}], "spws": [{"id": 0}], "pwv_mm": None}
    items = [
        {"topic": "tsys", "name": "x.ms.tsys", "summary": {"spws": [0], "array_median": {}}},
        {"topic": "flux", "name": "x.flux", "summary": {"fields": {"J1": {"0": {"flux": 1.0}}}}},
        {"topic": "wvr", "name": "x.wvr", "summary": {"improvement": None}},
        {"topic": "flags", "name": "x: s", "summary": {"stage": "s"}},
    ]
    text = textfile(obs, items, [], [])
    assert "x.ms" in text
    assert re.search(rf"PWV\s*: {NA}", text)
    assert re.search(rf"Flux reference\s*: {NA}", text)
    assert f"1.0000 Jy (error {NA})" in text
    assert re.search(rf"Improvement\s*: {NA}", text)
    assert re.search(rf"Reference antenna\s*: {NA}", text)
    assert re.search(rf"^\s*s\s+{NA}\s+{NA}", text, re.M)  # a flag save without fractions


def test_empty_findings_and_edits_print_none():
    text = textfile(observation(), calibration(), [], [])
    part = text[text.index("3. FINDINGS AND EDITS") :]
    findings = part[part.index("Findings") : part.index("Script edits")]
    assert findings.strip().splitlines()[-1].strip() == "none"
    assert part.strip().splitlines()[-1].strip() == "none"


def test_text_with_tabs_and_newlines_stays_on_one_line():
    findings = [{"topic": "gains", "antenna": "DA41", "spw": 0, "score": 0.5, "message": "a\tb\nc"}]
    text = textfile({"ms": "x\ty.ms"}, [], findings, [])
    assert "\t" not in text
    assert "x y.ms" in text and "a b c" in text


def test_report_header():
    header = report_header("2023.1.00001.S", "uid://A001/X1/X2", "uid://A002/X3/X4", "2024-06-02 10:00:00")
    lines = header.splitlines()
    assert "QA2" in lines[0]
    assert re.search(r"Project\s*: 2023.1.00001.S", header)
    assert re.search(r"Member OUS\s*: uid://A001/X1/X2", header)
    assert re.search(r"Execution block\s*: uid://A002/X3/X4", header)
    assert re.search(r"Generated \(UTC\)\s*: 2024-06-02 10:00:00", header)
    assert re.search(rf"Project\s*: {NA}", report_header("", "m", "e", "t"))
    assert "\t" not in header


def test_a_cannot_assess_score_reads_n_a_and_the_ms_path_is_left_out():
    findings = [
        {"topic": "gains", "antenna": "", "spw": None, "score": -0.1, "message": "Cannot assess x"},
        {"topic": "tsys", "antenna": "DA41", "spw": 17, "score": 0.7, "message": "fine"},
    ]
    obs = observation()
    obs["ms"] = "/data/lustre/run1/" + obs["ms"]
    obs["spws"].append({"id": 0, "name": "WVR#NOMINAL", "centre_ghz": 183.31, "nchan": 4})
    text = textfile(obs, [], findings, [])
    assert re.search(r"^\s+n/a\s+gains\s+-\s+-\s+Cannot assess x$", text, re.M)
    assert "/data/lustre" not in text
    assert re.search(r"Measurement set\s*: uid___A002_Xb1a2c3_X4d5.ms$", text, re.M)
    hints = text[text.index("Imaging hints") : text.index("2. THE CALIBRATION")]
    assert "1.636" not in hints  # the WVR window (183 GHz: 1.636 mm) is not an imaging window
    assert re.search(r"^\s+0\s+WVR#NOMINAL", text, re.M)  # still listed with the spws
