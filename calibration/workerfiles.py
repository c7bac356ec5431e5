"""The files the worker itself writes into a run folder (the script's copy, the output log).

The worker runs outside the sandbox, with more rights than the script; the script can write
anything in its folder, including a link, a FIFO or a hard link waiting at the name of the
next run's log. So these files are opened relative to the folder, without following a link
(O_NOFOLLOW), without blocking on a FIFO (O_NONBLOCK), and only when they are a regular file
of their own (one link): anything else at that name is removed and the file made anew.
"""

import errno
import os
import stat
from pathlib import Path
from typing import TextIO


class WorkerFileRefused(OSError):
    """The name is taken by something the worker will not remove (a folder)."""


def _open(folder_fd: int, name: str, flags: int) -> int:
    return os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644, dir_fd=folder_fd)


def open_for_worker(folder: Path, name: str, *, append: bool) -> int:
    """A file descriptor of folder/name for writing: append, or truncated; never via a link."""
    if not name or "/" in name or name in {".", ".."}:
        raise ValueError(f"{name!r} is not a file name")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = _open(folder_fd, name, flags)
        except OSError as exc:
            # ELOOP: a symbolic link; ENXIO: a FIFO nobody reads.
            if exc.errno == errno.EISDIR:
                raise WorkerFileRefused(f"{name} in {folder} is a folder, not the worker's file") from None
            if exc.errno not in (errno.ELOOP, errno.ENXIO):
                raise
            os.unlink(name, dir_fd=folder_fd)
            fd = _open(folder_fd, name, flags | os.O_EXCL)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            # A hard link would make the worker write into another file (e.g. one of the MS's).
            os.close(fd)
            os.unlink(name, dir_fd=folder_fd)
            fd = _open(folder_fd, name, flags | os.O_EXCL)
        os.set_blocking(fd, True)
        return fd
    finally:
        os.close(folder_fd)


def open_text(folder: Path, name: str, *, append: bool = True) -> TextIO:
    """open_for_worker as a text file (UTF-8)."""
    fd = open_for_worker(folder, name, append=append)
    return os.fdopen(fd, "a" if append else "w", encoding="utf-8")


def write_bytes(folder: Path, name: str, data: bytes) -> None:
    fd = open_for_worker(folder, name, append=False)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def regular_file_size(folder: Path, name: str) -> int | None:
    """The size of folder/name when it is a regular file (not a link), else None."""
    try:
        st = os.lstat(folder / name)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None
