"""The step parser on ALMA-style scripts: Python 2 and 3, hand edits, commented-out headers."""

from pathlib import Path

import pytest

from calibration.scriptparse import convert_python2, parse_script
from calibration.standard_scripts import RawData, calibration_script

SCRIPTS = Path(__file__).parent / "scripts"
# A copy of the casa-lab script (shared/reference/casa-lab): tests read nothing outside the repository.
CASA_LAB = SCRIPTS / "casa_lab_scriptForCalibration_sim.py.txt"


@pytest.fixture(scope="module")
def cycle3_py2() -> str:
    return (SCRIPTS / "cycle3_py2_scriptForCalibration.py.txt").read_text()


def codes(parsed) -> list[str]:
    return [f.code for f in parsed.findings]


def test_python2_script_is_recognised_and_its_steps_listed(cycle3_py2):
    parsed = parse_script(cycle3_py2)

    assert parsed.python2
    assert "python2" in codes(parsed)
    assert not parsed.runnable
    # Step 16's header is commented out: 19 blocks remain, in order.
    assert [s.number for s in parsed.steps] == [*range(16), 17, 18, 19]
    assert parsed.steps[0].title == "Import of the ASDM"
    assert parsed.steps[13].title == "Bandpass calibration"


def test_commented_out_header_with_live_body_is_reported(cycle3_py2):
    parsed = parse_script(cycle3_py2)

    finding = next(f for f in parsed.findings if f.code == "commented_header_live_body")
    assert "step 16" in finding.message
    assert "runs as part of step 15" in finding.message
    assert finding.severity == "error"
    assert "title_without_block" in codes(parsed)  # step 16 has a title but no block


def test_alma_helpers_and_version_check_are_reported(cycle3_py2):
    parsed = parse_script(cycle3_py2)

    assert {"aU.stuffForScienceDataReduction", "es.checkCalTable", "es.fluxscale2", "casadef"} <= set(
        parsed.alma_helpers
    )
    assert "version_check" in codes(parsed)


def test_conversion_to_python3_keeps_the_steps_and_hand_edits(cycle3_py2):
    converted = convert_python2(cycle3_py2)

    assert converted is not None
    parsed = parse_script(converted)
    assert not parsed.python2 and not parsed.syntax_error
    assert [s.number for s in parsed.steps] == [*range(16), 17, 18, 19]
    assert "print('Step ', mystep, step_title[mystep])" in converted
    assert "wvrflag = ['DV07'])   # JM: added wvrflag" in converted
    assert "thesteps = list(range(0,len(step_title)))" in converted


def test_python3_reference_script_parses_into_22_steps():
    parsed = parse_script(CASA_LAB.read_text())

    assert not parsed.python2
    assert [s.number for s in parsed.steps] == list(range(22))
    assert parsed.steps[-1].title == "Primary beam correction and FIT export".replace("FIT ", "FITS ")
    assert "commented_header_live_body" not in codes(parsed)


def test_step_line_ranges_cover_each_block():
    text = CASA_LAB.read_text()
    lines = text.splitlines()
    parsed = parse_script(text)

    for step in parsed.steps:
        assert lines[step.start_line - 1].startswith(f"mystep = {step.number}")
        assert lines[step.start_line].startswith("if(mystep in thesteps)")
    bandpass = next(s for s in parsed.steps if s.number == 13)
    assert "bandpass(" in "\n".join(lines[bandpass.start_line - 1 : bandpass.end_line])


def test_duplicate_and_out_of_order_steps_and_blocks_without_titles():
    text = (
        "step_title = {0: 'a', 1: 'b'}\n"
        "thesteps = mysteps\n"
        "mystep = 1\nif(mystep in thesteps):\n  x = 1\n"
        "mystep = 0\nif(mystep in thesteps):\n  x = 0\n"
        "mystep = 1\nif(mystep in thesteps):\n  x = 2\n"
        "mystep = 7\nif(mystep in thesteps):\n  x = 7\n"
    )

    parsed = parse_script(text)

    assert {"out_of_order", "duplicate_step", "block_without_title"} <= set(codes(parsed))


def test_garbage_does_not_crash_the_parser():
    parsed = parse_script("def (:\n  ???")

    assert parsed.syntax_error
    assert not parsed.runnable
    assert parse_script("").findings[0].code == "no_steps"


def test_fully_commented_out_step_is_only_informational():
    text = (
        "step_title = {0: 'a', 1: 'b'}\nthesteps = mysteps\n"
        "mystep = 0\nif(mystep in thesteps):\n  x = 0\n\n"
        "#mystep = 1\n#if(mystep in thesteps):\n#  x = 1\n"
    )

    parsed = parse_script(text)

    assert "commented_header_live_body" not in codes(parsed)
    assert "disabled_step" in codes(parsed)


def test_generated_script_has_the_alma_layout():
    summary = {
        "observatory": "ALMA",
        "antennas": [
            {
                "name": n,
                "station": "A0",
                "east_m": e,
                "north_m": 0.0,
                "flagged_fraction": 0.0,
                "median_amplitude": a,
            }
            for n, e, a in [("DA41", -50, 1.0), ("DA42", 5, 1.0), ("DV10", 0, 0.01), ("DV02", 60, 1.0)]
        ],
        "fields": [
            {
                "id": 0,
                "name": "J1924-2914",
                "intents": [
                    "CALIBRATE_BANDPASS#ON_SOURCE",
                    "CALIBRATE_FLUX#ON_SOURCE",
                    "CALIBRATE_ATMOSPHERE#OFF_SOURCE",
                ],
            },
            {
                "id": 1,
                "name": "J1733-1304",
                "intents": ["CALIBRATE_PHASE#ON_SOURCE", "CALIBRATE_ATMOSPHERE#OFF_SOURCE"],
            },
            {
                "id": 2,
                "name": "HD_163296",
                "intents": ["OBSERVE_TARGET#ON_SOURCE", "CALIBRATE_ATMOSPHERE#OFF_SOURCE"],
            },
        ],
        "spws": [
            {"id": 0, "nchan": 4, "wvr": True, "max_freq_ghz": 190.0},
            {"id": 1, "nchan": 128, "wvr": False, "max_freq_ghz": 232.0},
        ],
        "science_spws": [1],
        "wvr_spws": [0],
        "has_syscal": True,
        "has_weather": True,
        "integration_s": 6.048,
    }

    text = calibration_script(summary, ms="uid___A002_X1_X2.ms", raw=RawData("ms", "raw/uid___A002_X1_X2.ms"))
    parsed = parse_script(text)

    assert [s.title for s in parsed.steps][:6] == [
        "Import of the ASDM",
        "Fix of SYSCAL table times",
        "listobs",
        "A priori flagging",
        "Generation and time averaging of the WVR cal table",
        "Generation of the Tsys cal table",
    ]
    assert len(parsed.steps) == 20
    assert "# CALIBRATE_BANDPASS: J1924-2914" in text
    assert "# OBSERVE_TARGET: HD_163296" in text
    # DA42 is nearest the centre among live antennas; DV10 (no signal) is excluded and said so.
    assert "# Using reference antenna = DA42" in text
    assert "excluded as without signal: DV10" in text
    assert "shutil.copytree('raw/uid___A002_X1_X2.ms', 'uid___A002_X1_X2.ms')" in text
    assert "tsysspwmap" in text and "wvrgcal(" in text
