"""The worker side of a run: start CASA on the script, follow its events, record everything.

One CASA subprocess per run (calibration.casa starts it, calibration.incasa.runner runs
inside it). This loop is the only writer of a RUNNING run's steps: it records step start /
end / products, heartbeats, honours cancel, enforces the per-step and whole-run wall-clock
limits, and always ends with the CASA process group dead.

The script is semi-trusted code in the same interpreter as the runner, so nothing the CASA
process says is taken on trust:
- events come on a pipe of their own with the run's nonce (calibration.incasa.events);
  anything else, or an event that does not parse or fit, is output;
- the run ends only when its process has ended (or been killed here), whatever events say;
  the time limits do not depend on events (the whole-run limit counts from the start);
- product and artifact paths are checked against the folder (relative, no `..`, no link);
- the worker's own files in the folder are written without following links (workerfiles);
- one run per folder: folder_lock() is held by the worker while the process lives.
"""

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import select
import signal
import stat
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TextIO

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from calibration import casa, scriptparse, workerfiles
from calibration.incasa.events import MARKER
from calibration.models import ImagingData, Product, Run, RunStep
from calibration.signals import step_diagnostics

log = logging.getLogger(__name__)

# In CASA: the runner reads the worker's request on stdin (`python -m calibration.incasa.runner`).
RUNNER_MODULE = "calibration.incasa.runner"
TAIL_LINES = 200
POLL_SECONDS = 1.0
# After CASA exits, how long leftovers holding its pipes may keep them open (then: killed).
EXIT_DRAIN_SECONDS = 2.0
# After its last step (or a failed one) CASA must exit: what a script left running (a fork,
# a thread that never ends) is stopped this long after, not waited for until the step limit.
EXIT_GRACE_SECONDS = 15.0
# Reads of CASA's output (64 KiB each) before the event pipe gets its turn.
OUTPUT_READS_PER_EVENT_READ = 16
# A line longer than this is cut into output lines (an event is never that long).
LINE_MAX = 16 * 1024 * 1024
# How long a run waits for its folder while another run's CASA process still works there.
FOLDER_LOCK_WAIT_SECONDS = 60.0
EVENT_KINDS = frozenset({"runner_start", "step_start", "step_end", "products", "diagnostics", "runner_end"})
IMAGING_DATA_TOPIC = "imaging_data"
PRODUCT_KINDS = frozenset(Product.Kind.values)


class FolderBusy(RuntimeError):
    """Another run's CASA process still works in the folder."""


class BadEvent(ValueError):
    """An event line that parses but does not fit the run (unknown step, wrong types, ...)."""


@dataclass
class RunOutcome:
    status: str
    error: str = ""
    exit_signal: int | None = None
    # The run was ended elsewhere (the reaper) while CASA ran: nothing more is recorded.
    superseded: bool = False


@dataclass
class Follower:
    """State of one run while its CASA process is alive."""

    run: Run
    steps: dict[int, RunStep]
    output: TextIO
    nonce: str = ""
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    current: RunStep | None = None
    step_deadline: float = 0.0
    failed: RunStep | None = None
    finished_cleanly: bool = False
    done_at: float | None = None  # when the last step ended or one failed
    lingered: bool = False  # CASA had to be stopped after its work was done


# --- one run per folder ------------------------------------------------------------------
def folder_lock_path(folder: Path) -> Path:
    """Under VAR_DIR/locks: worker-owned, outside every run folder and never in the sandbox."""
    digest = hashlib.sha256(os.path.realpath(folder).encode()).hexdigest()[:32]
    return Path(settings.VAR_DIR) / "locks" / f"folder-{digest}.lock"


@contextmanager
def folder_lock(run: Run, wait: float = FOLDER_LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the run folder's lock (flock) for the block; the caller kills CASA inside it.

    The lock belongs to the worker process (the fd is not inherited by CASA, so no script can
    unlock it); if the worker dies, the kernel releases it and bubblewrap kills CASA.
    """
    path = folder_lock_path(run.folder_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
                    raise FolderBusy(
                        f"{run.folder_path.name} is still in use by {holder} (its CASA process has "
                        f"not ended after {wait:.0f} s): this run did not start"
                    ) from None
                Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(heartbeat_at=timezone.now())
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"run {run.pk} (worker pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# --- start and follow --------------------------------------------------------------------
def execute(run: Run, script_bytes: bytes, script_name: str) -> RunOutcome:
    """Run the selected steps of `run` in its folder; returns how it ended (nothing raised).

    Call it holding folder_lock(run): the CASA process group is dead when this returns.
    """
    folder = run.folder_path
    folder.mkdir(parents=True, exist_ok=True)
    # The reducer's copy of what runs; the runner gets the text on stdin, never from here.
    workerfiles.write_bytes(folder, script_name, script_bytes)
    steps = list(run.steps.order_by("pk"))
    nonce = secrets.token_hex(16)
    request: dict[str, object] = {
        # Python 3's reading of it: no byte-order mark, Python 2's tabs expanded (same lines).
        "script": scriptparse.normalise_source(script_bytes.decode("utf-8"))[0],
        "spec": {
            "script": script_name,
            "steps": [[s.number, s.title] for s in steps],
            "casa_log": run.casa_log_name,
            "exclude": [script_name, run.output_log_name],
            "diagnostics_dir": f"qa2portal-diagnostics/run{run.pk}",
            "after_step": settings.CASA_AFTER_STEP_HOOK,
        },
        "nonce": nonce,
    }
    proc: subprocess.Popen | None = None
    with workerfiles.open_text(folder, run.output_log_name) as output:
        output.write(f"=== run {run.pk} attempt {run.attempts} started {timezone.now():%Y-%m-%d %H:%M:%S}Z\n")
        output.flush()
        follower = Follower(run=run, steps={s.number: s for s in steps}, output=output, nonce=nonce)
        read_fd, write_fd = os.pipe()  # the events' own pipe; CASA gets the write end only
        request["event_fd"] = write_fd
        try:
            proc = casa.start_casa(
                RUNNER_MODULE,
                cwd=folder,
                stdin=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                sandbox=True,
                pass_fds=[write_fd],
            )
            os.close(write_fd)
            write_fd = -1
            threading.Thread(target=_send, args=(proc.stdin, json.dumps(request)), daemon=True).start()
            outcome = _follow(proc, follower, read_fd)
        finally:
            if proc is not None:
                _kill_everything(proc)
            if write_fd >= 0:
                os.close(write_fd)
            os.close(read_fd)
    _record_log_product(run)
    return outcome


def _send(stdin, text: str) -> None:
    """The request, in a thread: a runner that never reads it cannot block the worker."""
    try:
        stdin.write(text)
        stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # CASA ended first: its exit is reported by the follower


def _kill_everything(proc: subprocess.Popen) -> None:
    """Whatever path we leave by: no process of the run outlives the follower.

    Under bubblewrap, CASA has a session of its own inside the sandbox (out of reach of
    killpg) and dies with the sandbox a moment after it; its processes are therefore also
    killed one by one, and waited for, so the folder lock is released only when they are gone.
    """
    family = _descendants(proc.pid)
    if proc.poll() is None:
        casa.kill_group(proc)
    for pid in family:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers that outlived their leader
    try:
        proc.wait(timeout=casa.KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        log.error("run CASA process %s did not die after SIGKILL", proc.pid)
    deadline = time.monotonic() + casa.KILL_GRACE_SECONDS
    while any(map(_alive, family)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.stdout is not None:
        proc.stdout.close()


def _parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and ')'
    return int(fields[1]), fields[0]


def _alive(pid: int) -> bool:
    found = _parent_and_state(pid)
    return found is not None and found[1] not in ("Z", "X")


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (children of the sandbox included)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (found := _parent_and_state(int(entry.name))) is not None:
            children.setdefault(found[0], []).append(int(entry.name))
    family, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            family.append(child)
            todo.append(child)
    return family


class _Lines:
    """Bytes from one pipe, cut into text lines."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[str]:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        out = [line.decode("utf-8", errors="replace") + "\n" for line in lines]
        if len(self.buffer) > LINE_MAX:
            out.append(self.buffer.decode("utf-8", errors="replace") + "\n")
            self.buffer = b""
        return out

    def rest(self) -> list[str]:
        rest, self.buffer = self.buffer, b""
        return [rest.decode("utf-8", errors="replace") + "\n"] if rest else []


def _follow(proc: subprocess.Popen, f: Follower, events_fd: int) -> RunOutcome:
    assert proc.stdout is not None, "execute() starts CASA with its stdout piped"
    out_fd = proc.stdout.fileno()
    pipes = {out_fd: _Lines(), events_fd: _Lines()}
    step_timeout = f.run.effective_step_timeout()
    run_limit = settings.CASA_RUN_WALLCLOCK_LIMIT
    run_deadline = time.monotonic() + run_limit
    next_heartbeat = next_cancel_check = 0.0
    exited_at: float | None = None
    while True:
        if pipes:
            ready, _, _ = select.select(list(pipes), [], [], POLL_SECONDS)
            # Output first (what a step printed before its event belongs to that step), in a
            # bounded amount, so output that never pauses cannot hold the events back.
            for _ in range(OUTPUT_READS_PER_EVENT_READ):
                if out_fd not in ready or not _read(pipes, out_fd, lambda line: _output(f, line)):
                    break
                ready = select.select([out_fd], [], [], 0)[0]
            if events_fd in pipes and events_fd in select.select([events_fd], [], [], 0)[0]:
                _read(pipes, events_fd, lambda line: _handle_event_line(line, f, step_timeout))
        else:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=POLL_SECONDS)
        now = time.monotonic()
        if f.done_at is not None and proc.poll() is None and now - f.done_at > EXIT_GRACE_SECONDS:
            f.output.write(f"=== CASA did not exit {EXIT_GRACE_SECONDS:g} s after its last step: stopped\n")
            f.lingered = True
            casa.kill_group(proc)
            break
        if proc.poll() is not None:
            exited_at = exited_at or now
            if not pipes or now - exited_at > EXIT_DRAIN_SECONDS:
                break
        if now >= next_heartbeat:
            next_heartbeat = now + settings.RUN_HEARTBEAT_SECONDS
            alive = Run.objects.filter(pk=f.run.pk, status=Run.Status.RUNNING).update(
                heartbeat_at=timezone.now()
            )
            if not alive:
                casa.kill_group(proc)
                f.output.write(f"=== run {f.run.pk} was ended elsewhere while CASA ran: CASA stopped\n")
                return RunOutcome(Run.Status.FAILED, "ended elsewhere while CASA ran", superseded=True)
        if now >= next_cancel_check:
            next_cancel_check = now + POLL_SECONDS
            if Run.objects.filter(pk=f.run.pk, cancel_requested=True).exists():
                casa.kill_group(proc)
                return _finish_steps(f, RunOutcome(Run.Status.CANCELLED, "cancelled by the user"))
        if f.current is not None and now > f.step_deadline:
            casa.kill_group(proc)
            return _finish_steps(
                f,
                RunOutcome(
                    Run.Status.TIMED_OUT, f"step {f.current.number} exceeded its {step_timeout} s limit"
                ),
            )
        if now > run_deadline:
            casa.kill_group(proc)
            return _finish_steps(
                f, RunOutcome(Run.Status.TIMED_OUT, f"the run exceeded its {run_limit} s limit")
            )
    proc.wait()
    return _finish_steps(f, _exit_outcome(proc.returncode, f))


def _read(pipes: dict[int, "_Lines"], fd: int, handle) -> bool:
    """One read of `fd`, each whole line to `handle`; False at the end of the pipe."""
    data = os.read(fd, 1 << 16)
    for line in pipes[fd].feed(data) if data else pipes.pop(fd).rest():
        handle(line)
    return bool(data)


def _exit_outcome(returncode: int, f: Follower) -> RunOutcome:
    if f.failed is not None:
        first = (f.failed.error.splitlines() or ["(no message)"])[0]
        return RunOutcome(Run.Status.FAILED, f"step {f.failed.number} failed: {first}")
    killed_by = None if f.lingered else _signal_of(returncode)
    if killed_by is not None:
        name = signal.Signals(killed_by).name
        where = f"in step {f.current.number}" if f.current else "outside any step"
        return RunOutcome(Run.Status.FAILED, f"CASA crashed {where}: killed by {name}", exit_signal=killed_by)
    if (returncode != 0 and not f.lingered) or not f.finished_cleanly or f.current is not None:
        tail = " | ".join(list(f.tail)[-3:])
        return RunOutcome(Run.Status.FAILED, f"CASA exited with code {returncode} before finishing: {tail}")
    not_run = [n for n, s in f.steps.items() if s.status == RunStep.Status.PENDING]
    if not_run:
        return RunOutcome(Run.Status.FAILED, f"CASA ended without running step(s) {not_run}")
    return RunOutcome(Run.Status.SUCCEEDED)


def _signal_of(returncode: int) -> int | None:
    """The signal that ended CASA: Popen says -N; under bubblewrap the wrapper exits with 128+N."""
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + signal.NSIG and (returncode - 128) in signal.valid_signals():
        return returncode - 128
    return None


# --- events ------------------------------------------------------------------------------
def _output(f: Follower, line: str) -> None:
    f.output.write(line)
    f.output.flush()
    f.tail.append(line.rstrip("\n"))


def parse_event(line: str, nonce: str) -> dict | None:
    """The event on `line`, or None when it is not one of ours (then it is output)."""
    if not line.startswith(MARKER):
        return None
    try:
        event = json.loads(line[len(MARKER) :])
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") not in EVENT_KINDS:
        return None
    given = event.pop("nonce", None)
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
        return None
    return event


def _handle_event_line(line: str, f: Follower, timeout: int) -> None:
    event = parse_event(line, f.nonce)
    if event is None:
        _output(f, line)
        return
    try:
        with transaction.atomic():
            _apply(event, f, timeout)
    except (BadEvent, DatabaseError, KeyError, TypeError, ValueError, AttributeError) as exc:
        # A malformed or out-of-place event is shown, never obeyed and never a crash.
        log.warning("run %s: event refused (%s): %.200s", f.run.pk, exc, line)
        _output(f, line)
        _warn(f, f.current, f"event refused ({exc})")


def _step(f: Follower, event: dict) -> RunStep:
    number = event.get("step")
    if type(number) is not int or number not in f.steps:
        raise BadEvent(f"no step {number!r} in this run")
    return f.steps[number]


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise BadEvent(f"{name} is not text")
    return value


def _texts(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadEvent(f"{name} is not a list of text")
    return value


def _apply(event: dict, f: Follower, timeout: int) -> None:
    kind = event["event"]
    if kind == "step_start":
        step = _step(f, event)
        if f.current is not None or step.status != RunStep.Status.PENDING:
            raise BadEvent(f"step {step.number} cannot start now")
        step.status, step.started_at = RunStep.Status.RUNNING, timezone.now()
        step.save(update_fields=["status", "started_at"])
        f.current, f.step_deadline = step, time.monotonic() + timeout
        f.tail.clear()
        f.output.write(f"=== step {step.number}: {step.title}\n")
    elif kind == "step_end":
        step = _step(f, event)
        if step is not f.current:
            raise BadEvent(f"step {step.number} is not the running step")
        ok = event["ok"]
        if not isinstance(ok, bool):
            raise BadEvent("ok is not true/false")
        step.error = "\n".join(
            filter(None, [_text(event["error"], "error"), _text(event["traceback"], "traceback")])
        )
        step.skipped_helpers = _texts(event["skipped_helpers"], "skipped_helpers")
        step.casa_tasks = _texts(event["casa_tasks"], "casa_tasks")
        step.severe_messages = _texts(event["severe"], "severe")
        step.status = RunStep.Status.SUCCEEDED if ok else RunStep.Status.FAILED
        step.finished_at = timezone.now()
        step.output_tail = "\n".join(f.tail)
        step.save()
        if not ok:
            f.failed, f.done_at = step, time.monotonic()
        f.current = None
    elif kind == "products":
        step = _step(f, event)
        record_products(f.run, step, event["items"], warn=lambda message: _warn(f, step, message))
    elif kind == "diagnostics":
        step = _step(f, event)
        items = _checked_diagnostics(f.run.folder_path, event["items"], lambda m: _warn(f, step, m))
        # The layout of the MS prepared for imaging is the calibration layer's (the imaging
        # script is generated from it); everything else is the reports layer's.
        for item in items:
            if item.get("topic") == IMAGING_DATA_TOPIC:
                ImagingData.objects.create(
                    mous=f.run.mous, run=f.run, vis=str(item.get("name", ""))[:300], summary=item["summary"]
                )
        others = [item for item in items if item.get("topic") != IMAGING_DATA_TOPIC]
        if others:
            step_diagnostics.send(sender=Run, run=f.run, step=step, items=others)
    elif kind == "runner_end":
        if f.current is not None:
            raise BadEvent(f"the runner cannot end while step {f.current.number} runs")
        f.finished_cleanly = True
        f.done_at = f.done_at or time.monotonic()


def _warn(f: Follower, step: RunStep | None, message: str) -> None:
    f.output.write(f"=== warning: {message}\n")
    f.output.flush()
    if step is not None:
        step.warnings = [*step.warnings, message][-50:]
        RunStep.objects.filter(pk=step.pk).update(warnings=step.warnings)


def _finish_steps(f: Follower, outcome: RunOutcome) -> RunOutcome:
    """Close the books on every step that did not end by itself."""
    if f.current is not None:
        step_status: dict[str, str] = {
            Run.Status.CANCELLED: RunStep.Status.CANCELLED,
            Run.Status.TIMED_OUT: RunStep.Status.TIMED_OUT,
        }
        f.current.status = step_status.get(outcome.status, RunStep.Status.FAILED)
        f.current.finished_at = timezone.now()
        f.current.error = f.current.error or outcome.error
        f.current.output_tail = "\n".join(f.tail)
        f.current.save(update_fields=["status", "finished_at", "error", "output_tail"])
    f.run.steps.filter(status=RunStep.Status.PENDING).update(status=RunStep.Status.NOT_RUN)
    f.output.write(f"=== run {f.run.pk} ended: {outcome.status} {outcome.error}\n")
    return outcome


# --- products ----------------------------------------------------------------------------
def relpath_problem(folder: Path, relpath: object) -> str | None:
    """Why `relpath` is not a product path of `folder` (None: it is one).

    A product is a file or folder inside the run folder, named by a normalised relative path
    with no `..`, and reached without any symbolic link (so it cannot lead out)."""
    if not isinstance(relpath, str) or not relpath or len(relpath) > 500 or "\x00" in relpath:
        return f"{str(relpath)[:80]!r} is not a path"
    pure = PurePosixPath(relpath)
    if pure.is_absolute() or ".." in pure.parts or str(pure) != relpath:
        return f"{relpath!r} is not a plain path inside the run folder"
    here = folder
    for i, part in enumerate(pure.parts):
        here = here / part
        try:
            st = os.lstat(here)
        except OSError:
            return f"{relpath!r} does not exist in the run folder"
        last = i == len(pure.parts) - 1
        if stat.S_ISLNK(st.st_mode):
            return f"{relpath!r} goes through a symbolic link"
        if not (stat.S_ISDIR(st.st_mode) or (last and stat.S_ISREG(st.st_mode))):
            return f"{relpath!r} is not a file or folder"
    return None


def record_products(run: Run, step: RunStep | None, items: object, warn) -> list[Product]:
    """Record the products a step reported; a path outside the folder is refused with a warning."""
    if not isinstance(items, list):
        raise BadEvent("items is not a list")
    recorded = []
    for item in items:
        if not isinstance(item, dict):
            warn("product refused: not an object")
            continue
        problem = relpath_problem(run.folder_path, item.get("relpath"))
        if problem is not None:
            warn(f"product refused: {problem}")
            continue
        kind = item.get("kind") if item.get("kind") in PRODUCT_KINDS else Product.Kind.OTHER
        viscal = item.get("viscal")
        if not isinstance(viscal, str):
            viscal = ""
        size = item.get("size") if type(item.get("size")) is int and item["size"] >= 0 else 0
        product, _ = Product.objects.update_or_create(
            run=run,
            relpath=item["relpath"],
            defaults={
                "step": step,
                "kind": kind,
                "viscal": viscal[:32],
                "size": size,
                "execution_block": run.execution_block,
                "mous": run.mous,
            },
        )
        recorded.append(product)
    return recorded


def _checked_diagnostics(folder: Path, items: object, warn) -> list[dict]:
    """Diagnostics whose artifact and product paths are inside the folder (others dropped)."""
    if not isinstance(items, list):
        raise BadEvent("items is not a list")
    kept = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("summary"), dict):
            warn("diagnostic refused: not an object with a summary")
            continue
        bad = [
            problem
            for key in ("artifact", "product")
            if item.get(key) and (problem := relpath_problem(folder, item[key])) is not None
        ]
        if bad:
            warn(f"diagnostic {str(item.get('name'))[:80]!r} refused: {bad[0]}")
            continue
        kept.append(item)
    return kept


def _record_log_product(run: Run) -> None:
    """The run's CASA log and its captured output are products of the run (no step)."""
    items = []
    for name in (run.casa_log_name, run.output_log_name):
        size = workerfiles.regular_file_size(run.folder_path, name)
        if size is not None:
            items.append({"relpath": name, "kind": Product.Kind.LOG, "viscal": "", "size": size})
    record_products(run, None, items, warn=lambda message: log.warning("run %s: %s", run.pk, message))
