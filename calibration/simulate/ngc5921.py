"""The one real interferometer data set shipped with CASA: VLA NGC5921 (casadata
demo/NGC5921.fits). Runs INSIDE a CASA subprocess:

    python -P -m calibration.simulate.ngc5921 OUTDIR [MS_NAME]

importuvfits into OUTDIR/MS_NAME, then truth.json (what the data are, no injected faults)
and the ALMA-step-layout calibration script beside it.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).with_name("templates") / "scriptForCalibration_ngc5921.py.tmpl"
REFANT = "15"  # the tutorial's 'VA15': importuvfits names antennas '1'..'28'


def render_script(ms_name: str, raw_path: str | None = None) -> str:
    """The calibration script for an NGC5921 working MS `ms_name`, made from the raw MS at
    `raw_path` (relative to the EB folder; default raw/<ms_name>)."""
    raw_path = raw_path or f"raw/{ms_name}"
    text = TEMPLATE.read_text().replace("vis = 'ngc5921.ms'", f"vis = {ms_name!r}")
    return text.replace("raw = 'raw/ngc5921.ms'", f"raw = {raw_path!r}")


def import_fits(outdir: Path, ms_name: str) -> dict[str, Any]:
    import casatools
    from casatasks import casalog, importuvfits

    started = time.perf_counter()
    outdir.mkdir(parents=True, exist_ok=True)
    casalog.setlogfile(str(outdir / "import.casa.log"))
    fits = Path(casatools.ctsys.resolve("demo")) / "NGC5921.fits"
    ms = outdir / ms_name
    shutil.rmtree(ms, ignore_errors=True)
    importuvfits(fitsfile=str(fits), vis=str(ms))
    if not ms.is_dir():
        raise RuntimeError(f"importuvfits wrote no {ms} (see {outdir / 'import.casa.log'})")
    msmd = casatools.msmetadata()
    msmd.open(str(ms))
    fields = list(msmd.fieldnames())
    antennas = list(msmd.antennanames())
    nchan = int(msmd.nchan(0))
    msmd.close()
    (outdir / f"{ms_name}.scriptForCalibration.py").write_text(render_script(ms_name))
    size = sum(f.stat().st_size for f in ms.rglob("*") if f.is_file())
    return {
        "ms_name": ms_name,
        "source": f"casadata {fits.parent.name}/{fits.name} (VLA, importuvfits)",
        "antennas": antennas,
        "refant": REFANT,
        "fields": {
            name: {"role": role} for name, role in zip(fields, ("bandpass", "phase", "target"), strict=False)
        },
        "spws": [{"spw": 0, "nchan": nchan}],
        "faults": [],
        "build": {"seconds": round(time.perf_counter() - started, 2), "size_mb": round(size / 1e6, 2)},
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    outdir = Path(args[0]).resolve()
    truth = import_fits(outdir, args[1] if len(args) > 1 else "ngc5921.ms")
    (outdir / "truth.json").write_text(json.dumps(truth, indent=1))
    print("SIMBUILD " + json.dumps(truth["build"]), flush=True)


if __name__ == "__main__":
    main()
