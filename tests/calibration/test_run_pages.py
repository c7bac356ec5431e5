"""As a reducer would, in Chromium: generate, run all, watch, open a plot, cancel, re-run one step."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from calibration.models import Product, Run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.casa,
    pytest.mark.django_db(transaction=True),
]

SCREENS = Path(__file__).resolve().parents[2] / "var" / "screens"


def test_reducer_generates_runs_watches_cancels_and_reruns(
    page, live_server, login, celery_worker_process, make_eb, small_eb, reducer
):
    eb = make_eb(small_eb.ms)
    SCREENS.mkdir(parents=True, exist_ok=True)
    login("calreducer", "reducer-pw-123")

    page.goto(f"{live_server.url}/calibration/eb/{eb.pk}/")
    page.click("#generate")
    expect(page.locator("#versions")).to_contain_text("Generated", timeout=90_000)
    steps = page.locator("table.steps tbody tr")
    expect(steps).to_have_count(20)
    expect(steps.nth(4)).to_contain_text("Generation and time averaging of the WVR cal table")

    page.click("#run-all")
    expect(page).to_have_url(re.compile(r"/calibration/runs/\d+/$"))
    expect(page.locator("#progress-text")).not_to_have_text("0 / 20 steps", timeout=60_000)
    expect(page.locator("#log")).to_contain_text("=== step", timeout=30_000)
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=240_000)
    expect(page.locator("#progress-text")).to_have_text("20 / 20 steps")
    page.screenshot(path=str(SCREENS / "run_succeeded.png"), full_page=True)
    full_run = Run.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert full_run.products.filter(kind=Product.Kind.CALTABLE, viscal="B TSYS").exists()
    assert full_run.products.filter(kind=Product.Kind.CALTABLE, viscal="B Jones").exists()
    wvr = full_run.steps.get(number=4)
    assert wvr.casa_tasks == ["wvrgcal"] and wvr.skipped_helpers[0].startswith("aU.plotWVRSolutions(")

    page.goto(f"{live_server.url}/calibration/eb/{eb.pk}/products/?kind=png")
    thumbs = page.locator(".thumbs img")
    expect(thumbs.first).to_be_visible()
    page.wait_for_function("document.querySelector('.thumbs img').naturalWidth > 600")
    # Thumbnails big enough to read a plot (a ~320 px grid), each opening the full-size file.
    assert thumbs.first.evaluate("img => img.getBoundingClientRect().width") >= 300
    with page.context.expect_page() as opened:
        thumbs.nth(1).click()
    full = opened.value
    full.wait_for_load_state()
    assert re.search(rf"/calibration/eb/{eb.pk}/files/.+\.png$", full.url)
    assert full.evaluate("document.querySelector('img').naturalWidth") > 600
    full.close()
    page.screenshot(path=str(SCREENS / "products.png"))

    page.goto(f"{live_server.url}/calibration/eb/{eb.pk}/")
    page.check("#step-13")
    page.check("#step-15")
    page.click("#run-selected")
    expect(page.locator("tr[data-step='13'] .badge")).to_have_text("Running", timeout=60_000)
    page.click("#cancel")
    expect(page.locator("#run-status")).to_have_text("Cancelled", timeout=20_000)
    expect(page.locator("tr[data-step='15'] .badge")).to_have_text("Not run")

    page.goto(f"{live_server.url}/calibration/eb/{eb.pk}/")
    page.check("#step-2")
    page.click("#run-selected")
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator("#progress-text")).to_have_text("1 / 1 steps")
    runs = list(Run.objects.filter(execution_block=eb).order_by("pk").values_list("status", "selected_steps"))
    assert runs == [("SUCCEEDED", []), ("CANCELLED", [13, 15]), ("SUCCEEDED", [2])]
