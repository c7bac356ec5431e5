"""The embedded database under concurrency: a real gunicorn (as `make run` starts it) on SQLite.

The rest of the suite runs on PostgreSQL; here the web server, and a second process that
writes like the worker does, share one SQLite file with the embedded settings.
"""

import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARALLEL = 20

SETUP = """
import django; django.setup()
from django.contrib.auth import get_user_model
from assignments.auth import token_issue
from assignments.models import Project
from assignments.demo import ensure_demo_accounts
drm = next(a for a in ensure_demo_accounts() if a.role == "drm")
user = get_user_model().objects.get(username=drm.username)
Project.objects.create(code="2019.1.00042.S", title="concurrency", cycle=7)
from django.test import Client
browser = Client()
browser.force_login(user)
print("TOKEN", token_issue(user))
print("SESSION", browser.cookies["sessionid"].value)
"""

# Read, then write, in one transaction, like the worker's tasks: the pattern that SQLite's
# default DEFERRED transactions answer with an immediate "database is locked".
WORKER_LIKE_WRITER = """
import django; django.setup()
from django.db import transaction
from assignments.models import Project
for i in range(40):
    with transaction.atomic():
        Project.objects.filter(code__startswith="2099.").count()
        Project.objects.create(code=f"2099.1.{i:05d}.S", title="worker-like writer", cycle=11)
print("WRITER DONE", flush=True)
"""


@dataclass
class Embedded:
    port: int
    token: str
    session: str  # the DRM's session cookie, for the HTML pages
    db: Path
    env: dict[str, str]
    log: Path


def sqlite_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DATA_ROOT"}}
    env.update(
        QA2_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'qa2portal.sqlite3'}",
        DJANGO_SETTINGS_MODULE="qa2portal.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Embedded]:
    tmp = tmp_path_factory.mktemp("embedded_sqlite")
    var_dir = tmp / "var"
    var_dir.mkdir()
    env = sqlite_env(var_dir)
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(migrate, cwd=REPO, env=env, check=True, timeout=300)
    answers = dict(line.split(" ", 1) for line in run_python(SETUP, env).splitlines() if " " in line)
    token, session = answers["TOKEN"], answers["SESSION"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp / "gunicorn.log"
    # The web server as run_embedded starts it: 2 processes x 4 threads on one SQLite file.
    from qa2portal.management.commands.run_embedded import web_command

    web = subprocess.Popen(
        web_command("127.0.0.1", port, var_dir),
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert web.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer:\n" + log.read_text()[-3000:]
            time.sleep(0.3)
        yield Embedded(port, token, session, var_dir / "qa2portal.sqlite3", env, log)
    finally:
        web.terminate()
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, 9)
            web.wait()


def call(e: Embedded, method: str, path: str, body: object = None, *, form: str | None = None):
    """(status, content type, parsed JSON or text) of one request: JSON with the DRM's token,
    or a form post (`form`, urlencoded) with the DRM's session and a CSRF token."""
    if form is not None:
        csrf = "x" * 32
        data = form.encode()
        headers = {
            "Cookie": f"sessionid={e.session}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Content-Type": "application/x-www-form-urlencoded",
        }
    else:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Token {e.token}", "Content-Type": "application/json"}
        if not path.startswith("/api/"):
            headers = {"Cookie": f"sessionid={e.session}"}
    conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=120)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        status, ctype, content = response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()
    parsed = json.loads(content) if ctype.startswith("application/json") else content.decode(errors="replace")
    return status, ctype, parsed


def in_parallel(jobs: list) -> list:
    """Run every job at once (a barrier releases all threads together); their results in order."""
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except Exception as exc:  # a dropped connection counts as a failure, not a crash of the test
            results[i] = (0, "", repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return results


def test_sqlite_is_in_wal_mode(embedded):
    with sqlite3.connect(embedded.db) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_parallel_api_writes_on_embedded_sqlite_all_succeed(embedded):
    writer = subprocess.Popen(
        [sys.executable, "-c", WORKER_LIKE_WRITER],
        cwd=REPO,
        env=embedded.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def create(i: int):
        body = {
            "project": "2019.1.00042.S",
            "uid": f"uid://A001/X77/X{i:x}",
            "eb_uids": [f"uid://A002/X77/X{i:x}a", f"uid://A002/X77/X{i:x}b"],
            "sb_name": f"concurrent_{i}",
            "array": "TE",
            "band": 6,
        }
        return lambda: call(embedded, "POST", "/api/mous/", body)

    created = in_parallel([create(i) for i in range(PARALLEL)])
    problems = [r for r in created if r[0] != 201]
    assert not problems, f"{len(problems)} of {PARALLEL} creates failed: {problems[:3]}"

    def edit(mous: dict):
        body = {"sb_name": mous["sb_name"] + "_edited", "version": mous["version"]}
        return lambda: call(embedded, "PATCH", f"/api/mous/{mous['id']}/", body)

    edited = in_parallel([edit(r[2]) for r in created])
    problems = [r for r in edited if r[0] != 200]
    assert not problems, f"{len(problems)} of {PARALLEL} edits failed: {problems[:3]}"
    out, _ = writer.communicate(timeout=180)
    assert writer.returncode == 0 and "WRITER DONE" in out, out[-3000:]

    assert "database is locked" not in embedded.log.read_text()
    with sqlite3.connect(embedded.db) as db:
        names = db.execute(
            "SELECT sb_name FROM assignments_mous WHERE uid LIKE 'uid://A001/X77/%'"
        ).fetchall()
        ebs = db.execute("SELECT count(*) FROM assignments_executionblock WHERE uid LIKE 'uid://A002/X77/%'")
        eb_count = ebs.fetchone()[0]
        writes = db.execute("SELECT count(*) FROM assignments_project WHERE code LIKE '2099.%'").fetchone()[0]
    assert sorted(n for (n,) in names) == sorted(f"concurrent_{i}_edited" for i in range(PARALLEL))
    assert eb_count == 2 * PARALLEL
    assert writes == 40


BIG = "99999999999999999999"  # > 2**63-1: an OverflowError inside SQLite's driver


def test_out_of_range_ids_are_bad_input_on_sqlite(embedded):
    for path in (
        f"/api/execution-blocks/?mous={BIG}",
        f"/api/assignments/?mous={BIG}",
        f"/api/runs/?execution_block={BIG}",
        f"/api/script-versions/?mous={BIG}",
        f"/api/mous/?cycle={BIG}",
    ):
        status, ctype, body = call(embedded, "GET", path)
        assert status == 400 and ctype == "application/json", (path, status, str(body)[:300])
    for path in (f"/api/mous/{BIG}/", f"/api/runs/{BIG}/"):
        status, ctype, _ = call(embedded, "GET", path)
        assert status == 404 and ctype == "application/json", path
    status, _, body = call(embedded, "POST", "/api/mous/bulk-assign/", {"mous": [int(BIG)], "reducer": "drm"})
    assert status == 400 and "mous" in body, body
    for path in (f"/mous/{BIG}/", f"/calibration/eb/{BIG}/", f"/reports/eb/{BIG}/"):
        status, _, _ = call(embedded, "GET", path)
        assert status == 404, path
    # The whiteboard's bulk-assign form: a redirect back with "Nothing assigned", not a 500.
    status, _, _ = call(embedded, "POST", "/whiteboard/bulk-assign/", form=f"mous={BIG}&reducer=1")
    assert status == 302


def test_errors_on_the_embedded_server_are_json_for_the_api_and_our_page_otherwise(embedded):
    # The embedded mode runs with DEBUG on: Django's own pages would be HTML, listing the URLconf.
    big = {"project": "2019.1.00042.S", "sb_name": "x" * 2_500_000}
    status, ctype, body = call(embedded, "POST", "/api/mous/", big)
    assert (status, ctype) == (413, "application/json") and "larger than" in body["detail"]
    status, ctype, body = call(embedded, "GET", "/api/no-such-route/")
    assert (status, ctype) == (404, "application/json"), body
    status, ctype, page = call(embedded, "GET", "/no-such-page/")
    assert status == 404 and ctype.startswith("text/html")
    assert 'id="not-found"' in page and "URLconf" not in page
