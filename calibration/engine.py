"""The worker side of a run: start CASA on the script, follow its events, record everything.

One CASA subprocess per run (calibration.casa starts it, calibration.incasa.runner runs
inside it). This loop is the only writer of a RUNNING run's steps: it records step start /
end / products, heartbeats, honours cancel, enforces the per-step wall-clock limit, and
always ends the run in a recorded state.
"""

import json
import logging
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from calibration import casa
from calibration.incasa.events import MARKER
from calibration.models import Product, Run, RunStep

log = logging.getLogger(__name__)

RUNNER_CODE = "import sys\nfrom calibration.incasa.runner import main\nsys.exit(main(sys.argv[1]))\n"
TAIL_LINES = 200
POLL_SECONDS = 1.0


@dataclass
class Outcome:
    status: str
    error: str = ""
    exit_signal: int | None = None


@dataclass
class Follower:
    """State of one run while its CASA process is alive."""

    run: Run
    steps: dict[int, RunStep]
    output: object  # the open output file
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    current: RunStep | None = None
    step_deadline: float = 0.0
    failed: RunStep | None = None
    finished_cleanly: bool = False


def execute(run: Run, script_bytes: bytes, script_name: str) -> Outcome:
    """Run the selected steps of `run` in its folder; returns how it ended (nothing raised)."""
    folder = run.folder_path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / script_name).write_bytes(script_bytes)
    spec_name = f"run{run.pk}.spec.json"
    steps = list(run.steps.order_by("pk"))
    spec = {
        "script": script_name,
        "steps": [[s.number, s.title] for s in steps],
        "casa_log": run.casa_log_name,
        "exclude": [script_name, spec_name, run.output_log_name],
        "diagnostics_dir": f"qa2portal-diagnostics/run{run.pk}",
    }
    (folder / spec_name).write_text(json.dumps(spec))
    with (folder / run.output_log_name).open("a", encoding="utf-8") as output:
        output.write(f"=== run {run.pk} attempt {run.attempts} started {timezone.now():%Y-%m-%d %H:%M:%S}Z\n")
        follower = Follower(run=run, steps={s.number: s for s in steps}, output=output)
        proc = casa.start_casa(
            RUNNER_CODE, cwd=folder, args=[spec_name], stderr=subprocess.STDOUT, sandbox=True
        )
        outcome = _follow(proc, follower)
    _record_log_product(run)
    return outcome


def _reader(stream, lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _follow(proc: subprocess.Popen, f: Follower) -> Outcome:
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    timeout = f.run.effective_step_timeout()
    next_heartbeat = next_cancel_check = 0.0
    eof = False
    while not eof:
        try:
            line = lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            line = ""
        if line is None:
            eof = True
        elif line:
            _handle_line(line, f, timeout)
        now = time.monotonic()
        if now >= next_heartbeat:
            Run.objects.filter(pk=f.run.pk).update(heartbeat_at=timezone.now())
            next_heartbeat = now + settings.RUN_HEARTBEAT_SECONDS
        if now >= next_cancel_check:
            next_cancel_check = now + POLL_SECONDS
            if Run.objects.filter(pk=f.run.pk, cancel_requested=True).exists():
                casa.kill_group(proc)
                return _finish_steps(f, Outcome(Run.Status.CANCELLED, "cancelled by the user"))
        if f.current is not None and now > f.step_deadline:
            casa.kill_group(proc)
            return _finish_steps(
                f, Outcome(Run.Status.TIMED_OUT, f"step {f.current.number} exceeded its {timeout} s limit")
            )
    proc.wait()
    return _finish_steps(f, _exit_outcome(proc.returncode, f))


def _exit_outcome(returncode: int, f: Follower) -> Outcome:
    if f.failed is not None:
        return Outcome(Run.Status.FAILED, f"step {f.failed.number} failed: {f.failed.error.splitlines()[0]}")
    killed_by = _signal_of(returncode)
    if killed_by is not None:
        name = signal.Signals(killed_by).name
        where = f"in step {f.current.number}" if f.current else "outside any step"
        return Outcome(Run.Status.FAILED, f"CASA crashed {where}: killed by {name}", exit_signal=killed_by)
    if returncode != 0 or not f.finished_cleanly:
        tail = " | ".join(list(f.tail)[-3:])
        return Outcome(Run.Status.FAILED, f"CASA exited with code {returncode} before finishing: {tail}")
    return Outcome(Run.Status.SUCCEEDED)


def _signal_of(returncode: int) -> int | None:
    """The signal that ended CASA: Popen says -N; under bubblewrap the wrapper exits with 128+N."""
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + signal.NSIG and (returncode - 128) in signal.valid_signals():
        return returncode - 128
    return None


def _handle_line(line: str, f: Follower, timeout: int) -> None:
    if not line.startswith(MARKER):
        f.output.write(line)
        f.output.flush()
        f.tail.append(line.rstrip("\n"))
        return
    event = json.loads(line[len(MARKER) :])
    kind = event["event"]
    if kind == "step_start":
        step = f.steps[event["step"]]
        step.status, step.started_at = RunStep.Status.RUNNING, timezone.now()
        step.save(update_fields=["status", "started_at"])
        f.current, f.step_deadline = step, time.monotonic() + timeout
        f.tail.clear()
        f.output.write(f"=== step {step.number}: {step.title}\n")
    elif kind == "step_end":
        step = f.steps[event["step"]]
        step.status = RunStep.Status.SUCCEEDED if event["ok"] else RunStep.Status.FAILED
        step.finished_at = timezone.now()
        step.error = "\n".join(filter(None, [event["error"], event["traceback"]]))
        step.skipped_helpers = event["skipped_helpers"]
        step.casa_tasks = event["casa_tasks"]
        step.severe_messages = event["severe"]
        step.output_tail = "\n".join(f.tail)
        step.save()
        if not event["ok"]:
            f.failed = step
        f.current = None
    elif kind == "products":
        _record_products(f.run, f.steps[event["step"]], event["items"])
    elif kind == "diagnostics":
        from reports.services import diagnostics_record

        diagnostics_record(run=f.run, step=f.steps[event["step"]], items=event["items"])
    elif kind == "runner_end":
        f.finished_cleanly = True


def _finish_steps(f: Follower, outcome: Outcome) -> Outcome:
    """Close the books on every step that did not end by itself."""
    if f.current is not None:
        f.current.status = {
            Run.Status.CANCELLED: RunStep.Status.CANCELLED,
            Run.Status.TIMED_OUT: RunStep.Status.TIMED_OUT,
        }.get(outcome.status, RunStep.Status.FAILED)
        f.current.finished_at = timezone.now()
        f.current.error = f.current.error or outcome.error
        f.current.output_tail = "\n".join(f.tail)
        f.current.save(update_fields=["status", "finished_at", "error", "output_tail"])
    f.run.steps.filter(status=RunStep.Status.PENDING).update(status=RunStep.Status.NOT_RUN)
    f.output.write(f"=== run {f.run.pk} ended: {outcome.status} {outcome.error}\n")
    return outcome


def _record_products(run: Run, step: RunStep | None, items: list[dict]) -> None:
    for item in items:
        Product.objects.update_or_create(
            run=run,
            relpath=item["relpath"],
            defaults={
                "step": step,
                "kind": item["kind"],
                "viscal": item["viscal"],
                "size": item["size"],
                "execution_block": run.execution_block,
                "mous": run.mous,
            },
        )


def _record_log_product(run: Run) -> None:
    """The run's CASA log and its captured output are products of the run (no step)."""
    logs = [Path(run.folder) / name for name in (run.casa_log_name, run.output_log_name)]
    items = [
        {"relpath": path.name, "kind": Product.Kind.LOG, "viscal": "", "size": path.stat().st_size}
        for path in logs
        if path.exists()
    ]
    _record_products(run, None, items)
