"""A MOUS from NEW to DELIVERED through the pages alone, on exactly what `make run` builds
(make_demo_data): the NGC5921 MOUS (one EB: no combination). Real worker, real CASA, real
Chromium; after the login page every page is reached by clicking what a user sees.

DRM assigns → reducer calibrates, images, makes the qa2 report and the README, the checklist
turns green, ready for review → DRM reviews and passes → data analyst delivers. The delivery
tree holds every file on the checklist and its manifest verifies."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from assignments.models import Mous, MousState
from reports import checklist
from tests.journeys.test_demo_journey import (
    DRM,
    NGC_EB,
    NGC_MOUS,
    REDUCER,
    RUN_TIMEOUT_MS,
    open_eb_scripts,
    sign_in,
    sign_out,
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.casa,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

ANALYST = ("analyst", "analyst-demo-2026")


@pytest.fixture
def demo(celery_worker_process, data_root) -> None:
    from django.core.management import call_command

    call_command("make_demo_data")


def wait_run(page: Page) -> None:
    page.wait_for_function(
        "['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT'].includes(document.body.dataset.runStatus)",
        timeout=RUN_TIMEOUT_MS,
    )
    assert page.evaluate("document.body.dataset.runStatus") == "SUCCEEDED", page.locator("body").inner_text()[
        :3000
    ]


def test_ngc5921_goes_from_new_to_delivered_through_the_pages(page: Page, live_server, demo):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    mous = Mous.objects.get(uid=NGC_MOUS)
    assert mous.state == MousState.NEW

    # 1. The DRM assigns it to the demo reducer.
    sign_in(page, live_server.url, DRM)
    page.get_by_role("link", name="Whiteboard").first.click()
    page.get_by_role("link", name=NGC_MOUS).first.click()
    select = page.locator("#assign-form select[name=reducer]")
    select.select_option(value=select.locator("option", has_text="· reducer (").get_attribute("value"))
    page.locator("#assign-form button[type=submit]").click()
    expect(page.locator("#assignee")).to_contain_text("reducer")
    sign_out(page)

    # 2. The reducer calibrates with the script the demo registered (one EB: nothing to combine).
    sign_in(page, live_server.url, REDUCER)
    open_eb_scripts(page, NGC_MOUS, NGC_EB)
    page.locator("#run-all").first.click()
    wait_run(page)

    # 3. Images: copy, prep, imaging script generated from the prepared data, run.
    page.locator(".crumbs .nav-imaging").click()
    page.click("#copy-data")
    expect(page.locator("#copy-progress")).to_contain_text("Done 100%", timeout=120_000)
    page.click("#generate-prep")
    page.click("#run-prep")
    wait_run(page)
    page.locator(".crumbs .nav-imaging").click()
    expect(page.locator("#prepared-data")).to_be_visible()
    page.click("#generate-imaging")
    expect(page.locator(".messages")).to_contain_text("scriptForImaging.py v1 generated")
    page.click("#run-imaging")
    wait_run(page)
    page.locator(".crumbs .nav-imaging").click()
    expect(page.locator("#image-qa tbody tr")).to_have_count(2)
    expect(page.locator("#assessment-table")).to_contain_text("not judged alone")  # a _TC MOUS

    # 4. The qa2 report and the README.
    page.locator(".crumbs .nav-checklist").click()
    page.locator(".make-qa2").first.click()
    expect(page.locator(".messages")).to_contain_text("qa2 report")
    # The checklist page follows the report (a worker reads the data in CASA) and shows it done.
    expect(page.locator(".qa2-state")).to_contain_text("Done", timeout=300_000)
    page.locator(".crumbs .nav-readme").click()
    page.click("#generate-readme")
    expect(page.locator(".messages")).to_contain_text("README v1 saved")

    # 5. The checklist turns green; ready for review.
    page.locator(".crumbs .nav-checklist").click()
    missing = page.locator("#checklist-table tr[data-ok='0']").all_inner_texts()
    assert not missing, missing
    expect(page.locator("#checklist h2")).to_contain_text("Complete")
    page.locator(".crumbs .nav-mous").click()
    page.click("#transition-form button[data-move=READY_FOR_REVIEW]")
    expect(page.locator(".messages")).to_contain_text("is now Ready for review")
    sign_out(page)

    # 6. The DRM reviews and passes it; the data analyst delivers.
    sign_in(page, live_server.url, DRM)
    page.get_by_role("link", name="Whiteboard").first.click()
    page.get_by_role("link", name=NGC_MOUS).first.click()
    page.click("#review-link")
    page.click("#start-review")
    page.check("input[name=outcome][value=pass]")
    page.check("#confirm")
    page.click("#decide")
    expect(page.locator("#review-state")).to_have_text("QA2 pass")
    sign_out(page)

    sign_in(page, live_server.url, ANALYST)
    deliver_by_links(page, live_server.url)
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERED
    check_delivery(mous)
    assert not errors, errors


def deliver_by_links(page: Page, base: str) -> None:
    """The data analyst: the whiteboard → the MOUS → its delivery page → package."""
    page.get_by_role("link", name=re.compile("Whiteboard|My work")).first.click()
    page.get_by_role("link", name=NGC_MOUS).first.click()
    page.click("#delivery-link")
    page.click("#start-package")
    expect(page.locator("#delivery-status")).to_have_text("Done", timeout=300_000)


def check_delivery(mous: Mous) -> None:
    """Every checklist file is in the package, and the manifest's sha256 verify."""
    from reports.models import Delivery

    delivery = Delivery.objects.filter(mous=mous, status=Delivery.Status.DONE).get()
    package = Path(delivery.target)
    assert package.is_dir() and package.is_relative_to(Path(settings.DELIVERIES_ROOT))
    manifests = list(package.glob("*.manifest.json")) or list(package.parent.glob("*.manifest.json"))
    assert manifests, "no manifest"
    manifest = json.loads(manifests[0].read_text())
    files = manifest["files"]
    for entry in files:
        path = package / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["path"]
    names = {Path(e["path"]).name for e in files}
    eb = mous.execution_blocks.get()
    for wanted in (
        f"{eb.ms_name}.scriptForCalibration.py",
        "scriptForImagingPrep.py",
        "scriptForImaging.py",
        "README",
        checklist.QA2_TEXTFILE,
    ):
        assert any(n == wanted or n.endswith(wanted) for n in names), (wanted, sorted(names))
    assert any(n.endswith(".pbcor.fits") for n in names) and any(n.endswith(".flux.fits") for n in names)
