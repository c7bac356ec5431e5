import re

import pytest
from playwright.sync_api import expect

from qa2portal import health

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.casa
def test_demo_drm_logs_in_and_sees_the_health_page(
    page, login, demo_accounts, casa_info, celery_worker_process
):
    drm = demo_accounts["drm"]
    login(drm.username, drm.password)
    expect(page).to_have_url(re.compile(r"/whiteboard/$"))  # a DRM's home page
    page.click(".topbar nav a:has-text('Health')")
    expect(page).to_have_url(re.compile(r"/health/$"))
    expect(page.locator("h1")).to_have_text("System health")
    rows = page.locator("table.health tbody tr")
    expect(rows.filter(has_text="Database")).to_contain_text("postgresql reachable")
    expect(rows.filter(has_text="Broker and workers")).to_contain_text("redis broker up")
    expect(rows.filter(has_text="Broker and workers")).to_contain_text(celery_worker_process.name)
    expect(page.locator("tr[data-check='CASA']")).to_contain_text("casatools 6.7.0")
    expect(page.locator("tr[data-check='CASA']")).to_contain_text("casadata")
    expect(page.locator("tr[data-check='CASA sandbox']")).to_contain_text("bubblewrap: uid 65534")
    expect(rows.filter(has_text="DATA_ROOT")).to_contain_text("GB free")
    expect(page.locator(".topbar .who")).to_contain_text("drm")


def test_health_page_requires_login(client):
    response = client.get("/health/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_broker_down_is_reported_not_a_500(client, demo_accounts, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    client.login(username="drm", password=demo_accounts["drm"].password)
    response = client.get("/health/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "redis broker unreachable" in text
    assert "PROBLEM" in text


def test_redact_hides_passwords():
    assert health.redact("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert health.redact("postgres://u:pw@h/db") == "postgres://u:***@h/db"
    assert health.redact("filesystem://localhost//") == "filesystem://localhost//"


def test_health_api_reports_each_check(client, demo_accounts):
    client.login(username="drm", password=demo_accounts["drm"].password)
    body = client.get("/api/health/").json()
    names = [c["name"] for c in body["checks"]]
    assert names == ["Database", "Broker and workers", "CASA", "CASA sandbox", "DATA_ROOT"]
    assert body["checks"][0]["ok"] is True


def test_health_api_refuses_anonymous(client):
    assert client.get("/api/health/").status_code in (401, 403)


@pytest.mark.worker
def test_broker_row_names_the_live_worker(celery_worker_process):
    check = health.broker_check()

    assert check.ok, check.summary
    assert "worker(s) alive" in check.summary
    assert celery_worker_process.name in check.details["workers"]


@pytest.mark.worker
def test_sandbox_row_shows_what_the_worker_decided_at_start(celery_worker_process, settings):
    check = health.sandbox_check()

    assert check.ok, check.summary
    assert check.summary.startswith(f"bubblewrap: uid {settings.CASA_SANDBOX_UID}")
    assert check.details["mode"] == "bwrap" and check.details["limits"]["processes"] == 512


def test_sandbox_row_says_plainly_when_scripts_run_unsandboxed(settings, tmp_path):
    settings.CASA_SANDBOX_STATE = tmp_path / "sandbox.json"
    settings.CASA_SANDBOX_STATE.write_text('{"requested": "auto", "mode": "none", "ok": true}')

    check = health.sandbox_check()

    assert not check.ok
    assert check.summary.startswith("NONE: scripts run unsandboxed")
