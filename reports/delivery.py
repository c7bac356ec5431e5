"""Delivery, the data analyst's last step (the seeds' "Final checklist and wrap-up"): a QA2_PASS
or QA2_SEMIPASS MOUS is packaged into DELIVERIES_ROOT in the ALMA packager's tree; a QA2_FAIL
MOUS folder is moved to QA2FAILS_ROOT. A worker task (`reports.tasks.deliver`, casa queue)
does the work with progress and a heartbeat.

The package of a MOUS (the packager's folder and file names)::

    DELIVERIES_ROOT/<project code>/member.<uid___A001_X.._X..>/
        README                                  the MOUS folder's README
        member.<uid___A001_X.._X..>.manifest.json
        script/<ms>.scriptForCalibration.py     per EB: the version its latest calibration run ran
        script/scriptForFluxCalibration.py      several EBs: the latest combination run's version
        script/scriptForImagingPrep.py          the latest imaging-prep run's version
        script/scriptForImaging.py              the version of the imaging run that made the images
        log/<script name>.log                   the CASA log of each of those runs (e.g.
                                                <ms>.scriptForCalibration.py.log, scriptForImaging.py.log)
        qa/<ms>.qa2/<file>                      each EB's qa2/ folder, file names unchanged
        product/<image>.pbcor.fits, product/<image>.flux.fits   the images of that imaging run
                                                (reports.imaging.latest_images)

Decisions, so that the tree states nothing the portal does not know:

- Science goal and group OUS: the ALMA packager nests the member folder in
  science_goal.<uid>/group.<uid>/. The portal does not know those two uids (a MOUS carries its
  own uid and its project; `Mous.science_goal` is a free-text name, not an entity uid), and a
  placeholder would read as data. So the member folder sits directly below the project code,
  and the manifest says so: "science_goal_uid" and "group_ous_uid" are null, with a note.
- qa/: one folder per EB named `<ms>.qa2/` holding the EB's qa2/ files under their own names
  (the qa2 report's PNGs often start with the MS name already; a flat `<ms>_` prefix would
  double it, and a folder keeps each EB's report together).
- Scripts come from the script store (ScriptVersion.verify(): the bytes of the version the run
  ran, checked against their sha256), not from the run folder, which the next run overwrites.
- The manifest lists every other file of the package (path relative to the member folder,
  size, sha256, where it came from) and who asked, when, for which MOUS, from which runs.

How a delivery is made (`delivery_execute`), so that whatever is at the final path is complete
and verified:

1. Staging: DELIVERIES_ROOT/.staging/<MOUS folder name>/ (QA2FAILS_ROOT/.staging/... for a
   QA2 fail), keyed by the MOUS, so a new Delivery row after a failure resumes the old row's
   work. Every source under DATA_ROOT is opened through assignments.datafiles (no link is
   followed anywhere on the way; a link planted in a run folder fails the delivery with the
   path and the reason); folders are scanned with calibration.ingest.scan_tree (which refuses
   links, special and hard-linked files inside). Staged files are written with O_EXCL and
   O_NOFOLLOW below fds of the staging folder (their write-back started at once), their sha256
   computed from the bytes read. Reads honour DELIVERY_MAX_BYTES_PER_SECOND (the worker sleeps
   to stay under it).
   Resume: a staged file whose size and sha256 match its source's is kept; a missing,
   truncated or different one is copied again; anything else in staging is removed.
2. Verify: every staged file is read again and its sha256 compared with the source's; then it
   is fdatasync'ed (and every folder fsync'ed before the rename), so a package in place
   survives a crash of the node.
3. The manifest is written, the staging folder renamed to the final path (one rename on one
   file system), the parent folder fsync'ed; only then the row is DONE and the MOUS moves on
   (DELIVERING -> DELIVERED by the requesting user; QA2_FAIL -> FAILED_ARCHIVED).
4. QA2 fail: the whole MOUS folder is copied the same way to QA2FAILS_ROOT/<MOUS folder name>
   (its manifest `<MOUS folder name>.manifest.json` inside); the source folder is removed only
   after the copy is verified, renamed into place, and the source is seen unchanged since it was
   planned. Nothing is attached to JIRA here.

A final path that already exists with this MOUS's manifest, whose files and sources still hash
to it, counts as done (a worker lost between the rename and the database). A DONE delivery
executed again changes nothing. One worker at a time works on a MOUS (an flock under
VAR_DIR/locks, released by the kernel when a worker dies): a redelivered task resumes at once
(attempts + 1); `deliveries_reap_stale` fails a delivery whose heartbeat stopped ("worker lost
...: start again to resume").
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from assignments.datafiles import (
    UnsafePath,
    data_root,
    eb_folder,
    mous_folder,
    open_fd_confined,
    public_message,
    relative_to_data_root,
    stat_confined,
)
from assignments.models import Mous, MousState, uid_to_folder, user_may_ingest
from calibration.combination import latest_calibration_run
from calibration.imaging import imaging_folder, latest_script_run
from calibration.ingest import IngestFailed, Node, scan_tree
from calibration.models import Run, Script, ScriptTampered
from qa2portal.errors import Conflict
from reports.checklist import QA2_FOLDER, README_NAME
from reports.imaging import latest_images
from reports.models import Delivery, ReadmeVersion

log = logging.getLogger(__name__)

DELIVER_TASK = "reports.tasks.deliver"
STAGING_FOLDER = ".staging"
MANIFEST_VERSION = 1
MANIFEST_MAX_BYTES = 256 * 1024 * 1024
PROGRESS_SECONDS = 0.5  # bytes_done and the heartbeat are written this often (at least every second)
CHUNK = 256 * 1024  # stays in the L2 cache: 4 MB chunks halve the throughput of hashing while copying
MIN_CHUNK = 64 * 1024
COPY_THREADS = max(2, min(4, os.cpu_count() or 1))  # sha256 and I/O release the GIL
LOCK_WAIT_SECONDS = 30.0
NOTHING_DONE: dict[str, str] = {
    Delivery.Kind.PACKAGE: "no package is at the final path",
    Delivery.Kind.QA2_FAIL: "the MOUS folder was not removed",
}
NO_LAYOUT_UIDS = (
    "the ALMA packager nests member.<uid> in science_goal.<uid>/group.<uid>/; the portal does not "
    "know the science goal and group OUS uids of this MOUS, so the member folder is placed directly "
    "below the project code"
)

Kind = Delivery.Kind
Status = Delivery.Status
WORKING = (Status.COPYING, Status.VERIFYING)
PACKAGE_FROM = (MousState.QA2_PASS, MousState.QA2_SEMIPASS, MousState.DELIVERING)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

T = TypeVar("T")
R = TypeVar("R")


class DeliveryRefused(Conflict, ValueError):
    """No delivery now (wrong state, another delivery active, the package incomplete): 409."""


class DeliveryFailed(RuntimeError):
    """The delivery cannot go on; its text is the row's error (for the data analyst).
    `in_place`: the package (or archive) is already at its final path, which the text says."""

    def __init__(self, message: str, *, in_place: bool = False) -> None:
        super().__init__(message)
        self.in_place = in_place


class DeliveryStopped(RuntimeError):
    """The row left its active state under us (the reaper failed it): stop quietly."""


def may_deliver(user) -> bool:
    """DRMs, deputies and data analysts package and archive (the seeds: "assigned to DAs for
    packaging and delivery"); the same people who bring data in."""
    return user_may_ingest(user)


# --- what a delivery holds ----------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One file of a delivery: a file below DATA_ROOT (`base` + `name`) or bytes from the script store."""

    dest: str  # POSIX path inside the package (or the archived folder)
    label: str  # where it comes from, for the manifest (paths relative to DATA_ROOT)
    size: int
    base: Path | None = None
    name: str = ""
    data: bytes | None = None
    ident: tuple[int, int] | None = None  # (st_dev, st_ino) when planned: a swapped file is refused


@dataclass
class Plan:
    kind: str
    root: Path  # DELIVERIES_ROOT or QA2FAILS_ROOT
    final_name: str  # below root: "<project>/member.<uid>" or "<mous folder>"
    manifest_name: str
    sources: list[Source] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)  # every folder of the tree, empty ones too
    missing: list[str] = field(default_factory=list)
    about: dict = field(default_factory=dict)  # runs, images, README version: for the manifest
    staging_name: str = ""  # below root: ".staging/<mous folder>"

    @property
    def final(self) -> Path:
        return self.root / self.final_name

    @property
    def staging(self) -> Path:
        return self.root / self.staging_name

    @property
    def total(self) -> int:
        return sum(s.size for s in self.sources)


def member_name(mous: Mous) -> str:
    return f"member.{uid_to_folder(mous.uid)}"


def package_path(mous: Mous) -> Path:
    return Path(settings.DELIVERIES_ROOT) / mous.project.code / member_name(mous)


def archive_path(mous: Mous) -> Path:
    return Path(settings.QA2FAILS_ROOT) / mous.folder_name


def target_of(mous: Mous, kind: str) -> Path:
    return package_path(mous) if kind == Kind.PACKAGE else archive_path(mous)


def _file_source(base: Path, name: str, dest: str, what: str, missing: list[str]) -> Source | None:
    """The regular file `name` below `base` (no link anywhere: UnsafePath), or a missing item."""
    try:
        st = stat_confined(name, base=base)
    except FileNotFoundError:
        missing.append(f"{what} ({relative_to_data_root(base / name)}) does not exist")
        return None
    if not stat.S_ISREG(st.st_mode):
        missing.append(f"{what} ({relative_to_data_root(base / name)}) is not a file")
        return None
    return Source(
        dest=dest,
        label=relative_to_data_root(base / name),
        size=st.st_size,
        base=base,
        name=name,
        ident=(st.st_dev, st.st_ino),
    )


def _files_of(node: Node, prefix: str = "") -> Iterator[tuple[str, Node]]:
    for child in node.children or []:
        rel = f"{prefix}{child.name}"
        if child.children is None:
            yield rel, child
        else:
            yield rel + "/", child
            yield from _files_of(child, rel + "/")


def _scan(base: Path, name: str) -> Node:
    """The folder `name` below `base`, scanned through fds (links refused on the way and inside)."""
    fd = open_fd_confined(name, base=base)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise DeliveryFailed(f"{relative_to_data_root(base / name)} is not a folder")
        return scan_tree(fd, name)
    finally:
        os.close(fd)


def _run_sources(plan: Plan, role: str, run: Run | None, what: str, eb_uid: str | None = None) -> None:
    """The script a run ran and its CASA log, named after the script."""
    if run is None:
        plan.missing.append(f"no run of {what}")
        return
    version = run.script_version
    if version is None:
        plan.missing.append(f"run #{run.pk} of {what} has no script version")
        return
    name = version.script.filename
    try:
        data = version.verify()
    except (ScriptTampered, OSError) as exc:
        plan.missing.append(f"{name} v{version.number}: {exc}")
        return
    plan.sources.append(
        Source(
            dest=f"script/{name}",
            label=f"script store: {name} v{version.number} (sha256 {version.sha256})",
            size=len(data),
            data=data,
        )
    )
    logged = _file_source(
        Path(run.folder), run.casa_log_name, f"log/{name}.log", f"the CASA log of run #{run.pk}", plan.missing
    )
    if logged is not None:
        plan.sources.append(logged)
    plan.about.setdefault("runs", []).append(
        {
            "role": role,
            "eb": eb_uid,
            "run": run.pk,
            "status": run.status,
            "steps": run.selected_steps or "all",
            "script": name,
            "script_version": version.number,
            "script_sha256": version.sha256,
        }
    )


def package_plan(mous: Mous) -> Plan:
    """What the package of `mous` holds, and what is missing for it (links raise UnsafePath or
    IngestFailed: a planted link is never "missing")."""
    plan = Plan(
        kind=Kind.PACKAGE,
        root=Path(settings.DELIVERIES_ROOT),
        final_name=f"{mous.project.code}/{member_name(mous)}",
        manifest_name=f"{member_name(mous)}.manifest.json",
        staging_name=f"{STAGING_FOLDER}/{mous.folder_name}",
        folders=["script", "log", "qa", "product"],
    )
    ebs = list(mous.execution_blocks.order_by("uid"))
    if not ebs:
        plan.missing.append(f"{mous.uid} has no EBs")
    for eb in ebs:
        _run_sources(
            plan, "calibration", latest_calibration_run(eb), f"{eb.ms_name}.scriptForCalibration.py", eb.uid
        )
        folder = eb_folder(eb)
        qa_dest = f"qa/{eb.ms_name}.qa2"
        try:
            tree = _scan(folder, QA2_FOLDER)
        except FileNotFoundError:
            plan.missing.append(f"EB {eb.uid}: no {QA2_FOLDER} directory (make its qa2 report)")
            continue
        files = [(rel, node) for rel, node in _files_of(tree) if node.children is None]
        if not files:
            plan.missing.append(f"EB {eb.uid}: the {QA2_FOLDER} directory is empty (make its qa2 report)")
        plan.folders.append(qa_dest)
        for rel, node in _files_of(tree):
            if node.children is not None:
                plan.folders.append(f"{qa_dest}/{rel.rstrip('/')}")
                continue
            plan.sources.append(
                Source(
                    dest=f"{qa_dest}/{rel}",
                    label=relative_to_data_root(folder / QA2_FOLDER / rel),
                    size=node.size,
                    base=folder / QA2_FOLDER,
                    name=rel,
                    ident=(node.dev, node.ino),
                )
            )
    if len(ebs) > 1:
        _run_sources(
            plan,
            "combination",
            latest_script_run(mous, Script.Kind.COMBINATION),
            "scriptForFluxCalibration.py",
        )
    _run_sources(
        plan, "imaging_prep", latest_script_run(mous, Script.Kind.IMAGING_PREP), "scriptForImagingPrep.py"
    )
    images = latest_images(mous)
    imaging_run = images[0].run if images else latest_script_run(mous, Script.Kind.IMAGING)
    _run_sources(plan, "imaging", imaging_run, "scriptForImaging.py")
    if not images:
        plan.missing.append("no imaging run measured an image: no .pbcor.fits and .flux.fits to deliver")
    base = imaging_folder(mous)
    for qa in images:
        for name in (qa.pbcor_fits, qa.flux_fits):
            source = _file_source(base, name, f"product/{name}", f"the image {name}", plan.missing)
            if source is not None:
                plan.sources.append(source)
                if "/" in name:
                    plan.folders.append(f"product/{name.rsplit('/', 1)[0]}")
    plan.about["images"] = [{"name": qa.name, "kind": qa.kind, "run": qa.run_id} for qa in images]
    readme = ReadmeVersion.objects.filter(mous=mous).first()
    plan.about["readme_version"] = readme.number if readme else None
    source = _file_source(mous_folder(mous), README_NAME, README_NAME, "the README", plan.missing)
    if source is not None:
        plan.sources.append(source)
    _check_unique(plan)
    return plan


def qa2fail_plan(mous: Mous) -> Plan:
    """The whole MOUS folder (FileNotFoundError when it is not there)."""
    folder = mous.folder_name
    plan = Plan(
        kind=Kind.QA2_FAIL,
        root=Path(settings.QA2FAILS_ROOT),
        final_name=folder,
        manifest_name=f"{folder}.manifest.json",
        staging_name=f"{STAGING_FOLDER}/{folder}",
    )
    base = mous_folder(mous)
    tree = _scan(data_root(), folder)
    for rel, node in _files_of(tree):
        if node.children is not None:
            plan.folders.append(rel.rstrip("/"))
            continue
        plan.sources.append(
            Source(
                dest=rel,
                label=relative_to_data_root(base / rel),
                size=node.size,
                base=base,
                name=rel,
                ident=(node.dev, node.ino),
            )
        )
    plan.about["source"] = relative_to_data_root(base)
    _check_unique(plan)
    return plan


def _check_unique(plan: Plan) -> None:
    seen: set[str] = set()
    for source in plan.sources:
        if source.dest in seen or source.dest == plan.manifest_name:
            raise DeliveryFailed(f"two files would be {source.dest} in the delivery")
        seen.add(source.dest)


# --- request ------------------------------------------------------------------------------
@transaction.atomic
def delivery_request(*, mous: Mous, kind: str, by) -> Delivery:
    """Queue a delivery of `mous`: PACKAGE from QA2_PASS/QA2_SEMIPASS (moved to DELIVERING) or
    DELIVERING (a start again after a failure: resumes the staging); QA2_FAIL from QA2_FAIL.
    DeliveryRefused (409, nothing changed) otherwise, or when a delivery of the MOUS is active
    or the package would miss something. The task is sent after commit."""
    locked = Mous.objects.select_for_update().select_related("project").get(pk=mous.pk)
    if kind not in Kind.values:
        raise DeliveryRefused(f"unknown kind of delivery {kind!r}: one of {', '.join(Kind.values)}")
    active = Delivery.objects.filter(mous=locked, status__in=Delivery.ACTIVE).first()
    if active is not None:
        raise DeliveryRefused(
            f"{active.get_kind_display().lower()} {active.pk} of {locked.uid} is "
            f"{active.get_status_display().lower()}: wait for it to end"
        )
    if kind == Kind.PACKAGE:
        if locked.state not in PACKAGE_FROM:
            raise DeliveryRefused(
                f"{locked.uid} is {locked.get_state_display()}: a package is made from QA2 pass or "
                "QA2 semipass (or Delivering, to start a failed packaging again)"
            )
        try:
            plan = package_plan(locked)
        except (UnsafePath, IngestFailed, DeliveryFailed) as exc:
            raise DeliveryRefused(f"{locked.uid} cannot be packaged: {public_message(exc)}") from None
        if plan.missing:
            raise DeliveryRefused(
                f"{locked.uid} cannot be packaged, {len(plan.missing)} item(s) missing: "
                + "; ".join(plan.missing)
            )
    else:
        if locked.state != MousState.QA2_FAIL:
            raise DeliveryRefused(
                f"{locked.uid} is {locked.get_state_display()}: only a QA2 fail is moved to qa2fails"
            )
        try:
            stat_confined(locked.folder_name, base=data_root())
        except FileNotFoundError:
            # Gone after an earlier attempt archived it (the worker was lost before the
            # database knew): the execution checks the archive against its manifest.
            if not os.path.lexists(archive_path(locked)):
                raise DeliveryRefused(
                    f"the folder {locked.folder_name} of {locked.uid} does not exist"
                ) from None
        except UnsafePath as exc:
            raise DeliveryRefused(public_message(exc)) from None
    delivery = Delivery.objects.create(
        mous=locked, kind=kind, requested_by=by, target=str(target_of(locked, kind))
    )
    if kind == Kind.PACKAGE and locked.state != MousState.DELIVERING:
        locked.transition(MousState.DELIVERING, by=by, note=f"packaging for delivery ({delivery.pk})")
        for name in ("state", "state_changed_at", "version"):
            setattr(mous, name, getattr(locked, name))
    transaction.on_commit(
        partial(current_app.send_task, DELIVER_TASK, (delivery.pk,), queue=settings.CASA_QUEUE)
    )
    return delivery


# --- the worker's side: files -------------------------------------------------------------
def _open_dir(root_fd: int, parts: Sequence[str], *, create: bool = False) -> int:
    """An fd of the folder root/parts..., walked without following links (made when `create`)."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise DeliveryFailed(f"{part} is a link or a file where a folder is expected") from None
                raise
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_root(path: Path) -> int:
    """DELIVERIES_ROOT or QA2FAILS_ROOT (trusted settings: made when missing)."""
    path.mkdir(parents=True, exist_ok=True)
    return os.open(path, _DIR_FLAGS & ~os.O_NOFOLLOW)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _remove(dir_fd: int, name: str) -> None:
    """Remove a file, link or folder `name` (never through a link)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


class _Work:
    """One execution: the progress counter (bytes_done, the heartbeat), the throughput limit,
    the stop flag, and a pool of threads (hashing and file I/O release the GIL). Only the
    calling thread touches the database."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.rate = max(0, int(settings.DELIVERY_MAX_BYTES_PER_SECOND or 0))
        self.chunk = min(CHUNK, max(MIN_CHUNK, self.rate // 4)) if self.rate else CHUNK
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.done = 0
        self.read = 0
        self.started = time.monotonic()
        self.last_beat = 0.0
        self.local = threading.local()

    # progress and heartbeat
    def add(self, n: int) -> None:
        with self.lock:
            self.done += n

    def reset(self) -> None:
        with self.lock:
            self.done = 0

    def beat(self, *, force: bool = False, **fields) -> None:
        if not force and time.monotonic() - self.last_beat < PROGRESS_SECONDS:
            return
        self.last_beat = time.monotonic()
        touched = Delivery.objects.filter(pk=self.delivery.pk, status__in=WORKING).update(
            bytes_done=self.done, heartbeat_at=timezone.now(), **fields
        )
        if not touched:
            self.stop.set()
            raise DeliveryStopped(f"delivery {self.delivery.pk} is no longer active")

    def phase(self, status: str, **fields) -> None:
        self.reset()
        self.beat(force=True, status=status, **fields)

    # throughput
    def throttle(self, n: int) -> None:
        """Called after `n` bytes were read: sleep so that reads stay under the limit."""
        if self.stop.is_set():
            raise DeliveryStopped("stopped")
        if not self.rate:
            return
        with self.lock:
            self.read += n
            due = self.started + self.read / self.rate
        while (left := due - time.monotonic()) > 0:
            if self.stop.wait(min(left, 0.25)):
                raise DeliveryStopped("stopped")

    def buffer(self) -> memoryview:
        buf = getattr(self.local, "buffer", None)
        if buf is None:
            buf = self.local.buffer = memoryview(bytearray(self.chunk))
        return buf

    def parallel(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """fn over items in the pool (largest first is the caller's order), heartbeating while
        they run; the first error stops the others and is raised."""
        results: list[R | None] = [None] * len(items)
        pool = ThreadPoolExecutor(max_workers=COPY_THREADS, thread_name_prefix="delivery")
        futures: dict[Future, int] = {pool.submit(fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=PROGRESS_SECONDS, return_when=FIRST_EXCEPTION)
                for future in finished:
                    results[futures[future]] = future.result()
                self.beat()
        except BaseException:
            self.stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    # reading
    def hash_fd(self, fd: int, *, throttled: bool, count: bool = False) -> tuple[str, int]:
        """sha256 and size of what `fd` holds from its start."""
        buf = self.buffer()
        digest = hashlib.sha256()
        size = 0
        os.lseek(fd, 0, os.SEEK_SET)
        while n := os.readv(fd, [buf]):
            digest.update(buf[:n])
            size += n
            if throttled:
                self.throttle(n)
            elif self.stop.is_set():
                raise DeliveryStopped("stopped")
            if count:
                self.add(n)
        return digest.hexdigest(), size


@contextmanager
def _source_fd(source: Source) -> Iterator[tuple[int, os.stat_result]]:
    """The open source file (walked from DATA_ROOT without links), checked to be the planned one."""
    assert source.base is not None
    fd = open_fd_confined(source.name, base=source.base)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DeliveryFailed(f"{source.label} is not a file")
        if source.ident is not None and (st.st_dev, st.st_ino) != source.ident:
            raise DeliveryFailed(f"{source.label} was replaced while it was delivered: start again")
        yield fd, st
    finally:
        os.close(fd)


def _source_sha(work: _Work, source: Source) -> str:
    if source.data is not None:
        return hashlib.sha256(source.data).hexdigest()
    with _source_fd(source) as (fd, _st):
        return work.hash_fd(fd, throttled=True)[0]


def _staged_sha(work: _Work, dir_fd: int, name: str, size: int) -> str | None:
    """sha256 of the staged file `name` when it is a regular file of `size` bytes; anything
    else there (a link, a folder, a truncated file) is removed and None answered."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise
        _remove(dir_fd, name)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            os.close(fd)
            fd = -1
            _remove(dir_fd, name)
            return None
        os.set_blocking(fd, True)
        return work.hash_fd(fd, throttled=True)[0]
    finally:
        if fd >= 0:
            os.close(fd)


def _libc_sync_file_range() -> Callable[[int], object] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return lambda fd: call(fd, 0, 0, SYNC_FILE_RANGE_WRITE)


SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = _libc_sync_file_range()


def _start_writeback(fd: int) -> None:
    """Have the kernel start writing a staged file to disk now, without waiting
    (sync_file_range SYNC_FILE_RANGE_WRITE): the disk works while the other files are hashed,
    and the fdatasync after the verification waits for little. A hint only."""
    if _sync_file_range is not None:
        _sync_file_range(fd)


def _write_all(out: int, view: memoryview) -> None:
    while view:
        view = view[os.write(out, view) :]


def _copy(work: _Work, source: Source, dir_fd: int, name: str) -> str:
    """Copy `source` to the new file `name`; its sha256, from the bytes read."""
    out = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
    digest = hashlib.sha256()
    try:
        if source.data is not None:
            view = memoryview(source.data)
            for offset in range(0, len(view), work.chunk):
                part = view[offset : offset + work.chunk]
                digest.update(part)
                _write_all(out, part)
                work.add(len(part))
            os.fchmod(out, 0o644)
        else:
            with _source_fd(source) as (fd, before):
                buf = work.buffer()
                copied = 0
                while n := os.readv(fd, [buf]):
                    digest.update(buf[:n])
                    _write_all(out, buf[:n])
                    copied += n
                    work.add(n)
                    work.throttle(n)
                after = os.fstat(fd)
                if copied != after.st_size or (after.st_size, after.st_mtime_ns) != (
                    before.st_size,
                    before.st_mtime_ns,
                ):
                    raise DeliveryFailed(f"{source.label} changed while it was copied: start again")
                os.fchmod(out, (stat.S_IMODE(before.st_mode) & 0o777) | 0o644)  # readable by whoever reads it
                os.utime(out, ns=(before.st_atime_ns, before.st_mtime_ns))
        _start_writeback(out)
    except BaseException:
        os.close(out)
        with suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(out)
    return digest.hexdigest()


@dataclass(frozen=True)
class Staged:
    source: Source
    sha256: str
    kept: bool  # already staged by an earlier attempt (size and sha256 matched)


def _split(dest: str) -> tuple[list[str], str]:
    parts = dest.split("/")
    return parts[:-1], parts[-1]


def _stage_one(work: _Work, staging_fd: int, source: Source) -> Staged:
    folders, name = _split(source.dest)
    dir_fd = _open_dir(staging_fd, folders)
    try:
        staged = _staged_sha(work, dir_fd, name, source.size)
        if staged is not None:
            wanted = _source_sha(work, source)
            if staged == wanted:
                work.add(source.size)
                return Staged(source, wanted, kept=True)
            _remove(dir_fd, name)
        return Staged(source, _copy(work, source, dir_fd, name), kept=False)
    finally:
        os.close(dir_fd)


def verify_staged(work: _Work, staging_fd: int, staged: Staged) -> None:
    """Read the staged file again: its sha256 must be the source's (a mismatch removes it)."""
    folders, name = _split(staged.source.dest)
    dir_fd = _open_dir(staging_fd, folders)
    try:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise DeliveryFailed(f"verification: {staged.source.dest} disappeared from staging") from None
        try:
            os.set_blocking(fd, True)
            sha, size = work.hash_fd(fd, throttled=True, count=True)
            if (sha, size) == (staged.sha256, staged.source.size):
                os.fdatasync(fd)  # on disk before the package is renamed into place
        finally:
            os.close(fd)
        if (sha, size) != (staged.sha256, staged.source.size):
            _remove(dir_fd, name)
            raise DeliveryFailed(
                f"verification failed: the staged {staged.source.dest} ({size} bytes, sha256 {sha[:12]}...) "
                f"is not its source {staged.source.label} ({staged.source.size} bytes, sha256 "
                f"{staged.sha256[:12]}...); it was removed: start again to copy it anew"
            )
    finally:
        os.close(dir_fd)


def _prune(dir_fd: int, prefix: str, files: set[str], folders: set[str]) -> None:
    """Remove from the staging tree whatever the plan does not name."""
    with os.scandir(dir_fd) as entries:
        listed = list(entries)
    for entry in listed:
        rel = f"{prefix}{entry.name}"
        if entry.is_dir(follow_symlinks=False) and rel in folders:
            child = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                _prune(child, rel + "/", files, folders)
            finally:
                os.close(child)
        elif not (entry.is_file(follow_symlinks=False) and rel in files):
            _remove(dir_fd, entry.name)


def _fsync_tree(dir_fd: int) -> None:
    with os.scandir(dir_fd) as entries:
        folders = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    for name in folders:
        child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            _fsync_tree(child)
        finally:
            os.close(child)
    os.fsync(dir_fd)


def _read_manifest(dir_fd: int, name: str) -> dict[str, Any] | None:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_MAX_BYTES:
            return None
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
        loaded = json.loads(data)
        return loaded if isinstance(loaded, dict) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _manifest(delivery: Delivery, plan: Plan, staged: list[Staged]) -> dict:
    mous = delivery.mous
    by = delivery.requested_by
    files: list[dict[str, Any]] = [
        {"path": s.source.dest, "size": s.source.size, "sha256": s.sha256, "source": s.source.label}
        for s in sorted(staged, key=lambda s: s.source.dest)
    ]
    manifest: dict = {
        "manifest": MANIFEST_VERSION,
        "kind": plan.kind,
        "project": mous.project.code,
        "mous": mous.uid,
    }
    if plan.kind == Kind.PACKAGE:
        manifest |= {
            "member": member_name(mous),
            "science_goal_uid": None,
            "group_ous_uid": None,
            "layout_note": NO_LAYOUT_UIDS,
        }
    else:
        manifest["mous_folder"] = mous.folder_name
    manifest |= {
        "delivery": delivery.pk,
        "attempt": delivery.attempts,
        "requested_by": by.get_username() if by is not None else None,
        "requested_at": delivery.created_at.isoformat(),
        "verified_at": timezone.now().isoformat(),
        **plan.about,
        "total_bytes": sum(s.source.size for s in staged),
        "kept_from_earlier_attempts": sum(s.kept for s in staged),  # staged before, verified again
        "files": files,
    }
    return manifest


def _write_manifest(staging_fd: int, name: str, manifest: dict) -> None:
    _remove(staging_fd, name)
    fd = os.open(name, _NEW_FILE_FLAGS, 0o644, dir_fd=staging_fd)
    try:
        _write_all(fd, memoryview(json.dumps(manifest, indent=1).encode("utf-8") + b"\n"))
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _final_check(
    work: _Work, plan: Plan, final_fd: int
) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]], bool]:
    """(the manifest at the final path when it is this MOUS's, its files by path, whether every
    final file still hashes to it)."""
    mous = work.delivery.mous
    manifest = _read_manifest(final_fd, plan.manifest_name)
    if manifest is None or manifest.get("kind") != plan.kind or manifest.get("mous") != mous.uid:
        return None, {}, False
    listed = manifest.get("files")
    if not isinstance(listed, list) or not all(isinstance(f, dict) for f in listed):
        return None, {}, False
    entries = {str(f.get("path")): f for f in listed}
    work.phase(Status.VERIFYING, bytes_total=sum(int(f.get("size") or 0) for f in listed))

    def check(entry: dict[str, Any]) -> bool:
        folders, name = _split(str(entry["path"]))
        try:
            dir_fd = _open_dir(final_fd, folders)
        except (OSError, DeliveryFailed):
            return False
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError:
            return False
        finally:
            os.close(dir_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            os.set_blocking(fd, True)
            return work.hash_fd(fd, throttled=True, count=True) == (entry.get("sha256"), entry.get("size"))
        finally:
            os.close(fd)

    ordered = sorted(entries.values(), key=lambda f: -int(f.get("size") or 0))
    return manifest, entries, all(work.parallel(check, ordered))


def _sources_hash_to(work: _Work, sources: list[Source], entries: dict[str, dict[str, Any]]) -> bool:
    """Whether each of `sources` is listed in `entries` with its size and sha256 (hashed now)."""
    if any(s.dest not in entries or entries[s.dest].get("size") != s.size for s in sources):
        return False
    shas = work.parallel(partial(_source_sha, work), sources)
    return all(entries[s.dest].get("sha256") == sha for s, sha in zip(sources, shas, strict=True))


# --- the worker's side: the steps -----------------------------------------------------------
def _lock(mous_id: int, wait_seconds: float) -> int | None:
    """The MOUS's delivery lock (flock; the kernel releases it when the worker dies), or None."""
    path = Path(settings.VAR_DIR) / "locks" / f"delivery-mous{mous_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.2)


def _fail(delivery: Delivery, message: str) -> None:
    Delivery.objects.filter(pk=delivery.pk, status__in=Delivery.ACTIVE).update(
        status=Status.FAILED, error=message[:4000], finished_at=timezone.now()
    )


def delivery_execute(delivery_id: int) -> Delivery:
    """The task body (see the module docstring). Never raises for a delivery's own failure:
    the row says FAILED and why."""
    delivery = Delivery.objects.select_related("mous__project", "requested_by").get(pk=delivery_id)
    if not delivery.is_active:
        return delivery  # DONE or FAILED: nothing to do (a DONE delivery is never touched again)
    lock = _lock(delivery.mous_id, LOCK_WAIT_SECONDS)
    if lock is None:
        # Another worker (alive: it holds the lock) works on this MOUS. A row it owns is left to it.
        Delivery.objects.filter(pk=delivery.pk, status=Status.QUEUED).update(
            status=Status.FAILED,
            error="another worker is still working on this MOUS's delivery: start again when it has ended",
            finished_at=timezone.now(),
        )
        delivery.refresh_from_db()
        return delivery
    try:
        # Holding the lock, no live worker has this row: a QUEUED row, or one whose worker died
        # (a redelivered task), is ours.
        claimed = Delivery.objects.filter(pk=delivery.pk, status__in=Delivery.ACTIVE).update(
            status=Status.COPYING, attempts=F("attempts") + 1, heartbeat_at=timezone.now(), error=""
        )
        if claimed:
            delivery.refresh_from_db()
            _execute(delivery)
    finally:
        os.close(lock)
    delivery.refresh_from_db()
    return delivery


def _execute(delivery: Delivery) -> None:
    work = _Work(delivery)
    try:
        if delivery.kind == Kind.PACKAGE:
            _package(work)
        else:
            _archive(work)
    except DeliveryStopped:
        log.info("delivery %s stopped: it is no longer active", delivery.pk)
    except DeliveryFailed as exc:
        _fail(
            delivery,
            public_message(exc) if exc.in_place else f"{public_message(exc)}; {NOTHING_DONE[delivery.kind]}",
        )
    except (UnsafePath, IngestFailed, Conflict) as exc:
        _fail(delivery, f"{public_message(exc)}; {NOTHING_DONE[delivery.kind]}")
    except OSError as exc:
        log.exception("delivery %s failed", delivery.pk)
        where = f" ({exc.filename})" if exc.filename else ""
        _fail(delivery, public_message(f"{type(exc).__name__}: {exc.strerror or exc}{where}"))
    except Exception as exc:  # the row must never stay active for a bug
        log.exception("delivery %s failed", delivery.pk)
        _fail(delivery, public_message(f"{type(exc).__name__}: {exc}"))


def _all_folders(plan: Plan) -> set[str]:
    folders = set(plan.folders)
    for source in plan.sources:
        parts = source.dest.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return folders


def _stage_and_verify(work: _Work, plan: Plan, root_fd: int) -> list[Staged]:
    staging_parent, staging_name = _split(plan.staging_name)
    parent_fd = _open_dir(root_fd, staging_parent, create=True)
    try:
        staging_fd = _open_dir(parent_fd, [staging_name], create=True)
    finally:
        os.close(parent_fd)
    try:
        folders = _all_folders(plan)
        _prune(staging_fd, "", {s.dest for s in plan.sources}, folders)  # an earlier attempt's leftovers
        for folder in sorted(folders):
            os.close(_open_dir(staging_fd, folder.split("/"), create=True))
        work.phase(Status.COPYING, bytes_total=plan.total)
        ordered = sorted(plan.sources, key=lambda s: -s.size)  # largest first: the threads end together
        staged = work.parallel(partial(_stage_one, work, staging_fd), ordered)
        work.beat(force=True)
        work.phase(Status.VERIFYING)
        work.parallel(partial(verify_staged, work, staging_fd), staged)
        work.beat(force=True)
        return staged
    finally:
        os.close(staging_fd)


def _into_place(work: _Work, plan: Plan, root_fd: int, staged: list[Staged]) -> dict:
    """Write the manifest into the staging folder, then rename it to the final path."""
    manifest = _manifest(work.delivery, plan, staged)
    staging_parent, staging_name = _split(plan.staging_name)
    final_parent, final_name = _split(plan.final_name)
    src_fd = _open_dir(root_fd, staging_parent)
    dst_fd = _open_dir(root_fd, final_parent, create=True)
    try:
        staging_fd = _open_dir(src_fd, [staging_name])
        try:
            _write_manifest(staging_fd, plan.manifest_name, manifest)
            _fsync_tree(staging_fd)
        finally:
            os.close(staging_fd)
        if _exists(dst_fd, final_name):
            raise DeliveryFailed(f"{plan.final} appeared meanwhile: nothing was overwritten")
        os.rename(staging_name, final_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        os.fsync(dst_fd)
        os.fsync(src_fd)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    return manifest


def _open_final(plan: Plan, root_fd: int) -> tuple[int, int] | None:
    """(an fd of the final path's parent, an fd of the final folder), or None when it does not exist."""
    final_parent, final_name = _split(plan.final_name)
    try:
        parent_fd = _open_dir(root_fd, final_parent)
    except FileNotFoundError:
        return None
    try:
        if not _exists(parent_fd, final_name):
            os.close(parent_fd)
            return None
        try:
            return parent_fd, _open_dir(parent_fd, [final_name])
        except DeliveryFailed:
            raise DeliveryFailed(
                f"{plan.final} exists and is not a folder: nothing was overwritten"
            ) from None
    except BaseException:
        with suppress(OSError):
            os.close(parent_fd)
        raise


def _not_ours(plan: Plan) -> DeliveryFailed:
    return DeliveryFailed(
        f"{plan.final} already exists and is not this MOUS's delivery: nothing was overwritten (move "
        "it away, then start again)"
    )


def _existing_package(work: _Work, plan: Plan, root_fd: int) -> dict | None:
    """When the package exists: its manifest if it is this MOUS's and its files and sources
    still hash to it (done). One of ours that no longer does goes back to staging, where the
    copy resumes; anything else fails."""
    opened = _open_final(plan, root_fd)
    if opened is None:
        return None
    parent_fd, final_fd = opened
    try:
        try:
            manifest, entries, files_ok = _final_check(work, plan, final_fd)
        finally:
            os.close(final_fd)
        if manifest is None:
            raise _not_ours(plan)
        same_files = files_ok and set(entries) == {s.dest for s in plan.sources}
        if same_files and _sources_hash_to(work, plan.sources, entries):
            return manifest
        staging_parent, staging_name = _split(plan.staging_name)
        staging_parent_fd = _open_dir(root_fd, staging_parent, create=True)
        try:
            _remove(staging_parent_fd, staging_name)
            os.rename(
                _split(plan.final_name)[1], staging_name, src_dir_fd=parent_fd, dst_dir_fd=staging_parent_fd
            )
        finally:
            os.close(staging_parent_fd)
        return None
    finally:
        os.close(parent_fd)


def _existing_archive(work: _Work, plan: Plan, root_fd: int, present: list[Source]) -> dict | None:
    """When the archive exists: its manifest if it is this MOUS's, verifies, and whatever is
    left of the MOUS folder (`present`, maybe nothing: removed after the archive was made) is
    in it unchanged. Otherwise nothing is touched: a person must look."""
    opened = _open_final(plan, root_fd)
    if opened is None:
        return None
    parent_fd, final_fd = opened
    try:
        manifest, entries, files_ok = _final_check(work, plan, final_fd)
    finally:
        os.close(final_fd)
        os.close(parent_fd)
    if manifest is None:
        raise _not_ours(plan)
    if not files_ok:
        raise DeliveryFailed(
            f"the archive at {plan.final} no longer matches its manifest: a person must look", in_place=True
        )
    if not _sources_hash_to(work, present, entries):
        raise DeliveryFailed(
            f"the folder {plan.about.get('source', '')} differs from its archive at {plan.final}: "
            "a person must look",
            in_place=True,
        )
    return manifest


def _package(work: _Work) -> None:
    delivery = work.delivery
    mous = delivery.mous
    plan = package_plan(mous)
    if plan.missing:
        raise DeliveryFailed(f"{len(plan.missing)} item(s) missing: " + "; ".join(plan.missing))
    root_fd = _open_root(plan.root)
    try:
        manifest = _existing_package(work, plan, root_fd)
        if manifest is None:
            staged = _stage_and_verify(work, plan, root_fd)
            mous.refresh_from_db()
            if mous.state != MousState.DELIVERING:
                raise DeliveryFailed(
                    f"{mous.uid} is {mous.get_state_display()}, not Delivering: the verified package "
                    "stays in staging (start again once it is Delivering)"
                )
            manifest = _into_place(work, plan, root_fd, staged)
    finally:
        os.close(root_fd)
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if row.status not in WORKING:
            raise DeliveryStopped("no longer active")
        locked = Mous.objects.select_for_update().get(pk=mous.pk)
        if locked.state == MousState.DELIVERING:
            locked.transition(
                MousState.DELIVERED, by=row.requested_by, note=f"delivered: {plan.final} ({delivery.pk})"
            )
        elif locked.state != MousState.DELIVERED:
            raise DeliveryFailed(
                f"{locked.uid} is {locked.get_state_display()}: the package is at {plan.final}; start again "
                "once the MOUS is Delivering to record it",
                in_place=True,
            )
        _done(row, plan, manifest)


def _done(row: Delivery, plan: Plan, manifest: dict) -> None:
    total = int(manifest.get("total_bytes") or 0)
    Delivery.objects.filter(pk=row.pk).update(
        status=Status.DONE,
        manifest=manifest,
        target=str(plan.final),
        bytes_total=total,
        bytes_done=total,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        error="",
    )


def _same_tree(plan: Plan, now: Plan) -> bool:
    return {(s.dest, s.size, s.ident) for s in plan.sources} == {
        (s.dest, s.size, s.ident) for s in now.sources
    } and set(plan.folders) == set(now.folders)


def _archive(work: _Work) -> None:
    delivery = work.delivery
    mous = delivery.mous
    root = Path(settings.QA2FAILS_ROOT)
    try:
        plan = qa2fail_plan(mous)
        present = True
    except FileNotFoundError:  # removed after an earlier attempt archived it: the archive must say so
        plan = Plan(
            kind=Kind.QA2_FAIL,
            root=root,
            final_name=mous.folder_name,
            manifest_name=f"{mous.folder_name}.manifest.json",
            staging_name=f"{STAGING_FOLDER}/{mous.folder_name}",
            about={"source": mous.folder_name},
        )
        present = False
    root_fd = _open_root(root)
    try:
        manifest = _existing_archive(work, plan, root_fd, plan.sources)
        if manifest is None:
            if not present:
                raise DeliveryFailed(f"the folder {mous.folder_name} of {mous.uid} does not exist")
            staged = _stage_and_verify(work, plan, root_fd)
            mous.refresh_from_db()
            if mous.state != MousState.QA2_FAIL:
                _remove_staging(root_fd, plan)
                raise DeliveryFailed(
                    f"{mous.uid} is {mous.get_state_display()} now, not QA2 fail: nothing was archived"
                )
            if not _same_tree(plan, qa2fail_plan(mous)):
                raise DeliveryFailed(
                    f"the folder {mous.folder_name} changed while it was copied: start again to copy "
                    "what changed"
                )
            manifest = _into_place(work, plan, root_fd, staged)
    finally:
        os.close(root_fd)
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if row.status not in WORKING:
            raise DeliveryStopped("no longer active")
        locked = Mous.objects.select_for_update().get(pk=mous.pk)
        if locked.state == MousState.QA2_FAIL:
            _remove_source(locked, plan, manifest)
            locked.transition(
                MousState.FAILED_ARCHIVED, by=row.requested_by, note=f"moved to {plan.final} ({delivery.pk})"
            )
        elif locked.state != MousState.FAILED_ARCHIVED:
            raise DeliveryFailed(
                f"{locked.uid} is {locked.get_state_display()} now: the archive at {plan.final} is kept, "
                "the MOUS folder was not removed",
                in_place=True,
            )
        _done(row, plan, manifest)


def _remove_staging(root_fd: int, plan: Plan) -> None:
    parent, name = _split(plan.staging_name)
    with suppress(FileNotFoundError):
        parent_fd = _open_dir(root_fd, parent)
        try:
            _remove(parent_fd, name)
        finally:
            os.close(parent_fd)


def _remove_source(mous: Mous, plan: Plan, manifest: dict) -> None:
    """Remove the MOUS folder, archived and verified, when what is left of it is still what the
    manifest lists (sizes; the contents were hashed against it before)."""
    try:
        now = qa2fail_plan(mous)
    except FileNotFoundError:
        return
    listed = {(f.get("path"), f.get("size")) for f in manifest.get("files", [])}
    if not {(s.dest, s.size) for s in now.sources} <= listed:
        raise DeliveryFailed(
            f"the folder {mous.folder_name} is no longer what was archived at {plan.final}: it was not "
            "removed (a person must look)",
            in_place=True,
        )
    root_fd = os.open(data_root(), _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        if not stat.S_ISDIR(os.stat(mous.folder_name, dir_fd=root_fd, follow_symlinks=False).st_mode):
            raise DeliveryFailed(f"{mous.folder_name} is not a folder: not removed")
        shutil.rmtree(mous.folder_name, dir_fd=root_fd)  # fd-based: never follows a link
    finally:
        os.close(root_fd)


# --- the reaper ---------------------------------------------------------------------------
def deliveries_reap_stale(*, stale_after: int | None = None) -> list[int]:
    """FAIL every delivery whose heartbeat stopped (its worker died). The staging folder stays:
    starting again resumes from it."""
    limit = timezone.now() - timedelta(seconds=stale_after or settings.RUN_STALE_AFTER_SECONDS)
    reaped = []
    for delivery in Delivery.objects.filter(status__in=WORKING, heartbeat_at__lt=limit):
        seen = (
            timezone.localtime(delivery.heartbeat_at).strftime("%H:%M:%S") if delivery.heartbeat_at else "-"
        )
        if Delivery.objects.filter(pk=delivery.pk, status__in=WORKING, heartbeat_at__lt=limit).update(
            status=Status.FAILED,
            error=f"worker lost (no heartbeat since {seen}): start again to resume",
            finished_at=timezone.now(),
        ):
            reaped.append(delivery.pk)
    return reaped


# --- for the page ---------------------------------------------------------------------------
def latest_delivery(mous: Mous) -> Delivery | None:
    return Delivery.objects.filter(mous=mous).select_related("requested_by").first()


def status_of(delivery: Delivery | None, mous: Mous) -> dict:
    if delivery is None:
        return {"delivery": None, "mous_state": mous.state, "mous_state_display": mous.get_state_display()}
    return {
        "delivery": delivery.pk,
        "kind": delivery.kind,
        "status": delivery.status,
        "status_display": delivery.get_status_display(),
        "active": delivery.is_active,
        "percent": delivery.percent,
        "bytes_done": delivery.bytes_done,
        "bytes_total": delivery.bytes_total,
        "attempts": delivery.attempts,
        "error": delivery.error,
        "target": delivery.target,
        "files": len(delivery.manifest.get("files", [])) if delivery.manifest else 0,
        "mous_state": mous.state,
        "mous_state_display": mous.get_state_display(),
    }
