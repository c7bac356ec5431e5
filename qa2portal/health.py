"""What the health page reports: database, broker and workers, CASA, DATA_ROOT space.

Each check catches its own failure and says what is wrong, so a broken dependency
shows up on the page instead of as a 500. A row is one function returning a Check,
listed in CHECKS. The page answers in well under a second: the broker gets one connection
attempt, the worker ping waits only briefly for replies, and CASA's row reads the answer
that the last real CASA check (`make run`, `manage.py casa_check`) cached.
"""

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from calibration import casa
from qa2portal.celery import app as celery_app


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    summary: str
    details: dict[str, object] = field(default_factory=dict)


def redact(url: str) -> str:
    """The URL without its password, for display."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def database_check() -> Check:
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "unreachable" here
        return Check("Database", False, f"{engine} unreachable: {exc}", {"engine": engine})
    return Check("Database", True, f"{engine} reachable", {"engine": engine, "vendor": connection.vendor})


# A refused or unreachable broker fails at once (no retry with back-off).
BROKER_CONNECT_TIMEOUT = 1.0
# How long the ping waits for the next reply: workers answer within milliseconds on Redis and
# within two polls (0.1 s each) on the embedded filesystem broker. Celery applies this wait
# after every reply too, so it is also the page's cost when workers are alive.
WORKER_PING_WAIT = 0.5


def broker_check(timeout: float = BROKER_CONNECT_TIMEOUT, ping_wait: float = WORKER_PING_WAIT) -> Check:
    url = settings.CELERY_BROKER_URL
    kind = urlsplit(url).scheme or url
    details: dict[str, object] = {"kind": kind, "url": redact(url)}
    with celery_app.connection_for_write(url) as conn:
        try:
            # kombu-stubs say int, but kombu takes any number of seconds (time() + timeout).
            conn.ensure_connection(max_retries=0, timeout=timeout)  # type: ignore[arg-type]
        except Exception as exc:
            return Check("Broker and workers", False, f"{kind} broker unreachable: {exc}", details)
        try:
            # Over the connection just checked: the workers of *this* broker answer.
            replies = celery_app.control.inspect(timeout=ping_wait, connection=conn).ping() or {}
        except Exception as exc:
            return Check("Broker and workers", False, f"{kind} broker up, worker ping failed: {exc}", details)
    details["workers"] = sorted(replies)
    if not replies:
        summary = f"{kind} broker up, no worker answered the ping within {ping_wait:g} s"
        return Check("Broker and workers", False, summary, details)
    return Check("Broker and workers", True, f"{kind} broker up, {len(replies)} worker(s) alive", details)


def casa_check() -> Check:
    info = casa.cached_check()
    if info is None:
        return Check("CASA", False, "not checked yet: run `manage.py casa_check`", {})
    summary = f"casatools {info['casatools']}, casatasks {info['casatasks']}"
    return Check("CASA", True, summary, info)


def sandbox_check() -> Check:
    """What the last worker to start decided about CASA's sandbox (casa.sandbox_decide)."""
    state = casa.sandbox_state()
    if state is None:
        return Check(
            "CASA sandbox", False, "no worker has started yet: the mode is decided at worker start", {}
        )
    details = {k: state[k] for k in ("requested", "mode", "binds", "limits", "error") if k in state}
    if state.get("mode") != "bwrap":
        summary = (
            f"NONE: scripts run unsandboxed (CASA_SANDBOX={state.get('requested')}; "
            "bubblewrap missing or unable to make namespaces)"
        )
        return Check("CASA sandbox", False, summary, details)
    if not state.get("ok"):
        return Check("CASA sandbox", False, f"bubblewrap does not start CASA: {state.get('error')}", details)
    uid = settings.CASA_SANDBOX_UID
    return Check(
        "CASA sandbox", True, f"bubblewrap: uid {uid}, no network, read-only outside the run", details
    )


def data_root_check() -> Check:
    root = settings.DATA_ROOT
    try:
        root.mkdir(parents=True, exist_ok=True)
        usage = shutil.disk_usage(root)
    except OSError as exc:
        return Check("DATA_ROOT", False, f"{root}: {exc}", {"path": str(root)})
    free_gb = usage.free / 1e9
    details = {"path": str(root), "free_gb": round(free_gb, 1), "total_gb": round(usage.total / 1e9, 1)}
    # A single ALMA MOUS can need tens of GB of scratch space.
    ok = free_gb >= 10
    summary = f"{free_gb:.1f} GB free of {usage.total / 1e9:.1f} GB" + ("" if ok else " (low)")
    return Check("DATA_ROOT", ok, summary, details)


# The rows of the page, in order: add a check here.
CHECKS: list[Callable[[], Check]] = [database_check, broker_check, casa_check, sandbox_check, data_root_check]


def all_checks() -> list[Check]:
    return [check() for check in CHECKS]
