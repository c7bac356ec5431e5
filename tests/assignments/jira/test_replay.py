"""A signed body re-sent under a new identifier is not applied again; hostile JSON is a 400."""

import logging

import pytest

from assignments.jira.inbound import delivery_process
from assignments.models import Mous, MousState, OutboxComment, WebhookDelivery
from tests.assignments.jira.payloads import issue, issue_event, status_item

pytestmark = pytest.mark.django_db


def _blocking_payload(people) -> dict:
    ticket = issue("SCOPS-1234", summary="2019.1.00100.S uid://A001/X100/X10 NGC253_a_06_TE")
    return issue_event(
        "jira:issue_updated", ticket, user=people["drm_jira"], items=[status_item("In Progress", "Blocked")]
    )


def test_the_same_signed_body_under_a_new_identifier_is_not_applied_twice(
    jira_on, post_signed, people, django_capture_on_commit_callbacks, caplog
):
    mous = people["mous"]
    Mous.objects.filter(pk=mous.pk).update(state=MousState.CALIBRATING, assignee=people["reducer"])
    payload = _blocking_payload(people)
    with django_capture_on_commit_callbacks():
        first = post_signed(payload, identifier="id-original")
    assert first.json()["status"] == "accepted"
    assert delivery_process(delivery_id=first.json()["delivery"]).status == WebhookDelivery.Status.PROCESSED
    # Unblock by hand, as a DRM would: a replayed "Blocked" must not block it again.
    Mous.objects.get(pk=mous.pk).transition(MousState.CALIBRATING, by=people["drm"].user)

    with (
        caplog.at_level(logging.WARNING, logger="qa2portal.security"),
        django_capture_on_commit_callbacks() as callbacks,
    ):
        replays = [post_signed(payload, identifier=f"id-forged-{n}") for n in range(3)]

    assert [r.status_code for r in replays] == [200, 200, 200]
    assert {r.json()["status"] for r in replays} == {"duplicate"}
    assert callbacks == []  # nothing queued
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().duplicates == 3
    mous.refresh_from_db()
    assert mous.state == MousState.CALIBRATING
    assert mous.state_changes.filter(new_state=MousState.BLOCKED).count() == 1
    assert OutboxComment.objects.filter(kind="blocked").count() == 1
    assert sum("under a new identifier" in r.getMessage() for r in caplog.records) == 3


def test_a_new_event_on_the_same_ticket_is_still_applied(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    """Dedupe is by body: JIRA's next event carries its own timestamp, so it is a new body."""
    payload = _blocking_payload(people)
    with django_capture_on_commit_callbacks():
        first = post_signed(payload)
        payload["timestamp"] += 1
        second = post_signed(payload)
    assert (first.json()["status"], second.json()["status"]) == ("accepted", "accepted")
    assert WebhookDelivery.objects.count() == 2


@pytest.mark.parametrize("shape", ["list", "object"])
def test_json_nested_50000_levels_answers_400_and_is_stored_as_rejected(jira_on, post_signed, shape):
    depth = 50_000
    body = ("[" * depth + "]" * depth) if shape == "list" else ('{"a":' * depth + "1" + "}" * depth)

    answer = post_signed(body.encode())

    assert answer.status_code == 400, answer.content[:200]
    assert answer["Content-Type"].startswith("application/json")
    assert answer.json()["status"] == "rejected"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.REJECTED
    assert delivery.result == "malformed JSON: nested too deeply"


def test_unsigned_deeply_nested_json_is_refused_before_parsing(jira_on, post_signed):
    answer = post_signed(("[" * 50_000 + "]" * 50_000).encode(), secret="not-the-secret")
    assert answer.status_code == 401
    assert not WebhookDelivery.objects.exists()
