"""The embedded mode (`make run`) end to end: the one place the suite uses SQLite."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.casa, pytest.mark.worker]


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DATA_ROOT"}}
    env.update(QA2_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run_embedded exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def test_run_command_serves_login_and_worker_answers_through_filesystem_broker(tmp_path, free_port):
    var_dir = tmp_path / "var"
    log = tmp_path / "run.log"
    env = embedded_env(var_dir)
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_embedded",
            "--port",
            str(free_port),
            "--concurrency",
            "1",
            "--skip-demo-data",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: "qa2portal is up" in log.read_text(), 180, "the up message", proc, log)

        def login_page_served() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{free_port}/login/", timeout=2) as r:
                    return r.status == 200 and b"Sign in" in r.read()
            except OSError:
                return False

        wait_for(login_page_served, 60, "the login page", proc, log)
        output = log.read_text()
        assert "drm / drm-demo-2026" in output, "the demo logins are printed"
        assert "CASA 6.7.0" in output
        assert (var_dir / "qa2portal.sqlite3").is_file(), "embedded database is SQLite under var/"

        # A ping task through the filesystem broker to the embedded worker and back.
        ping = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup()\n"
                "from django.conf import settings\n"
                "from qa2portal.celery import ping\n"
                "assert settings.CELERY_BROKER_URL.startswith('filesystem://'), settings.CELERY_BROKER_URL\n"
                "print('REPLY', ping.delay('through-the-filesystem').get(timeout=60))",
            ],
            cwd=REPO,
            env={**env, "DJANGO_SETTINGS_MODULE": "qa2portal.settings"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "REPLY through-the-filesystem" in ping.stdout, ping.stderr[-3000:]
        assert list((var_dir / "broker").iterdir()), "messages went through var/broker"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("Ctrl-C did not stop run_embedded within 60 s")
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "stopped" in log.read_text()
    leftovers = subprocess.run(["pgrep", "-f", f"127.0.0.1:{free_port}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "the web server outlived Ctrl-C"
    # CASA was started (casa_check) but wrote no casa-*.log outside var/.
    assert not list(REPO.glob("casa-*.log"))
    assert not [p for p in tmp_path.rglob("casa-*.log")]
