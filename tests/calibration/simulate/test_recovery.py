"""Real CASA recovers the injected truth of the small build (one calibration run per module,
on a private copy; the assertions read its JSON answer)."""

import pytest

from calibration.simulate.build import copy_ms
from tests.calibration.simulate.casa_checks import verify_eb

pytestmark = pytest.mark.casa


@pytest.fixture(scope="module")
def recovered(small_eb, tmp_path_factory):
    work = copy_ms(small_eb.ms, tmp_path_factory.mktemp("verify"))
    return verify_eb(work, small_eb.folder)


def _fault(truth, kind):
    return next(f for f in truth["faults"] if f["kind"] == kind)


def test_gencal_tsys_shows_the_hot_antenna(recovered, small_eb):
    assert recovered["tsys_rows"] == 90
    assert _fault(small_eb.truth, "hot_tsys")["antenna"] == "DA44"
    assert recovered["hot_tsys_ratio"] > 1.5


def test_wvrgcal_path_follows_the_injected_path_on_good_antennas(recovered, small_eb):
    assert recovered["wvr_success"]
    assert recovered["wvr_matched_times"] > 800
    bad = _fault(small_eb.truth, "bad_wvr")["antenna"]
    good = {a: c for a, c in recovered["wvr_path_correlation"].items() if a != bad}
    assert len(good) == 9
    assert min(good.values()) > 0.99, good
    assert recovered["wvr_path_correlation"][bad] < 0.5


def test_wvrgcal_report_flags_the_bad_wvr_antennas_disc(recovered, small_eb):
    bad = _fault(small_eb.truth, "bad_wvr")["antenna"]
    disc = recovered["wvr_disc_um"]
    assert disc[bad] == max(disc.values())
    assert recovered["bad_wvr_disc_over_good"] > 5


def test_fluxscale_of_the_phase_calibrator_within_3_percent(recovered):
    errors = recovered["fluxscale_rel_error"]
    assert set(errors) == {"1", "2", "3"}
    assert max(abs(e) for e in errors.values()) < 0.03, recovered["fluxscale_jy"]


def test_bandpass_defect_visible_in_the_bandpass_solution(recovered, small_eb):
    injected = _fault(small_eb.truth, "bandpass_defect")
    (found,) = recovered["bandpass_defects"]
    assert found["antenna"] == injected["antenna"] and found["spw"] == injected["spw"]
    assert found["notch_depth"] == pytest.approx(injected["notch_depth"], abs=0.05)
    assert found["phase_jump_deg"] == pytest.approx(injected["jump_deg"], abs=5)
    assert found["others_min_notch_depth"] > 0.9
    assert found["others_max_abs_phase_jump_deg"] < 5


def test_dead_antenna_has_no_signal(recovered):
    assert recovered["dead_amp_ratio"] < 0.1


def test_quack_lowers_the_first_integration_of_each_scan(recovered, small_eb):
    assert recovered["quack_amp_ratio"] == pytest.approx(_fault(small_eb.truth, "quack")["factor"], abs=0.05)


def test_narrow_spw_is_noisier_by_the_bandwidth_ratio(recovered, small_eb):
    expected = _fault(small_eb.truth, "low_snr_spw")["expected_noise_ratio"]
    assert recovered["low_snr_noise_ratio"] == pytest.approx(expected, rel=0.1)


def test_atmospheric_line_shows_in_the_tsys_spectrum(recovered):
    line = recovered["atm_line"]
    assert abs(line["peak_channel"] - line["expected_channel"]) <= 1
    assert line["peak_over_median"] > 1.15


def test_every_injected_fault_kind_was_checked(recovered, small_eb):
    checked = {
        "hot_tsys": "hot_tsys_ratio",
        "bad_wvr": "bad_wvr_disc_over_good",
        "bandpass_defect": "bandpass_defects",
        "dead_antenna": "dead_amp_ratio",
        "quack": "quack_amp_ratio",
        "low_snr_spw": "low_snr_noise_ratio",
        "atm_line": "atm_line",
    }
    assert {f["kind"] for f in small_eb.truth["faults"]} == set(checked)
    assert all(key in recovered for key in checked.values())
