"""In Chromium, by clicking only: whiteboard (at 820 px) -> findings -> diagnostics -> MOUS page
-> the EB's scripts, runs, products (a text product read in the browser) and diagnostics; the
reducer's 'Needs next' button. Real worker, real CASA on NGC5921."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.calibration.conftest import alma_steps, script_version
from tests.reports.test_diagnostics import run_to_end

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.casa,
    pytest.mark.django_db(transaction=True),
]
SCREENS = Path(__file__).resolve().parents[2] / "var" / "screens"


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"


def test_from_the_whiteboard_and_the_mous_page_to_everything_of_an_eb(
    page: Page, live_server, login, celery_worker_process, make_eb, ngc5921_ms, reducer, drm_person
):
    eb = make_eb(ngc5921_ms)
    vis = f"raw/{ngc5921_ms.name}"
    script = alma_steps(
        f"listobs(vis='{vis}', listfile='ngc5921.listobs')",
        f"gaincal(vis='{vis}', caltable='all_flagged.g', field='0', refant='15', solint='inf', calmode='p')\n"
        "flagdata(vis='all_flagged.g', mode='manual', flagbackup=False)",
    )
    run = run_to_end(script_version(eb, script), [], reducer.user)
    mous = eb.mous
    SCREENS.mkdir(parents=True, exist_ok=True)

    # The DRM's whiteboard in a narrow window: nothing sticks out sideways.
    page.set_viewport_size({"width": 820, "height": 1000})
    login("caldrm", "drm-pw-12345")
    expect(page).to_have_url(re.compile(r"/whiteboard/$"))
    _fits(page)
    row = page.locator(f"tr[data-mous='{mous.uid}']")
    row.locator(".open-findings a").click()  # scrolled into view inside the table's box

    # One EB has diagnostics: straight to its overview, with the open finding.
    expect(page).to_have_url(re.compile(rf"/reports/eb/{eb.pk}/$"))
    expect(page.locator("#findings")).to_contain_text("every gain solution is flagged")
    _fits(page)

    page.locator(".crumbs a", has_text=mous.uid).click()
    expect(page).to_have_url(re.compile(rf"/mous/{mous.pk}/$"))
    eb_row = page.locator(f"#ebs tr[data-eb='{eb.uid}']")
    expect(eb_row).to_contain_text(f"#{run.pk} Succeeded")
    page.screenshot(path=str(SCREENS / "mous_page_820.png"), full_page=True)
    _fits(page)

    eb_row.locator("a[data-link=scripts]").click()
    expect(page).to_have_url(re.compile(rf"/calibration/eb/{eb.pk}/$"))
    expect(page.locator("#versions")).to_contain_text("v1")
    page.go_back()

    page.locator(f"#runs tr[data-run='{run.pk}'] a", has_text=f"#{run.pk}").click()
    expect(page).to_have_url(re.compile(rf"/calibration/runs/{run.pk}/$"))
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    page.go_back()

    eb_row = page.locator(f"#ebs tr[data-eb='{eb.uid}']")
    eb_row.locator("a[data-link=products]").click()
    expect(page).to_have_url(re.compile(rf"/calibration/eb/{eb.pk}/products/$"))
    page.locator("#products tr[data-relpath='ngc5921.listobs'] a.view").click()
    # Read in the browser (text/plain), not downloaded.
    expect(page).to_have_url(re.compile(rf"/calibration/eb/{eb.pk}/files/ngc5921.listobs$"))
    expect(page.locator("body")).to_contain_text("Observed from")
    page.go_back()
    page.go_back()

    page.locator(f"#ebs tr[data-eb='{eb.uid}'] a[data-link=diagnostics]").click()
    expect(page).to_have_url(re.compile(rf"/reports/eb/{eb.pk}/$"))
    expect(page.locator("#scores [data-topic=gains]")).to_be_visible()

    # The reducer: My work's 'Needs next' button opens the page where the work is done.
    page.click("button:has-text('Log out')")
    login("calreducer", "reducer-pw-123")
    expect(page).to_have_url(re.compile(r"/my-work/$"))
    _fits(page)
    page.locator(f"tr[data-mous='{mous.uid}'] a.next-action-link").click()
    expect(page).to_have_url(re.compile(rf"/calibration/eb/{eb.pk}/$"))
