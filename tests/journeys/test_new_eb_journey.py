"""A new EB from nothing: the DRM registers it from the pages, ingests data the demo has never
seen (another seed, faults on other antennas and spws), assigns it (the PI is refused), and the
reducer calibrates it and reads findings that name the faulty antennas.

Real worker, real CASA, real Chromium; after the login every page is reached by a click.
"""

import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from assignments.models import ExecutionBlock, Mous, Person
from calibration.models import Run
from calibration.simulate import presets
from calibration.simulate.build import cached_eb
from calibration.simulate.spec import BadWvr, BandpassDefect, HotTsys
from reports.models import Finding, Topic
from tests.journeys.test_demo_journey import generate_and_run_all, sign_in, sign_out

pytestmark = [
    pytest.mark.worker,
    pytest.mark.casa,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

# Not the demo's faults (DV07 WVR and notch in spw 2, DA44 hot, DV10 dead, DV03 hot): others.
FAULTS = (BadWvr("DA42"), BandpassDefect("DA45", spw=1), HotTsys("DV05"))
SEED = 303
MS_NAME = "uid___A002_Xb2e_X7.ms"  # the MS names its EB: uid://A002/Xb2e/X7
PROJECT, MOUS_UID = "2023.1.00777.S", "uid://A001/Xb2e/X3"
PASSWORD = "journey-pw-2026"


@pytest.fixture
def unseen_eb():
    """The simulator's EB with another seed and other faults (built once, cached on disk)."""
    return cached_eb(presets.small().with_faults(*FAULTS, seed=SEED, ms_name=MS_NAME))


@pytest.fixture
def staged(settings, session_data_root, unseen_eb) -> Path:
    """The raw MS where staging would put it: under INGEST_ROOTS (the worker's, tests/conftest.py)."""
    root = (session_data_root.parent / "ingest").resolve()
    settings.INGEST_ROOTS = [root]
    settings.INGEST_UPLOAD_DIR = ""
    target = root / "journey" / MS_NAME
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(unseen_eb.ms, target)
    return target


@pytest.fixture
def people(db) -> dict[str, Person]:
    """A DRM, a reducer, and a reducer who is also the PI of the new project."""
    users = get_user_model()
    out = {}
    for username, role, email in (
        ("jdrm", Person.Role.DRM, "jdrm@example.org"),
        ("jreducer", Person.Role.REDUCER, "jreducer@example.org"),
        ("jpi", Person.Role.REDUCER, "pi.reducer@example.org"),
    ):
        user = users.objects.create_user(username, email=email, password=PASSWORD)
        out[username] = Person.objects.create(user=user, role=role, initials=username[:3].upper())
    return out


def test_drm_ingests_an_unseen_eb_and_the_reducer_finds_its_faults(
    page: Page, live_server, celery_worker_process, calibrator_catalogue, staged, unseen_eb, people
):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    eb_uid = presets.small().with_faults(*FAULTS, seed=SEED, ms_name=MS_NAME).eb_uid
    base = live_server.url

    # The DRM registers the project (its PI is the reducer account jpi, by e-mail) ...
    sign_in(page, base, ("jdrm", PASSWORD))
    page.get_by_role("link", name="Whiteboard").first.click()
    page.locator("#new-project").click()
    form = page.locator("#project-form")
    form.locator("[name=code]").fill(PROJECT)
    form.locator("[name=title]").fill("Journey: an EB the demo has never seen")
    form.locator("[name=pi_name]").fill("Pia Investigator")
    form.locator("[name=pi_email]").fill("pi.reducer@example.org")
    form.locator("button[type=submit]").click()
    expect(page.locator("#investigators tr[data-email='pi.reducer@example.org'] .account")).to_contain_text(
        "jpi"
    )

    # ... the MOUS with its request and EB ...
    page.locator("#new-mous").click()
    form = page.locator("#mous-form")
    form.locator("[name=uid]").fill(MOUS_UID)
    form.locator("[name=sb_name]").fill("Journey_a_06_TM1")
    form.locator("[name=band]").fill("6")
    form.locator("[name=representative_frequency_ghz]").fill("230.5")
    form.locator("[name=requested_rms_mjy]").fill("0.5")
    form.locator("[name=rms_bandwidth_mhz]").fill("2000")
    form.locator("[name=resolution_min_arcsec]").fill("0.8")
    form.locator("[name=resolution_max_arcsec]").fill("1.5")
    form.locator("[name=eb_uids]").fill(eb_uid)
    form.locator("button[type=submit]").click()
    expect(page.locator("h1")).to_contain_text(MOUS_UID)

    # ... and brings the EB's data in from the staging area, watching the progress.
    page.locator(f"tr[data-eb='{eb_uid}'] a[data-link='scripts']").click()
    page.locator("#bring-data-in").click()
    page.locator("#ingest-path").fill(str(staged))
    page.locator("#ingest-path-submit").click()
    expect(page.locator("#ingest-done")).to_be_visible(timeout=300_000)
    expect(page.locator("#ingest-status")).to_have_attribute("data-status", "DONE")
    eb = ExecutionBlock.objects.get(uid=eb_uid)
    assert eb.data_status == ExecutionBlock.DataStatus.PRESENT and eb.data_name == f"raw/{MS_NAME}"
    assert staged.exists(), "ingest copies, never moves"

    # Assigning it to the PI is refused, with the reason on the page; another reducer gets it.
    page.locator("#ingest-eb-link").click()
    page.get_by_role("link", name=MOUS_UID).first.click()
    select = page.locator("#assign-form select[name=reducer]")
    select.select_option(value=select.locator("option", has_text="· jpi (").get_attribute("value"))
    page.locator("#assign-form button[type=submit]").click()
    expect(page.locator("body")).to_contain_text(re.compile("jpi cannot reduce .* PI", re.S))
    assert Mous.objects.get(uid=MOUS_UID).assignee is None
    select = page.locator("#assign-form select[name=reducer]")
    select.select_option(value=select.locator("option", has_text="· jreducer (").get_attribute("value"))
    page.locator("#assign-form button[type=submit]").click()
    expect(page.locator("body")).to_contain_text("jreducer")
    assert Mous.objects.get(uid=MOUS_UID).assignee == people["jreducer"]
    sign_out(page)

    # The reducer finds it in My work, generates the standard script, runs it, reads the findings.
    sign_in(page, base, ("jreducer", PASSWORD))
    page.get_by_role("link", name="My work").first.click()
    page.get_by_role("link", name=MOUS_UID).first.click()
    page.locator(f"tr[data-eb='{eb_uid}'] a[data-link='scripts']").click()
    run_id = generate_and_run_all(page)
    page.get_by_role("link", name="diagnostics").first.click()
    expect(page.locator("#scores .score-card")).to_have_count(len(Topic.choices))
    expect(page.locator("tr[data-code='wvr_bad_antenna'][data-antenna='DA42']")).to_have_count(1)
    expect(page.locator("tr[data-code='tsys_high'][data-antenna='DV05']")).to_have_count(1)
    expect(page.locator("tr[data-antenna='DA45'][data-code^='bandpass']").first).to_be_visible()

    run = Run.objects.get(pk=run_id)
    flagged = set(Finding.objects.filter(run=run, score__lte=0.9).values_list("antenna", flat=True)) - {""}
    assert flagged <= {"DA42", "DA45", "DV05"}, f"findings on healthy antennas: {flagged}"
    assert errors == []
