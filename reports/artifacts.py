"""Read a diagnostic's artifact (a small .npz under the run folder); never a CASA table.

The run folder is written by the uploaded script too, so the file is opened through
assignments/datafiles.py (no links, nothing outside the run folder, regular files only) and its
arrays are checked for size before any is decompressed (a planted zip bomb is refused)."""

import zipfile

import numpy as np

from assignments.datafiles import UnsafePath, from_data_root, open_confined, public_message
from qa2portal.errors import DomainError
from reports.models import Diagnostic

# Real artifacts are float32 arrays of a few MB at most (ARTIFACTS.md).
ARTIFACT_MAX_BYTES = 256 * 1024 * 1024


class ArtifactUnavailable(DomainError):
    """The artifact is missing (`refused` False: 404) or not read for safety (`refused` True: 403)."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused
        self.status = 403 if refused else 404


def load(diagnostic: Diagnostic) -> dict[str, np.ndarray]:
    if not diagnostic.artifact:
        return {}
    name = diagnostic.artifact
    try:
        handle = open_confined(name, base=from_data_root(diagnostic.run.folder))
    except UnsafePath as exc:
        raise ArtifactUnavailable(f"{name} is not read: {public_message(exc)}", refused=True) from None
    except OSError:
        raise ArtifactUnavailable(f"{name} is no longer on disk", refused=False) from None
    with handle:
        try:
            total = sum(info.file_size for info in zipfile.ZipFile(handle).infolist())
        except zipfile.BadZipFile:
            raise ArtifactUnavailable(f"{name} is not an .npz file", refused=True) from None
        if total > ARTIFACT_MAX_BYTES:
            raise ArtifactUnavailable(
                f"{name} holds {total:,} bytes of arrays, over the {ARTIFACT_MAX_BYTES:,}-byte limit",
                refused=True,
            )
        handle.seek(0)
        try:
            with np.load(handle, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:  # object arrays, a damaged member
            raise ArtifactUnavailable(f"{name} is not readable: {exc}", refused=True) from None
