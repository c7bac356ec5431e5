"""Every scoring function of reports.qa on synthetic summaries (pure, fast)."""

import numpy as np
import pytest

from reports import qa
from reports.metrics import bandpass_metrics
from reports.thresholds import CANNOT_ASSESS, TSYS_FLAG_RATIO, TSYS_WARN_RATIO

STEPS = {2: "Initial flagging", 4: "Generation and time averaging of the WVR cal table", 8: "Bandpass"}


def ctx(step: int = 8) -> qa.ScriptContext:
    return qa.ScriptContext(steps={**STEPS, 6: "Split out science SPWs and time average"}, step=step)


def codes(findings: list[dict]) -> list[str]:
    return [f["code"] for f in findings]


def test_linear_clips_and_interpolates_like_the_pipeline():
    assert qa.linear(0.24, 0.24, 0.79, 1.0, 0.0) == 1.0
    assert qa.linear(0.10, 0.24, 0.79, 1.0, 0.0) == 1.0
    assert qa.linear(0.515, 0.24, 0.79, 1.0, 0.0) == pytest.approx(0.5)
    assert qa.linear(0.95, 0.24, 0.79, 1.0, 0.0) == 0.0


def tsys_summary(ratios: dict[str, float]) -> dict:
    return {
        "antennas": list(ratios),
        "spws": [17],
        "array_median": {"17": 100.0},
        "per_antenna": {a: {"17": {"median": 100.0 * r, "max": 0, "rms": 0}} for a, r in ratios.items()},
    }


def test_tsys_yellow_from_the_warning_ratio_red_from_the_pipeline_flag_ratio():
    found = qa.tsys(
        "uid.ms.tsys", tsys_summary({"A": 1.0, "B": TSYS_WARN_RATIO, "C": TSYS_FLAG_RATIO}), ctx(5)
    )
    by_antenna = {f["antenna"]: f for f in found}
    assert set(by_antenna) == {"B", "C"}
    assert by_antenna["B"]["score"] == pytest.approx(0.66) and by_antenna["C"]["score"] == pytest.approx(0.33)
    assert by_antenna["C"]["spw"] == 17 and by_antenna["C"]["edit"]["step"] == 5, "the Tsys step"
    assert (
        "flagdata(vis = 'uid.ms.tsys', mode = 'manual', antenna = 'C', spw = '17'"
        in (by_antenna["C"]["edit"]["append"][0])
    ), "flagged in the Tsys table, as hifa_tsysflag does"
    assert codes(qa.tsys("x.tsys", tsys_summary({"A": 1.0, "B": 1.2}), ctx())) == ["tsys_ok"]


def wvr_summary(before: dict, after: dict, flag=(), disc=None, improvement=1.5) -> dict:
    names = list(before)
    return {
        "antennas": names,
        "phase_rms_before": before,
        "phase_rms_after": after,
        "improvement": improvement,
        "report": {
            "Name": names,
            "Flag": [n in flag for n in names],
            "Disc_um": [(disc or {}).get(n, 50.0) for n in names],
            "RMS_um": [80.0] * len(names),
        },
    }


def test_wvr_names_the_antenna_made_worse_by_its_own_wvr_and_suggests_wvrflag():
    summary = wvr_summary({"A": 20.0, "B": 22.0, "C": 10.0}, {"A": 8.0, "B": 9.0, "C": 30.0})
    found = qa.assess("wvr", "x.wvr", summary, ctx(4))
    bad = [f for f in found if f["code"] == "wvr_bad_antenna"]
    assert [f["antenna"] for f in bad] == ["C"]
    assert bad[0]["edit"]["value"] == ["C"] and bad[0]["edit"]["expect"]["direction"] == "down"
    score = next(f for f in found if f["code"] == "wvr_improvement")["score"]
    assert 0.67 <= score < 1.0


def test_wvr_after_wvrflag_keeps_the_flagged_antenna_and_finds_nothing_on_the_others():
    summary = wvr_summary({"A": 20.0, "B": 22.0, "C": 25.0}, {"A": 8.0, "B": 9.0, "C": 12.0}, flag=("C",))
    found = qa.wvr("x.wvr", summary, ctx(4))
    assert codes(found) == ["wvr_improvement"] and found[0]["score"] == 1.0


def test_wvr_beyond_the_disc_limit_is_bad_and_no_phase_rms_cannot_be_assessed():
    summary = wvr_summary({"A": 20.0, "B": 22.0}, {"A": 8.0, "B": 9.0}, disc={"B": 800.0})
    assert [f["antenna"] for f in qa.wvr("x", summary, ctx(4)) if f["code"] == "wvr_bad_antenna"] == ["B"]
    none = qa.wvr("x", wvr_summary({"A": 1.0}, {"A": 1.0}, improvement=None), ctx(4))
    assert codes(none) == ["cannot_assess"] and none[0]["score"] == CANNOT_ASSESS


def bp(chan2chan=0.01, notch=1.0, notch_channels=(), jump=2.0) -> dict:
    return {
        "chan2chan": chan2chan,
        "notch_depth": notch,
        "notch_channels": list(notch_channels),
        "phase_jump_deg": jump,
        "jump_channel": 30,
        "dd_outlier_fraction": 0.0,
        "flagged_fraction": 0.0,
    }


def test_bandpass_notch_jump_and_noisy_channels_each_give_their_finding():
    per_antenna = {a: {"0": bp()} for a in "ABCDEF"}
    per_antenna["B"]["0"] = bp(notch=0.45, notch_channels=(20, 27))
    per_antenna["C"]["0"] = bp(jump=60.0)
    per_antenna["D"]["0"] = bp(chan2chan=0.09)
    found = qa.bandpass("uid.ms.split.bandpass", {"spws": [0], "per_antenna": per_antenna}, ctx())
    assert {(f["code"], f["antenna"]) for f in found} == {
        ("bandpass_notch", "B"),
        ("bandpass_phase_jump", "C"),
        ("bandpass_chan2chan", "D"),
    }
    notch = next(f for f in found if f["code"] == "bandpass_notch")
    assert "spw = '0:20~27'" in notch["edit"]["append"][0]


def test_bandpass_noisy_on_most_antennas_is_a_low_snr_spw():
    per_antenna = {a: {"0": bp(chan2chan=0.12)} for a in "ABCDEF"}
    found = qa.bandpass("x.bandpass", {"spws": [0], "per_antenna": per_antenna}, ctx())
    assert codes(found) == ["bandpass_low_snr_spw"] and found[0]["spw"] == 0


def test_bandpass_metrics_find_a_notch_and_a_phase_jump_in_synthetic_spectra():
    amp = np.ones((2, 64))
    amp[:, 30:36] = 0.4
    phase = np.zeros((2, 64))
    phase[:, 40:] = 50.0
    m = bandpass_metrics(amp, phase)
    assert m["notch_channels"] == [30, 35] and m["notch_depth"] == pytest.approx(0.4)
    assert m["phase_jump_deg"] == pytest.approx(50.0) and m["jump_channel"] == 40
    flat = bandpass_metrics(np.ones((2, 64)), np.zeros((2, 64)))
    assert flat["notch_channels"] == [] and flat["chan2chan"] == 0.0


def gains_summary(calmode: str, amps: dict, rms=10.0, flagged=None) -> dict:
    return {
        "calmode": calmode,
        "per_antenna": {
            a: {"0": {"amp_median": v, "phase_rms_deg": rms, "flagged_fraction": (flagged or {}).get(a, 0.0)}}
            for a, v in amps.items()
        },
    }


def test_gains_find_a_dead_antenna_and_score_the_phase_rms_like_the_pipeline():
    found = qa.gains("x.ap", gains_summary("ap", {"A": 1.0, "B": 1.1, "C": 0.1}), ctx())
    assert [f["antenna"] for f in found if f["code"] == "gains_antenna"] == ["C"]
    flagged = qa.gains("x.p", gains_summary("p", {"A": 1, "B": 1}, flagged={"B": 0.95}), ctx())
    assert [f["antenna"] for f in flagged if f["code"] == "gains_antenna"] == ["B"]
    for rms, score in ((10.0, 1.0), (40.0, 0.9), (60.0, 0.4), (80.0, 0.3)):
        [f] = [f for f in qa.gains("x.p", gains_summary("p", {"A": 1}, rms=rms), ctx()) if f["metric"]]
        assert f["score"] == pytest.approx(score), rms


def test_flux_scores_snr_and_flags_a_spw_off_the_fitted_spectrum():
    summary = {
        "fields": {
            "J1733": {
                "0": {"flux": 1.20, "error": 0.01, "freq_ghz": 231.0},
                "1": {"flux": 1.19, "error": 0.01, "freq_ghz": 233.0},
                "2": {"flux": 0.90, "error": 0.05, "freq_ghz": 245.0},
            },
            "J0000": {},
        },
        "spectral_index": {"J1733": 0.0},
    }
    found = qa.flux("flux", summary, ctx())
    assert ("flux_missing", "J0000") in {(f["code"], f["field"]) for f in found}
    [off] = [f for f in found if f["code"] == "flux_spw_consistency"]
    assert off["spw"] == 2 and off["value"] == pytest.approx(0.25, abs=0.01) and off["score"] == 0.5


def test_flags_score_the_a_priori_and_the_newly_flagged_fraction_and_name_every_tied_antenna():
    first = qa.flags("s", {"stage": "Original", "vis": "d/x.ms", "total_fraction": 0.1, "antenna": {}}, ctx())
    assert first[0]["code"] == "flags_apriori" and first[0]["score"] == 1.0
    tie = {"A": 0.4, "B": 0.4, "C": 0.1}
    later = {"stage": "Bandpass", "vis": "x.ms", "total_fraction": 0.30, "antenna": tie}
    [f] = qa.flags("s", {**later, "previous": {"stage": "Original", "fraction": 0.1}}, ctx())
    assert f["code"] == "flags_new" and f["value"] == pytest.approx(0.2)
    assert "most flagged antennas A, B 40%" in f["message"]
    assert f["score"] == pytest.approx(qa.linear(0.2, 0.05, 0.5, 1.0, 0.5), abs=1e-3)


def test_findings_carry_the_ms_spw_with_the_split_id_beside_it():
    per_antenna = {a: {"1": bp()} for a in "ABCDEF"}
    per_antenna["B"]["1"] = bp(notch=0.45, notch_channels=(20, 27))
    summary = {"spws": [1], "per_antenna": per_antenna, "ms_spw": {"0": 1, "1": 2}}
    [notch] = qa.assess("bandpass", "uid.ms.split.bandpass", summary, ctx())
    assert notch["spw"] == 2 and notch["split_spw"] == 1
    assert "B spw 2 (split 1) bandpass notch" in notch["message"]
    assert "spw = '1:20~27'" in notch["edit"]["append"][0], "the edit flags the split, by its own ids"
    tsys = qa.assess("tsys", "uid.ms.tsys", tsys_summary({"A": 1.0, "B": 2.5}), ctx(5))
    assert tsys[0]["spw"] == 17 and tsys[0]["split_spw"] is None


def test_bandpass_preaverage_reaches_the_target_snr_in_powers_of_two_and_keeps_eight_solutions():
    from reports.metrics import bandpass_preaverage

    assert bandpass_preaverage(60.0, 64) == 1
    assert bandpass_preaverage(25.0, 64) == 1  # above the pipeline minimum: no averaging
    assert bandpass_preaverage(18.0, 64) == 8  # (50/18)^2 = 7.7 -> 8
    assert bandpass_preaverage(5.0, 3840) == 128  # (50/5)^2 = 100 -> 128
    assert bandpass_preaverage(2.0, 64) == 8  # 625 wanted, but 64 channels keep 8 solutions
    assert bandpass_preaverage(float("nan"), 64) == 1


def test_a_low_snr_bandpass_spw_gets_a_solint_computed_from_its_snr():
    per_antenna = {a: {"2": bp(chan2chan=0.09)} for a in "ABCDEF"}
    summary = {"spws": [2], "per_antenna": per_antenna, "spw_snr": {"2": 9.0}, "nchan": {"2": 64}}
    [f] = qa.bandpass("x.bandpass", summary, ctx())
    assert f["code"] == "bandpass_low_snr_spw" and f["edit"]["value"] == "inf,8ch"
    assert "median SNR 9 per channel" in f["message"]
    healthy = {"spws": [2], "per_antenna": {a: {"2": bp()} for a in "AB"}, "spw_snr": {"2": 80.0}}
    assert codes(qa.bandpass("x.bandpass", healthy, ctx())) == ["bandpass_ok"]


def test_quack_names_the_scans_and_suggests_a_quack_of_the_low_integrations():
    profile = {
        "integration_s": 6.048,
        "scans": {
            "2": {"field": "J1924", "first": [0.5, 0.99, 1.0]},
            "4": {"field": "J1733", "first": [0.52, 1.01, 0.99]},
            "6": {"field": "J1733", "first": [None, 1.0, 1.0]},
        },
    }
    summary = {
        "stage": "Original",
        "vis": "d/x.ms.split",
        "total_fraction": 0.1,
        "antenna": {},
        "quack": profile,
    }
    assert not [f for f in qa.flags("s", {**summary, "vis": "d/x.ms"}, ctx()) if "quack" in f["code"]], (
        "the script flags the split: the raw MS's quack is not the edit's to fix"
    )
    found = qa.assess("flags", "s", summary, ctx())
    [q] = [f for f in found if f["code"] == "quack"]
    assert "2 (J1924 50%)" in q["message"] and "4 (J1733 52%)" in q["message"] and "6 (" not in q["message"]
    assert "quackinterval = 3.0" in q["edit"]["append"][0] and q["edit"]["step"] == 2
    assert q["score"] < 0.9 and q["edit"]["expect"]["direction"] == "gone"
    settled = {**summary, "quack": {"integration_s": 6.0, "scans": {"2": {"field": "J", "first": [0.97]}}}}
    assert "quack_ok" in codes(qa.flags("s", settled, ctx()))


def test_a_spw_with_a_third_of_the_best_gain_snr_is_low():
    summary = {**gains_summary("p", {"A": 1, "B": 1}), "spw_snr": {"0": 60.0, "1": 55.0, "2": 9.0}}
    [low] = [f for f in qa.gains("x.p", summary, ctx()) if f["code"] == "gains_low_snr_spw"]
    assert low["spw"] == 2 and "combine = 'spw'" in low["message"]


def test_a_narrow_spw_off_the_flux_spectrum_is_low_snr_not_a_flux_change():
    summary = {
        "fields": {
            "J1733": {
                "0": {"flux": 1.20, "error": 0.01, "freq_ghz": 231.0, "bandwidth_mhz": 2000.0},
                "1": {"flux": 1.19, "error": 0.01, "freq_ghz": 233.0, "bandwidth_mhz": 2000.0},
                "2": {"flux": 0.90, "error": 0.09, "freq_ghz": 245.0, "bandwidth_mhz": 62.5},
            }
        },
        "spectral_index": {"J1733": 0.0},
    }
    found = qa.flux("flux", summary, ctx())
    assert [(f["code"], f["spw"]) for f in found if f["code"] != "flux_snr"] == [("flux_low_snr_spw", 2)]


def test_an_atmospheric_line_is_said_and_never_flagged():
    summary = tsys_summary({"A": 1.0, "B": 1.1})
    summary["atm_lines"] = {"17": {"freq_ghz": 231.281, "dip": 0.12, "tsys_rise": 0.2}, "19": {"dip": 0.01}}
    found = qa.tsys("x.tsys", summary, ctx(5))
    [line] = [f for f in found if f["code"] == "tsys_atm_line"]
    assert line["spw"] == 17 and line["edit"] is None and line["score"] == 1.0
    assert "231.281 GHz" in line["message"] and "not flagged" in line["message"]


def test_array_wide_variation_with_enough_snr_is_the_bands_shape_not_a_fault():
    per_antenna = {a: {"2": bp(chan2chan=0.056)} for a in "ABCDEF"}
    summary = {"spws": [2], "per_antenna": per_antenna, "spw_snr": {"2": 40.0}, "nchan": {"2": 8}}
    found = qa.bandpass("x.bandpass", summary, ctx())
    assert codes(found) == ["bandpass_structure"] and found[0]["score"] == 1.0 and not found[0]["antenna"]


def test_quack_is_judged_at_the_first_save_after_the_flagging_step_only():
    profile = {"integration_s": 6.0, "scans": {"2": {"field": "J", "first": [0.5, 1.0, 1.0]}}}
    summary = {"stage": "s", "vis": "x.ms.split", "total_fraction": 0.1, "antenna": {}, "quack": profile}
    before_flagging = qa.ScriptContext(steps={**STEPS, 6: "Split out science SPWs"}, step=2)
    assert "quack" not in codes(qa.flags("s", summary, before_flagging))
    later = {**summary, "previous": {"stage": "BeforeBandpass", "fraction": 0.1, "step": 7}}
    assert "quack" not in codes(qa.flags("s", later, ctx())), "judged once: at the first save after step 2"
    first_after = {**summary, "previous": {"stage": "Original", "fraction": 0.1, "step": 1}}
    assert "quack" in codes(qa.flags("s", first_after, ctx()))


def test_on_channel_averaged_solutions_only_the_snr_decides():
    per_antenna = {a: {"2": bp(chan2chan=0.06)} for a in "ABCDEF"}
    per_antenna["B"]["2"] = bp(chan2chan=0.09)
    summary = {"spws": [2], "per_antenna": per_antenna, "spw_snr": {"2": 45.0}, "averaged": {"2": 8}}
    assert codes(qa.bandpass("x.bandpass", summary, ctx())) == ["bandpass_ok"]
    low = {**summary, "spw_snr": {"2": 12.0}, "nchan": {"2": 8}}
    assert codes(qa.bandpass("x.bandpass", low, ctx())) == ["bandpass_low_snr_spw"]


def test_the_solint_is_written_in_mhz_so_only_the_narrow_spw_is_averaged():
    per_antenna = {a: {"1": bp(chan2chan=0.09)} for a in "ABCDEF"}
    summary = {
        "spws": [1],
        "per_antenna": per_antenna,
        "spw_snr": {"1": 14.0},
        "nchan": {"1": 64},
        "chan_width_mhz": {"1": 0.06103515625},
    }
    [f] = qa.bandpass("x.bandpass", summary, ctx())
    assert f["edit"]["value"] == "inf,0.4883MHz" and "8 channels of this spw" in f["edit"]["description"]
