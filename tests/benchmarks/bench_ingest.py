"""ingest: bringing the alma-wide EB's MS in through the portal vs `cp -r` of the same data;
and the web process's peak memory while a 2 GB tar is uploaded to a real gunicorn.

Portal: the API call (as the "Bring data in" button) -> Celery on Redis -> worker copies the
MS into raw/.incoming-<id>/ with progress -> CASA reads it (msmetadata, EB uid) -> renamed
into raw/ -> "present" seen in the database. Baseline: `cp -r` of the same MS to the same
disk. Alternated (cp first, then portal first), same session; ratio = portal / cp (medians).

Upload: a tar of the same MS (~2 GB) streamed as multipart to
/api/execution-blocks/<id>/ingest/upload/ of a gunicorn (2 gthread workers, DEBUG off); the
RSS of every gunicorn process is sampled from /proc every 20 ms. Goal <= 300 MB: the upload
goes to disk as it arrives, never into memory. The ingest of that upload is then awaited
(upload -> present) as an extra figure.
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, Person
from assignments.staging import mous_stage
from calibration.models import DataIngest
from calibration.simulate import presets
from calibration.simulate.build import cached_eb
from tests.benchmarks.harness import database_url, free_port, median, report
from tests.factories import ExecutionBlockFactory, MousFactory, PersonFactory

ROUNDS = 2
TIMEOUT = 1800
RSS_GOAL_MB = 300
REPO = Path(__file__).resolve().parents[2]
PRESET = os.environ.get("BENCH_INGEST_PRESET", "alma-wide")  # `small` to try the benchmark quickly
SIM_UID = presets.preset(PRESET).eb_uid  # the EB the simulated MS names in its OBSERVATION table


def _new_eb() -> ExecutionBlock:
    ExecutionBlock.objects.filter(uid=SIM_UID).delete()  # the previous round's
    eb = ExecutionBlockFactory(mous=MousFactory(), uid=SIM_UID)
    mous_stage(eb.mous)
    return eb


PHASES: list[dict] = []  # per portal ingest: queue wait, copy, check (from the ingest row)


def _wait_present(item_id: int, started: float) -> float:
    while True:
        item = DataIngest.objects.get(pk=item_id)
        if not item.is_active:
            elapsed = time.perf_counter() - started
            assert item.status == DataIngest.Status.DONE, item.error
            PHASES.append(
                {"queued": (item.started_at - item.created_at).total_seconds(), **item.summary["seconds"]}
            )
            return elapsed
        assert time.perf_counter() - started < TIMEOUT, f"ingest {item_id} still {item.status}"
        time.sleep(0.05)


def portal_ingest(client: APIClient, source: Path) -> float:
    eb = _new_eb()
    started = time.perf_counter()
    response = client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(source)}, format="json"
    )
    assert response.status_code == 202, response.content
    elapsed = _wait_present(response.json()["id"], started)
    eb.refresh_from_db()
    assert eb.data_status == ExecutionBlock.DataStatus.PRESENT
    shutil.rmtree(eb_folder(eb))
    return elapsed


def cp_r(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(target)
    return elapsed


# --- the upload --------------------------------------------------------------------------------
def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/login/")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


class RssSampler(threading.Thread):
    """Peak RSS of each process in gunicorn's process group (master and workers)."""

    def __init__(self, pgid: int) -> None:
        super().__init__(daemon=True)
        self.pgid, self.peak, self.stop = pgid, {}, threading.Event()

    def run(self) -> None:
        pids = _group_pids(self.pgid)
        while not self.stop.is_set():
            for pid in pids:
                self.peak[pid] = max(self.peak.get(pid, 0.0), _rss_mb(pid))
            time.sleep(0.02)


def stream_upload(port: int, url: str, token: str, archive: Path) -> tuple[int, bytes, float, float]:
    """Send `archive` as a multipart body in 1 MB chunks; (status, body, started, answered)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{archive.name}"\r\n'
        "Content-Type: application/x-tar\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = archive.stat().st_size
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    started = time.perf_counter()
    conn.putrequest("POST", url)
    conn.putheader("Authorization", f"Token {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with archive.open("rb") as data:
        while chunk := data.read(1024 * 1024):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    return response.status, response.read(), started, time.perf_counter()


@pytest.mark.casa
@pytest.mark.django_db(transaction=True)
def test_ingest(celery_worker_process, worker_environment, settings, session_data_root, tmp_path):
    wide = cached_eb(presets.preset(PRESET))
    root = Path(worker_environment["INGEST_ROOTS"]).resolve()
    settings.INGEST_ROOTS = [root]
    settings.INGEST_UPLOAD_DIR = ""
    # Hard links: the source is under INGEST_ROOTS without a copy of the cache (never written).
    source = root / f"bench-{uuid.uuid4().hex[:6]}" / wide.ms.name
    shutil.copytree(wide.ms, source, copy_function=os.link)
    size_gb = sum(f.stat().st_size for f in source.rglob("*") if f.is_file()) / 1e9
    drm = PersonFactory(user__username="benchdrm", role=Person.Role.DRM, initials="BD")
    client = APIClient()
    client.force_login(drm.user)

    portal_s, cp_s = [], []
    try:
        for attempt in range(ROUNDS):
            target = session_data_root / f"bench-cp-{attempt}"
            if attempt % 2 == 0:
                cp_s.append(cp_r(source, target))
                portal_s.append(portal_ingest(client, source))
            else:
                portal_s.append(portal_ingest(client, source))
                cp_s.append(cp_r(source, target))
            print(f"round {attempt}: portal={portal_s[-1]:.1f}s cp={cp_s[-1]:.1f}s {PHASES[-1]}", flush=True)

        # --- a 2 GB tar upload to a real gunicorn: peak RSS --------------------------------------
        archive = tmp_path / f"{wide.ms.name}.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(source, arcname=wide.ms.name)
        eb = _new_eb()
        # A token as a client gets one (the API's own way, whatever it stores).
        answer = APIClient().post("/api/token/", {"username": "benchdrm", "password": "pw-for-tests-123"})
        assert answer.status_code == 200, answer.content
        token = answer.json()["token"]
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DATA_ROOT": str(session_data_root),  # the worker's: it extracts what gunicorn stored
            "INGEST_ROOTS": str(root),
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-" + uuid.uuid4().hex * 2,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback (production redirects to HTTPS)
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "qa2portal.wsgi", "-b", f"127.0.0.1:{port}",
             "--workers", "2", "--threads", "4", "--worker-class", "gthread", "--timeout", "600",
             "--log-level", "warning", "--control-socket", str(tmp_path / "gunicorn.ctl")],
            cwd=REPO, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not _answers(port):
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
            sampler = RssSampler(server.pid)
            sampler.start()
            time.sleep(0.2)
            idle_mb = max(sampler.peak.values())
            url = reverse("executionblock-ingest-upload", args=[eb.pk])
            code, body, upload_started, upload_answered = stream_upload(port, url, token, archive)
            sampler.stop.set()
            sampler.join()
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert code == 202, body[:500]
        item_id = int(json.loads(body)["id"])
        upload_s = upload_answered - upload_started
        upload_to_present = _wait_present(item_id, upload_started)
        peak_mb = max(sampler.peak.values())
        archive_gb = archive.stat().st_size / 1e9
    finally:
        shutil.rmtree(source.parent, ignore_errors=True)

    ratio = median(portal_s) / median(cp_s)
    report(
        "ingest",
        ratio,
        goal="<= 1.3 (portal click-to-present / cp -r); web peak RSS <= 300 MB during a 2 GB upload",
        details=(
            f"portal={median(portal_s):.1f}s cp={median(cp_s):.1f}s ms={size_gb:.2f}GB n={ROUNDS} "
            f"upload_peak_rss={peak_mb:.0f}MB (idle {idle_mb:.0f}MB, goal<={RSS_GOAL_MB}MB) "
            f"upload={archive_gb:.2f}GB in {upload_s:.1f}s upload_to_present={upload_to_present:.1f}s"
        ),
        portal_seconds=portal_s,
        cp_seconds=cp_s,
        ms_gb=size_gb,
        preset=PRESET,
        upload_gb=archive_gb,
        upload_seconds=upload_s,
        upload_to_present_seconds=upload_to_present,
        portal_phases_seconds=PHASES,
        upload_peak_rss_mb=peak_mb,
        upload_idle_rss_mb=idle_mb,
        upload_rss_per_process_mb=sampler.peak,
    )
