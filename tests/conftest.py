"""Test harness: real PostgreSQL, a real Celery worker over real Redis, real CASA, real Chromium."""

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from calibration.casa import die_with_parent

# Sync Playwright runs an event loop in the test thread; Django must allow ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO = Path(__file__).resolve().parent.parent


CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


def pytest_sessionstart(session: pytest.Session) -> None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        pytest.exit(
            f"the suite needs PostgreSQL (row locks, concurrency), got {engine}. "
            "Run it with `make test`, or set DATABASE_URL=postgres://...",
            returncode=2,
        )
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.exit("the suite needs Redis as broker: run `make test` or set CELERY_BROKER_URL", returncode=2)


# --- folders ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def session_data_root(tmp_path_factory) -> Path:
    """DATA_ROOT of the worker process; each test gets its own folder below it."""
    return tmp_path_factory.mktemp("data_root")


@pytest.fixture(autouse=True)
def data_root(settings, session_data_root, tmp_path, request) -> Path:
    """A fresh DATA_ROOT per test; tests with the worker share its root (unique MOUS names
    keep them apart), because the worker process cannot follow a per-test setting."""
    if {"celery_worker_process", "dedicated_worker"} & set(request.fixturenames):
        settings.DATA_ROOT = session_data_root
        settings.MEDIA_ROOT = session_data_root.parent / "media"
        return session_data_root
    settings.MEDIA_ROOT = tmp_path / "media"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]
    root = session_data_root / f"{safe}-{uuid.uuid4().hex[:6]}"
    root.mkdir()
    settings.DATA_ROOT = root
    return root


@pytest.fixture(scope="session")
def casa_info(tmp_path_factory) -> dict:
    """Run the real `casa_check` once per session (the health page shows its cache)."""
    from calibration import casa

    return casa.check()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    # PBKDF2 costs ~0.4 s per user on this machine; tests log in hundreds of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Celery ----------------------------------------------------------------------------
def _database_url_for_worker() -> str:
    from django.db import connection

    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen, name: str, log: Path) -> None:
        self.proc, self.name, self.log = proc, name, log

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _start_worker(env_extra: dict[str, str], log: Path, name: str, queues: str = "") -> subprocess.Popen:
    from qa2portal.management.commands.run_embedded import worker_command

    env = {**os.environ, **env_extra}
    return subprocess.Popen(
        worker_command(name=name, concurrency=1, queues=queues.split(",") if queues else ()),
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # A worker left behind by a killed pytest would steal the next session's tasks.
        preexec_fn=die_with_parent,
    )


def _wait_for_worker(name: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    from qa2portal.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        replies = app.control.inspect(destination=[name], timeout=1.0).ping() or {}
        if name in replies:
            return
    raise RuntimeError(f"worker {name} did not answer a ping in {timeout} s:\n{log.read_text()[-3000:]}")


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.fixture(scope="session")
def worker_environment(django_db_setup, django_db_blocker, session_data_root) -> dict[str, str]:
    """What a worker subprocess needs to share the test database and folders."""
    from django.conf import settings

    with django_db_blocker.unblock():
        database_url = _database_url_for_worker()
    return {
        "DATABASE_URL": database_url,
        "DATA_ROOT": str(session_data_root),
        "MEDIA_ROOT": str(session_data_root.parent / "media"),
        "QA2_VAR_DIR": str(settings.VAR_DIR),
        # Data ingest reads only below these (tests put their sources in this session folder).
        "INGEST_ROOTS": str(session_data_root.parent / "ingest"),
        # Small enough that the hostile-script tests' 16 GB allocation fails on any test machine.
        "CASA_LIMIT_ADDRESS_SPACE_GB": "8",
    }


@pytest.fixture(scope="session")
def celery_worker_process(worker_environment, tmp_path_factory):
    """A real `celery worker` subprocess on the real Redis and the test database."""
    from qa2portal.celery import app

    app.control.purge()
    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = _start_worker(worker_environment, log, name)
    try:
        _wait_for_worker(name, proc, log)
        yield WorkerProcess(proc, name, log)
    finally:
        stop_worker(proc)


@pytest.fixture
def dedicated_worker(worker_environment, tmp_path):
    """Start a worker of our own on a private queue (for tests that kill it); stopped after."""
    started: list[subprocess.Popen] = []

    def start(queue: str) -> WorkerProcess:
        name = f"dedicated-{uuid.uuid4().hex[:8]}@localhost"
        log = tmp_path / f"{name}.log"
        proc = _start_worker(worker_environment, log, name, queues=queue)
        started.append(proc)
        _wait_for_worker(name, proc, log)
        return WorkerProcess(proc, name, log)

    yield start
    for proc in started:
        stop_worker(proc)


@pytest.fixture
def worker_with_env(worker_environment, tmp_path, dedicated_worker):
    """Like dedicated_worker, with extra environment variables for the worker (e.g. a
    throughput limit, or roots the session worker does not have); stopped after. It uses
    dedicated_worker so that the test shares the workers' DATA_ROOT."""
    started: list[subprocess.Popen] = []

    def start(queue: str, env: dict[str, str]) -> WorkerProcess:
        name = f"envworker-{uuid.uuid4().hex[:8]}@localhost"
        log = tmp_path / f"{name}.log"
        proc = _start_worker({**worker_environment, **env}, log, name, queues=queue)
        started.append(proc)
        _wait_for_worker(name, proc, log)
        return WorkerProcess(proc, name, log)

    yield start
    for proc in started:
        stop_worker(proc)


# --- browser ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's chromium, never a downloaded browser; flags for a closed network as root."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def login(page, live_server):
    """Log `page` in through the real login form; returns a function (username, password)."""

    def do_login(username: str, password: str) -> None:
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")

    return do_login


@pytest.fixture
def demo_accounts(db):
    from assignments.demo import ensure_demo_accounts

    return {a.username: a for a in ensure_demo_accounts()}


@pytest.fixture
def calibrator_catalogue(db) -> None:
    """The catalogue file's entries in the table: a transactional test's flush removes the rows
    the seed migration made, and a generated script's setjy needs them."""
    from calibration.catalogue import load_file

    load_file()


@pytest.fixture(autouse=True)
def seeded_as_migrated(request) -> None:
    """Every database test starts from what the migrations seed (the calibrator catalogue), as a
    deployed database does: a transactional test's flush removes it for the tests after it."""
    uses_db = request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in ("db", "transactional_db", "live_server")
    )
    if uses_db:
        request.getfixturevalue("calibrator_catalogue")


@pytest.fixture
def free_port() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


# Shared fixtures for simulated and real CASA data (built once per session, cached on disk).
pytest_plugins = ["tests.simdata"]
