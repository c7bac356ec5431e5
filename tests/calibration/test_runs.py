"""The run engine against the real Celery worker and real CASA subprocesses."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from calibration import casa, flagversions, runs
from calibration.models import Product, Run, RunStep
from tests.calibration.conftest import alma_steps, script_version

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]


def wait_for(run: Run, predicate, timeout: float = 120, what: str = "") -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if predicate(run):
            return run
        time.sleep(0.3)
    steps = list(run.steps.values_list("number", "status", "error"))
    raise AssertionError(f"run {run.pk} stuck at {run.status} waiting for {what}: {run.error} {steps}")


def wait_terminal(run: Run, timeout: float = 300) -> Run:
    return wait_for(run, lambda r: r.is_terminal, timeout, "a terminal state")


def processes_in(folder: Path) -> list[int]:
    """PIDs whose working directory is `folder` (the CASA process of a run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_ngc5921_standard_script_is_generated_and_runs_end_to_end(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    from calibration import script_generation
    from calibration.models import ScriptGeneration

    eb = make_eb(ngc5921_ms)
    request = script_generation.script_generate_request(eb=eb, by=reducer.user)
    deadline = time.monotonic() + 120
    while ScriptGeneration.objects.get(pk=request.pk).status not in ("DONE", "FAILED"):
        assert time.monotonic() < deadline, "generation did not finish"
        time.sleep(0.5)
    request.refresh_from_db()
    assert request.status == "DONE", request.error
    version = request.version
    assert version.source == "generated"
    assert [s["title"] for s in version.parsed["steps"]][:3] == [
        "Import of the data",
        "listobs",
        "A priori flagging",
    ]
    text = version.text()
    assert "standard = 'Perley-Butler 2017'" in text and "quackmode = 'beg'" in text

    run = runs.run_create(version=version, steps=[], by=reducer.user)
    run = wait_terminal(run)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert set(run.steps.values_list("status", flat=True)) == {RunStep.Status.SUCCEEDED}
    folder = Path(run.folder)
    fluxscale = (folder / f"{eb.ms_name}.fluxscale").read_text()
    # The VLA tutorial's known answer for the phase calibrator: 2.53 Jy.
    assert "Flux density for 1445+09900002_0 in SpW=0" in fluxscale and "is: 2.5" in fluxscale
    caltables = dict(run.products.filter(kind=Product.Kind.CALTABLE).values_list("relpath", "viscal"))
    assert caltables[f"{eb.ms_name}.bandpass"] == "B Jones"
    assert caltables[f"{eb.ms_name}.flux_inf"] == "T Jones"
    assert run.products.filter(kind=Product.Kind.PNG).count() >= 10  # plotbandpass, headless
    assert run.products.filter(kind=Product.Kind.MS, relpath=f"{eb.ms_name}.cal").exists()
    casa_log = (folder / run.casa_log_name).read_text()
    assert "qa2portal: step 13 Save flags after applycal" in casa_log
    gain = run.steps.get(title="Gain calibration")
    assert any(call.startswith("es.fluxscale2(") for call in gain.skipped_helpers)
    assert gain.casa_tasks == ["gaincal", "fluxscale"]
    assert not list(folder.glob("casa-2*.log")), "no stray casa-<date>.log"
    run.mous.refresh_from_db()
    assert run.mous.state == "CALIBRATING"

    versions = flagversions.flag_versions(eb)
    assert {"Apriori", "Original", "BeforeBandpassCalibration", "AfterApplycal"} <= {
        v["name"] for v in versions[eb.ms_name]
    }
    restore = wait_terminal(
        flagversions.flagversion_restore(eb=eb, ms=eb.ms_name, version_name="Apriori", by=reducer.user)
    )
    assert restore.status == Run.Status.SUCCEEDED, restore.error
    assert restore.steps.get().casa_tasks == ["flagmanager"]


def test_cancel_kills_the_casa_process_group(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps("print('ready', flush=True)", "import time\ntime.sleep(600)"))
    run = runs.run_create(version=version, steps=[], by=reducer.user)
    wait_for(run, lambda r: r.steps.filter(number=1, status=RunStep.Status.RUNNING).exists(), 90, "step 1")
    folder = Path(run.folder)
    assert processes_in(folder), "the CASA process runs in the EB folder"

    cancelled_at = time.monotonic()
    runs.run_cancel(run=run, by=reducer.user)
    run = wait_terminal(run, timeout=30)

    assert run.status == Run.Status.CANCELLED
    assert time.monotonic() - cancelled_at < 10
    assert run.steps.get(number=0).status == RunStep.Status.SUCCEEDED
    assert run.steps.get(number=1).status == RunStep.Status.CANCELLED
    time.sleep(0.5)
    assert processes_in(folder) == []


def test_a_step_over_its_wall_clock_limit_times_out(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps("import time\ntime.sleep(600)", "print('never')"))

    run = runs.run_create(version=version, steps=[], by=reducer.user, step_timeout_seconds=3)
    run = wait_terminal(run, timeout=90)

    assert run.status == Run.Status.TIMED_OUT
    assert "exceeded its 3 s limit" in run.error
    assert run.steps.get(number=0).status == RunStep.Status.TIMED_OUT
    assert run.steps.get(number=1).status == RunStep.Status.NOT_RUN
    assert processes_in(Path(run.folder)) == []


def test_a_casa_crash_fails_the_step_with_the_signal(celery_worker_process, make_eb, ngc5921_ms, reducer):
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)"))

    run = wait_terminal(runs.run_create(version=version, steps=[], by=reducer.user))

    assert run.status == Run.Status.FAILED
    assert run.exit_signal == signal.SIGSEGV
    assert "CASA crashed in step 0: killed by SIGSEGV" in run.error
    assert run.steps.get().status == RunStep.Status.FAILED


def test_a_task_that_logs_severe_and_returns_without_output_fails_its_step(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    eb = make_eb(ngc5921_ms)
    # The VLA tutorial's refant 'VA15' does not exist after importuvfits: bandpass logs SEVERE
    # and returns without a table (casa-facts §2).
    body = (
        f"bandpass(vis='raw/{ngc5921_ms.name}', caltable='bad.bcal', field='0', refant='VA15', solint='inf')"
    )
    version = script_version(eb, alma_steps(body))

    run = wait_terminal(runs.run_create(version=version, steps=[], by=reducer.user))

    assert run.status == Run.Status.FAILED
    step = run.steps.get()
    assert "expected output missing: bandpass did not write 'bad.bcal'" in step.error
    assert step.severe_messages, "the SEVERE lines of the CASA log are kept with the step"


def test_sandbox_refuses_writes_outside_the_folder_network_and_secrets(
    celery_worker_process, make_eb, ngc5921_ms, reducer, settings
):
    assert casa.bubblewrap(), "make test installs bubblewrap; it must be able to create namespaces here"
    eb = make_eb(ngc5921_ms)
    outside = Path(settings.VAR_DIR) / f"qa2-escape-{eb.pk}.txt"
    # Files the host has (the worker wrote sandbox.json at its start) that CASA must not see.
    secrets = [
        str(Path(settings.BASE_DIR) / "qa2portal" / "settings.py"),
        str(Path(settings.CASA_SANDBOX_STATE)),
        "/etc/shadow",
        "/etc/hostname",
    ]
    assert Path(settings.CASA_SANDBOX_STATE).exists()
    probe = (
        "import json, os\n"
        "assert 'DATABASE_URL' not in os.environ and 'SECRET_KEY' not in os.environ\n"
        "open('inside.txt', 'w').write('ok')\n"
        f"seen = [p for p in {secrets!r} if os.path.exists(p)]\n"
        "try:\n"
        f"    open({str(outside)!r}, 'w').write('escaped')\n"
        "except OSError as exc:\n"
        "    seen.append('write refused: ' + exc.strerror)\n"
        "open('seen.json', 'w').write(json.dumps(seen))"
    )
    version = script_version(
        eb,
        alma_steps(probe, "import socket\nsocket.create_connection(('127.0.0.1', 6379), timeout=3)"),
    )

    run = wait_terminal(runs.run_create(version=version, steps=[0], by=reducer.user))
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert (Path(run.folder) / "inside.txt").read_text() == "ok"
    seen = json.loads((Path(run.folder) / "seen.json").read_text())
    assert [s for s in seen if not s.startswith("write refused")] == [], "the sandbox shows host files"
    assert not outside.exists(), "a write outside the run folder reached the host"

    network = wait_terminal(runs.run_create(version=version, steps=[1], by=reducer.user))
    assert network.status == Run.Status.FAILED
    assert "Connection refused" in network.steps.get().error or "unreachable" in network.steps.get().error


def test_kill_9_of_the_worker_mid_step_ends_failed_worker_lost(
    dedicated_worker, make_eb, ngc5921_ms, reducer, settings
):
    settings.CASA_QUEUE = f"casa-kill-{os.getpid()}-{time.monotonic_ns()}"
    worker = dedicated_worker(settings.CASA_QUEUE)
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps("import time\ntime.sleep(600)"))
    run = runs.run_create(version=version, steps=[], by=reducer.user)
    wait_for(run, lambda r: r.steps.filter(status=RunStep.Status.RUNNING).exists(), 90, "the step to start")
    folder = Path(run.folder)
    assert processes_in(folder)

    os.killpg(worker.proc.pid, signal.SIGKILL)  # the whole worker: main process and pool child
    worker.proc.wait()
    deadline = time.monotonic() + 10
    while processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in(folder) == [], "CASA dies with its worker"

    time.sleep(1.5)  # let the last heartbeat age past the reaper's limit
    reaped = runs.reap_stale_runs(stale_after=1)
    run.refresh_from_db()

    assert run.pk in reaped
    assert run.status == Run.Status.FAILED
    assert run.error.startswith("worker lost")
    assert run.steps.get().status == RunStep.Status.FAILED


def test_kill_9_of_the_pool_child_redelivers_and_the_run_completes(
    dedicated_worker, make_eb, ngc5921_ms, reducer, settings
):
    settings.CASA_QUEUE = f"casa-child-{os.getpid()}-{time.monotonic_ns()}"
    worker = dedicated_worker(settings.CASA_QUEUE)
    eb = make_eb(ngc5921_ms)
    # The first attempt hangs; the redelivered one finds the marker and finishes.
    body = (
        "import os, time\n"
        "if not os.path.exists('attempt1'):\n"
        "    open('attempt1', 'w').close()\n"
        "    time.sleep(600)"
    )
    version = script_version(eb, alma_steps(body))
    run = runs.run_create(version=version, steps=[], by=reducer.user)
    wait_for(run, lambda r: r.steps.filter(status=RunStep.Status.RUNNING).exists(), 90, "the step to start")

    children = subprocess.run(
        ["pgrep", "-P", str(worker.proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert children, "the prefork pool child"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    run = wait_terminal(run, timeout=120)

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.attempts == 2


def test_the_script_imports_modules_of_its_folder_which_never_stand_in_for_ours(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    eb = make_eb(ngc5921_ms)
    # A helper module beside the script imports as at the CASA prompt; a module named like
    # one CASA's interpreter imports before the script runs is ignored by the next run.
    plant = (
        "open('reducer_helper.py', 'w').write('VALUE = 42\\n')\n"
        "open('casatasks.py', 'w').write('raise SystemExit(\"planted casatasks imported\")\\n')"
    )
    use = "import reducer_helper\nopen('helper.txt', 'w').write(str(reducer_helper.VALUE))"
    first = wait_terminal(
        runs.run_create(version=script_version(eb, alma_steps(plant, use)), steps=[], by=reducer.user)
    )

    assert first.status == Run.Status.SUCCEEDED, first.error
    assert (Path(first.folder) / "helper.txt").read_text() == "42"
    assert (Path(first.folder) / "casatasks.py").exists()
    second = wait_terminal(
        runs.run_create(version=script_version(eb, alma_steps(use)), steps=[], by=reducer.user)
    )
    assert second.folder == first.folder
    assert second.status == Run.Status.SUCCEEDED, second.error
