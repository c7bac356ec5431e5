"""The one way to touch files under DATA_ROOT, for the web process and the worker alike.

A run's folder is written by an uploaded script (semi-trusted code). Whatever the script leaves
there (a link to /etc/shadow named like its log, a link to a folder outside, a FIFO, a hard
link) must never make the portal read or write anything outside DATA_ROOT. So:

- every path is walked from DATA_ROOT one component at a time with `openat(O_NOFOLLOW)`: a link
  in ANY component (not only the last) is refused, and nothing can be swapped between a check
  and the open (each step opens relative to the directory already opened);
- the path must stay inside `base` (the folder the caller expects, e.g. a run folder): `..`
  components are refused outright, absolute paths must lie below `base`;
- reads open regular files only (never a FIFO, device or socket), and refuse a file with more
  than one hard link: a hard link cannot be told from the original by its name, and nothing
  the portal serves (logs, plots, text, FITS, .npz) is ever hard-linked by CASA or by us;
- writes never follow a link either: an existing link is refused (or, with `replace_confined`,
  replaced by a new file), an existing hard-linked file is refused, and `exclusive=True` adds
  O_EXCL.

Refusals raise `UnsafePath` (a ValueError) with a message that names the path and the reason;
a path that simply is not there raises FileNotFoundError as usual.

Paths are stored relative to DATA_ROOT (`relative_to_data_root` / `from_data_root`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:  # models import nothing from here; keep this module free of model imports
    from assignments.models import ExecutionBlock, Mous

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Folders on the way down are only searched, never read: O_PATH needs no read permission.
_WALK_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_MODES = {"rb": os.O_RDONLY, "r": os.O_RDONLY}
_WRITE_MODES = {
    "wb": os.O_WRONLY | os.O_CREAT,
    "w": os.O_WRONLY | os.O_CREAT,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "xb": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


_NO_LINKS = "the portal never follows links under DATA_ROOT"


class UnsafePath(ValueError):
    """A path the portal will not touch: outside its folder, through a link, not a regular file."""


class PathOutsideDataRoot(UnsafePath):
    """A folder derived from user data would leave DATA_ROOT."""


# --- DATA_ROOT and the folders below it -------------------------------------------------------
def data_root() -> Path:
    """DATA_ROOT, resolved: the trusted starting point of every walk (an operator may link it)."""
    return Path(settings.DATA_ROOT).resolve()


def inside_data_root(path: Path) -> Path:
    """`path` resolved, or PathOutsideDataRoot when it is not below DATA_ROOT.

    For folders the portal derives and creates (a MOUS or EB folder); reading and writing files
    go through the *_confined functions, which also refuse links."""
    root = data_root()
    resolved = Path(path).resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise PathOutsideDataRoot(f"{path} is outside DATA_ROOT ({root})")
    return resolved


def mous_folder(mous: Mous) -> Path:
    return inside_data_root(Path(settings.DATA_ROOT) / mous.folder_name)


def eb_folder(eb: ExecutionBlock) -> Path:
    return inside_data_root(mous_folder(eb.mous) / eb.folder_name)


def relative_to_data_root(path: Path | str) -> str:
    """How a path is stored: POSIX text relative to DATA_ROOT ('' for DATA_ROOT itself)."""
    absolute = _normal(Path(path) if Path(path).is_absolute() else data_root() / path)
    root = data_root()
    if absolute != root and not absolute.is_relative_to(root):
        raise PathOutsideDataRoot(f"{path} is outside DATA_ROOT ({root})")
    rel = absolute.relative_to(root).as_posix()
    return "" if rel == "." else rel


def from_data_root(rel: str | Path) -> Path:
    """The absolute path of a stored path. Relative is the rule; an absolute path (rows stored
    before paths were relative) is accepted only below DATA_ROOT."""
    return data_root() / relative_to_data_root(rel)


def public_message(exc: BaseException | str) -> str:
    """An error's or a message's text without DATA_ROOT's absolute path, for pages and API answers."""
    root = str(data_root())
    return str(exc).replace(root + "/", "").replace(root, "DATA_ROOT")


# --- confined access ----------------------------------------------------------------------------
def _normal(path: Path) -> Path:
    """`path` with '.' removed; '..' refused (never normalised away: with links, a/../b is not b)."""
    if ".." in path.parts:
        raise UnsafePath(f"{path}: '..' is not allowed in a path")
    return Path(os.path.normpath(path))


def _target(path: Path | str, base: Path, root: Path | None = None) -> tuple[Path, tuple[str, ...]]:
    """(`path` as an absolute path inside `base`, its components below `root` (DATA_ROOT))."""
    root = data_root() if root is None else Path(root)
    base_abs = _normal(Path(base) if Path(base).is_absolute() else root / base)
    if base_abs != root and not base_abs.is_relative_to(root):
        raise PathOutsideDataRoot(f"{base} is outside {'DATA_ROOT ' if root == data_root() else ''}({root})")
    given = Path(path)
    if str(path) == "" or "\x00" in str(path):
        raise UnsafePath(f"{path!r}: not a file name")
    target = _normal(given if given.is_absolute() else base_abs / given)
    if target != base_abs and not target.is_relative_to(base_abs):
        raise UnsafePath(f"{path}: outside {base_abs}")
    return target, target.relative_to(root).parts


def _describe(dir_fd: int, name: str) -> str:
    """Why `name` could not be opened as asked: 'a link', 'a FIFO', ... ('' when unknown)."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return ""
    return _kind(mode)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "not a regular file"


@contextmanager
def _parent_fd(
    path: Path | str, base: Path, *, create_dirs: bool = False, root: Path | None = None
) -> Iterator[tuple[int, str, Path]]:
    """(an fd of the folder holding `path`, the last component, the full path), walked from
    `root` (default DATA_ROOT; a trusted, resolved folder) with O_NOFOLLOW at every step. The fd
    is closed on exit."""
    named = "DATA_ROOT" if root is None else str(root)
    root = data_root() if root is None else Path(root)
    target, parts = _target(path, base, root)
    if not parts:
        raise UnsafePath(f"{path}: {named} itself is not a file")
    fd = os.open(root, _WALK_FLAGS & ~os.O_NOFOLLOW)
    try:
        walked = root
        for part in parts[:-1]:
            walked = walked / part
            try:
                next_fd = os.open(part, _WALK_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create_dirs:
                    raise
                with suppress(FileExistsError):
                    os.mkdir(part, 0o775, dir_fd=fd)
                next_fd = _open_dir_or_refuse(fd, part, walked, flags=_WALK_FLAGS)
            except OSError as exc:
                _refuse_if_not_a_folder(fd, part, walked, exc)
                raise
            os.close(fd)
            fd = next_fd
        yield fd, parts[-1], target
    finally:
        os.close(fd)


def _open_dir_or_refuse(fd: int, part: str, walked: Path, *, flags: int = _DIR_FLAGS) -> int:
    try:
        return os.open(part, flags, dir_fd=fd)
    except OSError as exc:
        _refuse_if_not_a_folder(fd, part, walked, exc)
        raise


def _refuse_if_not_a_folder(fd: int, part: str, walked: Path, exc: OSError) -> None:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        kind = _describe(fd, part)
        if kind == "a link":
            raise UnsafePath(f"{walked} is a link: {_NO_LINKS}") from None
        raise FileNotFoundError(errno.ENOTDIR, f"{walked} is {kind or 'not a folder'}", str(walked))


def _check_regular(st: os.stat_result, where: Path, *, single_link: bool) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"{where} is a link: {_NO_LINKS}")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"{where} is {_kind(st.st_mode)}, not a regular file: not opened")
    if single_link and st.st_nlink > 1:
        raise UnsafePath(
            f"{where} has {st.st_nlink} hard links: it may be another file's contents, so it is not opened"
        )


def open_confined(path: Path | str, *, base: Path, mode: str = "rb", allow_hardlinks: bool = False) -> IO:
    """Open the file `path` (relative to `base`, or absolute below it) without following any link.

    Modes: 'rb'/'r' (a regular file only), 'wb'/'w' (created or truncated), 'ab'/'a', 'xb'/'x'
    (must not exist). The file object is the caller's to close (use `with`)."""
    binary = "b" in mode
    if mode in _READ_MODES:
        flags = _READ_MODES[mode]
    elif mode in _WRITE_MODES:
        flags = _WRITE_MODES[mode]
    else:
        raise ValueError(f"mode {mode!r}: one of {sorted({*_READ_MODES, *_WRITE_MODES})}")
    reading = mode in _READ_MODES
    with _parent_fd(path, base, create_dirs=False) as (dir_fd, name, target):
        # Before opening: opening a FIFO blocks, opening a device may act on it.
        try:
            _check_regular(os.stat(name, dir_fd=dir_fd, follow_symlinks=False), target, single_link=False)
        except FileNotFoundError:
            if reading:
                raise FileNotFoundError(errno.ENOENT, f"{target} does not exist", str(target)) from None
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o664, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # swapped in after the check
                kind = _describe(dir_fd, name) or "not a regular file"
                reason = _NO_LINKS if exc.errno == errno.ELOOP else "not opened"
                raise UnsafePath(f"{target} is {kind}: {reason}") from None
            raise
    try:
        st = os.fstat(fd)  # the file actually opened (a swap after the check above lands here)
        _check_regular(st, target, single_link=not (reading and allow_hardlinks))
        os.set_blocking(fd, True)
        if mode in ("wb", "w"):
            os.ftruncate(fd, 0)  # only now: truncating at open would have hit a hard link's target
        return os.fdopen(fd, mode, encoding=None if binary else "utf-8")
    except BaseException:
        os.close(fd)
        raise


def read_confined(path: Path | str, *, base: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file (at most `limit` of them, from the start)."""
    with open_confined(path, base=base) as handle:
        return handle.read() if limit is None else handle.read(limit)


def tail_confined(path: Path | str, *, base: Path, size: int) -> bytes:
    """The last `size` bytes of a regular file (a log's tail)."""
    with open_confined(path, base=base) as handle:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, end - size))
        return handle.read()


def write_confined(path: Path | str, data: bytes | str, *, base: Path, exclusive: bool = False) -> None:
    """Write `data` to `path` (folders below `base` are created, never through a link).

    exclusive=True: the file must not exist yet (O_EXCL). Otherwise an existing regular file
    with one link is overwritten in place; an existing link, FIFO or hard-linked file is refused.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with _parent_fd(path, base, create_dirs=True):
        pass  # the folders exist now, each checked for links on the way down
    with open_confined(path, base=base, mode="xb" if exclusive else "wb") as handle:
        handle.write(payload)


def replace_confined(path: Path | str, data: bytes | str, *, base: Path) -> None:
    """Write `data` to a new file and rename it over `path`: whatever `path` was (a link
    included) is replaced, never written through. For files the worker owns (spec, script)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with _parent_fd(path, base, create_dirs=True) as (dir_fd, name, _target_path):
        temp = f".{name}.{os.getpid()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp, flags, 0o664, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dir_fd)
            raise


def mkdir_confined(path: Path | str, *, base: Path) -> None:
    """Create the folder `path` and its parents below `base`, refusing links on the way."""
    with _parent_fd(path, base, create_dirs=True) as (dir_fd, name, target):
        try:
            os.mkdir(name, 0o775, dir_fd=dir_fd)
        except FileExistsError:
            kind = _describe(dir_fd, name)
            if kind != "a folder":
                raise UnsafePath(f"{target} is {kind}, not a folder") from None


def stat_confined(path: Path | str, *, base: Path) -> os.stat_result:
    """The stat of `path` itself (never of a link's target); UnsafePath for a link anywhere."""
    with _parent_fd(path, base) as (dir_fd, name, target):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"{target} is a link: {_NO_LINKS}")
    return st


def open_fd_confined(path: Path | str, *, base: Path, root: Path | None = None) -> int:
    """An fd (O_RDONLY) of the regular file or folder `path`, walked from `root` (default
    DATA_ROOT) below `base` without following a link anywhere; a file must have one hard link.
    For walking a tree by fds (openat relative to it) and comparing `os.fstat` with a scan.
    The fd is the caller's to close."""
    with _parent_fd(path, base, root=root) as (dir_fd, name, target):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)  # before opening: FIFOs block
        if not stat.S_ISDIR(st.st_mode):
            _check_regular(st, target, single_link=True)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):  # swapped in after the check
                raise UnsafePath(f"{target} is {_describe(dir_fd, name) or 'not a regular file'}") from None
            raise
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise UnsafePath(f"{target} changed while it was opened")
        if not stat.S_ISDIR(opened.st_mode):
            _check_regular(opened, target, single_link=True)
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def is_file_confined(path: Path | str, *, base: Path) -> bool:
    """True for a regular file reached without links; False when missing or refused."""
    try:
        return stat.S_ISREG(stat_confined(path, base=base).st_mode)
    except (OSError, UnsafePath):
        return False


@dataclass(frozen=True)
class Entry:
    """One entry of a folder listing. `kind` is 'file', 'folder', 'link' (never followed) or 'other'."""

    name: str
    kind: str
    size: int


def listdir_confined(path: Path | str = ".", *, base: Path) -> list[Entry]:
    """The entries of the folder `path` (default: `base` itself), sorted by name. Links are
    listed as 'link' and not followed; the caller shows or skips them, never opens them."""
    target, _ = _target(path, base)
    if target == data_root():
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        with _parent_fd(path, base) as (dir_fd, name, target):
            fd = _open_dir_or_refuse(dir_fd, name, target)
    try:
        entries = []
        with os.scandir(fd) as it:
            for item in it:
                st = item.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    kind = "link"
                elif stat.S_ISDIR(st.st_mode):
                    kind = "folder"
                elif stat.S_ISREG(st.st_mode):
                    kind = "file"
                else:
                    kind = "other"
                entries.append(Entry(item.name, kind, st.st_size if kind == "file" else 0))
    finally:
        os.close(fd)
    return sorted(entries, key=lambda e: e.name)
