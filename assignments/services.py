"""Assignment workflows: people and roles, staging of the MOUS folder tree."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from assignments.models import ExecutionBlock, Mous, Person


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
