"""ASDM round trip of a built EB (exportasdm -> importasdm): what survives. Runs INSIDE CASA:

    python -P -m calibration.simulate.asdm MS WORKDIR

Prints `SIMASDM {json}`. Findings are written up in ASDM_ROUNDTRIP.md: the round trip does
not give a usable EB, so the MS stays the EB's raw data.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

ASIS = "Antenna Station Receiver Source CalAtmosphere CalWVR"


def describe(vis: str) -> dict[str, Any]:
    """Read with `table` only: msmetadata refuses the re-imported MS (referential integrity)."""
    import casatools

    tb = casatools.table()
    out: dict[str, Any] = {}
    tb.open(vis)
    out["rows"] = tb.nrows()
    out["scans"] = len(set(tb.getcol("SCAN_NUMBER").tolist()))
    out["observation_ids"] = len(set(tb.getcol("OBSERVATION_ID").tolist()))
    keywords = sorted(tb.getkeywords())
    tb.close()
    tb.open(vis + "/STATE")
    out["obs_modes"] = sorted(set(tb.getcol("OBS_MODE")))
    tb.close()
    tb.open(vis + "/SPECTRAL_WINDOW")
    out["spw_nchan"] = tb.getcol("NUM_CHAN").tolist()
    tb.close()
    for sub in ("SYSCAL", "POINTING", "WEATHER", "ASDM_CALWVR", "ASDM_CALATMOSPHERE"):
        if sub in keywords:
            tb.open(f"{vis}/{sub}")
            out[f"{sub}_rows"] = tb.nrows()
            if sub == "POINTING" and tb.nrows():
                out["pointing_frame"] = tb.getcolkeywords("DIRECTION")["MEASINFO"]["Ref"]
            tb.close()
    try:
        msmd = casatools.msmetadata()
        msmd.open(vis)
        msmd.close()
        out["msmetadata_opens"] = True
    except RuntimeError as exc:
        out["msmetadata_opens"] = False
        out["msmetadata_error"] = str(exc).splitlines()[0][:200]
    return out


def roundtrip(ms: str, workdir: Path) -> dict[str, Any]:
    from casatasks import casalog, exportasdm, importasdm, split

    workdir.mkdir(parents=True, exist_ok=True)
    casalog.setlogfile(str(workdir / "asdm.casa.log"))
    result: dict[str, Any] = {"original": describe(ms)}
    # 1. the EB as built (WVR spw at 183 GHz + band-6 spws)
    try:
        exportasdm(vis=ms, asdm=str(workdir / "full_asdm"), datacolumn="DATA")
        result["full_export"] = "ok"
    except RuntimeError as exc:
        result["full_export"] = f"failed: {exc}"
    # 2. without the WVR spw
    science = str(workdir / "science.ms")
    shutil.rmtree(science, ignore_errors=True)
    split(vis=ms, outputvis=science, spw=">0", datacolumn="data", keepflags=True)
    asdm = workdir / "science_asdm"
    shutil.rmtree(asdm, ignore_errors=True)
    exportasdm(vis=science, asdm=str(asdm), datacolumn="DATA")
    result["asdm_tables"] = sorted(p.name for p in asdm.iterdir())
    back = str(workdir / "roundtrip.ms")
    for p in (back, back + ".flagversions"):
        shutil.rmtree(p, ignore_errors=True)
    importasdm(asdm=str(asdm), vis=back, asis=ASIS, bdfflags=False, process_caldevice=True)
    result["science_only"] = describe(science)
    result["roundtrip"] = describe(back)
    return result


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    print("SIMASDM " + json.dumps(roundtrip(args[0], Path(args[1]).resolve())), flush=True)


if __name__ == "__main__":
    main()
