"""The DRM page: recent deliveries and the outbox, replay of a stored delivery."""

import pytest

from assignments.jira.inbound import delivery_process
from assignments.models import OutboxComment, WebhookDelivery
from assignments.services import mous_assign
from tests.assignments.jira.payloads import comment_event, issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(jira_on, people, post_signed, django_capture_on_commit_callbacks):
    """One processed command, one JIRA retry of it, one failing comment."""
    ticket = issue("SCOPS-1234", summary="2019.1.00100.S uid://A001/X100/X10 NGC253_a_06_TE")
    payload = comment_event(ticket, author=people["drm_jira"], body="qa2portal: assign ared")
    with django_capture_on_commit_callbacks():
        post_signed(payload, identifier="id-1")
        post_signed(payload, identifier="id-1")
    delivery = WebhookDelivery.objects.get()
    delivery_process(delivery_id=delivery.pk)
    OutboxComment.objects.filter(kind="assigned").update(
        status=OutboxComment.Status.FAILING, attempts=2, last_error="JIRA answered 503"
    )
    return delivery


def test_a_drm_sees_deliveries_duplicates_and_failing_comments(client, people, history):
    client.force_login(people["drm"].user)
    page = client.get("/jira/").content.decode()
    assert "comment_created" in page and "SCOPS-1234" in page
    assert "processed" in page and "duplicate \u00d71" in page
    assert "assigned to ared" in page  # the delivery's result
    assert "failing" in page and "JIRA answered 503" in page
    detail = client.get(f"/jira/deliveries/{history.pk}/").content.decode()
    assert "qa2portal: assign ared" in detail and "X-Atlassian-Webhook-Identifier" in detail


def test_the_page_is_for_drms_only(client, people):
    assert client.get("/jira/").status_code == 302  # to the login page
    client.force_login(people["reducer"].user)
    assert client.get("/jira/").status_code == 403
    assert client.post("/jira/deliveries/1/replay/").status_code == 403


def test_replay_processes_a_stored_delivery_again(
    client, people, history, django_capture_on_commit_callbacks
):
    client.force_login(people["drm"].user)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/jira/deliveries/{history.pk}/replay/")
    assert response.status_code == 302 and len(callbacks) == 1
    history.refresh_from_db()
    assert history.status == WebhookDelivery.Status.ACCEPTED and "replay asked by jdrm" in history.result

    delivery_process(delivery_id=history.pk)

    history.refresh_from_db()
    assert history.attempts == 2
    assert "ared is already the assignee" in history.result  # replay is safe: no second assignment


def test_send_now_makes_a_failing_comment_due_and_sends_it(
    client, people, history, jira_on, django_capture_on_commit_callbacks
):
    row = OutboxComment.objects.get(kind="assigned")
    OutboxComment.objects.filter(pk=row.pk).update(next_attempt_at=row.next_attempt_at.replace(year=2099))
    client.force_login(people["drm"].user)
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(f"/jira/outbox/{row.pk}/send/")
    assert len(callbacks) == 1
    from assignments.jira.outbox import outbox_send

    outbox_send(outbox_id=row.pk)
    row.refresh_from_db()
    assert row.status == OutboxComment.Status.SENT
    assert len(jira_on.bodies("SCOPS-1234")) == 1


def test_assigning_through_the_service_reaches_the_page_as_pending(client, people, jira_on):
    mous_assign(mous=people["mous"], reducer=people["reducer"], by=people["drm"].user)
    client.force_login(people["drm"].user)
    assert "pending" in client.get("/jira/").content.decode()
