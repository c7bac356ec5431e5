"""Ticket comments out: written in the event's own transaction, sent later by a worker.

Exactly-once in practice: a row is claimed under `select_for_update(skip_locked=True)` and
leased (next_attempt_at pushed past the HTTP timeout) before the HTTP call, so two senders
never hold it together; every comment ends with the row's marker, and a retry first looks
for that marker on the ticket, so a send whose answer was lost (timeout, crash) is not
posted a second time.
"""

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assignments.jira import client
from assignments.jira.models import OutboxComment

log = logging.getLogger(__name__)

SEND_TASK = "assignments.tasks.jira_outbox_send"  # the worker side of _send_soon

# Lifecycle moves the ticket hears about (an assignment is reported by outbox_enqueue_for_assignment).
STATE_MESSAGES = {
    "BLOCKED": "blocked",
    "READY_FOR_REVIEW": "ready for review",
    "REVIEWING": "in review",
    "QA2_PASS": "QA2 decided: PASS",
    "QA2_SEMIPASS": "QA2 decided: SEMIPASS",
    "QA2_FAIL": "QA2 decided: FAIL",
    "DELIVERED": "delivered",
}


# What the apps above add to a state change's comment: text and files to attach (the QA2
# summary, the README, the scripts). Registered by them (reports), called here in the move's
# transaction; assignments knows none of them.
CommentExtra = Callable[[object], tuple[str, list[dict]]]
_extras: dict[str, list[CommentExtra]] = {}


def register_comment_extra(state: str, extra: CommentExtra) -> None:
    _extras.setdefault(state, [])
    if extra not in _extras[state]:
        _extras[state].append(extra)


def jira_outbound_enabled() -> bool:
    return bool(settings.JIRA_BASE_URL)


def outbox_enqueue(
    *, mous, kind: str, text: str, attachments: list[dict] | None = None
) -> OutboxComment | None:
    """Queue a comment for `mous`'s ticket in the caller's transaction (no-op without JIRA or key)."""
    if not jira_outbound_enabled() or not mous.jira_key:
        return None
    row = OutboxComment.objects.create(
        mous=mous, issue_key=mous.jira_key, kind=kind, body=text, attachments=attachments or []
    )
    # robust: a broker outage must not turn a committed request into a 500; the sweep sends it.
    transaction.on_commit(partial(_send_soon, row.pk), robust=True)
    return row


def _send_soon(outbox_id: int) -> None:
    # By name: assignments/tasks.py imports this module to run the send, never the reverse.
    current_app.send_task(SEND_TASK, args=(outbox_id,))


def _who(user) -> str:
    return user.get_username() if user is not None else "JIRA"


def outbox_enqueue_for_state_change(change) -> OutboxComment | None:
    """Comment on the ticket for the lifecycle moves DRMs follow there (a receiver of
    assignments.events.mous_state_changed, which Mous.transition sends)."""
    mous, new = change.mous, change.new_state
    if change.old_state == "BLOCKED":
        label = f"unblocked (back to {new.replace('_', ' ').lower()})"
    elif new in STATE_MESSAGES:
        label = STATE_MESSAGES[new]
    else:
        return None
    text = f"*qa2portal*: MOUS {mous.uid} {label} by {_who(change.changed_by)}."
    if change.note:
        text += f"\n{change.note}"
    if change.checklist_override:
        text += f"\nChecklist overridden: {change.checklist_override}"
    attachments: list[dict] = []
    if change.old_state != "BLOCKED":
        for add_to_comment in _extras.get(new, []):
            more, files = add_to_comment(change)
            text += f"\n\n{more}" if more else ""
            attachments += files
    return outbox_enqueue(
        mous=mous,
        kind=new.lower() if change.old_state != "BLOCKED" else "unblocked",
        text=text,
        attachments=attachments,
    )


def outbox_enqueue_for_assignment(assignment) -> OutboxComment | None:
    """Comment on the ticket that the MOUS was assigned (called by mous_assign)."""
    reducer = assignment.reducer
    text = (
        f"*qa2portal*: MOUS {assignment.mous.uid} assigned to {reducer.user.get_username()} "
        f"({reducer.initials}) by {_who(assignment.assigned_by)}."
    )
    return outbox_enqueue(mous=assignment.mous, kind="assigned", text=text)


def outbox_enqueue_for_refusal(*, mous, reason: str) -> OutboxComment | None:
    """Comment on the ticket why qa2portal refused a change asked for (COI, illegal move)."""
    return outbox_enqueue(mous=mous, kind="refused", text=f"*qa2portal* refused: {reason}")


def _backoff(attempts: int) -> timedelta:
    seconds = settings.JIRA_OUTBOX_BACKOFF_BASE * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.JIRA_OUTBOX_BACKOFF_MAX))


def _claim(*, outbox_id: int | None, limit: int) -> list[OutboxComment]:
    """Lease due rows: attempts+1 and next_attempt_at pushed past the HTTP timeout, committed
    before any HTTP call, so no DB transaction stays open while JIRA is slow."""
    now = timezone.now()
    lease = now + timedelta(seconds=3 * settings.JIRA_HTTP_TIMEOUT + 5)
    with transaction.atomic():
        rows = OutboxComment.objects.select_for_update(skip_locked=True).filter(
            status__in=OutboxComment.OPEN, next_attempt_at__lte=now
        )
        if outbox_id is not None:
            rows = rows.filter(pk=outbox_id)
        claimed = list(rows.order_by("next_attempt_at", "pk")[:limit])
        for row in claimed:
            row.attempts += 1
            row.next_attempt_at = lease
            row.save(update_fields=["attempts", "next_attempt_at"])
    return claimed


def _deliver(row: OutboxComment) -> float | None:
    """Send one claimed row (the comment, then each attachment JIRA has not taken yet);
    returns seconds until the next try when it should be retried."""
    text = f"{row.body}\n\n{row.marker}"
    try:
        if not row.jira_comment_id:
            found = None
            if row.attempts > 1:
                # An earlier attempt may have reached JIRA with its answer lost: look before posting.
                found = next(
                    (c for c in client.comments_recent(issue_key=row.issue_key) if row.marker in c.body), None
                )
            comment = found or client.comment_post(issue_key=row.issue_key, body=text)
            row.jira_comment_id = comment.id or "posted"
            row.save(update_fields=["jira_comment_id"])
        for item in row.attachments:
            if item["name"] in row.attachments_sent:
                continue
            client.attachment_post(
                issue_key=row.issue_key, name=item["name"], content=item["content"].encode()
            )
            row.attachments_sent = [*row.attachments_sent, item["name"]]
            row.save(update_fields=["attachments_sent"])
    except client.JiraError as exc:
        row.last_error = str(exc)[:2000]
        if exc.retryable:
            row.status = OutboxComment.Status.FAILING
            row.next_attempt_at = timezone.now() + _backoff(row.attempts)
        else:
            row.status = OutboxComment.Status.DEAD
        row.save(update_fields=["status", "next_attempt_at", "last_error"])
        log.warning("JIRA comment %s for %s: attempt %s failed: %s", row.pk, row.issue_key, row.attempts, exc)
        return (row.next_attempt_at - timezone.now()).total_seconds() if exc.retryable else None
    row.status, row.sent_at = OutboxComment.Status.SENT, timezone.now()
    row.save(update_fields=["status", "sent_at"])
    return None


def outbox_send(*, outbox_id: int) -> float | None:
    """Send one outbox comment if it is due and not held by another sender.

    Returns the seconds to wait before retrying, or None when there is nothing to retry
    (sent, permanently failed, not due, or being sent elsewhere).
    """
    claimed = _claim(outbox_id=outbox_id, limit=1)
    return _deliver(claimed[0]) if claimed else None


def outbox_sweep(*, limit: int = 100) -> int:
    """Send every due comment (safety net for lost tasks and long JIRA outages); returns how many tried."""
    if not jira_outbound_enabled():
        return 0
    claimed = _claim(outbox_id=None, limit=limit)
    for row in claimed:
        _deliver(row)
    return len(claimed)


def outbox_retry_now(*, outbox: OutboxComment) -> None:
    """DRM's "send now": make a failing or dead row due immediately and queue it."""
    with transaction.atomic():
        updated = OutboxComment.objects.filter(
            pk=outbox.pk, status__in=OutboxComment.OPEN | {OutboxComment.Status.DEAD}
        ).update(status=OutboxComment.Status.FAILING, next_attempt_at=timezone.now())
        if updated:
            transaction.on_commit(partial(_send_soon, outbox.pk), robust=True)
