"""With the real Celery worker process: JIRA down then back, and a refused PI end to end."""

import threading
import time
import urllib.request

import pytest
from django.db import connection

from assignments.jira.outbox import outbox_sweep
from assignments.models import Assignment, Mous, OutboxComment, WebhookDelivery
from assignments.services import mous_assign
from tests.assignments.jira.conftest import SECRET
from tests.assignments.jira.payloads import assignee_item, issue, issue_event, signed

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, *, timeout: float, what: str, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tail = f"\nworker log:\n{worker.log_tail()}" if worker else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{tail}")


def test_jira_down_the_comment_arrives_after_it_comes_back_exactly_once(
    celery_worker_process, jira_on, people
):
    jira_on.fail_status = 503
    stop = threading.Event()

    def competing_sweeper() -> None:
        # A second sender (the beat sweep) racing the worker's retries: still one comment.
        try:
            while not stop.is_set():
                outbox_sweep()
                time.sleep(0.15)
        finally:
            connection.close()

    mous_assign(mous=people["mous"], reducer=people["reducer"], by=people["drm"].user)  # commits, enqueues
    row = OutboxComment.objects.get()
    _wait_for(
        lambda: len(jira_on.seen) >= 2,
        timeout=30,
        what="the worker to retry",
        worker=celery_worker_process,
    )
    assert {s.status for s in jira_on.seen} == {503}  # a POST, then retries that look before posting
    assert not jira_on.bodies("SCOPS-1234")

    sweeper = threading.Thread(target=competing_sweeper)
    sweeper.start()
    try:
        jira_on.fail_status = None
        _wait_for(
            lambda: jira_on.bodies("SCOPS-1234"), timeout=30, what="the comment", worker=celery_worker_process
        )
        time.sleep(3)  # longer than the backoff: any second sender would have posted by now
    finally:
        stop.set()
        sweeper.join()

    bodies = jira_on.bodies("SCOPS-1234")
    assert len(bodies) == 1 and bodies[0].endswith(row.marker)
    row.refresh_from_db()
    assert row.status == OutboxComment.Status.SENT and row.attempts >= 3
    assert sum(p.status == 201 for p in jira_on.posts()) == 1


def test_a_pi_assigned_in_jira_is_refused_and_the_refusal_commented(
    celery_worker_process, jira_on, live_server, people
):
    ticket = issue(
        "SCOPS-1234", summary="2019.1.00100.S uid://A001/X100/X10 NGC253_a_06_TE", assignee=people["pi_jira"]
    )
    payload = issue_event(
        "jira:issue_updated", ticket, user=people["drm_jira"], items=[assignee_item(None, people["pi_jira"])],
        type_name="issue_assigned",
    )  # fmt: skip
    body, headers = signed(payload, secret=SECRET)
    url = f"{live_server.url}/api/hooks/jira/"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback live server
        assert response.status == 200

    delivery = WebhookDelivery.objects.get()
    _wait_for(
        lambda: WebhookDelivery.objects.get(pk=delivery.pk).status != WebhookDelivery.Status.ACCEPTED,
        timeout=30, what="the worker to process the delivery", worker=celery_worker_process,
    )  # fmt: skip
    _wait_for(
        lambda: jira_on.bodies("SCOPS-1234"),
        timeout=30,
        what="the refusal comment",
        worker=celery_worker_process,
    )

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PROCESSED
    assert "assignment refused" in delivery.result
    (comment,) = jira_on.bodies("SCOPS-1234")
    assert comment.startswith("*qa2portal* refused: assignment of MOUS uid://A001/X100/X10")
    assert "PI of project 2019.1.00100.S" in comment
    mous = Mous.objects.get(pk=people["mous"].pk)
    assert mous.assignee is None and not Assignment.objects.filter(mous=mous).exists()
