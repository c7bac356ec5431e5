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


def test_ready_for_review_comments_the_qa2_summary_and_attaches_the_scripts_once(assigned, people, jira_on):
    """The move to review (overridden here: no data) carries the summary, the paths, the verdict
    and the README, with each EB's calibration script attached through JIRA's attachments API
    (multipart, the XSRF header); JIRA down for the attachment: the retry does not post the
    comment again, and attaches what is missing."""
    from calibration.models import Run, Script
    from calibration.scripts import script_get_or_create, script_version_create
    from reports.models import ReadmeVersion
    from tests.calibration.conftest import alma_steps
    from tests.factories import ExecutionBlockFactory

    mous, drm = assigned, people["drm"].user
    eb = mous.execution_blocks.first() or ExecutionBlockFactory(mous=mous)
    script = script_get_or_create(kind=Script.Kind.CALIBRATION, mous=mous, eb=eb)
    version = script_version_create(
        script=script, text=alma_steps("print('cal')"), source="uploaded", by=None
    )
    Run.objects.create(
        script_version=version, mous=mous, execution_block=eb, folder="/nowhere", status=Run.Status.SUCCEEDED
    )
    ReadmeVersion.objects.create(mous=mous, number=1, text="The README of the reducer.", source="edited")
    for state in (MousState.CALIBRATING, MousState.READY_FOR_REVIEW):
        mous.refresh_from_db()
        mous.transition(state, by=drm, override_reason="outbox test: no images")
    row = OutboxComment.objects.get(kind="ready_for_review")
    assert row.attachments == [{"name": script.filename, "content": version.text()}]
    for words in (
        "QA2 summary",
        "Sensitivity and resolution",
        "Where",
        "MOUS folder:",
        "The README of the reducer.",
    ):
        assert words in row.body, words

    jira_on.fail_status = None
    OutboxComment.objects.exclude(pk=row.pk).update(status=OutboxComment.Status.SENT)
    # The comment goes through, then JIRA fails the attachment: retried later, comment not re-posted.
    original = outbox_send.__globals__["client"].attachment_post

    def down_once(**kwargs):
        outbox_send.__globals__["client"].attachment_post = original
        from assignments.jira.client import JiraError

        raise JiraError("JIRA answered 503", status=503, retryable=True)

    outbox_send.__globals__["client"].attachment_post = down_once
    try:
        assert outbox_send(outbox_id=row.pk) is not None  # retry later
    finally:
        outbox_send.__globals__["client"].attachment_post = original
    row.refresh_from_db()
    assert row.status == OutboxComment.Status.FAILING and row.jira_comment_id and row.attachments_sent == []
    OutboxComment.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert outbox_send(outbox_id=row.pk) is None
    row.refresh_from_db()
    assert row.status == OutboxComment.Status.SENT and row.attachments_sent == [script.filename]
    bodies = [b for b in jira_on.bodies("SCOPS-1234") if "QA2 summary" in b]
    assert len(bodies) == 1
    (attached,) = jira_on.attachments["SCOPS-1234"]
    assert attached["filename"] == script.filename
    assert attached["content"] == version.text().encode()
    assert attached["content_type"] == "text/plain"


def test_a_qa2_fail_attaches_the_imaging_script_to_the_ticket(assigned, people, jira_on):
    from calibration.models import Script
    from calibration.scripts import script_get_or_create, script_version_create
    from tests.calibration.conftest import alma_steps

    mous, drm = assigned, people["drm"].user
    script = script_get_or_create(kind=Script.Kind.IMAGING, mous=mous)
    version = script_version_create(
        script=script, text=alma_steps("print('tclean')"), source="generated", by=None
    )
    for state in (MousState.CALIBRATING, MousState.READY_FOR_REVIEW, MousState.REVIEWING, MousState.QA2_FAIL):
        mous.refresh_from_db()
        mous.transition(
            state, by=drm, note="bandpass of DV12 unflagged", override_reason="outbox test: no data"
        )
    row = OutboxComment.objects.get(kind="qa2_fail")
    assert row.attachments == [{"name": "scriptForImaging.py", "content": version.text()}]
    assert "qa2fails" in row.body and "bandpass of DV12 unflagged" in row.body
    OutboxComment.objects.exclude(pk=row.pk).update(status=OutboxComment.Status.SENT)
    assert outbox_send(outbox_id=row.pk) is None
    (attached,) = jira_on.attachments["SCOPS-1234"]
    assert attached["filename"] == "scriptForImaging.py" and attached["content"] == version.text().encode()
