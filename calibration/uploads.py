"""Streaming a data upload to disk (web side): never held in memory, stopped at the size limit.

Django's default handlers keep small files in memory and write big ones to the system's
temporary folder; a 50 GB tarball belongs on the data disk, written as it arrives. Install
`IngestUploadHandler` before anything reads request.POST/FILES (see `install`), and call
`discard` when the request is over: what the ingest service did not take is removed.

The `gate` given to `install` runs when the file's part begins, before a byte is stored: who
asks, the EB's state, the declared size. Whatever it raises is kept in `handler.refused` and
the body is not read any further (Django's CSRF check, or DRF's, may be what reads it first).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from io import BufferedWriter
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, StopUpload
from django.http import HttpRequest

from calibration.ingest import upload_dir
from qa2portal.errors import TooLarge

FIELD = "file"
CHUNK = 4 * 1024 * 1024  # Django's 64 KB chunks cost 4x the Python calls for a GB upload
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, headers and the csrf field around the file


class StagedUpload(UploadedFile):
    """An upload that lives in the upload folder; the ingest service renames it for the worker."""

    def __init__(self, path: Path, name: str, size: int, content_type: str | None) -> None:
        super().__init__(path.open("rb"), name=name, content_type=content_type, size=size)
        self.staged_path = path

    def temporary_file_path(self) -> str:
        return str(self.staged_path)


class IngestUploadHandler(FileUploadHandler):
    chunk_size = CHUNK

    def __init__(self, request: HttpRequest | None = None, gate: Callable[[], None] | None = None) -> None:
        super().__init__(request)
        self.limit = settings.INGEST_UPLOAD_MAX_BYTES
        self.gate = gate
        self.refused: Exception | None = None
        self.path: Path | None = None
        self.out: BufferedWriter | None = None
        self.received = 0
        self.too_large = False

    def new_file(
        self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None
    ):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        if field_name != FIELD or self.path is not None:
            raise StopUpload(connection_reset=True)  # one file, in the one field we expect
        if self.gate is not None:
            try:
                self.gate()
            except Exception as exc:  # refused: nothing is stored, the rest of the body is not read
                self.refused = exc
                raise StopUpload(connection_reset=True) from None
        folder = upload_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{uuid.uuid4().hex}.part"
        self.out = self.path.open("xb")
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            self.upload_interrupted()
            raise StopUpload(connection_reset=True)
        assert self.out is not None, "new_file opened it, or stopped the upload"
        self.out.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StagedUpload | None:
        if self.out is None:
            return None
        self.out.close()
        assert self.path is not None and self.file_name is not None, "new_file set them with out"
        return StagedUpload(self.path, self.file_name, file_size, self.content_type)

    def upload_interrupted(self) -> None:
        if self.out is not None:
            self.out.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def install(request: HttpRequest, gate: Callable[[], None] | None = None) -> IngestUploadHandler:
    """Make `request` stream its file to disk; must run before request.POST/FILES is read.
    `gate` says whether the file may be stored at all (it raises when not)."""
    handler = IngestUploadHandler(request, gate)
    request.upload_handlers = [handler]
    return handler


def declared_too_large(request: HttpRequest) -> int | None:
    """The declared body size when it is over the limit (answered before a byte is read)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    return length if length > settings.INGEST_UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD else None


class UploadTooLarge(TooLarge, ValueError):
    """The declared body is over the limit (413)."""


def refuse_too_large(request: HttpRequest) -> None:
    if (declared := declared_too_large(request)) is not None:
        raise UploadTooLarge(f"{declared:,} bytes is over the upload limit of {limit_text()}")


def discard(handler: IngestUploadHandler) -> None:
    """Remove what the request streamed and nobody took (a refused or failed upload)."""
    if handler.out is not None and not handler.out.closed:
        handler.out.close()
    if handler.path is not None:
        handler.path.unlink(missing_ok=True)


def limit_text() -> str:
    return f"{settings.INGEST_UPLOAD_MAX_BYTES / 1024**3:.1f} GB"
