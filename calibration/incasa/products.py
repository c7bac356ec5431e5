"""What a step created or changed in its folder, classified with CASA's table keywords."""

import os
from pathlib import Path

import casatools

Snapshot = dict[str, tuple[int, int]]  # relpath -> (mtime_ns, size)

TEXT_SUFFIXES = {".txt", ".listobs", ".wvrgcal", ".fluxscale", ".csv", ".dat", ".json"}
SKIP_NAMES = {"__pycache__", "qa2portal-diagnostics"}  # our own artifacts are not step products


def is_table(path: Path) -> bool:
    return (path / "table.dat").is_file()


def _dir_stamp(path: Path) -> tuple[int, int]:
    """Newest mtime of the files directly in a table or flagversions folder, and its total size."""
    newest, total = path.stat().st_mtime_ns, 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            st = (Path(root) / name).stat()
            total += st.st_size
            if root == str(path):
                newest = max(newest, st.st_mtime_ns)
    return newest, total


def snapshot(folder: Path, exclude: set[str]) -> Snapshot:
    """One entry per file, per CASA table and per .flagversions folder (not their insides)."""
    entries: Snapshot = {}
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        keep = []
        for name in dirs:
            sub = root_path / name
            if name in SKIP_NAMES:
                continue
            if sub.is_symlink():  # a link is an entry of its own, never followed
                st = sub.lstat()
                entries[str(sub.relative_to(folder))] = (st.st_mtime_ns, st.st_size)
            elif is_table(sub) or name.endswith(".flagversions"):
                entries[str(sub.relative_to(folder))] = _dir_stamp(sub)
            else:
                keep.append(name)
        dirs[:] = keep
        for name in files:
            rel = str((root_path / name).relative_to(folder))
            if rel in exclude:
                continue
            st = (root_path / name).lstat()  # a dangling link is not an error
            entries[rel] = (st.st_mtime_ns, st.st_size)
    return entries


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(rel for rel, stamp in after.items() if before.get(rel) != stamp)


def classify(folder: Path, relpath: str) -> dict[str, object]:
    path = folder / relpath
    kind, viscal = "other", ""
    if path.is_symlink():  # reported as it is; the worker refuses it as a product
        return {"relpath": relpath, "kind": kind, "viscal": viscal, "size": path.lstat().st_size}
    if path.is_dir():
        if relpath.endswith(".flagversions"):
            kind = "flagversions"
        elif is_table(path):
            kind, viscal = _table_kind(path)
    else:
        suffix = path.suffix.lower()
        if suffix == ".png":
            kind = "png"
        elif suffix == ".fits":
            kind = "fits"
        elif suffix == ".log" or path.name.startswith("casa-run"):
            kind = "log"
        elif suffix in TEXT_SUFFIXES or path.name.endswith(".scriptForCalibration.py"):
            kind = "txt"
    size = _dir_stamp(path)[1] if path.is_dir() else path.stat().st_size
    return {"relpath": relpath, "kind": kind, "viscal": viscal, "size": size}


def _table_kind(path: Path) -> tuple[str, str]:
    tb = casatools.table()
    try:
        tb.open(str(path))
        keywords = tb.getkeywords()
    except RuntimeError:
        return "other", ""
    finally:
        tb.close()
    if "MS_VERSION" in keywords:
        return "ms", ""
    if "VisCal" in keywords:
        return "caltable", str(keywords["VisCal"])
    if "coords" in keywords:
        return "image", ""
    return "other", ""
