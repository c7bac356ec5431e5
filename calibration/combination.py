"""Combination of a multi-EB MOUS, the calibration side: who may be combined, and the copy of
each EB's calibrated split into Combination/calibrated (a worker task, with progress).

The fluxes (allFluxes), the edits and the combination script are reports.combination: they
read the fluxscale diagnostics, which live in the reports layer.

Only what a combination made is ever removed from Combination/calibrated: the names a copy
recorded, and the products and files of the combination runs (their script, logs).
"""

import logging
import os
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assignments.datafiles import UnsafePath, eb_folder, open_fd_confined, public_message
from assignments.models import ExecutionBlock, Mous
from calibration import ingest, task_names
from calibration.models import CombinationCopy, Product, Run, Script
from calibration.runs import ACTIVE_RUN_STATES, RunRefused, combination_folder
from qa2portal.errors import Conflict

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 1.0
SPLIT_SUFFIX = ".split.cal"
FLUXSCALE_SUFFIX = ".split.fluxscale"
COMBINED_MS = "calibrated.ms"


class CombinationRefused(Conflict, ValueError):
    """The MOUS cannot be combined now (one EB, an EB not calibrated, busy): 409."""


@dataclass(frozen=True)
class EbInput:
    eb: ExecutionBlock
    run: Run

    @property
    def split(self) -> str:
        return f"{self.eb.ms_name}{SPLIT_SUFFIX}"

    @property
    def fluxscale(self) -> str:
        return f"{self.eb.ms_name}{FLUXSCALE_SUFFIX}"


def latest_calibration_run(eb: ExecutionBlock) -> Run | None:
    return (
        Run.objects.filter(
            execution_block=eb,
            purpose=Run.Purpose.SCRIPT,
            script_version__script__kind=Script.Kind.CALIBRATION,
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def combination_inputs(mous: Mous) -> tuple[list[EbInput], list[str]]:
    """Each EB with its latest (succeeded) calibration run, and why the MOUS cannot be combined."""
    ebs = list(mous.execution_blocks.order_by("uid"))
    if len(ebs) < 2:
        return [], [f"{mous.uid} has {len(ebs)} EB: nothing to combine"]
    inputs, problems = [], []
    for eb in ebs:
        run = latest_calibration_run(eb)
        if run is None:
            problems.append(f"EB {eb.uid} is not calibrated: it has no calibration run")
        elif run.status != Run.Status.SUCCEEDED:
            problems.append(
                f"EB {eb.uid} is not calibrated: its latest calibration run #{run.pk} "
                f"is {run.get_status_display()}"
            )
        elif not (eb_folder(eb) / f"{eb.ms_name}{SPLIT_SUFFIX}" / "table.dat").is_file():
            problems.append(f"EB {eb.uid} is not calibrated: {eb.ms_name}{SPLIT_SUFFIX} is not in its folder")
        else:
            inputs.append(EbInput(eb, run))
    return inputs, problems


def require_combinable(mous: Mous) -> list[EbInput]:
    inputs, problems = combination_inputs(mous)
    if problems:
        raise CombinationRefused("; ".join(problems))
    return inputs


def _check_free(mous: Mous) -> None:
    active = CombinationCopy.objects.filter(mous=mous, status__in=CombinationCopy.ACTIVE).first()
    if active is not None:
        raise CombinationRefused(f"copy {active.pk} is {active.get_status_display()}: wait for it")
    busy = Run.objects.filter(folder=str(combination_folder(mous)), status__in=ACTIVE_RUN_STATES).first()
    if busy is not None:
        raise RunRefused(
            f"run {busy.pk} is {busy.status} in Combination/calibrated: wait for it or cancel it"
        )


@transaction.atomic
def combination_copy_request(*, mous: Mous, by, from_scratch: bool = False) -> CombinationCopy:
    """Queue the copy of every EB's split into Combination/calibrated (refused with the reason)."""
    mous = Mous.objects.select_for_update().get(pk=mous.pk)
    require_combinable(mous)
    _check_free(mous)
    copy = CombinationCopy.objects.create(mous=mous, from_scratch=from_scratch, requested_by=by)
    transaction.on_commit(partial(current_app.send_task, task_names.COMBINATION_COPY, (copy.pk,)))
    return copy


def made_by_combination(mous: Mous) -> list[str]:
    """Top-level names in Combination/calibrated that a combination made (copies, run products,
    the runs' script copies and logs)."""
    names: set[str] = set()
    for copy in CombinationCopy.objects.filter(mous=mous):
        for item in copy.copied:
            names.update(item.get("names", []))
    folder = str(combination_folder(mous))
    for run in Run.objects.filter(folder=folder):
        names.update({run.casa_log_name, run.output_log_name})
        if run.script_version is not None:
            names.add(run.script_version.script.filename)
    for relpath in Product.objects.filter(run__folder=folder).values_list("relpath", flat=True):
        names.add(relpath.split("/", 1)[0])
    # What the generated script makes beside its products (flag versions of its inputs).
    names.update({COMBINED_MS, f"{COMBINED_MS}.flagversions", f"{COMBINED_MS}.listobs"})
    return sorted(n for n in names if n and "/" not in n and n not in {".", ".."})


def _remove(folder: Path, name: str) -> bool:
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

    def __init__(self, copy: CombinationCopy, total: int) -> None:
        self.copy, self.done, self.last = copy, 0, 0.0
        CombinationCopy.objects.filter(pk=copy.pk).update(bytes_total=total, heartbeat_at=timezone.now())

    def add(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self.last >= PROGRESS_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        CombinationCopy.objects.filter(pk=self.copy.pk).update(
            bytes_done=self.done, heartbeat_at=timezone.now()
        )


def _finish(copy: CombinationCopy, status: str, **fields) -> None:
    CombinationCopy.objects.filter(pk=copy.pk, status__in=CombinationCopy.ACTIVE).update(
        status=status, finished_at=timezone.now(), **fields
    )


def combination_copy_execute(copy_id: int) -> CombinationCopy:
    """The task body: (from scratch: remove what combination made), then copy each EB's
    `<ms>.split.cal` and `<ms>.split.fluxscale` through fds that follow no link."""
    claimed = CombinationCopy.objects.filter(pk=copy_id, status=CombinationCopy.Status.QUEUED).update(
        status=CombinationCopy.Status.COPYING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    copy = CombinationCopy.objects.select_related("mous").get(pk=copy_id)
    if not claimed:
        return copy
    try:
        inputs = require_combinable(copy.mous)
        target = combination_folder(copy.mous)
        target.mkdir(parents=True, exist_ok=True)
        removed = []
        if copy.from_scratch:
            removed = [name for name in made_by_combination(copy.mous) if _remove(target, name)]
        sources = []
        for item in inputs:
            base = eb_folder(item.eb)
            names = [item.split] + ([item.fluxscale] if (base / item.fluxscale).is_file() else [])
            for name in names:
                fd = open_fd_confined(name, base=base)
                st = os.fstat(fd)
                node = (
                    ingest.scan_tree(fd, name)
                    if stat.S_ISDIR(st.st_mode)
                    else ingest.Node(name, st.st_dev, st.st_ino, st.st_mode, st.st_size)
                )
                sources.append((item, name, fd, node))
        progress = _Progress(copy, sum(node.total for *_, node in sources))
        copied: dict[str, dict] = {}
        try:
            for item, name, fd, node in sources:
                _remove(target, name)
                if node.children is not None:
                    ingest.copy_tree(fd, node, target / name, name, progress)
                else:
                    ingest.copy_fd(fd, target / name, node.mode, node.size, name, progress)
                entry = copied.setdefault(item.eb.uid, {"eb": item.eb.uid, "run": item.run.pk, "names": []})
                entry["names"].append(name)
        finally:
            for *_, fd, _node in sources:
                os.close(fd)
        progress.flush()
        _finish(copy, CombinationCopy.Status.DONE, copied=list(copied.values()), removed=removed)
    except (UnsafePath, ingest.IngestFailed, CombinationRefused) as exc:
        _finish(copy, CombinationCopy.Status.FAILED, error=public_message(exc))
    except OSError as exc:
        log.exception("combination copy %s failed", copy.pk)
        _finish(copy, CombinationCopy.Status.FAILED, error=f"{type(exc).__name__}: {exc.strerror or exc}")
    copy.refresh_from_db()
    return copy


def copies_reap_stale(*, stale_after: int | None = None) -> list[int]:
    """FAIL every copy whose heartbeat stopped (its worker died): a copy never blocks for ever."""
    limit = timezone.now() - timedelta(seconds=stale_after or settings.RUN_STALE_AFTER_SECONDS)
    reaped = []
    for copy in CombinationCopy.objects.filter(status=CombinationCopy.Status.COPYING, heartbeat_at__lt=limit):
        seen = timezone.localtime(copy.heartbeat_at).strftime("%H:%M:%S") if copy.heartbeat_at else "-"
        if CombinationCopy.objects.filter(
            pk=copy.pk, status=CombinationCopy.Status.COPYING, heartbeat_at__lt=limit
        ).update(
            status=CombinationCopy.Status.FAILED,
            error=f"worker lost (no heartbeat since {seen}): copy again",
            finished_at=timezone.now(),
        ):
            reaped.append(copy.pk)
    return reaped
