"""Diagnostics on the small simulated EB, checked against its truth.json, and in Chromium."""

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from calibration import runs, script_generation
from calibration.models import Run, ScriptVersion
from reports.models import Finding, Topic
from reports.services import edit_checks, topic_scores
from tests.calibration.conftest import alma_steps, script_version

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]

# Screenshots for review (copies of a run are kept in docs/screens/).
SCREENS = Path(__file__).resolve().parents[2] / "var" / "screens"


def run_to_end(version, steps, by) -> Run:
    run = runs.run_create(version=version, steps=steps, by=by)
    deadline = time.monotonic() + 300
    while not run.is_terminal:
        assert time.monotonic() < deadline, f"run {run.pk} stuck in {run.status}"
        time.sleep(0.5)
        run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    return run


def fault(truth: dict, kind: str) -> dict:
    return next(f for f in truth["faults"] if f["kind"] == kind)


def test_findings_match_the_injected_faults_and_the_wvrflag_edit_improves_the_score(
    page, live_server, login, celery_worker_process, make_eb, small_eb, reducer, calibrator_catalogue
):
    truth = small_eb.truth
    eb = make_eb(small_eb.ms)
    version = script_generation.calibration_script_create(
        eb=eb, summary=script_generation.data_summary_refresh(eb), by=reducer.user
    )
    first = run_to_end(version, [], reducer.user)

    findings = list(first.findings.all())
    by_code: dict[str, list] = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f)
    unassessed = {
        d.name: d.summary["cannot_assess"] for d in first.diagnostics.all() if "cannot_assess" in d.summary
    }
    assert not unassessed, unassessed
    bad_wvr, hot, defect = fault(truth, "bad_wvr"), fault(truth, "hot_tsys"), fault(truth, "bandpass_defect")

    [wvr] = by_code["wvr_bad_antenna"]
    assert wvr.antenna == bad_wvr["antenna"]
    assert wvr.edit["task"] == "wvrgcal" and wvr.edit["value"] == [bad_wvr["antenna"]]
    assert "gets worse with its own WVR" in wvr.message and "add wvrflag=['DV07']" in wvr.message
    assert {f.antenna for f in by_code["tsys_high"]} == {hot["antenna"]}
    split_spw = truth["spws"].index(next(s for s in truth["spws"] if s["spw"] == defect["spw"]))
    [notch] = [f for f in by_code["bandpass_notch"] if f.antenna == defect["antenna"]]
    assert notch.spw == defect["spw"] and notch.split_spw == split_spw, (
        "the MS's spw, the split's beside",
        notch.diagnostic.name,
        notch.diagnostic.summary.get("ms_spw"),
        notch.diagnostic.summary.get("spw_note"),
        notch.diagnostic.summary.get("vis"),
    )
    assert f"spw {defect['spw']} (split {split_spw})" in notch.message
    first_chan, last_chan = defect["notch_channels"]
    assert f"channels {first_chan}-{last_chan - 1}" in notch.message
    assert any(
        f.antenna == defect["antenna"] and f.spw == defect["spw"] for f in by_code["bandpass_phase_jump"]
    )
    assert {f.spw for f in by_code["tsys_high"]} <= {s["spw"] for s in truth["spws"]}
    faulty = {f.get("antenna") for f in truth["faults"]} - {None}
    healthy_findings = [f for f in findings if f.antenna and f.antenna not in faulty and f.score <= 0.9]
    assert healthy_findings == [], "nothing on the healthy antennas"
    # The phase calibrator's derived fluxes agree with the catalogue (the simulator's truth).
    assert {(f.field, f.score) for f in by_code["flux_catalogue"]} == {("J1733-1304", 1.0)}
    scores = topic_scores(first)
    assert all(scores[t] is not None for t in Topic.values), scores

    SCREENS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login("calreducer", "reducer-pw-123")
    page.goto(f"{live_server.url}/reports/eb/{eb.pk}/")
    expect(page.locator("#scores .score-card")).to_have_count(len(Topic.choices))
    page.screenshot(path=str(SCREENS / "diagnostics_overview.png"), full_page=True)
    expected_figures = {"tsys": 2, "wvr": 2, "bandpass": 3, "gains": 2, "flags": 2, "flux": 1}
    for topic, count in expected_figures.items():
        page.goto(f"{live_server.url}/reports/runs/{first.pk}/{topic}/")
        page.wait_for_function(f"document.body.dataset.figuresReady === '{count}'", timeout=30_000)
        assert page.evaluate("window.__figureErrors") == []
        traces = page.evaluate(
            "Array.from(document.querySelectorAll('.plotly-figure')).map(el => (el._fullData || []).length)"
        )
        assert len(traces) == count and all(n > 0 for n in traces), (topic, traces)
        page.screenshot(path=str(SCREENS / f"diagnostics_{topic}.png"), full_page=True)
    # The Tsys spectra show one trace per antenna plus the ATM overlay.
    page.goto(f"{live_server.url}/reports/runs/{first.pk}/tsys/")
    page.wait_for_function("document.body.dataset.figuresReady === '2'")
    names = page.evaluate("document.getElementById('fig-spectra')._fullData.map(t => t.name)")
    assert set(truth_antennas(truth)) <= set(names) and "ATM transmission" in names

    page.goto(f"{live_server.url}/reports/eb/{eb.pk}/")
    page.locator("tr[data-code='wvr_bad_antenna'] button.apply").click()
    expect(page.locator(".changed-step")).to_contain_text("step 4")
    edited = ScriptVersion.objects.filter(script=version.script).latest("number")
    assert edited.source == "edited" and "wvrflag = ['DV07']" in edited.text()
    assert "# CR: interpolate the WVR of DV07" in edited.text(), "the reducer's initials mark the edit"

    [applied] = [f for f in findings if f.code == "wvr_bad_antenna"]
    assert applied.edit["expect"]["direction"] == "down" and applied.edit["expect"]["antenna"] == "DV07"

    second = run_to_end(edited, [0, 3, 4], reducer.user)
    before, after = topic_scores(first)["wvr"], topic_scores(second)["wvr"]
    assert after > before
    assert not second.findings.filter(code="wvr_bad_antenna").exists()
    # With DV07 interpolated, its Disc is the smallest: it must not become the reference (that
    # made three healthy antennas "worse by their own WVR").
    [wvr_diag] = second.diagnostics.filter(topic=Topic.WVR)
    assert wvr_diag.summary["reference_antenna"] != bad_wvr["antenna"]
    reopened = [f for f in second.findings.all() if f.antenna and f.antenna not in faulty and f.score <= 0.9]
    assert reopened == [], "nothing on the healthy antennas after the edit either"
    [check] = edit_checks(second)
    assert check["verdict"].status == "worked", check["verdict"].says
    page.goto(f"{live_server.url}/reports/eb/{eb.pk}/?run={second.pk}")
    expect(page.locator("#edit-checks tr[data-code='wvr_bad_antenna'] .verdict")).to_contain_text("worked")
    page.goto(f"{live_server.url}/reports/eb/{eb.pk}/compare/?a={first.pk}&b={second.pk}")
    page.wait_for_function("document.body.dataset.figuresReady === '2'")
    change = page.locator("#compare tr[data-topic='wvr'] .change").inner_text()
    assert float(change) == pytest.approx(after - before, abs=0.01) and float(change) > 0
    gone = page.locator("#finding-changes tr[data-status='gone'][data-code='wvr_bad_antenna']")
    expect(gone).to_have_attribute("data-where", bad_wvr["antenna"])
    expect(page.locator("#finding-changes tr.alarm")).to_have_count(0)
    page.screenshot(path=str(SCREENS / "diagnostics_compare.png"), full_page=True)
    assert errors == []


def truth_antennas(truth: dict) -> list[str]:
    return (
        [a["name"] for a in truth["antennas"]]
        if isinstance(truth["antennas"][0], dict)
        else truth["antennas"]
    )


def test_tables_it_cannot_assess_give_a_clear_finding(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    vis = f"raw/{ngc5921_ms.name}"
    body = (
        f"gaincal(vis='{vis}', caltable='delays.k', field='0', gaintype='K', refant='15', solint='inf')\n"
        f"gaincal(vis='{vis}', caltable='all_flagged.g', field='0', refant='15', solint='inf', calmode='p')\n"
        "flagdata(vis='all_flagged.g', mode='manual', flagbackup=False)"
    )
    run = run_to_end(script_version(eb, alma_steps(body)), [], reducer.user)

    cannot = {f.diagnostic.name: f for f in Finding.objects.filter(run=run, code="cannot_assess")}
    assert "K Jones tables are not assessed" in cannot["delays.k"].message
    assert "every gain solution is flagged" in cannot["all_flagged.g"].message
    assert topic_scores(run)["gains"] < 0
