"""The QA2 package of a one-EB MOUS up to review, with real CASA on a real worker and the pages
in Chromium: after calibration and imaging, the checklist lists what is missing and "Ready for
review" is refused; the reducer makes the EB's qa2 report (textfile.txt and PNGs in qa2/) and
the README (generated, then edited: two versions, the file in the MOUS folder); the checklist
turns green and the move to review goes through."""

import time

import pytest
from playwright.sync_api import expect

from assignments.datafiles import eb_folder, mous_folder
from assignments.models import MousState
from calibration import imaging, runs
from calibration.models import CalibratedCopy, Run
from reports import checklist
from reports.models import Qa2Report, ReadmeVersion
from tests.reports.test_imaging import calibrated_mous, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]


def imaged_mous(reducer):
    mous = calibrated_mous(reducer)
    copy = imaging.imaging_copy_request(mous=mous, by=reducer.user)
    assert wait_for(copy, lambda c: not c.is_active).status == CalibratedCopy.Status.DONE, copy.error
    for create in (imaging.prep_script_create, imaging.imaging_script_create):
        version = create(mous=mous, by=reducer.user)
        run = wait_for(runs.run_create(version=version, steps=[], by=reducer.user), lambda r: r.is_terminal)
        assert run.status == Run.Status.SUCCEEDED, run.error
    mous.refresh_from_db()
    return mous


def test_the_reducer_completes_the_checklist_and_the_drm_reviews_and_decides(
    page, live_server, login, celery_worker_process, reducer, drm_person, calibrator_catalogue
):
    started = time.monotonic()
    mous = imaged_mous(reducer)
    eb = mous.execution_blocks.get()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login("calreducer", "reducer-pw-123")

    # Calibrated and imaged, but no qa2 report and no README: review is refused with them listed.
    page.goto(f"{live_server.url}/mous/{mous.pk}/")
    page.click("#transition-form button[data-move=READY_FOR_REVIEW]")
    expect(page.locator("#refusal")).to_contain_text("2 checklist item(s) missing")
    expect(page.locator("#refusal")).to_contain_text("qa2 directory")
    expect(page.locator("#refusal")).to_contain_text("README")
    mous.refresh_from_db()
    assert mous.state == MousState.IMAGING

    # The checklist page: every other item is green.
    page.click("#checklist-link")
    rows = page.locator("#checklist-table tbody tr")
    expect(page.locator("#checklist-table tr[data-ok='0']")).to_have_count(2)
    assert rows.count() == len(checklist.checklist(mous))

    # The qa2 report, made by a worker from the calibration run; browsed on its page.
    page.locator(f"tr[data-eb='{eb.uid}'] .make-qa2").click()
    expect(page.locator(".messages")).to_contain_text("qa2 report")
    report = wait_for(Qa2Report.objects.get(execution_block=eb), lambda r: not r.is_active, timeout=600)
    assert report.status == Qa2Report.Status.DONE, report.error
    qa2 = eb_folder(eb) / "qa2"
    text = (qa2 / "textfile.txt").read_text()
    for heading in ("OBSERVATION", "CALIBRATION", "FINDINGS"):
        assert heading in text.upper()
    assert "HD_163296" in text and "J1924-2914" in text and "DA44" in text
    pngs = sorted(p.name for p in qa2.glob("*.png"))
    assert pngs and all((qa2 / n).read_bytes().startswith(b"\x89PNG") for n in pngs)
    assert set(report.files) == {"textfile.txt", *pngs}
    # The page follows the report by itself and shows it done.
    expect(page.locator(f"tr[data-eb='{eb.uid}'] .qa2-state")).to_contain_text("Done", timeout=60_000)
    page.locator(f"tr[data-eb='{eb.uid}'] .qa2-link").click()
    expect(page.locator("#textfile")).to_contain_text("HD_163296")
    expect(page.locator("#qa2-plots img")).to_have_count(len(pngs))

    # The README: generated from what the portal knows, then edited (a second version).
    page.goto(f"{live_server.url}/reports/mous/{mous.pk}/readme/")
    page.click("#generate-readme")
    expect(page.locator(".messages")).to_contain_text("README v1 saved (generated)")
    generated = page.locator("#readme-text").input_value()
    for section in ("Requested sensitivity", "Configuration", "How the data were calibrated",
                    "Significant issues", "Image quality", "Comparison with the request",
                    "Multi-array note", "Suggested improvements"):  # fmt: skip
        assert section in generated, section
    assert "longest baseline 149 m" in generated
    page.fill("#readme-text", generated + "\nReviewed by the reducer: the hot DA44 was flagged in Tsys.\n")
    page.click("#save-readme")
    expect(page.locator(".messages")).to_contain_text("README v2 saved (edited)")
    assert ReadmeVersion.objects.filter(mous=mous).count() == 2
    assert "Reviewed by the reducer" in (mous_folder(mous) / "README").read_text()
    # An empty README is refused and changes nothing.
    page.fill("#readme-text", "   ")
    page.click("#save-readme")
    expect(page.locator(".messages")).to_contain_text("README not saved: the README is empty")
    assert ReadmeVersion.objects.filter(mous=mous).count() == 2

    # The checklist is green; the reducer asks for review from the MOUS page.
    page.click("#checklist-link")
    expect(page.locator("#checklist h2")).to_contain_text("Complete")
    page.click("#mous-link")
    page.click("#transition-form button[data-move=READY_FOR_REVIEW]")
    expect(page.locator(".messages")).to_contain_text("is now Ready for review")
    mous.refresh_from_db()
    assert mous.state == MousState.READY_FOR_REVIEW
    assert mous.state_changes.get(new_state=MousState.READY_FOR_REVIEW).checklist_override == ""

    # The DRM's review page: everything at once; start; a semipass without a note and a decision
    # without the confirmation are refused; then the decision.
    page.click("button:has-text('Log out')")
    login("caldrm", "drm-pw-12345")
    page.goto(f"{live_server.url}/mous/{mous.pk}/")
    page.click("#review-link")
    for section in ("#review-ebs", "#review-images", "#review-checklist", "#review-readme", "#verdict"):
        expect(page.locator(section)).to_be_visible()
    expect(page.locator("#review-readme")).to_contain_text("Reviewed by the reducer")
    expect(page.locator(f"#review-ebs tr[data-eb='{eb.uid}']")).to_contain_text("Succeeded")
    page.click("#start-review")
    expect(page.locator("#review-state")).to_have_text("Reviewing")
    page.check("input[name=outcome][value=semipass]")
    page.check("#confirm")
    page.click("#decide")
    expect(page.locator(".messages")).to_contain_text("a QA2 semipass needs a note saying why")
    page.check("input[name=outcome][value=pass]")
    page.click("#decide")
    expect(page.locator(".messages")).to_contain_text("confirm the decision")
    mous.refresh_from_db()
    assert mous.state == MousState.REVIEWING
    page.check("input[name=outcome][value=pass]")
    page.check("#confirm")
    page.click("#decide")
    expect(page.locator("#review-state")).to_have_text("QA2 pass")
    mous.refresh_from_db()
    assert mous.state == MousState.QA2_PASS
    assert not errors, errors
    print(f"qa2 package test {time.monotonic() - started:.0f} s")
