"""Assignment workflows: assign, unassign, bulk-assign, edit a MOUS (conflict of interest, version check)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from assignments.jira.outbox import outbox_enqueue_for_assignment
from assignments.models import (
    TERMINAL_STATES,
    TRANSITION_FIELDS,
    Assignment,
    Investigator,
    Mous,
    MousState,
    Person,
    StaleVersion,
)
from assignments.staging import mous_stage
from qa2portal.errors import Conflict


class ConflictOfInterest(Conflict, PermissionError):
    """The reducer is the project's PI or a co-I: they may not reduce its data (409)."""

    def details(self) -> dict:
        return {"rule": "conflict-of-interest"}


def conflict_of_interest(mous: Mous, reducer: Person) -> Investigator | None:
    """The investigator record that makes `reducer` conflicted on `mous`, if any.

    A match is the linked account, or the same e-mail address (case-insensitive).
    """
    email = (reducer.user.email or "").strip().lower()
    for investigator in mous.project.investigators.all():
        if investigator.user_id == reducer.user_id:
            return investigator
        if email and investigator.email.strip().lower() == email:
            return investigator
    return None


def _lock(mous: Mous, expected_version: int | None) -> Mous:
    """The MOUS row locked for this transaction, after the optimistic-lock check."""
    locked = Mous.objects.select_for_update(no_key=True).select_related("project").get(pk=mous.pk)
    if expected_version is not None and locked.version != expected_version:
        raise StaleVersion(locked.version, expected_version)
    return locked


def _refresh(mous: Mous) -> None:
    mous.refresh_from_db(fields=["assignee", "version", *TRANSITION_FIELDS])


def _refuse_conflict(mous: Mous, reducer: Person) -> None:
    conflict = conflict_of_interest(mous, reducer)
    if conflict is not None:
        raise ConflictOfInterest(
            f"{reducer.user.get_username()} cannot reduce {mous.uid}: they are "
            f"{conflict.get_role_display()} of project {mous.project.code} "
            "(conflict-of-interest rule: no reducer may process their own project's data)"
        )


@transaction.atomic
def mous_assign(
    *, mous: Mous, reducer: Person, by, note: str = "", expected_version: int | None = None
) -> Assignment:
    """Assign (or reassign) `mous` to `reducer`, refusing a PI/co-I; stages the folder tree.

    A NEW or QA2_FAIL (reprocessing) MOUS moves to ASSIGNED; otherwise the state is kept.
    The previous assignment is closed, so Assignment rows are the full history.
    """
    # The row lock serialises two DRMs assigning the same MOUS at once.
    locked = _lock(mous, expected_version)
    if locked.state in TERMINAL_STATES:
        raise ValidationError({"reducer": f"{locked.uid} is {locked.state}: it can no longer be assigned."})
    if locked.assignee_id == reducer.pk and locked.state != MousState.QA2_FAIL:
        name = reducer.user.get_username()
        raise ValidationError({"reducer": f"{locked.uid} is already assigned to {name}."})
    _refuse_conflict(locked, reducer)
    now = timezone.now()
    locked.assignments.filter(ended_at__isnull=True).update(ended_at=now, ended_by=by)
    assignment = Assignment.objects.create(mous=locked, reducer=reducer, assigned_by=by, note=note)
    outbox_enqueue_for_assignment(assignment)  # same transaction: no assignment without its comment
    Mous.objects.filter(pk=locked.pk).update(assignee=reducer, version=F("version") + 1)
    _refresh(locked)
    if locked.state in (MousState.NEW, MousState.QA2_FAIL):
        locked.transition(
            MousState.ASSIGNED, by=by, note=note or f"assigned to {reducer.user.get_username()}"
        )
    mous_stage(locked)
    _refresh(mous)
    return assignment


@transaction.atomic
def mous_unassign(*, mous: Mous, by, note: str = "", expected_version: int | None = None) -> Assignment:
    """Take `mous` away from its reducer; an ASSIGNED MOUS goes back to NEW."""
    locked = _lock(mous, expected_version)
    current = locked.assignments.filter(ended_at__isnull=True).first()
    if locked.assignee_id is None or current is None:
        raise ValidationError({"reducer": f"{locked.uid} is not assigned to anyone."})
    current.ended_at, current.ended_by = timezone.now(), by
    if note:
        current.note = f"{current.note}\nunassigned: {note}".strip()
    current.save(update_fields=["ended_at", "ended_by", "note"])
    Mous.objects.filter(pk=locked.pk).update(assignee=None, version=F("version") + 1)
    _refresh(locked)
    if locked.state == MousState.ASSIGNED:
        locked.transition(MousState.NEW, by=by, note=note or "unassigned")
    _refresh(mous)
    return current


@transaction.atomic
def mous_bulk_assign(*, mous_ids: list[int], reducer: Person, by, note: str = "") -> list[Assignment]:
    """Assign several MOUS to one reducer: all or nothing, so one refusal changes none of them."""
    found = {m.pk: m for m in Mous.objects.filter(pk__in=mous_ids).select_related("project")}
    missing = sorted(set(mous_ids) - set(found))
    if missing:
        raise ValidationError({"mous": f"No MOUS with id {', '.join(map(str, missing))}."})
    # Lock in primary-key order so two bulk assigns cannot deadlock each other.
    return [mous_assign(mous=found[pk], reducer=reducer, by=by, note=note) for pk in sorted(found)]


# Fields a DRM may edit on an existing MOUS: its request (state, assignee and version have
# their own paths).
EDITABLE_FIELDS = Mous.REQUEST_FIELDS


@transaction.atomic
def mous_edit(*, mous: Mous, by, expected_version: int, changes: dict) -> Mous:
    """Apply `changes` to `mous` if nobody edited it since `expected_version` (else StaleVersion)."""
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({name: "This field cannot be edited here." for name in unknown})
    locked = _lock(mous, expected_version)
    for name, value in changes.items():
        setattr(locked, name, value)
    locked.full_clean(exclude=["project", "assignee"])
    locked.version += 1
    locked.save(update_fields=[*changes, "version"])
    mous.refresh_from_db()
    return mous
