"""The demo accounts: a DRM, a reducer and a data analyst with known passwords, for the demo and
local runs only."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from assignments.models import Person


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    initials: str


DEMO_ACCOUNTS = (
    DemoAccount("drm", "drm-demo-2026", Person.Role.DRM, "DM"),
    DemoAccount("reducer", "reducer-demo-2026", Person.Role.REDUCER, "RD"),
    DemoAccount("analyst", "analyst-demo-2026", Person.Role.DATA_ANALYST, "AN"),
)


@transaction.atomic
def ensure_demo_accounts() -> list[DemoAccount]:
    """Create the demo accounts if missing; idempotent (passwords are reset)."""
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
