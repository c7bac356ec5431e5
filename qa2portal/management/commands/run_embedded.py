"""`make run`: set up the embedded mode and run the web server and a Celery worker together."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from assignments.services import ensure_demo_accounts
from calibration import casa


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
        self._serve(host, port, concurrency)

    def _serve(self, host: str, port: int, concurrency: int) -> None:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "qa2portal",
                "worker",
                "--loglevel",
                "INFO",
                "-Q",
                ",".join(settings.WORKER_QUEUES),
                "-c",
                str(concurrency),
                "-n",
                "embedded@%h",
                # An embedded beat schedules the run reaper and the JIRA outbox sweep.
                "-B",
                "-s",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
            cwd=settings.BASE_DIR,
        )
        web = subprocess.Popen(web_command(host, port, settings.VAR_DIR), cwd=settings.BASE_DIR)
        children = [worker, web]
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(self.style.SUCCESS(f"qa2portal is up: http://{host}:{port}/  (Ctrl-C stops it)"))
        self.stdout.flush()
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 40
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if not stopping:
            raise CommandError("the web server or the worker exited; see the output above")
        self.stdout.write("stopped")


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
