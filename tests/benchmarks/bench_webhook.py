"""webhook: signed JIRA deliveries accepted per second through a real gunicorn on loopback.

Accepting = signature check, dedupe, store (PostgreSQL), enqueue (Redis). The baseline is a
bare Django view on the same server in the same run; the ratio is webhook/bare throughput.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from assignments.models import WebhookDelivery
from tests.assignments.jira.payloads import issue, issue_event, jira_user, signed, status_item
from tests.benchmarks.harness import database_url, free_port, report

SECRET = "bench-webhook-secret"
CLIENTS = 8
SECONDS = 5.0
REPO = Path(__file__).resolve().parents[2]


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("POST", "/bench/bare/", body=b"{}")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _hammer(port: int, make_request, seconds: float) -> tuple[int, list[int]]:
    """CLIENTS keep-alive connections sending as fast as answers come; returns (count, statuses)."""
    statuses: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            path, body, headers = make_request()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(response.status)
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            statuses.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(statuses), statuses


@pytest.mark.django_db(transaction=True)
def test_webhook_accept_rate():
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.benchmarks.webhook_settings",
        "DATABASE_URL": database_url(),
        "JIRA_WEBHOOK_SECRET": SECRET,
        "DEBUG": "0",  # production shape: no query log growing in memory
        "SECRET_KEY": "bench-only-" + uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback (production redirects to HTTPS)
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "qa2portal.wsgi", "-b", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--worker-class", "gthread", "--log-level", "warning"],
        cwd=REPO, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _answers(port):
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)

        ticket = issue("SCOPS-9000", summary="2019.1.00100.S uid://A001/X900/X9 Bench_a_06_TE")
        template = issue_event(
            "jira:issue_updated",
            ticket,
            user=jira_user("jdrm"),
            items=[status_item("In Progress", "Blocked")],
        )
        sent_ids: list[str] = []

        def webhook_request():
            identifier = str(uuid.uuid4())
            body, headers = signed(
                {**template, "timestamp": time.time_ns() // 10**6}, secret=SECRET, identifier=identifier
            )
            sent_ids.append(identifier)
            return "/api/hooks/jira/", body, headers

        bare_body = json.dumps(template).encode()

        def bare_request():
            return "/bench/bare/", bare_body, {"Content-Type": "application/json"}

        _hammer(port, bare_request, 1.0)  # warm both workers and their connections
        _hammer(port, webhook_request, 1.0)
        warm = WebhookDelivery.objects.count()

        bare_n, bare_statuses = _hammer(port, bare_request, SECONDS)
        sent_before = len(sent_ids)
        hook_n, hook_statuses = _hammer(port, webhook_request, SECONDS)
        measured_ids = sent_ids[sent_before:]
        # Retries with identifiers already stored must be answered without new rows.
        _, dup_statuses = _hammer(
            port,
            lambda: ("/api/hooks/jira/", *signed(template, secret=SECRET, identifier=measured_ids[0])),
            0.5,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        from qa2portal.celery import app

        app.control.purge()  # no worker consumed the queued processing tasks; leave no stale ones

    stored = WebhookDelivery.objects.filter(identifier__in=measured_ids).count()
    lost = len(measured_ids) - stored
    assert set(bare_statuses) == {200} and set(hook_statuses) == {200}, (
        set(bare_statuses),
        set(hook_statuses),
    )
    assert lost == 0, f"{lost} accepted deliveries have no row"
    assert WebhookDelivery.objects.count() == warm + hook_n
    assert set(dup_statuses) == {200}
    assert WebhookDelivery.objects.get(identifier=measured_ids[0]).duplicates == len(dup_statuses)

    bare_rate, hook_rate = bare_n / SECONDS, hook_n / SECONDS
    report(
        "webhook",
        hook_rate / bare_rate,
        goal=">=300 deliveries/s accepted, zero lost",
        details=(
            f"accepted={hook_rate:.0f}/s bare={bare_rate:.0f}/s goal>=300/s lost={lost} "
            f"stored={stored}/{hook_n} duplicates={len(dup_statuses)} clients={CLIENTS} gunicorn=2x4"
        ),
        accepted_per_s=hook_rate,
        bare_per_s=bare_rate,
        accepted=hook_n,
        lost=lost,
        duplicates_answered=len(dup_statuses),
    )
