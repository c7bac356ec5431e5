"""`make run`: set up the embedded mode, then run the web server and a Celery worker together.

The command supervises its children: each runs in a process group of its own (so a Ctrl-C
in the terminal reaches only this command, which then stops them in order), a worker that
dies is restarted with a back-off while the web server keeps serving, and on exit every
child's whole group is stopped, so nothing (pool processes, the beat) outlives it. The beat
(run reaper, JIRA sweep) is a child of its own that follows the worker: it stops when the
worker dies and starts again with it, so it never queues work that nothing runs; and like
every child it dies with the supervisor, even on kill -9 (a `worker -B` beat outlived it).
Everything an instance writes is under its QA2_VAR_DIR, and its worker's node name carries
its port: two instances with different PORT and QA2_VAR_DIR share nothing.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from assignments.demo import ensure_demo_accounts
from calibration import casa

# A worker that dies is restarted after 1, 2, 4, ... s, at most this long; the back-off starts
# over once a worker has run for STABLE_SECONDS.
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0
# On exit, how long each child gets to finish (a worker finishes its current task first).
STOP_GRACE_SECONDS = 40.0


class Command(BaseCommand):
    help = "Migrate, create demo accounts, check CASA, then serve the web app and a Celery worker."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))
        parser.add_argument("--skip-demo-data", action="store_true", help="do not build the demo MOUS")

    def handle(self, *args, host: str, port: int, concurrency: int, skip_demo_data: bool, **options) -> None:
        for folder in (settings.VAR_DIR, settings.DATA_ROOT, settings.BROKER_DIR):
            folder.mkdir(parents=True, exist_ok=True)
        call_command("check", databases=["default"])
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write("Demo accounts:")
        for account in ensure_demo_accounts():
            self.stdout.write(f"  {account.role:<8} {account.username} / {account.password}")
        try:
            info = casa.check()
        except casa.CasaUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"CASA {info['casatools']} ready ({info['total_seconds']:.1f} s to start)")
        if not skip_demo_data and "make_demo_data" in _commands():
            call_command("make_demo_data")
        web = Child("web server", web_command(host, port, settings.VAR_DIR), restart=False)
        # The port keeps two instances' node names apart (on a shared broker they would clash).
        worker = Child(
            "worker", worker_command(name=f"embedded-{port}@%h", concurrency=concurrency), restart=True
        )
        beat = Child("beat", beat_command(settings.VAR_DIR), restart=True, follows="worker")
        Supervisor([web, worker, beat], self.say).run(
            f"qa2portal is up: http://{host}:{port}/  (Ctrl-C stops it)"
        )
        self.stdout.write("stopped")

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: bool  # restart when it dies (the worker); otherwise its death stops everything
    follows: str = ""  # the child it stops and restarts with (the beat follows the worker)
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = 1.0
    restart_at: float | None = None

    def start(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=settings.BASE_DIR,
            # Its own process group: killpg() reaches its pool processes and the embedded beat,
            # and the terminal's Ctrl-C reaches only the supervisor.
            start_new_session=True,
            # Should the supervisor itself be killed (kill -9), the kernel kills the child too.
            preexec_fn=casa.die_with_parent,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        return self.proc

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(self, children: list[Child], say) -> None:
        self.children = children
        self.say = say
        self.signals = 0

    def on_signal(self, signum, frame) -> None:
        self.signals += 1  # the first stops gracefully, a second one kills at once

    def run(self, up_message: str) -> None:
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        for child in self.children:
            self.start(child)
        self.say(up_message)
        failed = None
        try:
            while not self.signals and failed is None:
                failed = self.tick()
                time.sleep(0.2)
        finally:
            self.stop_all()
        if failed is not None:
            raise CommandError(f"the {failed.name} exited; see the output above")

    def start(self, child: Child) -> None:
        proc = child.start()
        self.say(f"[run_embedded] {child.name} started: pid {proc.pid}")

    def tick(self) -> Child | None:
        """Notice dead children and restart the ones due; the child that ends the run, if any."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                code, ran = child.proc.returncode, now - child.started_at
                kill_group(child.proc.pid)  # what it left behind, e.g. its pool processes
                child.proc = None
                if not child.restart:
                    self.say(f"[run_embedded] {child.name} exited ({describe(code)}) after {ran:.0f} s")
                    return child
                if ran >= STABLE_SECONDS:
                    child.backoff = 1.0
                child.restart_at = now + child.backoff
                self.say(
                    f"[run_embedded] {child.name} exited ({describe(code)}) after {ran:.0f} s; "
                    f"restarting it in {child.backoff:.0f} s"
                )
                for follower in self.children:
                    if follower.follows == child.name and follower.running():
                        stop(follower, grace=5.0)
                        follower.proc = None
                        # Said once it is true: the follower's whole group is gone.
                        self.say(f"[run_embedded] {follower.name} stopped until the {child.name} is back")
                    if follower.follows == child.name:
                        follower.restart_at = child.restart_at
                child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
            elif child.proc is None and child.restart_at is not None and now >= child.restart_at:
                self.start(child)
        return None

    def stop_all(self) -> None:
        """Stop every child: SIGTERM to its leader (gunicorn and Celery shut their own processes
        down gracefully), a wait, then SIGKILL to its whole group. A second Ctrl-C cuts the wait."""
        started = [(c, c.proc) for c in self.children if c.proc is not None]
        for child, proc in started:
            if child.running():
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child, proc in started:
            stop(child, grace=max(0.0, deadline - time.monotonic()), cut_short=lambda: self.signals >= 2)
            if proc.returncode == -signal.SIGKILL:
                self.say(f"[run_embedded] {child.name} did not stop in time: killed")


def stop(child: Child, grace: float, cut_short=lambda: False) -> None:
    """SIGTERM `child`, give it `grace` seconds, then SIGKILL its whole process group."""
    proc = child.proc
    assert proc is not None, f"stop() of the {child.name}, which was never started"
    if child.running():
        proc.terminate()
    deadline = time.monotonic() + grace
    while child.running() and time.monotonic() < deadline and not cut_short():
        time.sleep(0.1)
    kill_group(proc.pid)
    proc.wait()


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(pgid, signal.SIGKILL)


def describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:  # a real-time signal has no name; the supervisor must not die of it
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"


def worker_command(
    *, name: str, concurrency: int, queues: Sequence[str] = (), loglevel: str = "INFO"
) -> list[str]:
    """The Celery worker's command line (also the one the test suite starts its workers with).

    `queues` defaults to every queue of settings.WORKER_QUEUES.
    """
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "qa2portal",
        "worker",
        "--loglevel",
        loglevel,
        "-Q",
        ",".join(queues or settings.WORKER_QUEUES),
        "-c",
        str(concurrency),
        "-n",
        name,
    ]


def beat_command(var_dir: Path) -> list[str]:
    """Celery beat (run reaper, JIRA sweep) with its schedule under this instance's var/."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "qa2portal",
        "beat",
        "--loglevel",
        "INFO",
        "-s",
        str(var_dir / "celerybeat-schedule"),
    ]


def web_command(host: str, port: int, var_dir: Path) -> list[str]:
    """gunicorn as the embedded mode runs it: 2 processes x 4 threads."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "qa2portal.wsgi",
        "-b",
        f"{host}:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--access-logfile",
        "-",
        *control_socket_options(var_dir),
    ]


def control_socket_options(var_dir: Path) -> list[str]:
    """gunicorn's control socket under this instance's var/ (its default, ~/.gunicorn/gunicorn.ctl,
    is shared by every instance of the user). A unix socket path has at most 107 bytes: with a
    deeper var/ the socket is left off (the embedded mode does not use it)."""
    socket_path = var_dir / "gunicorn.ctl"
    if len(os.fsencode(socket_path)) > 100:
        return ["--no-control-socket"]
    return ["--control-socket", str(socket_path)]


def _commands() -> set[str]:
    from django.core.management import get_commands

    return set(get_commands())
