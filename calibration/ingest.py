"""Bringing an EB's raw data in: from a path under INGEST_ROOTS, or from an uploaded tar/tgz.

The rule (one for generation, runs, the demo and ingest): an EB's raw data (an MS, an ASDM
or a UVFITS file) lives in `<EB folder>/raw/` under any name; `ExecutionBlock.data_name` is
its path relative to the EB folder; step 0 of the script makes the working MS from it.

Web side (`ingest_from_path`, `ingest_from_upload`): refuse what cannot work, store a
DataIngest row and queue the worker task when it commits. Worker side (`ingest_execute`):
copy (never move) or extract the data into `raw/.incoming-<id>/` with progress, check it in
CASA, then rename it into `raw/` and mark the EB's data present, in one transaction. On any
failure the ingest is FAILED with one sentence, the staging folder is removed, and the EB is
left exactly as it was.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import errno
import json
import os
import shutil
import stat
import tarfile
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from functools import partial
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from assignments.models import ExecutionBlock, user_may_ingest
from assignments.services import eb_folder, inside_data_root
from calibration import casa, rawdata
from calibration.models import DataIngest, DataSummary

RAW = rawdata.RAW_FOLDER
MS, ASDM, UVFITS, TAR = "ms", "asdm", "uvfits", "tar"
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")
CHECK_CODE = "from calibration.incasa.check_data import main\nmain()\n"
CHECK_MARKER = "INGEST_CHECK"
CHECK_TIMEOUT = 4 * 3600  # importasdm of a large ASDM
PROGRESS_SECONDS = 0.5  # how often bytes_done is written while copying
HEARTBEAT_SECONDS = 5.0  # how often the row is touched while CASA checks
COPY_CHUNK = 64 * 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024
MAX_NAME = 150


class IngestRefused(ValueError):
    """The request cannot be served (web side): nothing was stored or queued."""


class IngestFailed(RuntimeError):
    """The data could not be brought in (worker side): the EB is unchanged."""


class IngestStopped(RuntimeError):
    """The row left its active state under us (the reaper failed it): stop quietly."""


# --- who -----------------------------------------------------------------------------------
def may_ingest(user) -> bool:
    """DRMs (and deputies) and data analysts bring data in (issue 10): the intake rule."""
    return user_may_ingest(user)


# --- paths ---------------------------------------------------------------------------------
def ingest_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.INGEST_ROOTS]


def confine_to_ingest_roots(raw_path: str) -> Path:
    """`raw_path` with every link resolved, or IngestRefused when that is not below a root."""
    roots = ingest_roots()
    shown = ", ".join(str(r) for r in roots) or "none configured"
    if not raw_path or "\x00" in raw_path or not os.path.isabs(raw_path):
        raise IngestRefused(f"give an absolute path below one of the ingest roots ({shown})")
    resolved = Path(raw_path).resolve()  # every link, at any level, followed first
    if not any(root in resolved.parents for root in roots):
        via = f" (it leads to {resolved})" if str(resolved) != os.path.normpath(raw_path) else ""
        raise IngestRefused(f"{raw_path} is outside the ingest roots ({shown}){via}")
    if not resolved.exists():
        raise IngestRefused(f"{raw_path} does not exist")
    return resolved


def data_kind(path: Path) -> str:
    """ms, asdm, uvfits or tar, from what is on disk; IngestFailed for anything else."""
    if path.is_dir():
        if (path / "table.dat").is_file():
            return MS
        if (path / "ASDM.xml").is_file():
            return ASDM
        raise IngestFailed(f"{path.name} is neither an MS (no table.dat) nor an ASDM (no ASDM.xml)")
    if path.is_file():
        lower = path.name.lower()
        if lower.endswith(rawdata.UVFITS_SUFFIXES):
            return UVFITS
        if lower.endswith(TAR_SUFFIXES) or tarfile.is_tarfile(path):
            return TAR
        raise IngestFailed(f"{path.name} is not an MS, an ASDM, a UVFITS file or a tar/tgz of one")
    raise IngestFailed(f"{path.name} is not a regular file or folder")


def raw_folder(eb: ExecutionBlock) -> Path:
    return inside_data_root(eb_folder(eb) / RAW)


def staging_folder(ingest: DataIngest) -> Path:
    return inside_data_root(raw_folder(ingest.execution_block) / ingest.staging_name)


def upload_dir() -> Path:
    """Where uploads are streamed: on the data disk, which every worker shares."""
    return Path(settings.INGEST_UPLOAD_DIR or Path(settings.DATA_ROOT) / ".ingest-uploads").resolve()


def upload_path(ingest: DataIngest) -> Path | None:
    return upload_dir() / ingest.upload_name if ingest.upload_name else None


def _check_name(name: str) -> str:
    """The raw data's name in raw/: any name, but one plain path component."""
    if (
        not name
        or name.startswith(".")
        or "/" in name
        or "\x00" in name
        or len(name) > MAX_NAME
        or any(ord(c) < 32 for c in name)
    ):
        raise IngestFailed(
            f"{name!r} cannot be a name in raw/ (one plain name, not hidden, <= {MAX_NAME} chars)"
        )
    return name


# --- web side ------------------------------------------------------------------------------
def _lock_ready_eb(eb: ExecutionBlock) -> ExecutionBlock:
    """The EB row, locked, when it may receive data; IngestRefused otherwise."""
    eb = ExecutionBlock.objects.select_for_update().select_related("mous").get(pk=eb.pk)
    if eb.data_status == ExecutionBlock.DataStatus.PRESENT:
        raise IngestRefused(
            f"EB {eb.uid} already has its data ({eb.data_name or 'present'}); nothing was changed"
        )
    active = DataIngest.objects.filter(execution_block=eb, status__in=DataIngest.ACTIVE).first()
    if active is not None:
        raise IngestRefused(
            f"ingest {active.pk} of EB {eb.uid} is still {active.get_status_display().lower()}; "
            "wait for it to finish"
        )
    return eb


def _create(eb: ExecutionBlock, **fields) -> DataIngest:
    try:
        with transaction.atomic():
            ingest = DataIngest.objects.create(execution_block=eb, **fields)
    except IntegrityError:  # the partial unique index: another request won the race
        raise IngestRefused(f"an ingest of EB {eb.uid} is already running") from None
    from calibration.tasks import ingest_execute as ingest_execute_task

    transaction.on_commit(partial(ingest_execute_task.delay, ingest.pk))
    return ingest


@transaction.atomic
def ingest_from_path(*, eb: ExecutionBlock, path: str, by) -> DataIngest:
    """Queue bringing the data at `path` (below INGEST_ROOTS) into `eb`'s raw/."""
    eb = _lock_ready_eb(eb)
    source = confine_to_ingest_roots(path.strip())
    try:
        data_kind(source)
    except IngestFailed as exc:
        raise IngestRefused(str(exc)) from None
    return _create(
        eb,
        source_kind=DataIngest.SourceKind.PATH,
        source=str(source),
        requested_by=by if by is not None and by.is_authenticated else None,
    )


def stage_upload(uploaded_file: UploadedFile) -> Path:
    """The uploaded bytes as a file of their own in INGEST_UPLOAD_DIR (where workers read).

    Files streamed there by the upload handler are renamed; anything else is copied in chunks.
    """
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex}.upload"
    staged = getattr(uploaded_file, "staged_path", None)
    if staged is not None and Path(staged).parent == folder:
        uploaded_file.close()
        os.rename(staged, target)
        return target
    with target.open("xb") as out:
        for chunk in uploaded_file.chunks(READ_CHUNK):
            out.write(chunk)
    return target


def ingest_from_upload(*, eb: ExecutionBlock, uploaded_file: UploadedFile, by) -> DataIngest:
    """Queue extracting an uploaded tar/tgz of an MS, ASDM or UVFITS into `eb`'s raw/.

    The upload is the service's from here: kept for the worker, or removed when refused.
    """
    staged = stage_upload(uploaded_file)
    try:
        with transaction.atomic():
            eb = _lock_ready_eb(eb)
            name = os.path.basename(uploaded_file.name or "upload")[:200]
            size = staged.stat().st_size
            if size > settings.INGEST_UPLOAD_MAX_BYTES:
                raise IngestRefused(
                    f"{name}: {size:,} bytes is over the upload limit of {settings.INGEST_UPLOAD_MAX_BYTES:,}"
                )
            if not tarfile.is_tarfile(staged):
                raise IngestRefused(f"{name} is not a tar or tgz archive; upload a tar/tgz of an MS or ASDM")
            return _create(
                eb,
                source_kind=DataIngest.SourceKind.UPLOAD,
                source=name,
                upload_name=staged.name,
                bytes_total=size,
                requested_by=by if by is not None and by.is_authenticated else None,
            )
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


# --- worker side ---------------------------------------------------------------------------
class Progress:
    """bytes_done of one ingest, written at most every PROGRESS_SECONDS (and doubles as heartbeat)."""

    def __init__(self, ingest: DataIngest, total: int) -> None:
        self.ingest, self.total, self.done, self.last = ingest, total, 0, 0.0
        self.flush(bytes_total=total)

    def add(self, n: int) -> None:
        self.set(self.done + n)

    def set(self, done: int) -> None:
        self.done = done
        if time.monotonic() - self.last >= PROGRESS_SECONDS:
            self.flush()

    def flush(self, **extra) -> None:
        self.last = time.monotonic()
        touched = DataIngest.objects.filter(pk=self.ingest.pk, status=self.ingest.status).update(
            bytes_done=self.done, heartbeat_at=timezone.now(), **extra
        )
        if not touched:
            raise IngestStopped(f"ingest {self.ingest.pk} is no longer {self.ingest.status}")


def _scan_tree(source: Path) -> tuple[list[Path], list[tuple[Path, int]]]:
    """Folders and (file, size) below `source`; refuses links and special files inside the data."""
    folders: list[Path] = []
    files: list[tuple[Path, int]] = []
    for root, dirs, names in os.walk(source, followlinks=False):
        here = Path(root)
        for name in [*dirs, *names]:
            path = here / name
            st = os.lstat(path)
            rel = path.relative_to(source.parent)
            if stat.S_ISLNK(st.st_mode):
                raise IngestFailed(f"{rel} is a link; links inside the data are not accepted")
            if stat.S_ISDIR(st.st_mode):
                folders.append(path)
            elif stat.S_ISREG(st.st_mode):
                files.append((path, st.st_size))
            else:
                raise IngestFailed(f"{rel} is not a regular file or folder")
    return folders, files


def _copy_file(src: Path, dst: Path, progress: Progress) -> None:
    with src.open("rb") as fin, dst.open("xb") as fout:
        try:
            while n := os.copy_file_range(fin.fileno(), fout.fileno(), COPY_CHUNK):
                progress.add(n)
            return
        except OSError as exc:  # another file system, an old kernel: copy through user space
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        fin.seek(fout.tell())
        while chunk := fin.read(READ_CHUNK):
            fout.write(chunk)
            progress.add(len(chunk))
    shutil.copymode(src, dst)


def copy_data(ingest: DataIngest, source: Path, staging: Path) -> Path:
    """Copy `source` (a file or a folder) into staging/data/; returns the copy."""
    (staging / "data").mkdir()
    target = staging / "data" / source.name
    if source.is_file():
        progress = Progress(ingest, source.stat().st_size)
        _copy_file(source, target, progress)
        progress.set(progress.total)
        return target
    folders, files = _scan_tree(source)
    progress = Progress(ingest, sum(size for _, size in files))
    target.mkdir()
    for folder in folders:
        (target / folder.relative_to(source)).mkdir(parents=True, exist_ok=True)
    for path, _ in files:
        _copy_file(path, target / path.relative_to(source), progress)
    progress.flush()
    return target


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return f"{name} is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return f"{name} leads out of the archive (..)"
    if member.issym() or member.islnk():
        return f"{name} is a link"
    if not (member.isfile() or member.isdir()):
        return f"{name} is a device, pipe or other special file"
    return None


def extract_archive(ingest: DataIngest, archive: Path, staging: Path) -> Path:
    """Extract a tar/tgz into staging/archive/ member by member, refusing absolute paths, `..`,
    links and special files, and a truncated archive; returns the data it holds."""
    out = staging / "archive"
    out.mkdir()
    with archive.open("rb") as raw:
        progress = Progress(ingest, archive.stat().st_size)
        try:
            with tarfile.open(fileobj=raw, mode="r:*") as tar:
                for member in tar:
                    problem = _member_problem(member)
                    if problem:
                        raise IngestFailed(f"the archive is refused: {problem}")
                    safe = tarfile.data_filter(member, str(out))  # the standard library's own check
                    parts = PurePosixPath(safe.name).parts
                    if not parts:
                        continue
                    target = out.joinpath(*parts)
                    if safe.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(safe)
                    with target.open("xb") as fout:
                        while chunk := source.read(READ_CHUNK):
                            fout.write(chunk)
                            progress.set(raw.tell())
                        if fout.tell() != safe.size:
                            raise IngestFailed(f"the archive is truncated inside {safe.name}")
                _require_end_of_archive(tar)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            if isinstance(exc, FileExistsError):
                raise IngestFailed(f"the archive holds {Path(exc.filename).name} twice") from None
            raise IngestFailed(f"the archive is damaged or truncated ({exc})") from None
        progress.set(progress.total)
    return _dataset_in(out, archive_name=ingest.source)


def _require_end_of_archive(tar: tarfile.TarFile) -> None:
    """tarfile stops quietly when an archive ends between two members: a cut archive would pass.
    A whole one ends with a zero block, and a whole gzip/bz2/xz stream reads to its end."""
    tar.fileobj.seek(tar.offset)
    block = tar.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) != tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise IngestFailed("the archive is truncated (it has no end-of-archive marker)")
    while tar.fileobj.read(READ_CHUNK):  # compressed streams check their trailer at the end
        pass


def _dataset_in(out: Path, archive_name: str) -> Path:
    """The one MS/ASDM/UVFITS an archive holds: its single top-level entry, or the archive's
    content itself when it holds an MS's or ASDM's files directly (named after the archive)."""
    entries = sorted(p.name for p in out.iterdir())
    if "table.dat" in entries or "ASDM.xml" in entries:
        stem = os.path.basename(archive_name)
        for suffix in TAR_SUFFIXES:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        if "table.dat" in entries and not stem.endswith(".ms"):
            stem += ".ms"
        named = out.parent / "named"
        named.mkdir()
        return out.rename(named / _check_name(stem or "data"))
    if len(entries) != 1:
        listed = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise IngestFailed(
            f"the archive holds {len(entries)} entries at its top ({listed or 'nothing'}); "
            "it must hold one MS, ASDM or UVFITS file"
        )
    return out / entries[0]


def asdm_uid(asdm: Path) -> str | None:
    """The ASDM's own uid (its Entity in ASDM.xml): at ALMA, the EB's uid."""
    # A reducer-supplied ASDM.xml (from an ingest root or an upload): ElementTree uses expat, which
    # expands no external entities and (expat >= 2.4.1) stops entity-expansion bombs.
    try:
        root = ET.parse(asdm / "ASDM.xml").getroot()  # noqa: S314 # nosec B314
    except (ET.ParseError, OSError) as exc:
        raise IngestFailed(f"{asdm.name}/ASDM.xml cannot be read ({exc})") from None
    for entity in root.iter():  # ASDM.xml has a default namespace: match the local name
        if (
            entity.tag.rsplit("}", 1)[-1] == "Entity"
            and entity.get("entityTypeName") == "ASDM"
            and entity.get("entityId", "").startswith("uid://")
        ):
            return entity.get("entityId")
    return None


class CasaCheck:
    """The CASA check, started before the copy: CASA's import (seconds) overlaps the copy, and
    the check waits for `go()` (what to read) or `stop()` (the copy failed)."""

    def __init__(self, ingest: DataIngest, staging: Path) -> None:
        self.ingest, self.staging = ingest, staging
        self.go_file = staging / "check.go"
        self.scratch = staging / "scratch.ms"  # beside data/ and archive/, never one of them
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.future = self.pool.submit(
            casa.run_casa_json,
            CHECK_CODE,
            CHECK_MARKER,
            cwd=staging,
            timeout=CHECK_TIMEOUT,
            args=["--wait", str(self.go_file)],
        )

    def _order(self, order: dict) -> None:
        part = self.go_file.with_suffix(".part")
        part.write_text(json.dumps(order) + "\n")
        part.rename(self.go_file)  # CASA reads it whole or not at all

    def stop(self) -> None:
        if not self.go_file.exists():
            self._order({"stop": True})
        self.pool.shutdown(wait=True)  # CASA exits within its poll interval

    def result(self, dataset: Path, kind: str) -> dict:
        self._order({"kind": kind, "path": str(dataset), "scratch": str(self.scratch)})
        try:
            return _with_heartbeat(self.ingest, self.future)[0]
        except casa.CasaScriptFailed as exc:
            raise IngestFailed(f"CASA could not check {dataset.name}: {exc}") from None
        finally:
            self.pool.shutdown(wait=True)
            shutil.rmtree(self.scratch, ignore_errors=True)


def check_data(ingest: DataIngest, dataset: Path, kind: str, summary: dict) -> dict:
    """What CASA read (the ASDM/UVFITS through a scratch MS in staging), checked: readable,
    with visibilities, and this EB's data where the data names its EB."""
    eb = ingest.execution_block
    if "error" in summary:
        what = {MS: "an MS", ASDM: "an ASDM", UVFITS: "a UVFITS file"}[kind]
        said = summary["error"].replace(str(dataset), dataset.name)  # not the staging folder's path
        raise IngestFailed(f"{dataset.name} cannot be read as {what}: {said}")
    if not summary.get("antennas") or not summary.get("spws") or not summary.get("rows"):
        raise IngestFailed(f"{dataset.name} holds no visibilities (no antennas, spws or rows)")
    uids = set(summary.get("execblock_uids") or [])
    if kind == ASDM and (own := asdm_uid(dataset)):
        uids.add(own)
    others = sorted(u for u in uids if u.lower() != eb.uid.lower())
    if others:
        raise IngestFailed(f"the data is EB {', '.join(others)}, not {eb.uid}; nothing was changed")
    summary["eb_uid_checked"] = bool(uids)
    summary["size_bytes"] = _size(dataset)
    return summary


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _with_heartbeat(ingest: DataIngest, future: concurrent.futures.Future):
    """Wait for `future` while the row's heartbeat is touched, so the reaper leaves it alone."""
    while True:
        try:
            return future.result(timeout=HEARTBEAT_SECONDS)
        except concurrent.futures.TimeoutError:
            DataIngest.objects.filter(pk=ingest.pk).update(heartbeat_at=timezone.now())


def _set_status(ingest: DataIngest, old: str, new: str, **fields) -> None:
    if not DataIngest.objects.filter(pk=ingest.pk, status=old).update(status=new, **fields):
        raise IngestStopped(f"ingest {ingest.pk} is no longer {old}")
    ingest.status = new


def raw_name(name: str, kind: str) -> str:
    """The name in raw/: the data's own, with the suffix that says its kind when it lacks it
    (rawdata.raw_kind reads the kind from the name: an MS must end in .ms)."""
    name = _check_name(name)
    if rawdata.raw_kind(name) != kind:
        name += {MS: ".ms", UVFITS: ".uvfits", ASDM: ".asdm"}[kind]
    return _check_name(name)


def publish(ingest: DataIngest, dataset: Path, kind: str, summary: dict) -> None:
    """Rename the checked data into raw/ and mark the EB's data present, all or nothing.

    For an ASDM or UVFITS the generator's summary of the scratch MS is stored as the EB's
    DataSummary: until step 0 has imported it there is no MS for generation to read.
    """
    eb = ingest.execution_block
    name = raw_name(dataset.name, kind)
    generator_summary = summary.pop("generator_summary", None)
    target = raw_folder(eb) / name
    renamed = False
    try:
        with transaction.atomic():
            locked_eb = ExecutionBlock.objects.select_for_update().get(pk=eb.pk)
            current = DataIngest.objects.select_for_update().get(pk=ingest.pk)
            if current.status != DataIngest.Status.CHECKING:
                raise IngestStopped(f"ingest {ingest.pk} is {current.status}")
            if locked_eb.data_status == ExecutionBlock.DataStatus.PRESENT:
                raise IngestFailed(
                    f"EB {eb.uid} got its data meanwhile ({locked_eb.data_name}); nothing was changed"
                )
            if target.exists() or target.is_symlink():
                raise IngestFailed(f"{RAW}/{name} already exists in {eb.folder_name}; nothing was changed")
            os.rename(dataset, target)
            renamed = True
            # Before DONE is visible: whoever sees it present finds no staging folder or upload.
            _clean(ingest)
            locked_eb.data_name = f"{RAW}/{name}"
            locked_eb.data_status = ExecutionBlock.DataStatus.PRESENT
            locked_eb.save(update_fields=["data_name", "data_status"])
            if generator_summary is not None:
                DataSummary.objects.update_or_create(
                    execution_block=locked_eb,
                    defaults={"summary": generator_summary, "created_at": timezone.now()},
                )
            current.status, current.summary, current.data_name = (
                DataIngest.Status.DONE,
                summary,
                locked_eb.data_name,
            )
            current.finished_at = current.heartbeat_at = timezone.now()
            current.bytes_done = current.bytes_total or 0
            current.save(
                update_fields=["status", "summary", "data_name", "finished_at", "heartbeat_at", "bytes_done"]
            )
    except BaseException:
        if renamed:  # the database said no: the data goes back to staging, to be removed
            dataset.parent.mkdir(parents=True, exist_ok=True)
            os.rename(target, dataset)
        raise


def _fail(ingest: DataIngest, message: str) -> None:
    DataIngest.objects.filter(pk=ingest.pk, status__in=DataIngest.ACTIVE).update(
        status=DataIngest.Status.FAILED, error=message, finished_at=timezone.now()
    )


def _clean(ingest: DataIngest) -> None:
    """Remove the staging folder and the uploaded archive (whatever the outcome)."""
    try:
        shutil.rmtree(staging_folder(ingest), ignore_errors=True)
    finally:
        if (upload := upload_path(ingest)) is not None:
            upload.unlink(missing_ok=True)


def _bring_in(ingest: DataIngest, staging: Path) -> tuple[Path, str]:
    """Copy or extract the data into staging; returns (the data, its kind)."""
    if ingest.source_kind == DataIngest.SourceKind.UPLOAD:
        archive = upload_path(ingest)
        if archive is None or not archive.is_file():
            raise IngestFailed("the uploaded file is gone; upload it again")
        dataset = extract_archive(ingest, archive, staging)
    else:
        try:
            source = confine_to_ingest_roots(ingest.source)  # again: links may have changed since
        except IngestRefused as exc:
            raise IngestFailed(str(exc)) from None
        if data_kind(source) == TAR:
            dataset = extract_archive(ingest, source, staging)
        else:
            dataset = copy_data(ingest, source, staging)
    return dataset, data_kind(dataset)


def ingest_execute(ingest_id: int) -> DataIngest | None:
    """The task body: bring the data in, check it, publish it; FAILED with one sentence otherwise."""
    ingest = DataIngest.objects.select_related("execution_block__mous").filter(pk=ingest_id).first()
    if ingest is None or not ingest.is_active:  # gone with its EB, or already finished
        return ingest
    now = timezone.now()
    # A redelivered task (its worker died) starts over from an empty staging folder.
    _clean_staging_only(ingest)
    staging = staging_folder(ingest)
    failure: str | None = None
    try:
        _set_status(ingest, ingest.status, DataIngest.Status.COPYING, started_at=now, heartbeat_at=now)
        staging.mkdir(parents=True)
        checker = CasaCheck(ingest, staging)
        started = time.perf_counter()
        try:
            dataset, kind = _bring_in(ingest, staging)
            copied = time.perf_counter()
            if kind == TAR:
                raise IngestFailed(f"{dataset.name} is an archive inside the archive; give the data itself")
            _set_status(
                ingest, DataIngest.Status.COPYING, DataIngest.Status.CHECKING, heartbeat_at=timezone.now()
            )
        except BaseException:
            checker.stop()
            raise
        summary = check_data(ingest, dataset, kind, checker.result(dataset, kind))
        # Where the time went (the CASA check started with the copy; this is what it added after).
        summary["seconds"] = {
            "copy": round(copied - started, 2),
            "check": round(time.perf_counter() - copied, 2),
        }
        publish(ingest, dataset, kind, summary)
    except IngestStopped:
        pass
    except IngestFailed as exc:
        failure = str(exc)
    except Exception as exc:  # disk full, permissions, a bug: still one sentence, still nothing left
        failure = f"the ingest stopped: {type(exc).__name__}: {exc}"
    finally:
        _clean(ingest)  # before FAILED is visible: whoever sees it finds nothing left
    if failure is not None:
        _fail(ingest, failure)
    ingest.refresh_from_db()
    return ingest


def _clean_staging_only(ingest: DataIngest) -> None:
    shutil.rmtree(staging_folder(ingest), ignore_errors=True)


def ingests_reap_stale() -> list[int]:
    """Fail ingests whose worker went away (no heartbeat for INGEST_STALE_AFTER_SECONDS)."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS)
    stale = DataIngest.objects.filter(
        status__in=[DataIngest.Status.COPYING, DataIngest.Status.CHECKING], heartbeat_at__lt=cutoff
    ).select_related("execution_block__mous")
    reaped = []
    quiet = settings.INGEST_STALE_AFTER_SECONDS
    for ingest in stale:
        _fail(
            ingest,
            f"the worker stopped during the ingest (no progress for {quiet} s); nothing was kept",
        )
        _clean(ingest)
        reaped.append(ingest.pk)
    _remove_abandoned_uploads(cutoff.timestamp())
    return reaped


def _remove_abandoned_uploads(before: float) -> None:
    """Uploads cut off mid-stream (.part not written to since `before`) and stored uploads no
    active ingest will read (their EB was deleted while queued)."""
    folder = upload_dir()
    if not folder.is_dir():
        return
    wanted = set(
        DataIngest.objects.filter(status__in=DataIngest.ACTIVE).values_list("upload_name", flat=True)
    )
    for path in folder.iterdir():
        try:
            if path.name not in wanted and path.stat().st_mtime < before:
                path.unlink()
        except FileNotFoundError:
            continue
