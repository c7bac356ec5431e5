"""What CASA makes of a simulated EB, for the tests (worker side: starts verify.py in CASA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calibration.simulate.build import casa_json

VERIFY_MODULE = "tests.calibration.simulate.verify"


def verify_eb(ms: Path, truth_dir: Path, *, timeout: float = 900.0) -> dict[str, Any]:
    """Calibrate `ms` (a writable copy: flags and caltables are written beside it) with real
    CASA and report what it recovers, next to the truth in `truth_dir`."""
    args = ["verify", str(ms), str(truth_dir)]
    return casa_json(VERIFY_MODULE, "SIMVERIFY", cwd=Path(ms).parent, args=args, timeout=timeout)


def inspect_eb(ms: Path, *, timeout: float = 300.0) -> dict[str, Any]:
    """Antennas, spws, intents and ALMA subtables of `ms` as CASA sees them (read only)."""
    args = ["inspect", str(ms)]
    return casa_json(VERIFY_MODULE, "SIMINSPECT", cwd=Path(ms).parent, args=args, timeout=timeout)
