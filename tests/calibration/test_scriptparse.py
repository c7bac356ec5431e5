"""The step parser on ALMA-style scripts: Python 2 and 3, hand edits, commented-out headers."""

import re
from dataclasses import astuple
from pathlib import Path

import pytest

from calibration.scriptparse import convert_python2, normalise_source, parse_script
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


# --- reducers' habits ----------------------------------------------------------------------
def script(*parts: str) -> str:
    return "step_title = {4: 'wvr', 5: 'tsys', 6: 'antpos'}\nthesteps = mysteps\n" + "".join(parts)


def test_commented_header_with_trailing_comment_and_live_block_runs_as_part_of_the_previous_step():
    text = script(
        "mystep = 4\nif(mystep in thesteps):\n  x = 4\n\n",
        "# mystep = 5   # no Tsys\n",  # line 7
        "if(mystep in thesteps):\n  x = 5\n  y = 5\n\n",  # lines 8-10
        "mystep = 6\nif(mystep in thesteps):\n  x = 6\n",
    )

    parsed = parse_script(text)

    assert [(s.number, s.start_line, s.end_line) for s in parsed.steps] == [(4, 3, 10), (6, 12, 14)]
    finding = next(f for f in parsed.findings if f.code == "commented_header_live_body")
    assert "header of step 5 is commented out (line 7)" in finding.message
    assert "its block runs as part of step 4 ('wvr')" in finding.message
    assert "lines 8-10" in finding.message
    assert (finding.line, finding.severity) == (7, "error")
    assert "disabled_step" not in codes(parsed)
    assert [f.code for f in parsed.blocking] == ["commented_header_live_body"]
    assert parsed.runnable  # it can run: the reducer confirms or fixes first


def test_whole_step_commented_out_with_a_trailing_comment_is_only_informational():
    text = script(
        "mystep = 4\nif(mystep in thesteps):\n  x = 4\n\n",
        "#mystep = 5   # no Tsys\n#if(mystep in thesteps):\n#  x = 5\n\n",
        "mystep = 6\nif(mystep in thesteps):\n  x = 6\n",
    )

    parsed = parse_script(text)

    assert [s.number for s in parsed.steps] == [4, 6]
    assert parsed.steps[0].end_line == 5
    disabled = next(f for f in parsed.findings if f.code == "disabled_step")
    assert (disabled.line, disabled.severity) == (7, "info")
    assert "commented_header_live_body" not in codes(parsed)
    assert parsed.blocking == []


def test_commented_header_in_the_real_script_extends_the_previous_step():
    text = CASA_LAB.read_text().replace("\nmystep = 5\n", "\n# mystep = 5   # no Tsys\n")
    original = {s.number: s for s in parse_script(CASA_LAB.read_text()).steps}

    parsed = parse_script(text)

    steps = {s.number: s for s in parsed.steps}
    assert sorted(steps) == [n for n in range(22) if n != 5]
    assert steps[4].start_line == original[4].start_line
    assert steps[4].end_line == original[5].end_line
    finding = next(f for f in parsed.findings if f.code == "commented_header_live_body")
    assert "its block runs as part of step 4 ('Generation and time averaging of the WVR cal table')" in (
        finding.message
    )
    assert finding.severity == "error"


def test_block_whose_header_was_deleted_runs_as_part_of_the_previous_step():
    text = script("mystep = 4\nif(mystep in thesteps):\n  x = 4\nif(mystep in thesteps):\n  x = 5\n")

    parsed = parse_script(text)

    assert [(s.number, s.end_line) for s in parsed.steps] == [(4, 7)]
    finding = next(f for f in parsed.findings if f.code == "block_without_header")
    assert "runs as part of step 4" in finding.message and finding.severity == "error"


def test_byte_order_mark_is_dropped_and_said():
    text = CASA_LAB.read_text()

    parsed = parse_script("\ufeff" + text)

    assert not parsed.syntax_error and parsed.runnable
    assert [s.number for s in parsed.steps] == list(range(22))
    assert [astuple(s) for s in parsed.steps] == [astuple(s) for s in parse_script(text).steps]
    bom = next(f for f in parsed.findings if f.code == "byte_order_mark")
    assert bom.severity == "info"
    assert normalise_source("\ufeffx = 1\n")[0] == "x = 1\n"


def test_python2_tab_indentation_is_expanded_as_python2_reads_it():
    # 8 spaces, then a tab: Python 2 reads both as column 8, Python 3 raises TabError.
    text = script("mystep = 4\nif(mystep in thesteps):\n        x = 4\n\ty = '\tkept'\n")

    parsed = parse_script(text)

    assert not parsed.syntax_error
    assert [(s.number, s.end_line) for s in parsed.steps] == [(4, 6)]
    finding = next(f for f in parsed.findings if f.code == "tabs_expanded")
    assert (finding.line, finding.severity) == (6, "warning")
    assert "Line 6" in finding.message and "TabError" in finding.message
    source = normalise_source(text)[0]
    assert "        y = '\tkept'" in source  # only the indentation changes
    assert source.count("\n") == text.count("\n")


def test_tabs_in_a_python2_script_are_expanded_before_the_conversion():
    text = script("mystep = 4\nif(mystep in thesteps):\n        print 'x'\n\tprint 'y'\n")

    parsed = parse_script(text)

    assert parsed.python2 and not parsed.syntax_error
    assert {"python2", "tabs_expanded"} <= set(codes(parsed))
    assert "        print('y')" in (convert_python2(text) or "")


def test_consistent_tabs_are_left_alone_and_tabs_python2_would_refuse_stay_an_error():
    consistent = script("mystep = 4\nif(mystep in thesteps):\n\tx = 4\n\tif x:\n\t\ty = 4\n")
    assert normalise_source(consistent) == (consistent, [])
    assert "tabs_expanded" not in codes(parse_script(consistent))

    # 4 spaces, then a tab (8 columns): an unexpected indent for Python 2 as well.
    wrong = script("mystep = 4\nif(mystep in thesteps):\n    x = 4\n\ty = 4\n")
    parsed = parse_script(wrong)
    assert parsed.syntax_error and "tabs_expanded" not in codes(parsed)


@pytest.mark.parametrize(
    "guard",
    [
        "mystep = {n}\nif(mystep in thesteps):\n",
        "mystep = {n}\nif mystep in thesteps:\n",
        "mystep = {n}\nif (mystep in thesteps) :\n",
        "mystep = {n}\ncasalog.post('Step '+str(mystep))\nif (mystep in thesteps):\n",
        "mystep = {n}\nif(mystep in thesteps) and applyonly != True:\n",
        "thisstep = {n}\nif thisstep in mysteps:\n",
        "if {n} in thesteps:\n",
        "if runstep({n}):\n",
    ],
)
def test_step_guard_variants(guard):
    text = (
        "step_title = {0: 'a', 1: 'b'}\nthesteps = mysteps\n"
        "def runstep(n):\n    return n in thesteps\n\n"
        + "".join(guard.format(n=n) + f"  x = {n}\n" for n in (0, 1))
    )

    parsed = parse_script(text)

    assert [(s.number, s.title) for s in parsed.steps] == [(0, "a"), (1, "b")]
    assert [f.code for f in parsed.findings if f.severity != "info"] == []


def test_runstep_guards_in_the_real_script_give_the_same_steps():
    reference = parse_script(CASA_LAB.read_text())
    text = re.sub(
        r"^mystep = (\d+)\nif\(mystep in thesteps\):\n",
        r"if runstep(\1):\n  mystep = \1\n",
        CASA_LAB.read_text(),
        flags=re.M,
    ).replace("thesteps = []\n", "thesteps = []\ndef runstep(n):\n  return n in thesteps\n", 1)
    assert "runstep(21)" in text

    parsed = parse_script(text)

    assert [(s.number, s.title) for s in parsed.steps] == [(s.number, s.title) for s in reference.steps]
    assert "title_without_block" not in codes(parsed)
    bandpass = next(s for s in parsed.steps if s.number == 13)
    assert "bandpass(" in "\n".join(text.splitlines()[bandpass.start_line - 1 : bandpass.end_line])


def test_literal_guards_without_step_title_take_titles_from_comments():
    text = (
        "# STEP 0: scan info\nif 0 in mysteps:\n    x = 0\n\n"
        "# STEP 1: fringe fit\nif 1 in mysteps:\n    x = 1\n"
    )

    parsed = parse_script(text)

    assert [(s.number, s.title, s.start_line) for s in parsed.steps] == [
        (0, "STEP 0: scan info", 2),
        (1, "STEP 1: fringe fit", 6),
    ]
    assert parsed.findings == []


def test_stepless_script_is_one_runnable_step():
    text = (
        "import os\n"
        "es = aU.stuffForScienceDataReduction()\n"
        "fluxscale(vis='a.ms', caltable='a.ampli_inf', fluxtable='a.flux_inf', reference='0')\n"
    )

    parsed = parse_script(text, filename="uploads/scriptForFluxCalibration.py")

    assert [astuple(s) for s in parsed.steps] == [(0, "scriptForFluxCalibration.py (whole script)", 1, 3)]
    assert parsed.runnable and parsed.blocking == []
    finding = next(f for f in parsed.findings if f.code == "stepless")
    assert finding.severity == "info" and "runs as one step" in finding.message
    assert "no_steps" not in codes(parsed)
    assert parse_script(text).steps[0].title == "whole script"


def test_step_machinery_without_recognised_steps_is_still_an_error():
    parsed = parse_script("step_title = {0: 'a'}\nthesteps = mysteps\nfor s in thesteps:\n  x = s\n")

    assert parsed.steps == [] and not parsed.runnable
    assert "no_steps" in [f.code for f in parsed.blocking]
    assert "stepless" not in codes(parsed)


def test_alma_helpers_are_live_calls_only():
    text = (
        "import analysisUtils as myau\n"
        "# au.commentedOut('x.ms')\n"
        "note = 'aU.inAString(1)'\n"
        "au.getBaselineLengths('x.ms')\n"
        "myau.plotWeather(vis='x.ms')\n"
        "if applyonly != True: es.checkCalTable('x.tsys')\n"
        "#es.fluxscale2(caltable='x')\n"
    )

    parsed = parse_script(text)

    assert parsed.alma_helpers == ["au.getBaselineLengths", "es.checkCalTable", "myau.plotWeather"]


def test_blocking_findings_are_the_error_level_ones():
    clean = parse_script(CASA_LAB.read_text())
    assert clean.blocking == [] and clean.to_json()["blocking"] == []

    parsed = parse_script(CASA_LAB.read_text().replace("\nmystep = 5\n", "\n#mystep = 5\n"))

    assert parsed.runnable
    assert parsed.to_json()["blocking"] == ["commented_header_live_body"]
    assert all(f.severity == "error" for f in parsed.blocking)
