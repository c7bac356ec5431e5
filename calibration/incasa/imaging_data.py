"""What an MS prepared for imaging holds (runs inside CASA, after the imaging-prep step wrote it).

Target fields (a source observed at several pointings is a mosaic), spws with their channel
frequencies, the antennas' dish diameters, baseline lengths, and each target's spectrum per
spw: the amplitude of the weighted vector average of its visibilities per channel, which the
continuum finder (calibration.continuum) reads for line channels. Emission near the phase
centre adds in phase on the short baselines, so a line stands out of the continuum there.
"""

import casatools
import numpy as np

from calibration.imaging_names import PREPARED_MS

TARGET_INTENT = "OBSERVE_TARGET#ON_SOURCE"
ROWS_PER_READ = 20000  # about 64 MB of DATA at 2 pols x 128 channels
SHORT_BASELINE_FRACTION = 0.5  # spectra from the shorter half of the baselines


def imaging_data(vis: str) -> dict:
    msmd = casatools.msmetadata()
    msmd.open(vis)
    try:
        names = [str(n) for n in msmd.fieldnames()]
        intents = set(msmd.intents())
        target_ids = (
            [int(i) for i in msmd.fieldsforintent(TARGET_INTENT)]
            if TARGET_INTENT in intents
            else list(range(msmd.nfields()))
        )
        fields = []
        for i in target_ids:
            direction = msmd.phasecenter(i)
            fields.append(
                {
                    "id": i,
                    "name": names[i],
                    "ra_rad": float(direction["m0"]["value"]),
                    "dec_rad": float(direction["m1"]["value"]),
                }
            )
        spws = []
        for s in range(msmd.nspw()):
            freqs = np.asarray(msmd.chanfreqs(s), float)
            widths = np.abs(np.asarray(msmd.chanwidths(s), float))
            spws.append(
                {
                    "id": s,
                    "nchan": len(freqs),
                    "first_freq_ghz": float(freqs[0]) / 1e9,
                    "last_freq_ghz": float(freqs[-1]) / 1e9,
                    "chan_width_mhz": float(np.median(widths)) / 1e6,
                    "bandwidth_mhz": float(widths.sum()) / 1e6,
                    "mean_freq_ghz": float(freqs.mean()) / 1e9,
                }
            )
    finally:
        msmd.close()
    tb = casatools.table()
    tb.open(f"{vis}/ANTENNA")
    try:
        diameters = [float(d) for d in tb.getcol("DISH_DIAMETER")]
        positions = np.asarray(tb.getcol("POSITION"), float).T  # (nant, 3) ITRF metres
    finally:
        tb.close()
    baselines = np.array(
        [
            np.linalg.norm(positions[i] - positions[j])
            for i in range(len(positions))
            for j in range(i + 1, len(positions))
        ]
    )
    return {
        "vis": vis,
        "fields": fields,
        "spws": spws,
        "dish_diameters_m": sorted(set(diameters)),
        "baselines_m": {
            "min": float(baselines.min()) if baselines.size else 0.0,
            "median": float(np.median(baselines)) if baselines.size else 0.0,
            "p80": float(np.percentile(baselines, 80)) if baselines.size else 0.0,
            "max": float(baselines.max()) if baselines.size else 0.0,
        },
        **spectra(vis, target_ids, len(spws)),
    }


def spectra(vis: str, field_ids: list[int], nspw: int) -> dict[str, dict]:
    """`spectra`: per spw id, |weighted vector mean| of the target's unflagged short-baseline
    visibilities per channel (None where all flagged); `weight_sums`: per spw id, the sum of
    the target's unflagged visibility weights of one channel over rows and polarisations (the
    imaging script's thermal-noise estimate: 1/sqrt of it, natural weighting). Rows are read
    ROWS_PER_READ at a time."""
    tb = casatools.table()
    tb.open(f"{vis}/DATA_DESCRIPTION")
    spw_of_ddid = [int(s) for s in tb.getcol("SPECTRAL_WINDOW_ID")]
    tb.close()
    column = "CORRECTED_DATA"
    tb.open(vis)
    try:
        if column not in tb.colnames():
            column = "DATA"
        result: dict[str, list[float | None]] = {}
        weight_sums: dict[str, float] = {}
        fields = ",".join(str(i) for i in field_ids)
        for ddid, spw in enumerate(spw_of_ddid):
            if spw >= nspw:
                continue
            q = tb.query(f"DATA_DESC_ID=={ddid} AND FIELD_ID IN [{fields}] AND ANTENNA1!=ANTENNA2")
            try:
                n = q.nrows()
                if n == 0:
                    continue
                uvw = q.getcol("UVW")
                uvdist = np.hypot(uvw[0], uvw[1])
                cut = float(np.quantile(uvdist, SHORT_BASELINE_FRACTION))
                total, weight = None, None
                all_weight = 0.0
                for start in range(0, n, ROWS_PER_READ):
                    rows = min(ROWS_PER_READ, n - start)
                    data = q.getcol(column, start, rows)  # (npol, nchan, nrow)
                    flag = q.getcol("FLAG", start, rows)
                    w = np.broadcast_to(q.getcol("WEIGHT", start, rows)[:, None, :], data.shape)
                    # per channel: the median channel's unflagged weight over rows and pols
                    all_weight += float(np.median(np.where(flag, 0.0, w).sum(axis=(0, 2))))
                    keep = (~flag) & (uvdist[start : start + rows] <= cut)[None, None, :]
                    w = np.where(keep, w, 0.0)
                    part = (data * w).sum(axis=(0, 2))
                    wsum = w.sum(axis=(0, 2))
                    total = part if total is None else total + part
                    weight = wsum if weight is None else weight + wsum
            finally:
                q.close()
            assert total is not None and weight is not None
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.abs(total / weight)
            weight_sums[str(spw)] = all_weight
            result[str(spw)] = [
                float(v) if np.isfinite(v) and wt > 0 else None for v, wt in zip(mean, weight, strict=False)
            ]
        return {"spectra": result, "weight_sums": weight_sums}
    finally:
        tb.close()


def prepared_items(folder, calls: list[tuple[str, dict, object]]) -> list[dict]:
    """An `imaging_data` item when the step wrote the MS prepared for imaging (PREPARED_MS)."""
    items = []
    for name, kw, _result in calls:
        out = kw.get("outputvis") or kw.get("concatvis")
        if name not in ("split", "mstransform", "concat") or not isinstance(out, str):
            continue
        if out.rstrip("/").rsplit("/", 1)[-1] != PREPARED_MS or not (folder / out / "table.dat").exists():
            continue
        try:
            summary = imaging_data(str(folder / out))
            summary["vis"] = out
        except Exception as exc:  # said on the imaging page, never a crash of the step
            summary = {"cannot_assess": f"{type(exc).__name__}: {exc}", "vis": out}
        items.append(
            {"topic": "imaging_data", "name": out, "artifact": "", "product": out, "summary": summary}
        )
    return items
