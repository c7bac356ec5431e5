"""Intake: registering projects (with PI and co-Is), MOUS and execution blocks.

One service per row kind; the pages, the API, the JIRA webhook and the demo all call these,
so the rules live here once. Every service validates everything before it writes anything
and raises one ValidationError with a message per field: bad input changes nothing.
Bringing an EB's raw data in is not here (calibration does it, then marks the data present).
"""

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from assignments.models import (
    ALMA_UID_RE,
    PROJECT_CODE_RE,
    ExecutionBlock,
    Investigator,
    Mous,
    Project,
    cycle_from_code,
)
from assignments.staging import mous_stage

# What mous_create accepts besides the project and the EB uids: the uid and the request.
MOUS_CREATE_FIELDS = frozenset({"uid", *Mous.REQUEST_FIELDS})
UID_FORMAT = "an ALMA uid looks like uid://A001/X13e/X1fe"


class Errors(dict[str, list[str]]):
    """Field -> messages, collected before anything is written."""

    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)

    def raise_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


# --- accounts ---------------------------------------------------------------------------------
def account_for_email(email: str):
    """The one account with this e-mail address (case-insensitive), or None (none, or several)."""
    if not email:
        return None
    users = list(get_user_model().objects.filter(email__iexact=email.strip())[:2])
    return users[0] if len(users) == 1 else None


def investigators_link_account(user) -> int:
    """Link the not yet linked investigators whose e-mail is `user`'s; returns how many.

    Called when an account is saved (assignments.signals): an account created after the
    project, or whose address changed, is linked then. Links are never removed here: a
    conflict of interest does not end because someone changed their address.
    """
    email = (user.email or "").strip()
    if not email or account_for_email(email) is None:
        return 0
    return Investigator.objects.filter(user__isnull=True, email__iexact=email).update(user=user)


# --- projects ---------------------------------------------------------------------------------
def _check_person(errors: Errors, fields: tuple[str, str], name: str, email: str, *, label: str) -> None:
    """Name and e-mail of an investigator; `fields` names where each message goes."""
    name_field, email_field = fields
    if not name:
        errors.add(name_field, f"{label}: the name is missing.")
    elif len(name) > 200:
        errors.add(name_field, f"{label}: the name is longer than 200 characters.")
    if not email:
        errors.add(email_field, f"{label}: the e-mail address is missing (it links the account).")
        return
    try:
        validate_email(email)
    except ValidationError:
        errors.add(email_field, f"{label}: {email!r} is not an e-mail address.")


def _investigator_save(project: Project, *, name: str, email: str, role: str) -> Investigator:
    investigator = Investigator(
        project=project, name=name, email=email, role=role, user=account_for_email(email)
    )
    investigator.save()
    return investigator


@transaction.atomic
def project_create(
    *,
    code: str,
    title: str = "",
    pi_name: str = "",
    pi_email: str = "",
    cois: Sequence[tuple[str, str]] = (),
    by,
) -> Project:
    """Register an ALMA project with its PI and co-Is (name, e-mail); the cycle comes from the code.

    Each investigator is linked to the account with the same e-mail when there is one, so
    conflict_of_interest() refuses that account. The PI may be left out only as a pair (JIRA
    creates projects it knows nothing else about); pages and the API require one.
    """
    code, title = (code or "").strip(), (title or "").strip()
    pi_name, pi_email = (pi_name or "").strip(), (pi_email or "").strip()
    errors = Errors()
    if not PROJECT_CODE_RE.match(code):
        errors.add("code", f"{code!r} is not an ALMA project code (e.g. 2019.1.01234.S).")
    elif Project.objects.filter(code=code).exists():
        errors.add("code", f"Project {code} already exists.")
    if len(title) > 300:
        errors.add("title", "The title is longer than 300 characters.")
    people: list[tuple[str, str, str]] = []
    if pi_name or pi_email:
        _check_person(errors, ("pi_name", "pi_email"), pi_name, pi_email, label="PI")
        people.append((Investigator.Role.PI, pi_name, pi_email))
    for number, (name, email) in enumerate(cois, start=1):
        name, email = (name or "").strip(), (email or "").strip()
        _check_person(errors, ("cois", "cois"), name, email, label=f"co-I {number}")
        people.append((Investigator.Role.COI, name, email))
    seen: set[str] = set()
    for _role, _name, email in people:
        if email and email.lower() in seen:
            errors.add("cois", f"{email} is listed twice: one person is PI or co-I once.")
        seen.add(email.lower())
    errors.raise_any()
    project = Project(code=code, title=title, cycle=cycle_from_code(code), created_by=by)
    project.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:  # registered by someone else between our check and our insert
        raise ValidationError({"code": f"Project {code} already exists."}) from None
    for role, name, email in people:
        _investigator_save(project, name=name, email=email, role=role)
    return project


@transaction.atomic
def investigator_add(*, project: Project, name: str, email: str, role: str, by) -> Investigator:
    """Add a PI (when the project has none) or a co-I to an existing project."""
    name, email = (name or "").strip(), (email or "").strip()
    errors = Errors()
    label = "investigator"
    if role in Investigator.Role.values:
        label = Investigator.Role(role).label
    else:
        errors.add("role", f"{role!r} is not an investigator role (pi or coi).")
    _check_person(errors, ("name", "email"), name, email, label=label)
    # Lock the project: two DRMs adding the same person at once must not both succeed.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    existing = project.investigators.all()
    if role == Investigator.Role.PI and any(i.role == Investigator.Role.PI for i in existing):
        errors.add("role", f"Project {project.code} already has a PI.")
    if email and any(i.email.lower() == email.lower() for i in existing):
        errors.add("email", f"{email} is already an investigator of {project.code}.")
    errors.raise_any()
    return _investigator_save(project, name=name, email=email, role=role)


# --- MOUS and EBs -----------------------------------------------------------------------------
def _uid_ok(uid: str) -> bool:
    return len(uid) <= 64 and ALMA_UID_RE.match(uid) is not None


def _check_new_eb_uid(errors: Errors, field: str, uid: str) -> None:
    if not _uid_ok(uid):
        errors.add(field, f"{uid!r} is not an EB uid: {UID_FORMAT}.")
        return
    owner = ExecutionBlock.objects.filter(uid=uid).select_related("mous").first()
    if owner is not None:
        errors.add(field, f"EB {uid} already exists (in MOUS {owner.mous.uid}).")
    elif Mous.objects.filter(uid=uid).exists():
        errors.add(field, f"{uid} is a MOUS uid, not an EB uid.")


@transaction.atomic
def mous_create(*, project: Project, eb_uids: Sequence[str] = (), by, **fields) -> Mous:
    """Register a MOUS (state NEW) with its OT request figures and its execution blocks.

    Refuses a malformed or already registered uid (MOUS or EB), bands outside 1-10, a
    non-positive rms, bandwidth, frequency or resolution, min resolution > max. `by` is
    recorded as the MOUS's and its EBs' creator (None: the system, e.g. the demo).
    """
    unknown = sorted(set(fields) - MOUS_CREATE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set on a new MOUS." for name in unknown})
    errors = Errors()
    uid = str(fields.pop("uid", "") or "").strip()
    if not _uid_ok(uid):
        errors.add("uid", f"{uid!r} is not a MOUS uid: {UID_FORMAT}.")
    elif (other := Mous.objects.filter(uid=uid).select_related("project").first()) is not None:
        errors.add("uid", f"MOUS {uid} already exists (project {other.project.code}).")
    elif ExecutionBlock.objects.filter(uid=uid).exists():
        errors.add("uid", f"{uid} is an EB uid, not a MOUS uid.")
    cleaned_ebs = [str(u).strip() for u in eb_uids if str(u).strip()]
    for eb_uid in dict.fromkeys(cleaned_ebs):
        if cleaned_ebs.count(eb_uid) > 1:
            errors.add("eb_uids", f"EB {eb_uid} is listed twice.")
        if eb_uid == uid:
            errors.add("eb_uids", f"{eb_uid} is the MOUS's own uid, not an EB uid.")
        else:
            _check_new_eb_uid(errors, "eb_uids", eb_uid)
    frequency = fields.get("representative_frequency_ghz")
    if frequency is not None and frequency <= 0:
        errors.add("representative_frequency_ghz", "The representative frequency must be positive.")
    mous = Mous(project=project, uid=uid, created_by=by, **fields)
    try:
        mous.full_clean(exclude=["uid"], validate_unique=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            for message in messages:
                if message not in errors.get(name, []):
                    errors.add(name, message)
    errors.raise_any()
    try:
        with transaction.atomic():
            mous.save()
            for eb_uid in dict.fromkeys(cleaned_ebs):
                ExecutionBlock.objects.create(mous=mous, uid=eb_uid, created_by=by)
    except IntegrityError:  # the same uid registered by someone else meanwhile
        raise ValidationError({"uid": f"MOUS {uid} or one of its EBs was registered meanwhile."}) from None
    return mous


@transaction.atomic
def eb_create(*, mous: Mous, uid: str, observed_at: datetime | None = None, by) -> ExecutionBlock:
    """Add an execution block to `mous` (data expected; the data ingest brings it in).

    When the MOUS already has its folder tree (it was assigned), the tree is staged again
    after commit so the new Calibration_<X> (and Combination/ with a second EB) exist.
    """
    uid = (uid or "").strip()
    errors = Errors()
    _check_new_eb_uid(errors, "uid", uid)
    if observed_at is not None:
        if timezone.is_naive(observed_at):
            errors.add("observed_at", "Give the observation time with its time zone (UTC).")
        elif observed_at > timezone.now():
            errors.add("observed_at", "The observation time is in the future.")
    errors.raise_any()
    eb = ExecutionBlock(mous=mous, uid=uid, observed_at=observed_at, created_by=by)
    try:
        with transaction.atomic():
            eb.save()
    except IntegrityError:
        raise ValidationError({"uid": f"EB {uid} was registered meanwhile."}) from None
    if mous.assignee_id is not None:
        transaction.on_commit(partial(_restage, mous.pk), robust=True)
    return eb


def _restage(mous_id: int) -> None:
    mous_stage(Mous.objects.select_related("project").get(pk=mous_id))
