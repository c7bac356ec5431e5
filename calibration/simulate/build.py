"""Start the simulated-EB builds in CASA subprocesses (worker/test side; no CASA import here)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calibration import casa
from calibration.simulate.spec import EbSpec, spec_hash, validate

BUILD_MODULE = "calibration.simulate.builder"
NGC5921_MODULE = "calibration.simulate.ngc5921"
DEFAULT_TIMEOUT_S = 3600.0


class BuildFailed(RuntimeError):
    """The CASA subprocess did not produce the EB; carries the tail of its output."""


@dataclass(frozen=True)
class EbBuild:
    """A built EB: the MS, its truth (every injected value and fault) and the build cost."""

    folder: Path
    ms: Path
    truth_path: Path
    truth: dict[str, Any]

    @property
    def seconds(self) -> float:
        return float(self.truth.get("build", {}).get("seconds", 0.0))

    @property
    def size_mb(self) -> float:
        return float(self.truth.get("build", {}).get("size_mb", 0.0))

    @classmethod
    def load(cls, folder: Path) -> EbBuild:
        truth_path = folder / "truth.json"
        truth = json.loads(truth_path.read_text())
        return cls(folder, folder / truth["ms_name"], truth_path, truth)


def build_eb(spec: EbSpec, outdir: Path, *, timeout: float = DEFAULT_TIMEOUT_S) -> EbBuild:
    """Validate `spec` (SpecError before any CASA starts), then build it into `outdir`."""
    validate(spec)
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    spec_file = outdir / "spec.json"
    spec_file.write_text(spec.to_json())
    result = casa.run_casa(BUILD_MODULE, cwd=outdir, timeout=timeout, args=[str(spec_file), str(outdir)])
    if not result.ok or not (outdir / "truth.json").exists():
        reason = "timed out" if result.timed_out else f"exit code {result.returncode}"
        raise BuildFailed(f"building {spec.ms_name} failed ({reason}):\n{casa.result_tail(result, 15)}")
    return EbBuild.load(outdir)


def import_ngc5921(outdir: Path, ms_name: str = "ngc5921.ms", *, timeout: float = 600.0) -> EbBuild:
    """importuvfits of casadata's demo/NGC5921.fits into `outdir` (with a truth.json of what
    the data are, for symmetry with the simulated EBs)."""
    outdir = Path(outdir).resolve()
    result = casa.run_casa(NGC5921_MODULE, cwd=outdir, timeout=timeout, args=[str(outdir), ms_name])
    if not result.ok or not (outdir / "truth.json").exists():
        raise BuildFailed(
            f"importing NGC5921 failed (exit code {result.returncode}):\n{casa.result_tail(result, 15)}"
        )
    return EbBuild.load(outdir)


# --- on-disk cache: build once per spec, reuse across sessions and processes ----------------
def cached_build(cache_root: Path, key: str, make: Any) -> EbBuild:
    """`cache_root/<key>/` built by `make(tmpdir) -> EbBuild` if missing.

    Safe when two processes race: each builds into its own temporary folder beside the
    final one and renames it into place; the loser discards its copy and uses the winner's.
    """
    cache_root = Path(cache_root)
    final = cache_root / key
    if (final / "truth.json").exists():
        return EbBuild.load(final)
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-{uuid.uuid4().hex[:6]}-", dir=cache_root))
    try:
        make(tmp)
        try:
            os.rename(tmp, final)  # atomic on one file system; fails if `final` exists
        except OSError:
            if not (final / "truth.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return EbBuild.load(final)


def default_cache_root() -> Path:
    """Where built EBs are kept: shared by the demo, every test session and benchmark run
    (QA2_SIMCACHE overrides; not under a per-run VAR_DIR so a cache survives test runs)."""
    from django.conf import settings

    return Path(os.environ.get("QA2_SIMCACHE") or Path(settings.BASE_DIR) / "var" / "simcache")


def cached_eb(spec: EbSpec, cache_root: Path | None = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> EbBuild:
    """The build of `spec` from the cache, building it first when missing."""
    validate(spec)
    cache_root = default_cache_root() if cache_root is None else cache_root
    return cached_build(cache_root, spec_hash(spec), lambda tmp: build_eb(spec, tmp, timeout=timeout))


def cached_ngc5921(cache_root: Path | None = None) -> EbBuild:
    cache_root = default_cache_root() if cache_root is None else cache_root
    return cached_build(cache_root, "ngc5921-v2", lambda tmp: import_ngc5921(tmp))


def copy_ms(src: Path, dest_dir: Path, name: str | None = None) -> Path:
    """A private, writable copy of an MS (tests and demo EB folders never touch the cache)."""
    dest = Path(dest_dir) / (name or Path(src).name)
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest, symlinks=True)
    return dest


# --- CASA-side checks, answered as JSON ------------------------------------------------------
def casa_json(
    module: str, marker: str, *, cwd: Path, args: list[str], timeout: float = 600.0
) -> dict[str, Any]:
    """Run `module` in CASA and return the JSON it printed after `marker`."""
    try:
        return casa.run_casa_json(module, marker, cwd=cwd, timeout=timeout, args=args)[0]
    except casa.CasaScriptFailed as exc:
        raise BuildFailed(str(exc)) from exc


def asdm_roundtrip(ms: Path, workdir: Path, *, timeout: float = 600.0) -> dict[str, Any]:
    """exportasdm -> importasdm of `ms` in `workdir`; what survives (see ASDM_ROUNDTRIP.md)."""
    return casa_json(
        "calibration.simulate.asdm",
        "SIMASDM",
        cwd=Path(workdir),
        args=[str(ms), str(workdir)],
        timeout=timeout,
    )
