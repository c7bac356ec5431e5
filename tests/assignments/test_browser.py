"""The DRM's and the reducer's day in headless Chromium: whiteboard, assignment, lifecycle, My work."""

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory


def _move(page: Page, to: str, note: str = "", override: str = "") -> None:
    if note:
        page.fill("#transition-form input[name=note]", note)
    if override:
        page.fill("#transition-form input[name=override_reason]", override)
    page.click(f"#transition-form button[data-move={to}]")
    expect(page.locator(".messages")).to_contain_text("is now")


def test_drm_assigns_and_moves_a_mous_then_the_reducer_finds_it(world, page: Page, live_server, login):
    mous = world.new

    # DRM: the whiteboard is home; filter to the NEW MOUS.
    login("drm1", PASSWORD)
    expect(page).to_have_url(re.compile(r"/whiteboard/$"))
    expect(page.locator("[data-count-state=NEW] b")).to_have_text("1")
    page.select_option("#filters select[name=state]", "NEW")
    page.click("#filters button[type=submit]")
    rows = page.locator("table.whiteboard tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-mous", mous.uid)
    rows.first.get_by_role("link", name=mous.uid).click()

    # The PI of the project is refused, with the rule named; nothing changes.
    page.select_option(
        "#assign-form select[name=reducer]", label=f"{world.pi.initials} · pi1 (Data reducer (staff))"
    )
    page.click("#assign-form button[type=submit]")
    expect(page.locator("#refusal")).to_contain_text("conflict-of-interest rule")
    expect(page.locator("#assignee")).to_have_text("nobody")

    page.select_option(
        "#assign-form select[name=reducer]", label=f"{world.reducer.initials} · red1 (Data reducer (staff))"
    )
    page.click("#assign-form button[type=submit]")
    expect(page.locator("#assignee")).to_have_text("red1 (RA)")

    # Through the lifecycle, with a block, a QA2 fail and reprocessing.
    _move(page, "CALIBRATING")
    _move(page, "BLOCKED", note="ASDM of the second EB missing on lustre")
    expect(page.locator(".state")).to_have_text("Blocked")
    _move(page, "CALIBRATING")
    # Nothing was calibrated: review is refused with the checklist's items, then overridden.
    page.click("#transition-form button[data-move=READY_FOR_REVIEW]")
    expect(page.locator("#refusal")).to_contain_text("checklist item(s) missing")
    expect(page.locator(".state")).to_have_text("Calibrating")
    _move(page, "READY_FOR_REVIEW", override="browser test: the lifecycle without data")
    expect(page.locator("#timeline .checklist-override").first).to_contain_text("browser test")
    _move(page, "REVIEWING")
    _move(page, "QA2_FAIL", note="bandpass of DV12 unflagged")
    _move(page, "ASSIGNED", note="reprocess with DV12 flagged")
    timeline = page.locator("#timeline li")
    expect(timeline).to_have_count(8)  # the refused move wrote nothing
    expect(timeline.first).to_contain_text("QA2 fail → Assigned by drm1")
    expect(page.locator("#timeline")).to_contain_text("ASDM of the second EB missing on lustre")

    # The reducer: the MOUS is under My work with what it needs next.
    page.click("button:has-text('Log out')")
    login("red1", PASSWORD)
    expect(page).to_have_url(re.compile(r"/my-work/$"))
    row = page.locator(f"tr[data-mous='{mous.uid}']")
    expect(row.locator(".next")).to_contain_text("Reducer: Generate or upload the calibration scripts")
    row.get_by_role("link", name=mous.uid).click()
    expect(page.locator("#assign-form")).to_have_count(0)
    expect(page.locator("#transition-form button[data-move=CALIBRATING]")).to_be_visible()

    # A DRM-only action is refused to the reducer.
    answer = page.goto(f"{live_server.url}/mous/{mous.pk}/edit/")
    assert answer is not None and answer.status == 403
    page.goto(f"{live_server.url}/mous/{mous.pk}/")
    page.wait_for_load_state("networkidle")
