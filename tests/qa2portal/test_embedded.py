"""The embedded mode (`make run`) end to end: the one place the suite uses SQLite."""

import os
import re
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


def start_embedded(tmp_path: Path, port: int, name: str = "run") -> tuple[subprocess.Popen, Path, Path, dict]:
    """`manage.py run_embedded` on its own QA2_VAR_DIR and port; (process, log, var dir, env)."""
    var_dir = tmp_path / f"{name}-var"
    log = tmp_path / f"{name}.log"
    env = embedded_env(var_dir)
    argv = [sys.executable, "manage.py", "run_embedded", "--port", str(port), "--concurrency", "1"]
    proc = subprocess.Popen(
        [*argv, "--skip-demo-data"], cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    return proc, log, var_dir, env


def serves_login(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as r:
            return r.status == 200 and b"Sign in" in r.read()
    except OSError:
        return False


def started_pids(log: Path, name: str) -> list[int]:
    """Pids of `name` ("worker", "web server") in the order run_embedded started them."""
    return [int(n) for n in re.findall(rf"\[run_embedded\] {name} started: pid (\d+)", log.read_text())]


def all_groups(log: Path) -> list[int]:
    """Every process group run_embedded started (each child leads its own)."""
    return [pid for name in ("web server", "worker", "beat") for pid in started_pids(log, name)]


def group_members(pgid: int) -> list[str]:
    """Live (not zombie) processes of a process group, as "pid args" lines."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
    members = []
    for line in out.splitlines():
        pid, group, stat, args = line.split(None, 3)
        if int(group) == pgid and not stat.startswith("Z"):
            members.append(f"{pid} {args}")
    return members


def ping_worker(env: dict, payload: str) -> subprocess.CompletedProcess:
    """A ping task through this instance's filesystem broker to its worker and back, and the
    node names that answer a control ping."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup()\n"
            "from django.conf import settings\n"
            "from qa2portal.celery import app, ping\n"
            "assert settings.CELERY_BROKER_URL.startswith('filesystem://'), settings.CELERY_BROKER_URL\n"
            f"print('REPLY', ping.delay({payload!r}).get(timeout=90))\n"
            "print('NODES', sorted(app.control.inspect(timeout=1).ping() or {}))",
        ],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "qa2portal.settings"},
        capture_output=True,
        text=True,
        timeout=150,
    )


def stop_embedded(proc: subprocess.Popen, log: Path, sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"signal {sig} did not stop run_embedded within 90 s:\n{log.read_text()[-3000:]}")
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "stopped" in log.read_text()


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


def test_a_killed_worker_is_restarted_while_the_web_server_keeps_serving(tmp_path, free_port):
    proc, log, _var_dir, env = start_embedded(tmp_path, free_port)
    try:
        wait_for(lambda: serves_login(free_port), 180, "the login page", proc, log)
        (worker,) = started_pids(log, "worker")
        (web,) = started_pids(log, "web server")
        (beat,) = started_pids(log, "beat")
        # The worker's group holds its pool process too.
        wait_for(lambda: len(group_members(worker)) >= 2, 60, "the worker's pool process", proc, log)
        first = ping_worker(env, "before the kill")
        assert "REPLY before the kill" in first.stdout, first.stderr[-3000:]
        assert f"embedded-{free_port}@" in first.stdout, "the node name carries the port"

        os.kill(worker, signal.SIGKILL)

        noticed = "worker exited (killed by SIGKILL)"
        wait_for(lambda: noticed in log.read_text(), 30, "the death noticed", proc, log)
        assert serves_login(free_port), "the web server outlives its worker"
        assert group_members(worker) == [], "the dead worker's pool process was killed too"
        # No beat queues work while no worker runs it: it stops and starts again with the worker.
        stopped = "beat stopped until the worker is back"
        wait_for(lambda: stopped in log.read_text(), 30, "the beat stopped", proc, log)
        assert group_members(beat) == []
        wait_for(lambda: len(started_pids(log, "worker")) == 2, 30, "a new worker", proc, log)
        assert len(started_pids(log, "beat")) == 2, "a new beat with the new worker"
        again = ping_worker(env, "after the restart")
        assert "REPLY after the restart" in again.stdout, again.stderr[-3000:] + log.read_text()[-3000:]
        assert started_pids(log, "web server") == [web], "the web server was never restarted"
        new_worker = started_pids(log, "worker")[1]
        wait_for(lambda: len(group_members(new_worker)) >= 2, 60, "the new worker's pool process", proc, log)
    finally:
        if proc.poll() is None:
            stop_embedded(proc, log, signal.SIGTERM)
    for pgid in all_groups(log):
        assert group_members(pgid) == [], f"process group {pgid} outlived SIGTERM"


def test_two_instances_side_by_side_share_nothing(tmp_path):
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    a = start_embedded(tmp_path, ports[0], "a")
    b = start_embedded(tmp_path, ports[1], "b")
    try:
        for (proc, log, _var, _env), port in zip((a, b), ports, strict=True):
            wait_for(lambda port=port: serves_login(port), 240, f"the login page on {port}", proc, log)
        for (_proc, log, var_dir, env), port in zip((a, b), ports, strict=True):
            answer = ping_worker(env, f"to {port}")
            assert f"REPLY to {port}" in answer.stdout, answer.stderr[-3000:] + log.read_text()[-3000:]
            # Only this instance's worker listens on this instance's broker.
            nodes = answer.stdout.split("NODES", 1)[1]
            other = next(p for p in ports if p != port)
            assert f"embedded-{port}@" in nodes and f"embedded-{other}@" not in nodes, nodes
            assert (var_dir / "gunicorn.ctl").is_socket(), "gunicorn's control socket is the instance's own"
            assert list(var_dir.glob("celerybeat-schedule*")), "so is the beat schedule"
            assert (var_dir / "qa2portal.sqlite3").is_file() and (var_dir / "broker").is_dir()
        # b's supervisor dies without a chance to clean up: its children die with it.
        b[0].kill()
        b[0].wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(group_members(g) for g in all_groups(b[1])) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pgid in all_groups(b[1]):
            assert group_members(pgid) == [], f"process group {pgid} outlived kill -9 of run_embedded"
        assert serves_login(ports[0]), "a is untouched"
    finally:
        for proc, log, _var, _env in (a, b):
            if proc.poll() is None:
                stop_embedded(proc, log, signal.SIGINT)
    for pgid in all_groups(a[1]):
        assert group_members(pgid) == [], f"process group {pgid} outlived Ctrl-C"


def test_a_child_killed_by_a_real_time_signal_is_described_not_a_crash():
    from qa2portal.management.commands.run_embedded import describe

    assert describe(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe(-(signal.SIGRTMIN + 1)) == f"killed by signal {signal.SIGRTMIN + 1}"
    assert describe(3) == "exit code 3"
