"""What an edit promises, whether a later run kept the promise, and run-to-run changes (pure)."""

from reports.edit_loop import compare_findings, expectation, verdict


def f(code, score, antenna="", spw=None, value=None, topic="wvr", metric="m", edit=None, field=""):
    return {
        "topic": topic,
        "code": code,
        "score": score,
        "antenna": antenna,
        "spw": spw,
        "value": value,
        "metric": metric,
        "message": f"{code} on {antenna}",
        "edit": edit,
        "field": field,
    }


WVR_EDIT = {"step": 4, "task": "wvrgcal", "param": "wvrflag", "value": ["DV07"]}
FLAG_EDIT = {"step": 2, "append": ["flagdata(...)"]}


def test_a_parameter_edit_promises_its_metric_goes_down_and_a_flag_edit_that_the_finding_goes():
    wvr = expectation(f("wvr_bad_antenna", 0.5, "DV07", value=1.8, edit=WVR_EDIT, metric="after/before"))
    assert wvr["direction"] == "down" and wvr["antenna"] == "DV07"
    assert "after/before on DV07 goes down from 1.8" in wvr["says"]
    flag = expectation(f("tsys_high", 0.4, "DA44", spw=0, topic="tsys", edit=FLAG_EDIT))
    assert flag["direction"] == "gone" and "tsys_high finding on DA44 spw 0 disappears" in flag["says"]


def test_the_verdict_says_worked_when_the_finding_is_gone_on_that_antenna():
    expect = expectation(f("wvr_bad_antenna", 0.5, "DV07", value=1.8, edit=WVR_EDIT))
    later = [f("wvr_improvement", 1.0), f("wvr_bad_antenna", 0.5, "DA41", value=1.2)]
    v = verdict(expect, later, {"wvr"})
    assert v.status == "worked" and v.ok


def test_the_verdict_says_partly_or_did_not_from_the_metric():
    expect = expectation(f("wvr_bad_antenna", 0.5, "DV07", value=1.8, edit=WVR_EDIT))
    assert verdict(expect, [f("wvr_bad_antenna", 0.5, "DV07", value=1.3)], {"wvr"}).status == "partly"
    worse = verdict(expect, [f("wvr_bad_antenna", 0.5, "DV07", value=2.0)], {"wvr"})
    assert worse.status == "did_not" and "1.8 to 2" in worse.says


def test_a_green_finding_at_the_same_place_counts_as_gone():
    expect = expectation(f("tsys_high", 0.4, "DA44", spw=0, topic="tsys", edit=FLAG_EDIT))
    assert verdict(expect, [f("tsys_high", 0.95, "DA44", spw=0, topic="tsys")], {"tsys"}).ok
    assert verdict(expect, [f("tsys_high", 0.5, "DA44", spw=0, topic="tsys")], {"tsys"}).status == "did_not"


def test_a_run_without_the_topic_cannot_judge_the_edit():
    expect = expectation(f("wvr_bad_antenna", 0.5, "DV07", value=1.8, edit=WVR_EDIT))
    assert verdict(expect, [], {"tsys", "bandpass"}).status == "not_assessed"


def test_compare_puts_new_findings_and_regressions_first_and_in_red():
    a = [f("wvr_bad_antenna", 0.5, "DV07", value=1.8), f("gains_phase_rms", 1.0, value=12.0, topic="gains")]
    b = [
        f("gains_phase_rms", 0.9, value=35.0, topic="gains"),
        f("wvr_bad_antenna", 0.5, "DA41", value=1.3),
        f("wvr_improvement", 1.0, value=1.4),
    ]
    rows = compare_findings(a, b)
    status = {(r.code, r.where): r.status for r in rows}
    assert status == {
        ("wvr_bad_antenna", "DA41"): "new",
        ("gains_phase_rms", "the whole EB"): "worse",
        ("wvr_bad_antenna", "DV07"): "gone",
        ("wvr_improvement", "the whole EB"): "same",
    }
    assert [r.status for r in rows][:2] == ["new", "worse"] and all(r.alarming for r in rows[:2])
    worse = next(r for r in rows if r.status == "worse")
    assert worse.value_change == 23.0 and round(worse.score_change, 3) == -0.1
    assert not any(r.alarming for r in rows[2:])


def test_a_topic_the_other_run_did_not_diagnose_is_not_compared():
    a = [f("tsys_high", 0.4, "DA44", spw=0, topic="tsys"), f("wvr_bad_antenna", 0.5, "DV07", value=1.8)]
    b = [f("wvr_improvement", 1.0, value=1.4)]
    rows = {r.code: r.status for r in compare_findings(a, b, {"tsys", "wvr"}, {"wvr"})}
    assert rows == {"tsys_high": "not_compared", "wvr_bad_antenna": "gone", "wvr_improvement": "same"}
