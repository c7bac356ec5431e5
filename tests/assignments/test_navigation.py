"""In Chromium, as a user moves: from the MOUS page to an EB's scripts, runs, products and
diagnostics by clicking; the whiteboard fits a narrow window."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factories import ExecutionBlockFactory, MousFactory, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory
SCREENS = Path(__file__).resolve().parents[2] / "var" / "screens"


def test_whiteboard_fits_an_820_px_window(world, page: Page, live_server, login):
    # Long values in every column, as real projects have.
    project = ProjectFactory(code="2019.1.01234.L")
    for n in range(8):
        mous = MousFactory(
            project=project,
            sb_name=f"Orion_KL_extended_mosaic_a_06_TM{n}",
            jira_key=f"SCOPS-1234{n}",
            notes="pipeline failed",
            pipeline_failed=True,
        )
        ExecutionBlockFactory(mous=mous)
    page.set_viewport_size({"width": 820, "height": 900})
    login("drm1", PASSWORD)
    page.goto(f"{live_server.url}/whiteboard/")
    expect(page.locator("table.whiteboard tbody tr")).to_have_count(11)

    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "whiteboard_820.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 820
    # The table keeps its columns readable and scrolls inside its own box instead.
    box = page.locator(".table-scroll")
    assert box.evaluate("e => e.scrollWidth > e.clientWidth")
    assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"
