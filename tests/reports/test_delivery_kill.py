"""kill -9 of a real worker while it packages a MOUS (throttled by DELIVERY_MAX_BYTES_PER_SECOND
so that the copy is caught in the middle): nothing appears at the package path, the source is
untouched, the reaper fails the row ("worker lost ...: start again to resume"), and a new
request on a fresh worker resumes from the staging folder (the files staged before the kill are
kept, not copied again) to a verified package and a DELIVERED MOUS."""

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from assignments.models import MousState, Person
from reports import delivery
from reports.models import Delivery
from tests.factories import PersonFactory
from tests.reports.test_delivery import ready_mous, tree

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
MB = 1_000_000


def wait_for(row: Delivery, done, timeout: float, what: str) -> Delivery:
    deadline = time.monotonic() + timeout
    while True:
        row.refresh_from_db()
        if done(row):
            return row
        assert time.monotonic() < deadline, f"delivery {row.pk} never got to {what}: {row.status} {row.error}"
        time.sleep(0.1)


def test_kill_9_mid_copy_leaves_no_package_and_a_new_request_resumes(worker_with_env, settings, tmp_path):
    queue = f"casa-deliver-{os.getpid()}-{time.monotonic_ns()}"
    settings.CASA_QUEUE = queue
    settings.DELIVERIES_ROOT = tmp_path / "deliveries"
    settings.QA2FAILS_ROOT = tmp_path / "qa2fails"
    roots = {"DELIVERIES_ROOT": str(settings.DELIVERIES_ROOT), "QA2FAILS_ROOT": str(settings.QA2FAILS_ROOT)}
    worker = worker_with_env(queue, {**roots, "DELIVERY_MAX_BYTES_PER_SECOND": str(MB)})
    analyst = PersonFactory(user__username="killanalyst", role=Person.Role.DATA_ANALYST, initials="KA")
    mous = ready_mous(ebs=1, image_bytes=int(1.5 * MB), by=analyst.user)
    source = Path(settings.DATA_ROOT) / mous.folder_name
    source_before = tree(source)
    plan = delivery.package_plan(mous)
    package = delivery.package_path(mous)
    staging = Path(settings.DELIVERIES_ROOT) / ".staging" / mous.folder_name

    first = delivery.delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    first = wait_for(
        first,
        lambda d: (
            d.status == Delivery.Status.COPYING
            and d.bytes_total
            and 0.6 * d.bytes_total <= d.bytes_done < d.bytes_total
        ),
        60,
        "60 % of the copy",
    )
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the whole worker: main process and pool child
    worker.proc.wait()
    staged_whole = {
        s.dest: (staging / s.dest).stat().st_ino
        for s in plan.sources
        if (staging / s.dest).is_file() and (staging / s.dest).stat().st_size == s.size
    }

    assert 0 < first.bytes_done < first.bytes_total == plan.total
    assert not package.exists(), "a half package must never be at the package path"
    assert tree(source) == source_before, "the source is untouched"
    assert staged_whole, "some files were staged completely before the kill"
    assert len(staged_whole) < len(plan.sources)
    first.refresh_from_db()
    assert first.status == Delivery.Status.COPYING  # its worker is gone; only the heartbeat says so

    time.sleep(1.5)  # let the last heartbeat age past the reaper's limit
    assert delivery.deliveries_reap_stale(stale_after=1) == [first.pk]
    first.refresh_from_db()
    assert first.status == Delivery.Status.FAILED
    assert first.error.startswith("worker lost") and first.error.endswith("start again to resume")
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERING

    # Started again on a fresh worker: a new row resumes the staging folder of the MOUS.
    worker_with_env(queue, {**roots, "DELIVERY_MAX_BYTES_PER_SECOND": str(8 * MB)})
    second = delivery.delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    second = wait_for(second, lambda d: not d.is_active, 120, "its end")

    assert second.status == Delivery.Status.DONE, second.error
    assert second.pk != first.pk and second.attempts == 1
    manifest_name = f"{package.name}.manifest.json"
    manifest = json.loads((package / manifest_name).read_text())
    delivered = tree(package)
    assert set(delivered) == {f["path"] for f in manifest["files"]} | {manifest_name}
    for entry in manifest["files"]:
        assert delivered[entry["path"]] == entry["sha256"], entry["path"]
    for s in plan.sources:
        data = s.data if s.data is not None else (s.base / s.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == delivered[s.dest], s.dest
    assert manifest["kept_from_earlier_attempts"] == len(staged_whole)
    for dest, inode in staged_whole.items():
        assert (package / dest).stat().st_ino == inode, f"{dest} was staged before the kill and copied again"
    assert not staging.exists()
    assert tree(source) == source_before
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERED
