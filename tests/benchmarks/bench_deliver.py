"""deliver: packaging a MOUS for delivery (reports.delivery.delivery_execute in-process, no
throughput limit) against `tar -cf` of the same source files to the same disk.

The MOUS: 2 EBs, the checklist complete, ~360 MB of realistic files written once with random
bytes (a continuum and a cube image, each .pbcor.fits and .flux.fits; the CASA logs of the
calibration, combination, prep and imaging runs; 25 qa2 PNGs per EB; the scripts; the README).

Ours: plan (database and stat), copy every file through the confined fds with its sha256,
fdatasync, re-read every staged file and compare its sha256, manifest, rename into place,
DELIVERING -> DELIVERED. tar: read the same files, write one archive (no hashing, no
verification, no fsync). Alternated tar, ours, tar, ours ... after one warm-up of each (both
read the sources from the page cache); `sync` before each timed side so that neither pays for
the other's write-back. ratio = median(ours) / median(tar); goal <= 1.3. Printed for the
record: tar followed by `sync` (its archive on disk, as ours is when it is DONE).
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from assignments.datafiles import eb_folder, mous_folder
from assignments.models import Mous, MousState, Person
from calibration.models import Run, script_storage_path
from reports import delivery
from reports.models import Delivery, ImageQA
from tests.benchmarks.harness import median, report
from tests.factories import PersonFactory
from tests.reports.test_delivery import ready_mous

pytestmark = pytest.mark.django_db
ROUNDS = 7
MB = 1024 * 1024
SIZES = {  # bytes per file, by what it is
    "target_cube.pbcor.fits": 150 * MB,
    "target_cube.flux.fits": 150 * MB,
    "target_cont.pbcor.fits": 8 * MB,
    "target_cont.flux.fits": 8 * MB,
}
LOG_BYTES = {"calibration": 12 * MB, "combination": 4 * MB, "imaging_prep": 2 * MB, "imaging": 6 * MB}


def _fill(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        for _ in range(size // MB):
            handle.write(os.urandom(MB))
        handle.write(os.urandom(size % MB))


def _build(analyst) -> Mous:
    mous = ready_mous(ebs=2, image_bytes=1024, log_bytes=1024, pngs=25, by=analyst.user)
    for qa in ImageQA.objects.filter(mous=mous):
        for name in (qa.pbcor_fits, qa.flux_fits):
            _fill(mous_folder(mous) / "Imaging" / name, SIZES[name])
    for run in Run.objects.filter(mous=mous).select_related("script_version__script"):
        _fill(run.folder_path / run.casa_log_name, LOG_BYTES[run.script_version.script.kind])
    for eb in mous.execution_blocks.all():
        for png in (eb_folder(eb) / "qa2").glob("*.png"):
            _fill(png, 150 * 1024)
    Mous.objects.filter(pk=mous.pk).update(state=MousState.DELIVERING)
    mous.refresh_from_db()
    return mous


def _tar_command(plan: delivery.Plan, out: Path) -> list[str]:
    command = ["tar", "-cf", str(out)]
    media = Path(django_settings.MEDIA_ROOT)
    for source in plan.sources:
        if source.base is not None:
            command += ["-C", str(source.base), source.name]
    for run in plan.about["runs"]:
        command += ["-C", str(media), str(script_storage_path(run["script_sha256"]).relative_to(media))]
    return command


def test_deliver(settings, tmp_path):
    settings.DELIVERIES_ROOT = tmp_path / "deliveries"
    settings.QA2FAILS_ROOT = tmp_path / "qa2fails"
    settings.DELIVERY_MAX_BYTES_PER_SECOND = 0
    analyst = PersonFactory(user__username="benchanalyst", role=Person.Role.DATA_ANALYST, initials="BA")
    mous = _build(analyst)
    plan = delivery.package_plan(mous)
    assert not plan.missing, plan.missing
    total = plan.total
    out = Path(settings.DELIVERIES_ROOT) / "baseline.tar"
    Path(settings.DELIVERIES_ROOT).mkdir(parents=True, exist_ok=True)
    tar = _tar_command(plan, out)
    print(f"\nMOUS {mous.uid}: {len(plan.sources)} files, {total / MB:.0f} MB", flush=True)

    def tar_once() -> float:
        out.unlink(missing_ok=True)
        os.sync()
        started = time.perf_counter()
        subprocess.run(tar, check=True)
        elapsed = time.perf_counter() - started
        assert out.stat().st_size >= total
        return elapsed

    def tar_sync_once() -> float:
        """For the record only (not the ratio): tar, then the write-back of its archive."""
        out.unlink(missing_ok=True)
        os.sync()
        started = time.perf_counter()
        subprocess.run(tar, check=True)
        os.sync()
        return time.perf_counter() - started

    def ours_once() -> float:
        shutil.rmtree(delivery.package_path(mous), ignore_errors=True)
        Mous.objects.filter(pk=mous.pk).update(state=MousState.DELIVERING)
        row = Delivery.objects.create(mous=mous, kind=Delivery.Kind.PACKAGE, requested_by=analyst.user)
        os.sync()
        started = time.perf_counter()
        done = delivery.delivery_execute(row.pk)
        elapsed = time.perf_counter() - started
        assert done.status == Delivery.Status.DONE, done.error
        assert done.bytes_total == total
        return elapsed

    tar_once(), ours_once()  # warm-up: the sources in the page cache, the code imported
    tar_s: list[float] = []
    ours_s: list[float] = []
    for i in range(ROUNDS):
        tar_s.append(tar_once())
        ours_s.append(ours_once())
        print(f"round {i + 1}: tar={tar_s[-1]:.3f}s ours={ours_s[-1]:.3f}s", flush=True)
    tar_median, ours_median = median(tar_s), median(ours_s)
    tar_sync_median = median([tar_sync_once() for _ in range(3)])
    print(
        f"medians: tar={tar_median:.3f}s ({total / MB / tar_median:.0f} MB/s) "
        f"ours={ours_median:.3f}s ({total / MB / ours_median:.0f} MB/s); for the record, tar then "
        f"sync={tar_sync_median:.3f}s (ours / that = {ours_median / tar_sync_median:.2f})",
        flush=True,
    )
    out.unlink(missing_ok=True)
    report(
        "deliver",
        ours_median / tar_median,
        "<= 1.3",
        f"ours={ours_median:.2f}s tar={tar_median:.2f}s size={total / MB:.0f}MB files={len(plan.sources)} "
        f"threads={delivery.COPY_THREADS}",
        tar_then_sync_seconds=tar_sync_median,
        ours_seconds=ours_s,
        tar_seconds=tar_s,
        bytes=total,
        files=len(plan.sources),
    )
