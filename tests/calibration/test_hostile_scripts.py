"""A hostile reducer's script, one step at a time, against the real worker, CASA and bubblewrap.

Each case must end with the step FAILED (or the access denied), the worker alive, nothing
outside the run folder changed, and no secret in what the step could print.
"""

import json
from pathlib import Path

import pytest
from django.conf import settings

from calibration import casa, runs
from calibration.models import Run, RunStep
from tests.calibration.conftest import alma_steps, script_version
from tests.calibration.test_runs import wait_terminal

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _bubblewrap_here() -> None:
    assert casa.bubblewrap(), "make test installs bubblewrap; it must be able to create namespaces here"


def run_steps(eb, reducer, *bodies: str, timeout: int | None = None) -> Run:
    version = script_version(eb, alma_steps(*bodies))
    extra = {"step_timeout_seconds": timeout} if timeout else {}
    run = runs.run_create(version=version, steps=[], by=reducer.user, **extra)
    return wait_terminal(run, timeout=420)


def assert_worker_alive(celery_worker_process) -> None:
    assert celery_worker_process.proc.poll() is None, celery_worker_process.log_tail()


def test_secrets_of_the_host_cannot_be_read(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    targets = {
        "settings": str(Path(settings.BASE_DIR) / "qa2portal" / "settings.py"),
        "worker state in var/": str(settings.CASA_SANDBOX_STATE),
        "shadow": "/etc/shadow",
        "pid 1 environment": "/proc/1/environ",
        "postgres socket": "/var/run/postgresql/.s.PGSQL.5432",
        "root's home": "/root/.bashrc",
    }
    probe = (
        "import json, os\n"
        "got = {}\n"
        f"for name, path in {targets!r}.items():\n"
        "    try:\n"
        "        with open(path, 'rb') as f:\n"
        "            got[name] = f.read(4096).decode('latin-1')\n"
        "    except OSError as exc:\n"
        "        got[name] = 'DENIED ' + type(exc).__name__\n"
        "got['uid'] = os.getuid()\n"
        "got['caps'] = open('/proc/self/status').read().split('CapEff:')[1].split()[0]\n"
        "open('got.json', 'w').write(json.dumps(got))"
    )
    run = run_steps(eb, reducer, probe)

    assert run.status == Run.Status.SUCCEEDED, run.error
    got = json.loads((Path(run.folder) / "got.json").read_text())
    assert (got.pop("uid"), got.pop("caps")) == (settings.CASA_SANDBOX_UID, "0000000000000000")
    for name, text in got.items():
        if name == "pid 1 environment":
            # pid 1 of the sandbox's own pid namespace is bubblewrap, with CASA's minimal environment.
            assert "SECRET_KEY" not in text and "DATABASE_URL" not in text and "PASSWORD" not in text
        else:
            assert text.startswith("DENIED"), f"{name} was readable"
    assert_worker_alive(celery_worker_process)


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("postgres tcp", "import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=3)"),
        ("redis tcp", "import socket\nsocket.create_connection(('127.0.0.1', 6379), timeout=3)"),
        (
            "postgres unix socket",
            "import socket\ns = socket.socket(socket.AF_UNIX)\n"
            "s.connect('/var/run/postgresql/.s.PGSQL.5432')",
        ),
        (
            "abstract unix socket",
            "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0/tmp/.X11-unix/X0')",
        ),
    ],
)
def test_host_services_are_out_of_reach(celery_worker_process, make_eb, ngc5921_ms, reducer, label, body):
    eb = make_eb(ngc5921_ms)
    run = run_steps(eb, reducer, body)

    assert run.status == Run.Status.FAILED, label
    error = run.steps.get(number=0).error
    assert any(word in error for word in ("refused", "unreachable", "No such file", "denied")), error
    assert_worker_alive(celery_worker_process)


def test_a_fork_bomb_is_stopped_and_the_worker_lives(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    bomb = (
        "import os, time\n"
        "children = []\n"
        "for i in range(2000):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(10)\n"
        "        os._exit(0)\n"
        "    children.append(pid)"
    )
    run = run_steps(eb, reducer, bomb, "print('never')")

    assert run.status == Run.Status.FAILED
    assert "Resource temporarily unavailable" in run.steps.get(number=0).error
    assert run.steps.get(number=1).status == RunStep.Status.NOT_RUN
    assert_worker_alive(celery_worker_process)


def test_allocating_16_gb_fails_the_step_not_the_machine(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    run = run_steps(eb, reducer, "hog = bytearray(16 * 1024**3)")

    assert run.status == Run.Status.FAILED
    assert "MemoryError" in run.steps.get(number=0).error
    assert_worker_alive(celery_worker_process)


def test_sleeping_forever_times_out(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    run = run_steps(eb, reducer, "import threading\nthreading.Event().wait()", timeout=5)

    assert run.status == Run.Status.TIMED_OUT
    assert "exceeded its 5 s limit" in run.error
    assert_worker_alive(celery_worker_process)


def test_home_is_private_so_no_step_plants_a_config_for_the_next(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    eb = make_eb(ngc5921_ms)
    planted = Path(settings.CASA_HOME) / ".casa" / "config.py"
    run = run_steps(
        eb,
        reducer,
        f"import os\nos.makedirs({str(planted.parent)!r}, exist_ok=True)\nopen({str(planted)!r}, 'w')",
    )

    assert run.status == Run.Status.SUCCEEDED, run.error  # written to the run's private HOME ...
    assert not planted.exists()  # ... which is gone with the run


def test_a_process_left_running_after_the_last_step_does_not_hold_the_run(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    eb = make_eb(ngc5921_ms)
    # A thread that never ends keeps Python from exiting after the runner's work is done.
    never_ends = "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,)).start()"
    run = run_steps(eb, reducer, never_ends)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert "did not exit" in (Path(run.folder) / run.output_log_name).read_text()
    assert_worker_alive(celery_worker_process)
