"""The copy of calibrated data where a MOUS-level script runs (a worker task, with progress):
each EB's split into Combination/calibrated, or the data to image into Imaging/.

A run's sandbox sees only its own folder, so its inputs are copied there first, through fds
that follow no link (the ingest's confined copy). Only what a copy or a run of that folder made
is removed when the reducer starts from scratch.
"""

import logging
import os
import shutil
import stat
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from assignments.datafiles import UnsafePath, open_fd_confined, public_message
from calibration import combination, imaging, ingest, runs
from calibration.models import CalibratedCopy
from qa2portal.errors import Conflict

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 1.0
Destination = CalibratedCopy.Destination


def plan(copy: CalibratedCopy) -> tuple[Path, list[combination.CopySource], list[str]]:
    """Where the copy goes, what it copies, and what a from-scratch copy may remove first."""
    if copy.destination == Destination.IMAGING:
        return (
            imaging.imaging_folder(copy.mous),
            imaging.imaging_sources(copy.mous),
            imaging.made_by_imaging(copy.mous),
        )
    return (
        runs.combination_folder(copy.mous),
        combination.combination_sources(copy.mous),
        combination.made_by_combination(copy.mous),
    )


def remove_entry(folder: Path, name: str) -> bool:
    path = folder / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # removes links inside, never follows them
    else:
        path.unlink()
    return True


class _Progress:
    """bytes_done of one copy, written at most every PROGRESS_SECONDS (also its heartbeat)."""

    def __init__(self, copy: CalibratedCopy, total: int) -> None:
        self.copy, self.done, self.last = copy, 0, 0.0
        CalibratedCopy.objects.filter(pk=copy.pk).update(bytes_total=total, heartbeat_at=timezone.now())

    def add(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self.last >= PROGRESS_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        CalibratedCopy.objects.filter(pk=self.copy.pk).update(
            bytes_done=self.done, heartbeat_at=timezone.now()
        )


def _finish(copy: CalibratedCopy, status: str, **fields) -> None:
    CalibratedCopy.objects.filter(pk=copy.pk, status__in=CalibratedCopy.ACTIVE).update(
        status=status, finished_at=timezone.now(), **fields
    )


def calibrated_copy_execute(copy_id: int) -> CalibratedCopy:
    """The task body: (from scratch: remove what this destination's work made), then copy every
    source through fds that follow no link; `copied` records what came from where."""
    claimed = CalibratedCopy.objects.filter(pk=copy_id, status=CalibratedCopy.Status.QUEUED).update(
        status=CalibratedCopy.Status.COPYING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    copy = CalibratedCopy.objects.select_related("mous").get(pk=copy_id)
    if not claimed:
        return copy
    try:
        target, wanted, removable = plan(copy)
        target.mkdir(parents=True, exist_ok=True)
        removed = [name for name in removable if remove_entry(target, name)] if copy.from_scratch else []
        opened: list[int] = []
        try:
            sources = []
            for source in wanted:
                fd = open_fd_confined(source.name, base=source.base)
                opened.append(fd)
                st = os.fstat(fd)
                node = (
                    ingest.scan_tree(fd, source.name)
                    if stat.S_ISDIR(st.st_mode)
                    else ingest.Node(source.name, st.st_dev, st.st_ino, st.st_mode, st.st_size)
                )
                sources.append((source, fd, node))
            progress = _Progress(copy, sum(node.total for *_, node in sources))
            copied: dict[str, dict] = {}
            for source, fd, node in sources:
                remove_entry(target, source.name)
                if node.children is not None:
                    ingest.copy_tree(fd, node, target / source.name, source.name, progress)
                else:
                    ingest.copy_fd(fd, target / source.name, node.mode, node.size, source.name, progress)
                entry = copied.setdefault(source.owner, {"eb": source.owner, "run": source.run, "names": []})
                entry["names"].append(source.name)
        finally:
            for fd in opened:
                os.close(fd)
        progress.flush()
        _finish(copy, CalibratedCopy.Status.DONE, copied=list(copied.values()), removed=removed)
    except (UnsafePath, ingest.IngestFailed, Conflict) as exc:
        _finish(copy, CalibratedCopy.Status.FAILED, error=public_message(exc))
    except OSError as exc:
        log.exception("calibrated copy %s failed", copy.pk)
        _finish(copy, CalibratedCopy.Status.FAILED, error=f"{type(exc).__name__}: {exc.strerror or exc}")
    copy.refresh_from_db()
    return copy


def copies_reap_stale(*, stale_after: int | None = None) -> list[int]:
    """FAIL every copy whose heartbeat stopped (its worker died): a copy never blocks for ever."""
    limit = timezone.now() - timedelta(seconds=stale_after or settings.RUN_STALE_AFTER_SECONDS)
    reaped = []
    for copy in CalibratedCopy.objects.filter(status=CalibratedCopy.Status.COPYING, heartbeat_at__lt=limit):
        seen = timezone.localtime(copy.heartbeat_at).strftime("%H:%M:%S") if copy.heartbeat_at else "-"
        if CalibratedCopy.objects.filter(
            pk=copy.pk, status=CalibratedCopy.Status.COPYING, heartbeat_at__lt=limit
        ).update(
            status=CalibratedCopy.Status.FAILED,
            error=f"worker lost (no heartbeat since {seen}): copy again",
            finished_at=timezone.now(),
        ):
            reaped.append(copy.pk)
    return reaped
