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
import logging
import os
import shutil
import signal
import stat
import tarfile
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from celery import current_app
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from assignments import datafiles
from assignments.datafiles import eb_folder, inside_data_root
from assignments.models import ExecutionBlock, user_may_ingest
from calibration import casa, rawdata, task_names
from calibration.models import DataIngest, DataSummary
from qa2portal.errors import DomainError

RAW = rawdata.RAW_FOLDER
MS, ASDM, UVFITS, TAR = "ms", "asdm", "uvfits", "tar"
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")
CHECK_MODULE = "calibration.incasa.check_data"
CHECK_MARKER = "INGEST_CHECK"
CHECK_TIMEOUT = 4 * 3600  # importasdm of a large ASDM
PROGRESS_SECONDS = 0.5  # how often bytes_done is written while copying
HEARTBEAT_SECONDS = 5.0  # how often the row is touched while CASA checks
COPY_CHUNK = 64 * 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024
MAX_NAME = 150
_source_max = DataIngest._meta.get_field("source").max_length
assert _source_max is not None, "DataIngest.source is a CharField with a max_length"
SOURCE_MAX: int = _source_max
MAY_NOT = "Only a DRM or a data analyst brings data in."
log = logging.getLogger(__name__)


class IngestRefused(DomainError, ValueError):
    """The request cannot be served (web side, bad input): nothing was stored or queued (400)."""


class IngestConflict(IngestRefused):
    """The request is fine but the EB's state says no (data present, an ingest running): 409."""

    status = 409


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


def _below_a_root(raw_path: str) -> tuple[Path, Path]:
    """(the ingest root, the path) for an absolute path written below a root; IngestRefused else.

    Only the text is read here: the walk down from the root (`open_source`) opens every
    component with O_NOFOLLOW, so no link on the way is ever followed."""
    roots = ingest_roots()
    shown = ", ".join(str(r) for r in roots) or "none configured"
    if not raw_path or "\x00" in raw_path or not os.path.isabs(raw_path):
        raise IngestRefused(f"give an absolute path below one of the ingest roots ({shown})")
    if len(raw_path) > SOURCE_MAX:
        raise IngestRefused(f"the path is {len(raw_path)} characters long; at most {SOURCE_MAX} are accepted")
    path = Path(raw_path)
    if ".." in path.parts:
        raise IngestRefused(f"{raw_path}: '..' is not accepted; give the path below the ingest roots itself")
    normal = Path(os.path.normpath(path))
    for root in roots:
        if normal != root and normal.is_relative_to(root):
            return root, normal
    raise IngestRefused(f"{raw_path} is outside the ingest roots ({shown})")


@dataclass
class Source:
    """The data asked for, opened without following any link: its fd and what fstat said."""

    fd: int
    st: os.stat_result
    name: str
    path: Path

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


@contextmanager
def open_source(raw_path: str) -> Iterator[Source]:
    """The file or folder at `raw_path`, walked down from its ingest root one component at a
    time with O_NOFOLLOW (assignments.datafiles): a link anywhere on the way, a special file or a
    hard-linked file is refused, and nothing can be swapped in between a check and the open.
    IngestRefused with a clear sentence otherwise (never where a link points)."""
    root, path = _below_a_root(raw_path)
    try:
        fd = datafiles.open_fd_confined(path, base=root, root=root)
    except FileNotFoundError:
        raise IngestRefused(f"{raw_path} does not exist") from None
    except datafiles.UnsafePath as exc:
        reason = str(exc).replace(
            "the portal never follows links under DATA_ROOT", "links are not followed below the ingest roots"
        )
        raise IngestRefused(reason) from None
    except OSError as exc:  # a name too long, no permission...
        raise IngestRefused(f"{raw_path} cannot be opened ({exc.strerror or type(exc).__name__})") from None
    try:
        yield Source(fd, os.fstat(fd), path.name, path)
    finally:
        os.close(fd)


def confine_to_ingest_roots(raw_path: str) -> Path:
    """`raw_path` normalised, when it can be opened below an ingest root without a link on the
    way; IngestRefused otherwise. The worker opens it again the same way (`open_source`)."""
    with open_source(raw_path) as source:
        return source.path


def _is_regular_in(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def source_kind(source: Source) -> str:
    """ms, asdm, uvfits or tar, of an opened source (read through its fd, never by name)."""
    if source.is_dir:
        if _is_regular_in(source.fd, "table.dat"):
            return MS
        if _is_regular_in(source.fd, "ASDM.xml"):
            return ASDM
        raise IngestFailed(f"{source.name} is neither an MS (no table.dat) nor an ASDM (no ASDM.xml)")
    lower = source.name.lower()
    if lower.endswith(rawdata.UVFITS_SUFFIXES):
        return UVFITS
    if lower.endswith(TAR_SUFFIXES):
        return TAR
    with os.fdopen(os.dup(source.fd), "rb") as handle:  # shares the offset: put it back after
        try:
            is_tar = tarfile.is_tarfile(handle)
        finally:
            handle.seek(0)
    if is_tar:
        return TAR
    raise IngestFailed(f"{source.name} is not an MS, an ASDM, a UVFITS file or a tar/tgz of one")


def data_kind(path: Path) -> str:
    """ms, asdm, uvfits or tar of the data in staging (ours); IngestFailed for anything else."""
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


# --- what errors may say ---------------------------------------------------------------------
def scrub(text: str, staging: Path | None = None) -> str:
    """`text` without the server's absolute paths (staging, uploads, DATA_ROOT): error
    messages are shown to every signed-in user."""
    if staging is not None:
        text = text.replace(str(staging) + "/", "").replace(str(staging), "the staging folder")
    uploads = str(upload_dir())
    text = text.replace(uploads + "/", "").replace(uploads, "the upload folder")
    return datafiles.public_message(text)


def os_reason(exc: OSError, staging: Path | None = None) -> str:
    """An OSError in a sentence: its strerror and the file, relative to staging when inside."""
    reason = exc.strerror or type(exc).__name__
    if exc.filename:
        name = os.fsdecode(exc.filename)
        if staging is not None and Path(name).is_relative_to(staging):
            name = Path(name).relative_to(staging).as_posix()
            for top in ("archive/", "data/", "named/"):
                name = name.removeprefix(top)
        reason += f": {Path(name).name if os.path.isabs(name) else name}"
    return scrub(reason, staging)


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
    refuse_if_busy(eb)
    return eb


def refuse_if_busy(eb: ExecutionBlock) -> None:
    """IngestConflict when `eb` has its data or an ingest running. Also asked (without a lock)
    before an upload's first byte is stored; `_lock_ready_eb` asks again under the lock."""
    if eb.data_status == ExecutionBlock.DataStatus.PRESENT:
        raise IngestConflict(
            f"EB {eb.uid} already has its data ({eb.data_name or 'present'}); nothing was changed"
        )
    active = DataIngest.objects.filter(execution_block=eb, status__in=DataIngest.ACTIVE).first()
    if active is not None:
        raise IngestConflict(
            f"ingest {active.pk} of EB {eb.uid} is still {active.get_status_display().lower()}; "
            "wait for it to finish"
        )


def _create(eb: ExecutionBlock, **fields) -> DataIngest:
    try:
        with transaction.atomic():
            ingest = DataIngest.objects.create(execution_block=eb, **fields)
    except IntegrityError:  # the partial unique index: another request won the race
        raise IngestConflict(f"an ingest of EB {eb.uid} is already running") from None
    transaction.on_commit(partial(_enqueue, ingest.pk))
    return ingest


def _enqueue(ingest_id: int) -> None:
    """Send the task; when the queue cannot take it the ingest is FAILED at once (a QUEUED row
    that no worker will ever see would block the EB)."""
    try:
        current_app.send_task(task_names.INGEST_EXECUTE, (ingest_id,))  # routed to the casa queue
    except Exception as exc:  # the broker is down or refuses: whatever kombu raises
        log.error("ingest %s could not be queued: %s", ingest_id, exc)
        item = DataIngest.objects.select_related("execution_block__mous").filter(pk=ingest_id).first()
        if item is not None:
            _fail(item, "the ingest could not be queued (the task queue did not answer); nothing was changed")
            _clean(item)


@transaction.atomic
def ingest_from_path(*, eb: ExecutionBlock, path: str, by) -> DataIngest:
    """Queue bringing the data at `path` (below INGEST_ROOTS) into `eb`'s raw/."""
    eb = _lock_ready_eb(eb)
    with open_source(path.strip()) as source:
        try:
            source_kind(source)
        except IngestFailed as exc:
            raise IngestRefused(str(exc)) from None
    return _create(
        eb,
        source_kind=DataIngest.SourceKind.PATH,
        source=str(source.path),
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


class CopyProgress(Protocol):
    """What the copy reports to: bytes as they are copied (an ingest, a combination copy)."""

    def add(self, n: int) -> None: ...


_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass
class Node:
    """One file or folder of a scanned source: what the copy must find again at the same place."""

    name: str
    dev: int
    ino: int
    mode: int
    size: int = 0
    children: list[Node] | None = None  # None: a file

    @property
    def total(self) -> int:
        return self.size if self.children is None else sum(c.total for c in self.children)


def _is_same(node: Node, st: os.stat_result) -> bool:
    return (st.st_dev, st.st_ino) == (node.dev, node.ino) and stat.S_IFMT(st.st_mode) == stat.S_IFMT(
        node.mode
    )


def scan_tree(dir_fd: int, name: str) -> Node:
    """The folder open at `dir_fd`, scanned through fds (openat with O_NOFOLLOW, never by path):
    refuses links, special files and hard-linked files inside the data."""
    st = os.fstat(dir_fd)
    children: list[Node] = []
    node = Node(name, st.st_dev, st.st_ino, st.st_mode, children=children)
    with os.scandir(dir_fd) as entries:
        listed = sorted(entries, key=lambda e: e.name)
    for entry in listed:
        rel = f"{name}/{entry.name}"
        est = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(est.st_mode):
            raise IngestFailed(f"{rel} is a link; links inside the data are not accepted")
        if stat.S_ISDIR(est.st_mode):
            child_fd = _open_as_scanned(
                dir_fd, Node(entry.name, est.st_dev, est.st_ino, est.st_mode, children=[]), rel
            )
            try:
                child = scan_tree(child_fd, rel)
            finally:
                os.close(child_fd)
            child.name = entry.name
            children.append(child)
        elif stat.S_ISREG(est.st_mode):
            if est.st_nlink > 1:
                raise IngestFailed(f"{rel} has {est.st_nlink} hard links; hard-linked files are not accepted")
            children.append(Node(entry.name, est.st_dev, est.st_ino, est.st_mode, est.st_size))
        else:
            raise IngestFailed(f"{rel} is not a regular file or folder")
    return node


def _open_as_scanned(dir_fd: int, node: Node, rel: str) -> int:
    """Open `node` relative to its folder's fd without following a link, and make sure it is the
    very file or folder the scan saw (same device and inode, one hard link for a file)."""
    folder = node.children is not None
    try:
        fd = os.open(node.name, _DIR_OPEN if folder else _FILE_OPEN, dir_fd=dir_fd)
    except FileNotFoundError:
        raise IngestFailed(f"{rel} disappeared while it was copied; nothing was changed") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EISDIR):
            raise IngestFailed(f"{rel} was replaced while it was copied; nothing was changed") from None
        raise
    try:
        st = os.fstat(fd)
        if not _is_same(node, st):
            raise IngestFailed(f"{rel} was replaced while it was copied; nothing was changed")
        if not folder and st.st_nlink > 1:
            raise IngestFailed(f"{rel} has {st.st_nlink} hard links; hard-linked files are not accepted")
        if not folder:
            os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _copy_fd(src_fd: int, dst: Path, mode: int, size: int, rel: str, progress: CopyProgress) -> None:
    """Copy the open file `src_fd` to the new file `dst` (kernel copy where it can), its mode too."""
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    copied = 0
    try:
        try:
            while n := os.copy_file_range(src_fd, out, COPY_CHUNK):
                copied += n
                progress.add(n)
        except OSError as exc:  # another file system, an old kernel: copy through user space
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            os.lseek(src_fd, copied, os.SEEK_SET)
            os.lseek(out, copied, os.SEEK_SET)
            while chunk := os.read(src_fd, READ_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
                copied += len(chunk)
                progress.add(len(chunk))
        os.fchmod(out, stat.S_IMODE(mode))  # whichever branch copied the bytes
    finally:
        os.close(out)
    if copied != size:
        raise IngestFailed(f"{rel} changed size while it was copied; nothing was changed")


def _copy_tree(dir_fd: int, node: Node, target: Path, rel: str, progress: CopyProgress) -> None:
    target.mkdir()
    for child in node.children or []:
        child_rel = f"{rel}/{child.name}"
        fd = _open_as_scanned(dir_fd, child, child_rel)
        try:
            if child.children is not None:
                _copy_tree(fd, child, target / child.name, child_rel, progress)
            else:
                _copy_fd(fd, target / child.name, child.mode, child.size, child_rel, progress)
        finally:
            os.close(fd)
    os.chmod(target, stat.S_IMODE(node.mode) | stat.S_IRWXU)


# The fd-walking copy, also used for the combination copy (calibration.combination).
copy_fd = _copy_fd
copy_tree = _copy_tree


def require_free_space(staging: Path, needed: int, what: str) -> None:
    """IngestFailed when `needed` bytes would leave less than the margin free on staging's disk."""
    margin = settings.INGEST_FREE_SPACE_MARGIN_BYTES
    free = shutil.disk_usage(staging).free
    if needed > free - margin:
        raise IngestFailed(
            f"{what} needs {needed:,} bytes; the data disk has {free:,} free and keeps {margin:,} spare; "
            "nothing was changed"
        )


def scan_source(source: Source) -> Node:
    """What a copy of `source` will copy (a folder scanned through its fd, or the file itself)."""
    if source.is_dir:
        return scan_tree(source.fd, source.name)
    st = source.st
    return Node(source.name, st.st_dev, st.st_ino, st.st_mode, st.st_size)


def copy_data(ingest: DataIngest, source: Source, staging: Path, tree: Node | None = None) -> Path:
    """Copy the opened `source` (a file or a folder) into staging/data/; returns the copy.

    Every folder and file is opened relative to its folder's fd with O_NOFOLLOW and must be
    the one the scan saw: a folder swapped for a link after the scan is refused, never read."""
    tree = tree if tree is not None else scan_source(source)
    (staging / "data").mkdir()
    target = staging / "data" / source.name
    require_free_space(staging, tree.total, f"copying {source.name}")
    progress = Progress(ingest, tree.total)
    if tree.children is None:
        if not _is_same(tree, os.fstat(source.fd)):
            raise IngestFailed(f"{source.name} was replaced while it was copied; nothing was changed")
        os.lseek(source.fd, 0, os.SEEK_SET)
        _copy_fd(source.fd, target, tree.mode, tree.size, source.name, progress)
    else:
        _copy_tree(source.fd, tree, target, source.name, progress)
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


def extract_archive(ingest: DataIngest, raw: BinaryIO, size: int, staging: Path) -> Path:
    """Extract a tar/tgz (open as `raw`) into staging/archive/ member by member, refusing absolute
    paths, `..`, links and special files, a truncated archive, and more than
    INGEST_EXTRACT_MAX_MEMBERS members or INGEST_EXTRACT_MAX_BYTES bytes (or more than the disk
    can take); returns the data it holds."""
    out = staging / "archive"
    out.mkdir()
    max_bytes, max_members = settings.INGEST_EXTRACT_MAX_BYTES, settings.INGEST_EXTRACT_MAX_MEMBERS
    room = shutil.disk_usage(staging).free - settings.INGEST_FREE_SPACE_MARGIN_BYTES
    members = total = 0
    progress = Progress(ingest, size)
    try:
        with tarfile.open(fileobj=raw, mode="r:*") as tar:
            for member in tar:
                members += 1
                if members > max_members:
                    raise IngestFailed(f"the archive is refused: it holds more than {max_members:,} members")
                problem = _member_problem(member)
                if problem:
                    raise IngestFailed(f"the archive is refused: {problem}")
                total += member.size if member.isfile() else 0
                if total > max_bytes:
                    raise IngestFailed(
                        f"the archive is refused: it extracts to more than {max_bytes:,} bytes"
                    )
                if total > room:
                    raise IngestFailed(
                        f"the archive is refused: it extracts to more than the data disk can take "
                        f"({total:,} bytes at {member.name}, keeping "
                        f"{settings.INGEST_FREE_SPACE_MARGIN_BYTES:,} spare)"
                    )
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
                assert source is not None, "only regular files get here (_member_problem)"
                with target.open("xb") as fout:
                    while chunk := source.read(READ_CHUNK):
                        fout.write(chunk)
                        progress.set(raw.tell())
                    if fout.tell() != safe.size:
                        raise IngestFailed(f"the archive is truncated inside {safe.name}")
            _require_end_of_archive(tar)
    except FileExistsError as exc:
        raise IngestFailed(
            f"the archive holds {Path(exc.filename).name} twice (or as a file and a folder)"
        ) from None
    except OSError as exc:
        raise IngestFailed(f"the archive cannot be extracted ({os_reason(exc, staging)})") from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise IngestFailed(f"the archive is damaged or truncated ({scrub(str(exc), staging)})") from None
    progress.set(progress.total)
    return _dataset_in(out, archive_name=ingest.source)


def _require_end_of_archive(tar: tarfile.TarFile) -> None:
    """tarfile stops quietly when an archive ends between two members: a cut archive would pass.
    A whole one ends with a zero block, and a whole gzip/bz2/xz stream reads to its end."""
    fileobj = tar.fileobj
    assert fileobj is not None, "a TarFile opened for reading has its file object"
    fileobj.seek(tar.offset)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if len(block) != tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise IngestFailed("the archive is truncated (it has no end-of-archive marker)")
    while fileobj.read(READ_CHUNK):  # compressed streams check their trailer at the end
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
    the check waits for `result()` (what to read) or `stop()` (the copy failed).

    It runs in the CASA sandbox (the data is reducer-supplied): only the staging folder is
    writable, and the data it reads is the copy in there. Its CHECK_TIMEOUT starts when the copy
    is done (the go order), and a cancelled ingest stops it."""

    def __init__(self, ingest: DataIngest, staging: Path) -> None:
        self.ingest, self.staging = ingest, staging
        self.go_file = staging / "check.go"
        self.scratch = staging / "scratch.ms"  # beside data/ and archive/, never one of them
        self.go_file.unlink(missing_ok=True)  # an order left from an earlier check is not this one's
        # The staging folder is the sandbox's run folder: the one place it can write.
        self.proc = casa.start_casa(
            CHECK_MODULE, cwd=staging, args=["--wait", str(self.go_file)], sandbox=True
        )
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.output = self.pool.submit(self.proc.communicate)

    def _order(self, order: dict) -> None:
        part = self.go_file.with_suffix(".part")
        part.write_text(json.dumps(order) + "\n")
        part.rename(self.go_file)  # CASA reads it whole or not at all

    def stop(self) -> None:
        """Kill CASA and everything it runs in: the sandbox's inner bwrap is in a session of its
        own and loses its parent-death signal when it changes uid, so the process group of the
        outer one is not enough; every descendant is killed by pid."""
        if self.proc.poll() is None:
            # Stopped first, then listed until no new child shows up: a child forked between the
            # listing and the kill would be orphaned, alive, holding our pipes.
            stopped = {self.proc.pid}
            with suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGSTOP)
            while new := set(_descendants(self.proc.pid)) - stopped:
                for pid in new:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                stopped |= new
            for pid in stopped:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            casa.kill_group(self.proc)
        try:
            self.output.result(timeout=30)
        except concurrent.futures.TimeoutError:  # something still holds the pipes: stop reading
            log.error("ingest %s: CASA's pipes stay open after the kill", self.ingest.pk)
            for pipe in (self.proc.stdout, self.proc.stderr):
                assert pipe is not None, "start_casa pipes stdout and stderr"
                with suppress(OSError, ValueError):
                    os.close(pipe.fileno())
        except Exception as exc:  # whatever communicate() raised, the check is over
            log.debug("ingest %s: CASA's output after the kill: %s", self.ingest.pk, exc)
        self.pool.shutdown(wait=True)

    def result(self, dataset: Path, kind: str) -> dict:
        self._order({"kind": kind, "path": str(dataset), "scratch": str(self.scratch)})
        deadline = time.monotonic() + CHECK_TIMEOUT  # from the go order: the copy is not counted
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise IngestFailed(
                        f"CASA did not finish checking {dataset.name} within {CHECK_TIMEOUT} s"
                    )
                try:
                    stdout, stderr = self.output.result(timeout=min(HEARTBEAT_SECONDS, left))
                    break
                except concurrent.futures.TimeoutError:
                    touched = DataIngest.objects.filter(
                        pk=self.ingest.pk, status=DataIngest.Status.CHECKING
                    ).update(heartbeat_at=timezone.now())
                    if not touched:  # cancelled, or failed by the reaper
                        self.stop()
                        raise IngestStopped(f"ingest {self.ingest.pk} is no longer checking") from None
        finally:
            self.pool.shutdown(wait=True)
            shutil.rmtree(self.scratch, ignore_errors=True)
        prefix = CHECK_MARKER + " "
        line = next((ln for ln in (stdout or "").splitlines() if ln.startswith(prefix)), None)
        if self.proc.returncode != 0 or line is None:
            tail = " | ".join(((stderr or "") + "\n" + (stdout or "")).strip().splitlines()[-8:])
            said = scrub(tail.replace(str(dataset), dataset.name), self.staging)
            raise IngestFailed(
                f"CASA could not check {dataset.name} (exit code {self.proc.returncode}): {said}"
            )
        return json.loads(line.removeprefix(prefix))


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc: this kernel may lack /proc/<pid>/children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def check_data(ingest: DataIngest, dataset: Path, kind: str, summary: dict) -> dict:
    """What CASA read (the ASDM/UVFITS through a scratch MS in staging), checked: readable,
    with visibilities, and this EB's data where the data names its EB."""
    eb = ingest.execution_block
    if "error" in summary:
        what = {MS: "an MS", ASDM: "an ASDM", UVFITS: "a UVFITS file"}[kind]
        said = scrub(summary["error"].replace(str(dataset), dataset.name), ingest_staging(ingest))
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


def ingest_staging(ingest: DataIngest) -> Path | None:
    try:
        return staging_folder(ingest)
    except datafiles.UnsafePath:
        return None


def _bring_in(ingest: DataIngest, staging: Path) -> tuple[Path, str]:
    """Copy or extract the data into staging; returns (the data, its kind)."""
    if ingest.source_kind == DataIngest.SourceKind.UPLOAD:
        archive = upload_path(ingest)
        if archive is None or not archive.is_file():
            raise IngestFailed("the uploaded file is gone; upload it again")
        with archive.open("rb") as raw:
            dataset = extract_archive(ingest, raw, archive.stat().st_size, staging)
        return dataset, data_kind(dataset)
    try:
        with open_source(ingest.source) as source:  # again, by fds: links may have changed since
            if source_kind(source) == TAR:
                with os.fdopen(os.dup(source.fd), "rb") as raw:
                    raw.seek(0)
                    dataset = extract_archive(ingest, raw, source.st.st_size, staging)
            else:
                dataset = copy_data(ingest, source, staging)
    except IngestRefused as exc:
        raise IngestFailed(str(exc)) from None
    return dataset, data_kind(dataset)


def _claim(ingest: DataIngest) -> bool:
    """QUEUED -> COPYING for this worker; a redelivered task (its worker died) takes over an
    active row only once its heartbeat is stale. False: someone else has it, or it was cancelled."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS)
    claimable = DataIngest.objects.filter(pk=ingest.pk).filter(
        models.Q(status=DataIngest.Status.QUEUED)
        | models.Q(status__in=[DataIngest.Status.COPYING, DataIngest.Status.CHECKING], heartbeat_at__lt=stale)
    )
    if not claimable.update(status=DataIngest.Status.COPYING, started_at=now, heartbeat_at=now):
        return False
    ingest.status = DataIngest.Status.COPYING
    return True


def ingest_execute(ingest_id: int) -> DataIngest | None:
    """The task body: bring the data in, check it, publish it; FAILED with one sentence otherwise."""
    ingest = DataIngest.objects.select_related("execution_block__mous").filter(pk=ingest_id).first()
    if ingest is None or not ingest.is_active:  # gone with its EB, or already finished
        return ingest
    failure: str | None = None
    staging: Path | None = None
    claimed = False
    try:
        if not _claim(ingest):
            return ingest
        claimed = True
        staging = staging_folder(ingest)
        # A redelivered task (its worker died) starts over from an empty staging folder.
        shutil.rmtree(staging, ignore_errors=True)
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
        failure = scrub(str(exc), staging)
    except OSError as exc:  # disk full, permissions: still one sentence, still nothing left
        failure = f"the ingest stopped: {os_reason(exc, staging)}"
    except Exception as exc:  # a bug: one sentence without the server's paths
        log.exception("ingest %s stopped", ingest_id)
        failure = f"the ingest stopped: {type(exc).__name__}: {scrub(str(exc), staging)}"
    finally:
        if claimed:
            _clean(ingest)  # before FAILED is visible: whoever sees it finds nothing left
    if failure is not None:
        _fail(ingest, failure)
    ingest.refresh_from_db()
    return ingest


def cancel(item: DataIngest, by) -> DataIngest:
    """Cancel a queued or running ingest: FAILED at once, the EB as it was. A running worker
    notices at its next progress write or heartbeat, stops CASA and removes its staging folder;
    a queued one is never started (its upload is removed here)."""
    who = getattr(by, "username", "") or "someone"
    with transaction.atomic():
        current = (
            DataIngest.objects.select_for_update().select_related("execution_block__mous").get(pk=item.pk)
        )
        if not current.is_active:
            raise IngestConflict(
                f"ingest {current.pk} is already {current.get_status_display().lower()}; nothing to cancel"
            )
        was_queued = current.status == DataIngest.Status.QUEUED
        current.status = DataIngest.Status.FAILED
        current.error = f"cancelled by {who}; nothing was changed"
        current.finished_at = timezone.now()
        current.save(update_fields=["status", "error", "finished_at"])
    if was_queued:
        _clean(current)
    return current


def ingests_reap_stale() -> list[int]:
    """Fail ingests whose worker went away (no heartbeat for INGEST_STALE_AFTER_SECONDS), and
    ingests still QUEUED that long after they were asked for with no worker having claimed them
    (the queue lost the task): either would block their EB for good."""
    quiet = settings.INGEST_STALE_AFTER_SECONDS
    cutoff = timezone.now() - dt.timedelta(seconds=quiet)
    running = DataIngest.objects.filter(
        status__in=[DataIngest.Status.COPYING, DataIngest.Status.CHECKING], heartbeat_at__lt=cutoff
    )
    lost = DataIngest.objects.filter(
        status=DataIngest.Status.QUEUED, heartbeat_at__isnull=True, created_at__lt=cutoff
    )
    reaped = []
    for stale, message in (
        (running, f"the worker stopped during the ingest (no progress for {quiet} s); nothing was kept"),
        (lost, f"no worker took the ingest within {quiet} s; nothing was changed, bring the data in again"),
    ):
        for ingest in stale.select_related("execution_block__mous"):
            before = ingest.status
            if DataIngest.objects.filter(pk=ingest.pk, status=before).update(
                status=DataIngest.Status.FAILED, error=message, finished_at=timezone.now()
            ):
                _clean(ingest)
                reaped.append(ingest.pk)
    _remove_abandoned_uploads(cutoff.timestamp())
    return reaped


UPLOAD_SUFFIXES = (".part", ".upload")


def _remove_abandoned_uploads(before: float) -> None:
    """Uploads cut off mid-stream (.part not written to since `before`) and stored uploads no
    active ingest will read (their EB was deleted while queued). Only our own regular files
    (*.part, *.upload) are touched: anything else in the folder is left alone."""
    folder = upload_dir()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    wanted = set(
        DataIngest.objects.filter(status__in=DataIngest.ACTIVE).values_list("upload_name", flat=True)
    )
    for name in names:
        if name in wanted or not name.endswith(UPLOAD_SUFFIXES):
            continue
        try:
            st = os.stat(folder / name, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_mtime < before:
                os.unlink(folder / name)
        except OSError as exc:
            log.warning("abandoned upload %s not removed: %s", name, exc.strerror)
