"""JIRA webhook in: accept (verify, dedupe, store, enqueue) fast; apply later in a worker.

Understands `jira:issue_created` / `jira:issue_updated` on data-reduction tickets (create or
update the MOUS, assignee change -> assignment with the COI rule, status change -> mapped
lifecycle move) and `comment_created` commands typed by DRMs (`qa2portal: assign <user>`,
`qa2portal: block <reason>`, `qa2portal: unblock`). Everything else is stored and ignored.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from functools import partial

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from assignments.intake import eb_create, mous_create, project_create
from assignments.jira.models import JiraAccount, WebhookDelivery
from assignments.jira.outbox import outbox_enqueue_for_refusal
from assignments.jira.signature import signature_valid
from assignments.models import (
    ALMA_UID_RE,
    PROJECT_CODE_RE,
    ExecutionBlock,
    InvalidTransition,
    Mous,
    MousState,
    Person,
    Project,
)
from assignments.preconditions import ChecklistIncomplete

log = logging.getLogger(__name__)

PROCESS_TASK = "assignments.tasks.jira_delivery_process"  # the worker side of _process_soon
security_log = logging.getLogger("qa2portal.security")

# Headers worth keeping with a delivery (the signature proves what was received).
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Hub-Signature")
UID_IN_TEXT = re.compile(r"uid://A\d{3}/X[0-9A-Za-z]+/X[0-9A-Za-z]+")
CODE_IN_TEXT = re.compile(r"\b\d{4}\.\d\.\d{5}\.[A-Z]{1,3}\b")
# ALMA SB names end in _<letter>_<band two digits>_<array>, e.g. NGC253_a_06_TE.
SB_SUFFIX = re.compile(r"_[a-z]_(\d{2})_(TE|TC|7M|TP)$", re.IGNORECASE)
SB_IN_TEXT = re.compile(r"\bSB(?:[ _]name)?\s*[:=]\s*(\S+)", re.IGNORECASE)
BAND_IN_TEXT = re.compile(r"\bBand\s*(\d{1,2})\b", re.IGNORECASE)


# --- accept -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Acceptance:
    status_code: int
    outcome: str  # accepted | duplicate | rejected | unauthorized | too_large | disabled
    delivery_id: int | None = None


def delivery_accept(*, body: bytes, headers, remote_addr: str) -> Acceptance:
    """Verify, dedupe, store and queue one webhook delivery; nothing is parsed before the HMAC check."""
    if not settings.JIRA_WEBHOOK_SECRET:
        return Acceptance(404, "disabled")
    if len(body) > settings.JIRA_WEBHOOK_MAX_BYTES:
        security_log.warning(
            "jira webhook: body over %s bytes from %s", settings.JIRA_WEBHOOK_MAX_BYTES, remote_addr
        )
        return Acceptance(413, "too_large")
    if not signature_valid(
        body=body, header=headers.get("X-Hub-Signature"), secret=settings.JIRA_WEBHOOK_SECRET
    ):
        # The only trace of an unsigned request: rows for anonymous traffic would be a DoS vector.
        security_log.warning(
            "jira webhook: bad or missing signature from %s (identifier %r, %d bytes)",
            remote_addr,
            str(headers.get("X-Atlassian-Webhook-Identifier", ""))[:80],
            len(body),
        )
        return Acceptance(401, "unauthorized")
    body_sha256 = hashlib.sha256(body).hexdigest()
    identifier = headers.get("X-Atlassian-Webhook-Identifier") or "sha256:" + body_sha256
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    kept.update({k: v for k, v in headers.items() if k.lower().startswith("x-atlassian-")})
    text = body.decode("utf-8", errors="replace")
    event, issue_key, reason = "", "", ""
    try:
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        event = str(payload.get("webhookEvent", ""))[:64]
        issue_key = str((payload.get("issue") or {}).get("key", ""))[:32]
    except ValueError as exc:
        reason = f"malformed JSON: {exc}"
    except RecursionError:
        # json.loads recurses once per nesting level: [[[[...]]]] 50,000 deep exhausts the stack.
        reason = "malformed JSON: nested too deeply"
    status = WebhookDelivery.Status.REJECTED if reason else WebhookDelivery.Status.ACCEPTED
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                identifier=identifier[:128],
                event=event,
                issue_key=issue_key,
                headers=kept,
                body=text,
                body_sha256=body_sha256,
                status=status,
                result=reason,
            )
            if not reason:
                transaction.on_commit(partial(_process_soon, delivery.pk), robust=True)
    except IntegrityError:
        # JIRA retried a delivery we already have (same identifier): count it, change nothing else.
        # The same signed body under a new identifier is a replay (JIRA keeps the identifier on
        # its retries): also counted on the original, never applied again, and logged.
        counted = WebhookDelivery.objects.filter(identifier=identifier[:128]).update(
            duplicates=F("duplicates") + 1, last_duplicate_at=timezone.now()
        )
        if not counted:
            WebhookDelivery.objects.filter(body_sha256=body_sha256).update(
                duplicates=F("duplicates") + 1, last_duplicate_at=timezone.now()
            )
            security_log.warning(
                "jira webhook: a signed body already received came again under a new identifier %r from %s",
                identifier[:80],
                remote_addr,
            )
        return Acceptance(200, "duplicate")
    if reason:
        return Acceptance(400, "rejected", delivery.pk)
    return Acceptance(200, "accepted", delivery.pk)


def _process_soon(delivery_id: int) -> None:
    # By name: assignments/tasks.py imports this module to process, never the reverse.
    current_app.send_task(PROCESS_TASK, args=(delivery_id,))


def delivery_replay(*, delivery: WebhookDelivery, by) -> None:
    """Process a stored delivery again (DRM's replay button)."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.ACCEPTED, result=f"replay asked by {by.get_username()}"
        )
        transaction.on_commit(partial(_process_soon, delivery.pk), robust=True)


# --- process ----------------------------------------------------------------------------
class Ignored(Exception):
    """The delivery is valid but not about anything qa2portal handles."""


@dataclass
class WebhookOutcome:
    """What applying one webhook delivery did, as notes recorded on the delivery."""

    notes: list[str] = field(default_factory=list)

    def add(self, note: str) -> None:
        self.notes.append(note)


def delivery_process(*, delivery_id: int) -> WebhookDelivery | None:
    """Apply one accepted delivery exactly once: its effects and its new status commit together."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status=WebhookDelivery.Status.ACCEPTED)
            .first()
        )
        if delivery is None:  # already processed (a redelivered task) or held by another worker
            return None
        delivery.attempts += 1
        outcome = WebhookOutcome()
        try:
            with transaction.atomic():
                payload_apply(payload=json.loads(delivery.body), outcome=outcome)
            delivery.status = WebhookDelivery.Status.PROCESSED
        except Ignored as exc:
            delivery.status = WebhookDelivery.Status.IGNORED
            outcome.add(str(exc))
        except Exception as exc:
            # The savepoint undid any partial effect; keep the reason for the DRM page.
            log.exception("jira delivery %s failed", delivery_id)
            delivery.status = WebhookDelivery.Status.FAILED
            outcome.add(f"{type(exc).__name__}: {exc}")
        delivery.result = "\n".join(outcome.notes)[:10000]
        delivery.processed_at = timezone.now()
        delivery.save(update_fields=["status", "result", "processed_at", "attempts"])
    return delivery


def payload_apply(*, payload: dict, outcome: WebhookOutcome) -> None:
    event = payload.get("webhookEvent", "")
    if event in ("jira:issue_created", "jira:issue_updated"):
        issue_event_apply(payload=payload, outcome=outcome)
    elif event == "comment_created":
        comment_event_apply(payload=payload, outcome=outcome)
    else:
        raise Ignored(f"event {event or '(none)'} is not handled")


# --- tickets -> MOUS --------------------------------------------------------------------
def _field_text(value) -> str:
    """A JIRA field value as text: strings, select options ({"value": ...}), users, lists."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("value") or value.get("name") or value.get("displayName") or "")
    if isinstance(value, list):
        return " ".join(_field_text(v) for v in value)
    return str(value)


def _mapped(fields: dict, name: str) -> str:
    field_id = settings.JIRA_FIELD_MAP.get(name, "")
    return _field_text(fields.get(field_id)).strip() if field_id else ""


@dataclass(frozen=True)
class TicketFields:
    project_code: str
    mous_uid: str
    sb_name: str
    eb_uids: tuple[str, ...]
    band: int | None
    array: str


def ticket_fields(issue: dict) -> TicketFields:
    """MOUS attributes from the mapped custom fields, else from the summary and description."""
    fields = issue.get("fields") or {}
    summary = _field_text(fields.get("summary"))
    description = _field_text(fields.get("description"))
    text = f"{summary}\n{description}"
    code = _mapped(fields, "project_code") or next(iter(CODE_IN_TEXT.findall(text)), "")
    uids = UID_IN_TEXT.findall(summary) + UID_IN_TEXT.findall(description)
    mous_uid = _mapped(fields, "mous_uid") or next(iter(uids), "")
    sb_name = _mapped(fields, "sb_name") or next(iter(SB_IN_TEXT.findall(text)), "")
    eb_text = _mapped(fields, "eb_uids")
    eb_uids = UID_IN_TEXT.findall(eb_text) if eb_text else [u for u in uids if u != mous_uid]
    band_text = _mapped(fields, "band")
    array = _mapped(fields, "array").upper()
    suffix = SB_SUFFIX.search(sb_name)
    band = None
    if band_text.strip().isdigit():
        band = int(band_text)
    elif suffix:
        band = int(suffix.group(1))
    elif found := BAND_IN_TEXT.search(text):
        band = int(found.group(1))
    if not array and suffix:
        array = suffix.group(2).upper()
    return TicketFields(code, mous_uid, sb_name, tuple(dict.fromkeys(eb_uids)), band, array)


def _is_data_reduction_ticket(issue: dict) -> bool:
    fields = issue.get("fields") or {}
    project = _field_text((fields.get("project") or {}).get("key")) or issue.get("key", "").split("-")[0]
    if project not in settings.JIRA_PROJECT_KEYS:
        return False
    types = settings.JIRA_ISSUE_TYPES
    return not types or _field_text((fields.get("issuetype") or {}).get("name")) in types


def mous_from_ticket(*, issue: dict, outcome: WebhookOutcome, by=None) -> Mous:
    """The MOUS of this ticket: linked by key, else found by uid and linked, else created
    (through the intake services, as by the pages; `by` is recorded as its creator)."""
    key = issue.get("key", "")
    mous = Mous.objects.filter(jira_key=key).select_related("project").first()
    found = ticket_fields(issue)
    if mous is None and found.mous_uid:
        mous = Mous.objects.filter(uid=found.mous_uid).select_related("project").first()
        if mous is not None:
            if mous.jira_key and mous.jira_key != key:
                raise ValidationError(f"{mous.uid} is already linked to {mous.jira_key}, not {key}")
            Mous.objects.filter(pk=mous.pk).update(jira_key=key, version=F("version") + 1)
            mous.refresh_from_db(fields=["jira_key", "version"])
            outcome.add(f"linked {mous.uid} to {key}")
    if mous is None:
        mous = _mous_create(key=key, found=found, by=by, outcome=outcome)
    else:
        _mous_update(mous=mous, found=found, by=by, outcome=outcome)
    return mous


def _mous_create(*, key: str, found: TicketFields, by, outcome: WebhookOutcome) -> Mous:
    if not found.mous_uid:
        raise Ignored(f"{key}: no MOUS uid in the ticket (summary, description or mapped field)")
    required = {
        "project code": found.project_code,
        "SB name": found.sb_name,
        "band": found.band,
        "array": found.array,
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise ValidationError(
            f"{key}: cannot create {found.mous_uid}, missing {', '.join(missing)} "
            "(map them with JIRA_FIELD_* or write 'SB: <name_x_06_TE>' in the description)"
        )
    if not PROJECT_CODE_RE.match(found.project_code):
        raise ValidationError(f"{key}: {found.project_code!r} is not an ALMA project code")
    project = Project.objects.filter(code=found.project_code).first() or project_create(
        code=found.project_code, by=by
    )
    mous = mous_create(
        project=project,
        uid=found.mous_uid,
        sb_name=found.sb_name,
        band=found.band,
        array=found.array,
        jira_key=key,
        by=by,
    )
    outcome.add(f"created {mous.uid} ({project.code}, {mous.sb_name})")
    _ebs_add(mous=mous, uids=found.eb_uids, by=by, outcome=outcome)
    return mous


def _mous_update(*, mous: Mous, found: TicketFields, by, outcome: WebhookOutcome) -> None:
    if found.mous_uid and found.mous_uid != mous.uid:
        raise ValidationError(f"{mous.jira_key} names {found.mous_uid} but is linked to {mous.uid}")
    if found.sb_name and found.sb_name != mous.sb_name:
        Mous.objects.filter(pk=mous.pk).update(sb_name=found.sb_name, version=F("version") + 1)
        outcome.add(f"SB name {mous.sb_name} -> {found.sb_name}")
        mous.refresh_from_db(fields=["sb_name", "version"])
    _ebs_add(mous=mous, uids=found.eb_uids, by=by, outcome=outcome)


def _ebs_add(*, mous: Mous, uids: tuple[str, ...], by, outcome: WebhookOutcome) -> None:
    known = set(ExecutionBlock.objects.filter(uid__in=uids).values_list("uid", flat=True))
    for uid in uids:
        if uid not in known and ALMA_UID_RE.match(uid):
            eb_create(mous=mous, uid=uid, by=by)
            outcome.add(f"EB {uid} added")


# --- people -----------------------------------------------------------------------------
def person_for_jira_user(user: dict | None) -> Person | None:
    """A JIRA user object -> Person: linked account id, then e-mail, then (Server) user name."""
    if not user:
        return None
    ids = [v for v in (user.get("accountId"), user.get("name"), user.get("key")) if v]
    link = JiraAccount.objects.filter(account_id__in=ids).select_related("person__user").first()
    if link:
        return link.person
    email = (user.get("emailAddress") or "").strip()
    if email:
        person = Person.objects.filter(user__email__iexact=email).select_related("user").first()
        if person:
            return person
    return person_by_name(user.get("name") or "")


def person_by_name(name: str) -> Person | None:
    """Username, linked JIRA account id or e-mail -> Person (for `qa2portal: assign <who>`)."""
    name = name.strip().lstrip("@")
    if not name:
        return None
    User = get_user_model()
    user = (
        User.objects.filter(username=name).first()
        or User.objects.filter(email__iexact=name).first()
        or User.objects.filter(person__jira_accounts__account_id=name).first()
    )
    return getattr(user, "person", None) if user else None


# --- applying ---------------------------------------------------------------------------
def _assign(*, mous: Mous, reducer: Person, by, source: str, outcome: WebhookOutcome) -> None:
    from assignments.services import ConflictOfInterest, mous_assign

    if mous.assignee_id == reducer.pk:
        outcome.add(f"{reducer.user.get_username()} is already the assignee")
        return
    try:
        mous_assign(mous=mous, reducer=reducer, by=by, note=source)
    except (ConflictOfInterest, ValidationError) as exc:
        # mous_assign rolled its own savepoint back; the refusal is recorded here, in the
        # delivery's transaction, and reported on the ticket.
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        outcome.add(f"assignment refused: {message}")
        reason = f"assignment of MOUS {mous.uid} from {source}: {message}"
        outbox_enqueue_for_refusal(mous=mous, reason=reason)
        return
    outcome.add(f"assigned to {reducer.user.get_username()}")


def _transition(*, mous: Mous, new: str, by, note: str, outcome: WebhookOutcome) -> None:
    mous.refresh_from_db(fields=["state", "blocked_from", "version"])
    if mous.state == new:
        outcome.add(f"already {new}")
        return
    try:
        mous.transition(new, by=by, note=note)
    except (InvalidTransition, ChecklistIncomplete, ValidationError) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        outcome.add(f"refused {new}: {message}")
        outbox_enqueue_for_refusal(mous=mous, reason=f"MOUS {mous.uid}: {message}")
        return
    outcome.add(f"{mous.uid} -> {new}")


def issue_event_apply(*, payload: dict, outcome: WebhookOutcome) -> None:
    issue = payload.get("issue") or {}
    key = issue.get("key", "")
    if not _is_data_reduction_ticket(issue):
        raise Ignored(f"{key or 'issue'} is not a data-reduction ticket")
    actor = person_for_jira_user(payload.get("user"))
    by = actor.user if actor else None
    mous = mous_from_ticket(issue=issue, outcome=outcome, by=by)
    items = (payload.get("changelog") or {}).get("items") or []
    fields = issue.get("fields") or {}
    assignee_changed = any(i.get("field") == "assignee" for i in items)
    if assignee_changed or (payload.get("webhookEvent") == "jira:issue_created" and fields.get("assignee")):
        jira_assignee = fields.get("assignee")
        if not jira_assignee:
            outcome.add("unassigned in JIRA: qa2portal keeps its assignee")
        elif (reducer := person_for_jira_user(jira_assignee)) is None:
            outcome.add(f"JIRA assignee {_field_text(jira_assignee)!r} has no qa2portal account")
        else:
            _assign(mous=mous, reducer=reducer, by=by, source=f"assignee set in JIRA {key}", outcome=outcome)
    for item in items:
        if item.get("field") != "status":
            continue
        name = item.get("toString") or ""
        target = settings.JIRA_STATUS_MAP.get(name)
        if target is None:
            outcome.add(f"JIRA status {name!r} is not mapped")
            continue
        note = f"JIRA {key}: {item.get('fromString') or '?'} -> {name}"
        _transition(mous=mous, new=target, by=by, note=note, outcome=outcome)


def adf_text(node) -> str:
    """Plain text of an Atlassian Document Format node: one line per block."""
    if isinstance(node, list):
        return "".join(adf_text(n) for n in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return node.get("text", "")
    if kind == "hardBreak":
        return "\n"
    if kind in ("mention", "emoji"):
        return (node.get("attrs") or {}).get("text", "")
    inner = adf_text(node.get("content") or [])
    return inner + "\n" if kind in ("paragraph", "heading", "codeBlock", "listItem", "blockquote") else inner


def comment_text(body) -> str:
    """A comment body as text: JIRA sends wiki markup (a string) or an ADF document."""
    return adf_text(body) if isinstance(body, dict) else str(body or "")


def comment_event_apply(*, payload: dict, outcome: WebhookOutcome) -> None:
    issue = payload.get("issue") or {}
    comment = payload.get("comment") or {}
    key = issue.get("key", "")
    text = comment_text(comment.get("body"))
    if "[qa2portal outbox #" in text:
        raise Ignored("our own comment")
    prefix = settings.JIRA_COMMAND_PREFIX.lower()
    commands = [
        line.strip()[len(prefix) :].strip()
        for line in text.splitlines()
        if line.strip().lower().startswith(prefix)
    ]
    if not commands:
        raise Ignored("comment without a qa2portal command")
    mous = Mous.objects.filter(jira_key=key).select_related("project").first()
    if mous is None:
        raise Ignored(f"no MOUS is linked to {key}")
    author = person_for_jira_user(comment.get("author"))
    if author is None or not author.is_manager:
        who = _field_text(comment.get("author")) or "unknown"
        # Ticket fields are guarded by JIRA's permissions; free-text commands only by ours.
        raise Ignored(f"commands are for DRMs; {who} is not one in qa2portal")
    for command in commands:
        verb, _, rest = command.partition(" ")
        verb, rest = verb.lower(), rest.strip()
        if verb == "assign":
            reducer = person_by_name(rest)
            if reducer is None:
                outcome.add(f"assign: no qa2portal user {rest!r}")
            else:
                _assign(
                    mous=mous, reducer=reducer, by=author.user, source=f"command in {key}", outcome=outcome
                )
        elif verb == "block":
            _transition(mous=mous, new=MousState.BLOCKED, by=author.user, note=rest, outcome=outcome)
        elif verb == "unblock":
            mous.refresh_from_db(fields=["state", "blocked_from"])
            if mous.state != MousState.BLOCKED:
                outcome.add("unblock: the MOUS is not blocked")
            else:
                _transition(
                    mous=mous,
                    new=mous.blocked_from,
                    by=author.user,
                    note=f"unblocked in {key}",
                    outcome=outcome,
                )
        else:
            outcome.add(f"unknown command {verb!r} (known: assign, block, unblock)")
