"""Comments out: written with the event, sent to the loopback JIRA with retry, never twice."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from assignments.jira.outbox import outbox_send, outbox_sweep
from assignments.models import MousState, OutboxComment
from assignments.services import mous_assign
from tests.assignments.jira.conftest import TOKEN
from tests.factories import MousFactory

pytestmark = pytest.mark.django_db


def _block(mous, by, reason="WVR files missing for two antennas"):
    mous.refresh_from_db()
    return mous.transition(MousState.BLOCKED, by=by, note=reason)


@pytest.fixture
def assigned(people, jira_on):
    mous = people["mous"]
    mous_assign(mous=mous, reducer=people["reducer"], by=people["drm"].user)
    return mous


def test_assignment_and_block_each_queue_one_comment_in_their_transaction(assigned, people):
    _block(assigned, people["drm"].user)
    rows = list(OutboxComment.objects.order_by("pk").values_list("kind", "issue_key", "status"))
    assert rows == [("assigned", "SCOPS-1234", "pending"), ("blocked", "SCOPS-1234", "pending")]
    assert "WVR files missing" in OutboxComment.objects.get(kind="blocked").body


def test_a_rolled_back_move_leaves_no_comment(assigned, people):
    before = OutboxComment.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        _block(assigned, people["drm"].user)
        raise RuntimeError("the caller failed after the move")
    assert OutboxComment.objects.count() == before


def test_no_comment_without_jira_or_without_a_ticket(settings, people, jira_on):
    settings.JIRA_BASE_URL = ""
    mous_assign(mous=people["mous"], reducer=people["reducer"], by=people["drm"].user)
    assert not OutboxComment.objects.exists()
    settings.JIRA_BASE_URL = jira_on.url
    keyless = MousFactory(jira_key="")
    mous_assign(mous=keyless, reducer=people["reducer"], by=people["drm"].user)
    assert not OutboxComment.objects.exists()


def test_the_sender_posts_the_comment_with_the_bearer_token(assigned, jira_on):
    row = OutboxComment.objects.get()

    assert outbox_send(outbox_id=row.pk) is None

    row.refresh_from_db()
    assert row.status == OutboxComment.Status.SENT and row.attempts == 1
    (post,) = jira_on.posts()
    assert post.authorization == f"Bearer {TOKEN}"
    (body,) = jira_on.bodies("SCOPS-1234")
    assert body.startswith("*qa2portal*: MOUS uid://A001/X100/X10 assigned to ared")
    assert body.endswith(f"[qa2portal outbox #{row.pk}]")
    assert row.jira_comment_id == "10001"


def test_jira_down_retries_with_backoff_and_sends_once_when_back(assigned, jira_on):
    row = OutboxComment.objects.get()
    jira_on.fail_status = 503

    retry_in = outbox_send(outbox_id=row.pk)

    row.refresh_from_db()
    assert row.status == OutboxComment.Status.FAILING and row.attempts == 1
    assert "503" in row.last_error and 0 < retry_in <= 1
    assert outbox_send(outbox_id=row.pk) is None  # not due yet: no request at all
    assert len(jira_on.seen) == 1

    jira_on.fail_status = None
    time.sleep(retry_in + 0.05)
    assert outbox_sweep() == 1
    assert outbox_sweep() == 0  # sent: nothing left to do

    row.refresh_from_db()
    assert row.status == OutboxComment.Status.SENT and row.attempts == 2
    assert len(jira_on.bodies("SCOPS-1234")) == 1


def test_a_comment_whose_answer_was_lost_is_not_posted_again(assigned, jira_on):
    row = OutboxComment.objects.get()
    jira_on.lose_answers = True  # JIRA stores the comment, then the gateway answers 503

    outbox_send(outbox_id=row.pk)
    row.refresh_from_db()
    assert row.status == OutboxComment.Status.FAILING

    jira_on.lose_answers = False
    OutboxComment.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    outbox_send(outbox_id=row.pk)

    row.refresh_from_db()
    assert row.status == OutboxComment.Status.SENT
    assert len(jira_on.bodies("SCOPS-1234")) == 1  # found by its marker, not posted twice
    assert [s.method for s in jira_on.seen] == ["POST", "GET"]


def test_a_permanent_error_is_not_retried(assigned, jira_on):
    row = OutboxComment.objects.get()
    jira_on.missing_issues.add("SCOPS-1234")

    assert outbox_send(outbox_id=row.pk) is None

    row.refresh_from_db()
    assert row.status == OutboxComment.Status.DEAD and "404" in row.last_error
    OutboxComment.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert outbox_sweep() == 0
