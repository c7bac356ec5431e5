"""Assignment workflows: people and roles, staging of the MOUS folder tree."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from assignments.models import Assignment, ExecutionBlock, Investigator, Mous, MousState, Person


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    initials: str


DEMO_ACCOUNTS = (
    DemoAccount("drm", "drm-demo-2026", Person.Role.DRM, "DM"),
    DemoAccount("reducer", "reducer-demo-2026", Person.Role.REDUCER, "RD"),
)


@transaction.atomic
def ensure_demo_accounts() -> list[DemoAccount]:
    """Create the demo DRM and reducer if missing; idempotent (passwords are reset)."""
    User = get_user_model()
    for account in DEMO_ACCOUNTS:
        user, _ = User.objects.get_or_create(username=account.username)
        user.set_password(account.password)
        user.is_staff = account.role == Person.Role.DRM
        user.save()
        Person.objects.update_or_create(
            user=user, defaults={"role": account.role, "initials": account.initials}
        )
    return list(DEMO_ACCOUNTS)


class PathOutsideDataRoot(ValueError):
    """A folder derived from user data would leave DATA_ROOT."""


def inside_data_root(path: Path) -> Path:
    """`path` resolved, or PathOutsideDataRoot when it is not below DATA_ROOT."""
    root = Path(settings.DATA_ROOT).resolve()
    resolved = path.resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise PathOutsideDataRoot(f"{path} is outside DATA_ROOT ({root})")
    return resolved


def mous_folder(mous: Mous) -> Path:
    return inside_data_root(Path(settings.DATA_ROOT) / mous.folder_name)


def eb_folder(eb: ExecutionBlock) -> Path:
    return inside_data_root(mous_folder(eb.mous) / eb.folder_name)


def mous_stage(mous: Mous) -> Path:
    """Create the seeds' folder tree for `mous` under DATA_ROOT (idempotent); returns its root.

    <project>_<uid>/Calibration_<eb tail>/ per EB, Combination/calibrated/ only with more
    than one EB, Imaging/.
    """
    root = mous_folder(mous)
    ebs = list(mous.execution_blocks.all())
    for eb in ebs:
        eb_folder(eb).mkdir(parents=True, exist_ok=True)
    if len(ebs) > 1:
        inside_data_root(root / "Combination" / "calibrated").mkdir(parents=True, exist_ok=True)
    inside_data_root(root / "Imaging").mkdir(parents=True, exist_ok=True)
    return root


class ConflictOfInterest(PermissionError):
    """The reducer is the project's PI or a co-I: they may not reduce its data."""


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


@transaction.atomic
def mous_assign(*, mous: Mous, reducer: Person, by, note: str = "") -> Assignment:
    """Assign (or reassign) `mous` to `reducer`, refusing a PI/co-I; stages the folder tree.

    A NEW or QA2_FAIL (reprocessing) MOUS moves to ASSIGNED; otherwise the state is kept.
    """
    conflict = conflict_of_interest(mous, reducer)
    if conflict is not None:
        raise ConflictOfInterest(
            f"{reducer.user.get_username()} cannot reduce {mous.uid}: they are "
            f"{conflict.get_role_display()} of project {mous.project.code} "
            "(conflict-of-interest rule: no reducer may process their own project's data)"
        )
    now = timezone.now()
    mous.assignments.filter(ended_at__isnull=True).update(ended_at=now)
    assignment = Assignment.objects.create(mous=mous, reducer=reducer, assigned_by=by, note=note)
    Mous.objects.filter(pk=mous.pk).update(assignee=reducer, version=F("version") + 1)
    mous.refresh_from_db(fields=["assignee", "version"])
    if mous.state in (MousState.NEW, MousState.QA2_FAIL):
        mous.transition(MousState.ASSIGNED, by=by, note=note or f"assigned to {reducer.user.get_username()}")
    mous_stage(mous)
    return assignment
