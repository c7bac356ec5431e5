"""A supervisor that a hostile step cannot fool: real worker, real CASA, bubblewrap.

Each hostile case is one script step; the run must end as the worker saw it, nothing
outside the run folder may change, and the worker must stay alive.
"""

import os
import stat
import time
from pathlib import Path

import pytest
from django.utils import timezone

from calibration import runs
from calibration.incasa.events import MARKER
from calibration.models import Product, Run, RunStep
from tests.calibration.conftest import alma_steps, script_version
from tests.calibration.test_runs import processes_in, wait_for, wait_terminal

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]

FORGED_END = MARKER + (
    '{"event": "step_end", "step": 0, "ok": false, "error": "forged", "traceback": "", '
    '"skipped_helpers": [], "casa_tasks": [], "severe": []}'
)


def test_forged_events_on_stdout_and_on_every_fd_are_only_output(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    # Step 0 prints a forged step end and runner end, and writes one (without the run's
    # nonce) to every descriptor it has, the event pipe included; then it goes on working.
    forge = (
        "import os, sys, time\n"
        f"forged = {FORGED_END!r}\n"
        "print(forged, flush=True)\n"
        f'print({MARKER!r} + \'{{"event": "runner_end"}}\', flush=True)\n'
        "print(forged, file=sys.stderr, flush=True)\n"
        "for fd in os.listdir('/proc/self/fd'):\n"
        "    try:\n"
        "        os.write(int(fd), (forged + '\\n').encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "time.sleep(2)\n"
        "open('after-forgery.txt', 'w').write('still working')"
    )
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps(forge, "print('step 1 ran', flush=True)"))

    run = wait_terminal(runs.run_create(version=version, steps=[], by=reducer.user))

    assert run.status == Run.Status.SUCCEEDED, run.error
    assert list(run.steps.values_list("status", flat=True)) == [RunStep.Status.SUCCEEDED] * 2
    folder = Path(run.folder)
    assert (folder / "after-forgery.txt").read_text() == "still working"
    output = (folder / run.output_log_name).read_text()
    assert output.count('"error": "forged"') >= 3  # kept as output, not obeyed
    assert "step 1 ran" in output
    assert processes_in(folder) == []


def test_forged_products_and_out_of_place_events_on_the_real_channel_are_refused(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    # The script runs in the runner's interpreter, so it can reach the real event channel;
    # the worker still checks every path and every event against the run.
    body = (
        "import os\n"
        "from calibration.incasa.events import emit\n"
        "items = [{'relpath': p, 'kind': 'txt', 'viscal': '', 'size': 1}\n"
        "         for p in ('../../../../etc/passwd', '/etc/shadow', 'sub/../../x')]\n"
        "emit('products', step=0, items=items)\n"
        "emit('step_start', step=1, title='forged')\n"
        "emit('runner_end')\n"
        "os.symlink('/etc/passwd', 'passwd-link')\n"
        "open('fine.txt', 'w').write('a real product')"
    )
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps(body, "print('step 1', flush=True)"))

    run = wait_terminal(runs.run_create(version=version, steps=[], by=reducer.user))

    assert run.status == Run.Status.SUCCEEDED, run.error
    relpaths = set(run.products.values_list("relpath", flat=True))
    assert "fine.txt" in relpaths
    assert not {p for p in relpaths if ".." in p or p.startswith("/") or "passwd" in p}, relpaths
    step0 = run.steps.get(number=0)
    warnings = "\n".join(step0.warnings)
    assert "../../../../etc/passwd" in warnings and "/etc/shadow" in warnings
    assert "'passwd-link' goes through a symbolic link" in warnings
    assert "step 1 cannot start now" in warnings and "cannot end while step 0 runs" in warnings
    assert run.steps.get(number=1).status == RunStep.Status.SUCCEEDED
    assert not Product.objects.filter(relpath__contains="..").exists()


def test_links_planted_for_the_next_runs_files_do_not_make_the_worker_write_outside(
    celery_worker_process, make_eb, ngc5921_ms, reducer, tmp_path
):
    victim = tmp_path / "victim.txt"  # outside the run folder, writable by the (root) worker
    victim.write_text("precious")
    eb = make_eb(ngc5921_ms)
    plant = (
        "import glob, os, re\n"
        "logs = glob.glob('run*.output.txt')\n"
        "last = max(int(re.search(r'run(\\d+)\\.output', p).group(1)) for p in logs)\n"
        "for n in range(last + 1, last + 4):\n"
        f"    os.symlink({str(victim)!r}, f'run{{n}}.output.txt')\n"
        f"os.remove({eb.ms_name + '.scriptForCalibration.py'!r})\n"
        f"os.symlink({str(victim)!r}, {eb.ms_name + '.scriptForCalibration.py'!r})\n"
        "open('precious.ms', 'w').write('table data')\n"
        "os.link('precious.ms', f'run{last + 4}.output.txt')"
    )
    version = script_version(eb, alma_steps(plant, "print('next run', flush=True)"))
    planter = wait_terminal(runs.run_create(version=version, steps=[0], by=reducer.user))
    assert planter.status == Run.Status.SUCCEEDED, planter.error
    folder = Path(planter.folder)
    assert (folder / f"run{planter.pk + 1}.output.txt").is_symlink()

    later = [wait_terminal(runs.run_create(version=version, steps=[1], by=reducer.user)) for _ in range(4)]

    assert victim.read_text() == "precious"
    assert (folder / "precious.ms").read_text() == "table data"
    for run in later:
        assert run.status == Run.Status.SUCCEEDED, run.error
        log = folder / run.output_log_name
        assert stat.S_ISREG(os.lstat(log).st_mode) and os.lstat(log).st_nlink == 1
        assert f"=== run {run.pk} attempt 1 started" in log.read_text()
    script_copy = folder / f"{eb.ms_name}.scriptForCalibration.py"
    assert not script_copy.is_symlink() and script_copy.read_text() == version.text()


def test_the_reapers_failed_stands_and_the_next_run_waits_for_the_folder(
    dedicated_worker, make_eb, ngc5921_ms, reducer, settings
):
    """Run A's heartbeat is declared lost while its CASA still works; run B, in the same
    folder, starts on a second worker. A stays FAILED (its worker reports late), and B's
    step starts only after A's CASA process is gone: the folder lock outlives the process."""
    settings.CASA_QUEUE = f"casa-overlap-{os.getpid()}-{time.monotonic_ns()}"
    dedicated_worker(settings.CASA_QUEUE)
    dedicated_worker(settings.CASA_QUEUE)
    eb = make_eb(ngc5921_ms)
    ticking = (
        "import time\nwhile True:\n"
        "    open('a-ticks.txt', 'a').write(f'{time.time()}\\n')\n    time.sleep(0.1)"
    )
    first = "import time\nopen('b-start.txt', 'w').write(str(time.time()))"
    a = runs.run_create(version=script_version(eb, alma_steps(ticking, first)), steps=[0], by=reducer.user)
    wait_for(a, lambda r: r.steps.filter(status=RunStep.Status.RUNNING).exists(), 90, "A's step")
    folder = Path(a.folder)
    time.sleep(1)

    Run.objects.filter(pk=a.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    assert runs.reap_stale_runs() == [a.pk]
    assert processes_in(folder), "A's CASA process is still at work"
    b = runs.run_create(version=a.script_version, steps=[1], by=reducer.user)
    b = wait_terminal(b, timeout=180)

    a.refresh_from_db()
    assert a.status == Run.Status.FAILED and a.error.startswith("worker lost"), a.error
    assert b.status == Run.Status.SUCCEEDED, b.error
    last_tick = float((folder / "a-ticks.txt").read_text().split()[-1])
    b_started = float((folder / "b-start.txt").read_text())
    assert last_tick < b_started, "B's step ran while A's CASA still worked in the folder"
    assert processes_in(folder) == []


def test_the_reaper_runs_on_default_while_every_casa_slot_is_busy(
    dedicated_worker, make_eb, ngc5921_ms, reducer, settings, tmp_path
):
    from calibration.tasks import reap_stale_runs

    settings.CASA_QUEUE = f"casa-busy-{os.getpid()}-{time.monotonic_ns()}"
    dedicated_worker(settings.CASA_QUEUE)  # the only casa slot ...
    eb = make_eb(ngc5921_ms)
    busy = runs.run_create(
        version=script_version(eb, alma_steps("import time\ntime.sleep(600)")), steps=[], by=reducer.user
    )
    wait_for(busy, lambda r: r.steps.filter(status=RunStep.Status.RUNNING).exists(), 90, "the busy step")
    stale = Run.objects.create(
        mous=eb.mous,
        folder=str(tmp_path / "elsewhere"),
        status=Run.Status.RUNNING,
        heartbeat_at=timezone.now() - timezone.timedelta(hours=1),
    )
    default_worker = dedicated_worker("default")  # ... and a worker that only serves `default`

    result = reap_stale_runs.delay()  # routed by the settings, as celery beat sends it

    assert stale.pk in result.get(timeout=60)
    stale.refresh_from_db()
    assert stale.status == Run.Status.FAILED and stale.error.startswith("worker lost")
    busy.refresh_from_db()
    assert busy.status == Run.Status.RUNNING  # its heartbeat is fresh
    assert default_worker.proc.poll() is None
    runs.run_cancel(run=busy, by=reducer.user)
    assert wait_terminal(busy, timeout=30).status == Run.Status.CANCELLED


def test_a_whole_run_over_its_own_limit_times_out_though_no_step_does(
    worker_environment, dedicated_worker, make_eb, ngc5921_ms, reducer, settings, tmp_path
):
    # dedicated_worker: for the data root that workers share (this worker has its own setting).
    from tests.conftest import _start_worker, _wait_for_worker, stop_worker

    settings.CASA_QUEUE = f"casa-runlimit-{os.getpid()}-{time.monotonic_ns()}"
    name = f"runlimit-{os.getpid()}@localhost"
    log = tmp_path / "worker.log"
    env = {**worker_environment, "CASA_RUN_WALLCLOCK_LIMIT": "8"}
    proc = _start_worker(env, log, name, queues=settings.CASA_QUEUE)
    try:
        _wait_for_worker(name, proc, log)
        eb = make_eb(ngc5921_ms)
        nap = "import time\ntime.sleep(3)"
        version = script_version(eb, alma_steps(nap, nap, nap, nap, nap))

        run = wait_terminal(runs.run_create(version=version, steps=[], by=reducer.user), timeout=120)

        assert run.status == Run.Status.TIMED_OUT, run.error
        assert run.error == "the run exceeded its 8 s limit"
        statuses = list(run.steps.values_list("status", flat=True))
        assert RunStep.Status.TIMED_OUT in statuses and statuses[-1] == RunStep.Status.NOT_RUN
        assert processes_in(Path(run.folder)) == []
    finally:
        stop_worker(proc)


def test_a_crash_in_the_follower_still_kills_the_casa_process_group(
    make_eb, ngc5921_ms, reducer, monkeypatch
):
    """Every exit path of the follower ends CASA: here the worker itself fails mid-step."""
    from calibration import engine

    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps("import time\ntime.sleep(600)"))
    run = Run.objects.create(
        script_version=version,
        mous=eb.mous,
        execution_block=eb,
        status=Run.Status.RUNNING,
        folder=str(runs.run_folder_for(version)),
        attempts=1,
    )
    RunStep.objects.create(run=run, number=0, title="step 0")
    folder = run.folder_path
    seen: list[list[int]] = []
    original = engine._apply

    def failing_apply(event, f, timeout):
        original(event, f, timeout)
        if event["event"] == "step_start":
            time.sleep(1)
            seen.append(processes_in(folder))
            raise RuntimeError("the worker broke")

    # A RuntimeError is not an event problem: it leaves the follower like any worker fault.
    monkeypatch.setattr(engine, "_apply", failing_apply)
    with pytest.raises(RuntimeError, match="the worker broke"), engine.folder_lock(run):
        engine.execute(run, version.verify(), version.script.filename)

    assert seen and seen[0], "CASA was running when the follower failed"
    assert processes_in(folder) == []
