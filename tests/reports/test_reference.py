"""The reference antenna of the WVR phase-rms check (pure, fast)."""

from calibration.antennas import live_antennas
from reports.reference import wvr_reference, wvr_unfit

NAMES = ["DA41", "DA42", "DA43", "DV07", "DV10"]


def report(**changes) -> dict:
    base = {
        "Name": list(NAMES),
        "WVR": [True] * 5,
        "Flag": [False] * 5,
        "RMS_um": [80.0, 90.0, 85.0, 95.0, 70.0],
        "Disc_um": [60.0, 40.0, 55.0, 50.0, 45.0],
    }
    base.update(changes)
    return base


def test_the_healthy_antenna_with_the_smallest_disc_is_the_reference():
    assert wvr_reference(NAMES, set(NAMES), report()) == "DA42"


def test_an_antenna_flagged_by_wvrflag_is_never_the_reference_even_with_the_smallest_disc():
    # wvrflag interpolates DV07 from its neighbours: its Disc becomes the smallest of all.
    flagged = report(Flag=[False, False, False, True, False], Disc_um=[60.0, 40.0, 55.0, 5.0, 45.0])
    assert wvr_reference(NAMES, set(NAMES), flagged) == "DA42"


def test_antennas_beyond_the_pipeline_limits_or_without_wvr_are_not_references():
    bad = report(Disc_um=[60.0, 600.0, 55.0, 50.0, 45.0], RMS_um=[80.0, 90.0, 85.0, 95.0, 700.0])
    assert wvr_unfit(bad) == {"DA42", "DV10"}
    assert wvr_reference(NAMES, set(NAMES), bad) == "DV07"
    no_wvr = report(WVR=[True, False, True, True, True])
    assert wvr_reference(NAMES, set(NAMES), no_wvr) == "DV10"


def test_a_dead_antenna_is_not_the_reference():
    assert wvr_reference(NAMES, set(NAMES) - {"DA42"}, report()) == "DV10"


def test_without_a_report_the_first_live_antenna_is_the_reference():
    assert wvr_reference(NAMES, {"DA43", "DV07"}, None) == "DA43"
    assert wvr_unfit(None) == set()


def test_when_every_antenna_is_unfit_a_live_one_is_still_chosen():
    everyone = report(Flag=[True] * 5)
    assert wvr_reference(NAMES, {"DA43"}, everyone) == "DA43"


def test_live_antennas_drop_those_below_thirty_percent_of_the_median():
    assert live_antennas(NAMES, [1.0, 1.1, 0.9, 0.31, 0.05]) == {"DA41", "DA42", "DA43", "DV07"}
    assert live_antennas(["A", "B"], [None, 0.0]) == set()
