"""Calibrated visibilities of the calibrators: amplitude and phase vs frequency, time and uv
distance (what a reducer checks with plotms on `<uid>.ms.split.cal`). Runs inside the run's
CASA process; no Django. Layout of the artifact: reports/ARTIFACTS.md (topic `calibrated`). casatools is
imported where a table is read, so the numpy part (accumulate, measure) is tested without CASA.

Reading is bounded: rows are read `CHUNK_BYTES` at a time (never a whole DATA column), and a
(field, spw) with more than `MAX_VALUES` visibilities is read every n-th row (n recorded as
`row_stride`); every average honours FLAG and is weighted by WEIGHT (as calwt left it).
"""

import math
from pathlib import Path

import numpy as np

from reports.thresholds import CAL_AMP_DEV_LIMIT

CAL_INTENTS = ("CALIBRATE_BANDPASS", "CALIBRATE_PHASE", "CALIBRATE_FLUX", "CALIBRATE_AMPLI")
UV_BINS = 40  # at most; equal-population bins in uv distance
CHUNK_BYTES = 64 * 2**20  # per read, in complex + flag + weight values held at once
MAX_VALUES = 200_000_000  # visibilities (pol x chan x row) read per field and spw at most
C_M_S = 299792458.0
SPLIT_TASKS = ("split", "mstransform")


def calibrated_outputs(folder: Path, calls: list[tuple[str, dict, object]]) -> list[str]:
    """The calibrated MSs this step wrote: a split/mstransform whose outputvis ends in `.cal`.

    That is the trigger: the `.cal` split is the product the seeds ask the reducer to plot (it
    exists once, after every applycal of the step before it), and it is read after the step
    that wrote it, so a script that applies calibration field by field in a loop is read once."""
    out = []
    for name, kw, _result in calls:
        vis = str(kw.get("outputvis") or "")
        if name in SPLIT_TASKS and vis.rstrip("/").endswith(".cal") and (folder / vis).is_dir():
            out.append(vis.rstrip("/"))
    return list(dict.fromkeys(out))


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Running mean over `width` channels ignoring NaN (flagged) channels."""
    if width <= 1:
        return values
    good = np.isfinite(values)
    kernel = np.ones(width)
    num = np.convolve(np.where(good, values, 0.0), kernel, mode="same")
    den = np.convolve(good.astype(float), kernel, mode="same")
    with np.errstate(all="ignore"):
        out = num / den
    out[~good] = np.nan
    return out


def _circular_rms_deg(z: np.ndarray) -> float:
    """rms (deg) of the phases of z about their vector mean; NaN when < 2 finite values."""
    z = z[np.isfinite(z)]
    if len(z) < 2 or not np.any(np.abs(z) > 0):
        return math.nan
    mean = z.sum()
    rel = np.angle(z * np.conj(mean / abs(mean)))
    return float(np.degrees(np.sqrt(np.mean(rel**2))))


def _run_around(dev: np.ndarray, worst: int, level: float) -> list[int]:
    """The contiguous channels around `worst` whose |deviation| stays above `level`."""
    first = last = worst
    while first > 0 and np.isfinite(dev[first - 1]) and abs(dev[first - 1]) > level:
        first -= 1
    while last < len(dev) - 1 and np.isfinite(dev[last + 1]) and abs(dev[last + 1]) > level:
        last += 1
    return [int(first), int(last)]


class _Accumulator:
    """Weighted complex sums of one (field, spw), filled chunk by chunk."""

    def __init__(self, nchan: int, times: np.ndarray, nant: int, uv_edges: np.ndarray) -> None:
        self.times, self.nant, self.uv_edges = times, nant, uv_edges
        nt, nb = len(times), len(uv_edges) - 1
        self.spec = np.zeros(nchan, complex)
        self.spec_w = np.zeros(nchan)
        self.spec_flag = np.zeros(nchan)
        self.spec_n = np.zeros(nchan)
        self.time = np.zeros(nt, complex)
        self.time_w = np.zeros(nt)
        self.ant_time = np.zeros(nant * nt, complex)
        self.ant_time_w = np.zeros(nant * nt)
        self.uv = np.zeros(nb, complex)
        self.uv_w = np.zeros(nb)
        self.uv_x = np.zeros(nb)  # weighted sum of uv distance: the bin's mean position
        self.flagged = 0
        self.total = 0

    def add(self, data, flag, weight, time, a1, a2, uvdist) -> None:
        w = np.where(flag, 0.0, weight[:, None, :].astype(np.float32))  # [pol, chan, row]
        wv = w * data
        self.spec += wv.sum(axis=(0, 2))
        self.spec_w += w.sum(axis=(0, 2))
        self.spec_flag += flag.sum(axis=(0, 2))
        self.spec_n += flag.shape[0] * flag.shape[2]
        self.flagged += int(flag.sum())
        self.total += flag.size
        row = wv.sum(axis=(0, 1))  # [row]: channel- and pol-summed
        row_w = w.sum(axis=(0, 1))
        t = np.searchsorted(self.times, time)
        nt = len(self.times)
        self.time += _bincount_c(t, row, nt)
        self.time_w += np.bincount(t, row_w, nt)
        # Antenna-based: baselines (a, b) seen from a, and conjugated from b.
        self.ant_time += _bincount_c(a1 * nt + t, row, self.nant * nt)
        self.ant_time += _bincount_c(a2 * nt + t, np.conj(row), self.nant * nt)
        self.ant_time_w += np.bincount(a1 * nt + t, row_w, self.nant * nt)
        self.ant_time_w += np.bincount(a2 * nt + t, row_w, self.nant * nt)
        b = np.clip(np.searchsorted(self.uv_edges, uvdist, side="right") - 1, 0, len(self.uv_edges) - 2)
        self.uv += _bincount_c(b, row, len(self.uv))
        self.uv_w += np.bincount(b, row_w, len(self.uv))
        self.uv_x += np.bincount(b, row_w * uvdist, len(self.uv))


def uv_edges(uvdist: np.ndarray, nbaselines: int) -> np.ndarray:
    """Bin edges holding about the same number of rows each (no empty bin on a sparse array):
    UV_BINS bins, fewer when there are fewer than 2 baselines per bin."""
    n = max(1, min(UV_BINS, nbaselines // 2))
    edges = np.unique(np.quantile(uvdist, np.linspace(0.0, 1.0, n + 1))) if len(uvdist) else np.array([0.0])
    if len(edges) < 2:
        edges = np.array([edges[0], edges[0] + 1.0])
    edges[-1] = np.nextafter(edges[-1], np.inf)
    return edges


def _bincount_c(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(index, values.real, n) + 1j * np.bincount(index, values.imag, n)


def _mean(total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan + 0j)


def _field_intents(ms: str) -> dict[int, list[str]]:
    import casatools

    msmd = casatools.msmetadata()
    msmd.open(ms)
    try:
        out: dict[int, list[str]] = {}
        for intent in msmd.intents():
            base = str(intent).split("#")[0]
            if base in CAL_INTENTS:
                for f in msmd.fieldsforintent(intent):
                    out.setdefault(int(f), [])
                    if base not in out[int(f)]:
                        out[int(f)].append(base)
        return out
    finally:
        msmd.close()


def _table_col(table: str, column: str) -> list:
    import casatools

    tb = casatools.table()
    tb.open(table)
    try:
        return list(tb.getcol(column))
    finally:
        tb.close()


def _chan_freqs(ms: str) -> dict[int, np.ndarray]:
    import casatools

    tb = casatools.table()
    tb.open(ms + "/SPECTRAL_WINDOW")
    try:
        return {i: np.asarray(tb.getcell("CHAN_FREQ", i), dtype=float) for i in range(tb.nrows())}
    finally:
        tb.close()


def _read(
    ms: str, column: str, field: int, ddid: int, nant: int, nchan: int
) -> tuple[_Accumulator, int] | None:
    import casatools

    tb = casatools.table()
    tb.open(ms)
    try:
        sub = tb.query(f"FIELD_ID=={field} AND DATA_DESC_ID=={ddid} AND ANTENNA1!=ANTENNA2")
        try:
            nrows = sub.nrows()
            if nrows == 0:
                return None
            npol = int(sub.getcell("FLAG", 0).shape[0])
            stride = max(1, math.ceil(nrows * npol * nchan / MAX_VALUES))
            time = sub.getcol("TIME", 0, -1, stride)
            uvw = sub.getcol("UVW", 0, -1, stride)
            a1 = sub.getcol("ANTENNA1", 0, -1, stride)
            a2 = sub.getcol("ANTENNA2", 0, -1, stride)
            uvdist = np.hypot(uvw[0], uvw[1])
            acc = _Accumulator(nchan, np.unique(time), nant, uv_edges(uvdist, len(np.unique(a1 * nant + a2))))
            per_row = npol * nchan * 21  # complex64 data + product, bool flag, float32 weight
            chunk = max(1, CHUNK_BYTES // per_row)  # rows of the strided selection per read
            nsel = len(time)
            for first in range(0, nsel, chunk):
                n = min(chunk, nsel - first)
                start = first * stride
                acc.add(
                    sub.getcol(column, start, n, stride),
                    sub.getcol("FLAG", start, n, stride),
                    sub.getcol("WEIGHT", start, n, stride),
                    time[first : first + n],
                    a1[first : first + n],
                    a2[first : first + n],
                    uvdist[first : first + n],
                )
            return acc, stride
        finally:
            sub.close()
    finally:
        tb.close()


def _scans(ms: str, field: int, times: np.ndarray) -> np.ndarray:
    import casatools

    tb = casatools.table()
    tb.open(ms)
    try:
        sub = tb.query(f"FIELD_ID=={field}", columns="TIME,SCAN_NUMBER")
        try:
            t, s = sub.getcol("TIME"), sub.getcol("SCAN_NUMBER")
        finally:
            sub.close()
    finally:
        tb.close()
    order = np.argsort(t)
    index = np.clip(np.searchsorted(t[order], times), 0, len(t) - 1)
    return s[order][index]


def _scan_starts(tamp: np.ndarray, times: np.ndarray, scans: np.ndarray) -> dict[str, float]:
    """The first integration of each scan against the rest of its scan (a scan-start dip that
    quacking removes), and the amplitude rms vs time without those first integrations."""
    ratios, first = [], np.zeros(len(times), bool)
    for scan in np.unique(scans):
        index = np.where(scans == scan)[0]
        if len(index) < 3:
            continue
        first[index[0]] = True
        rest = tamp[index[1:]]
        if np.isfinite(tamp[index[0]]) and np.isfinite(rest).any():
            ratios.append(float(tamp[index[0]] / np.nanmedian(rest)))
    out: dict[str, float] = {}
    if ratios:
        out["scan_start_ratio"] = float(np.median(ratios))
        steps = np.diff(times)
        out["integration_s"] = float(np.median(steps[steps > 0])) if (steps > 0).any() else math.nan
        rest = tamp[~first]
        if np.isfinite(rest).sum() >= 2:
            out["amp_time_rms_frac_rest"] = float(np.nanstd(rest) / np.nanmean(rest))
    return out


def _metrics(
    acc: _Accumulator, nchan: int, freq_hz: np.ndarray, names: list[str], scans: np.ndarray | None = None
) -> tuple[dict, dict]:
    spec = _mean(acc.spec, acc.spec_w)
    amp, phase = np.abs(spec), np.angle(spec)
    level = float(np.nanmedian(amp)) if np.isfinite(amp).any() else math.nan
    width = max(1, nchan // 64)
    smooth_amp = _smooth(amp, width)
    dev = smooth_amp / level - 1 if level and np.isfinite(level) else np.full(nchan, np.nan)
    # Edges: the 5% outermost channels roll off in every bandpass; the generator flags them too.
    edge = nchan // 20 if nchan >= 20 else 0
    inner = np.zeros(nchan, bool)
    inner[edge : nchan - edge] = True
    dev_in = np.where(inner, dev, np.nan)
    m: dict[str, object] = {"amp_mean": level}
    if np.isfinite(dev_in).any():
        worst = int(np.nanargmax(np.abs(dev_in)))
        m["amp_freq_dev"] = float(abs(dev_in[worst]))
        m["amp_freq_worst_channel"] = worst
        m["amp_freq_channels"] = _run_around(
            dev_in, worst, max(CAL_AMP_DEV_LIMIT / 2, abs(dev_in[worst]) / 2)
        )
        finite = amp[inner & np.isfinite(amp)]
        m["amp_freq_rms_frac"] = float(np.std(finite) / np.mean(finite)) if finite.size else math.nan
        # Thermal noise of the smoothed spectrum, relative to its level (channel differences).
        diffs = np.diff(amp[inner])
        diffs = diffs[np.isfinite(diffs)]
        noise = float(np.median(np.abs(diffs)) / 0.6745 / math.sqrt(2)) if diffs.size else math.nan
        m["amp_noise_frac"] = noise / math.sqrt(width) / level if level else math.nan
    zs = _smooth(spec.real, width) + 1j * _smooth(spec.imag, width)
    m["phase_freq_rms_deg"] = _circular_rms_deg(np.where(inner, zs, np.nan))
    good = inner & np.isfinite(phase)
    if good.sum() >= 3:
        x = (freq_hz[good] - freq_hz[good].mean()) / 1e9
        ph = np.degrees(np.unwrap(phase[good]))
        slope = float(np.polyfit(x, ph, 1)[0])  # deg / GHz
        m["phase_freq_slope_deg"] = slope * float(abs(freq_hz[-1] - freq_hz[0]) / 1e9)  # across the spw
    tz = _mean(acc.time, acc.time_w)
    tamp = np.abs(tz)
    m["phase_time_rms_deg"] = _circular_rms_deg(tz)
    if np.isfinite(tamp).sum() >= 2:
        m["amp_time_rms_frac"] = float(np.nanstd(tamp) / np.nanmean(tamp))
    if scans is not None:
        m.update(_scan_starts(tamp, acc.times, scans))
    uz = _mean(acc.uv, acc.uv_w)
    uamp = np.abs(uz)
    filled = np.where(np.isfinite(uamp))[0]
    if len(filled) >= 3:
        third = max(1, len(filled) // 3)
        inner_amp, outer_amp = np.mean(uamp[filled[:third]]), np.mean(uamp[filled[-third:]])
        m["uv_ratio"] = float(outer_amp / inner_amp) if inner_amp else math.nan
    m["flagged_fraction"] = acc.flagged / acc.total if acc.total else 1.0
    nt = len(acc.times)
    az = _mean(acc.ant_time, acc.ant_time_w).reshape(acc.nant, nt)
    per_antenna = {}
    for a, name in enumerate(names):
        row = az[a]
        if np.isfinite(row).sum() >= 2:
            per_antenna[name] = {
                "phase_rms_deg": _circular_rms_deg(row),
                "amp_ratio": float(np.nanmean(np.abs(row)) / level) if level else math.nan,
            }
    arrays = {
        "amp_freq": amp,
        "phase_freq": np.degrees(phase),
        "amp_time": tamp,
        "phase_time": np.degrees(np.angle(tz)),
        "amp_uv": uamp,
        "phase_uv": np.degrees(np.angle(uz)),
        "phase_ant_time": np.degrees(np.angle(az)),
    }
    return {**m, "per_antenna": per_antenna}, arrays


def calibrated(ms: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Per calibrator field and spw of the calibrated MS `ms`: the summary and the arrays.

    Array keys: `f<field index>_<name>_<spw>` with the field index into summary["fields"];
    `freq_ghz_<spw>`, and per field `f<i>_time_<spw>`, `f<i>_scan_<spw>`, `f<i>_uv_klambda_<spw>`."""
    import casatools

    tb = casatools.table()
    tb.open(ms)
    try:
        columns = tb.colnames()
    finally:
        tb.close()
    column = "CORRECTED_DATA" if "CORRECTED_DATA" in columns else "DATA"
    names = [str(n) for n in _table_col(ms + "/ANTENNA", "NAME")]
    field_names = [str(n) for n in _table_col(ms + "/FIELD", "NAME")]
    ddid_spw = [int(s) for s in _table_col(ms + "/DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID")]
    freqs = _chan_freqs(ms)
    intents = _field_intents(ms)
    arrays: dict[str, np.ndarray] = {}
    per_field: dict[str, dict[str, dict]] = {}
    fields: list[str] = []
    strides = []
    for field in sorted(intents):
        fname = field_names[field]
        fi = len(fields)
        for ddid, spw in enumerate(ddid_spw):
            nchan = len(freqs[spw])
            read = _read(ms, column, field, ddid, len(names), nchan)
            if read is None:
                continue
            acc, stride = read
            strides.append(stride)
            scans = _scans(ms, field, acc.times)
            metrics, spw_arrays = _metrics(acc, nchan, freqs[spw], names, scans)
            if fname not in per_field:
                fields.append(fname)
                per_field[fname] = {}
            per_field[fname][str(spw)] = metrics
            nu = float(np.mean(freqs[spw]))
            with np.errstate(all="ignore"):
                centres = np.where(acc.uv_w > 0, acc.uv_x / np.maximum(acc.uv_w, 1e-30), np.nan)
            arrays[f"freq_ghz_{spw}"] = freqs[spw] / 1e9
            arrays[f"f{fi}_time_{spw}"] = acc.times - acc.times.min()
            arrays[f"f{fi}_scan_{spw}"] = scans
            arrays[f"f{fi}_uv_klambda_{spw}"] = centres * nu / C_M_S / 1e3
            for key, value in spw_arrays.items():
                arrays[f"f{fi}_{key}_{spw}"] = value
    summary: dict[str, object] = {
        "vis": Path(ms).name,
        "column": column,
        "antennas": names,
        "fields": fields,
        "intents": {field_names[f]: v for f, v in intents.items()},
        "spws": sorted({int(s) for v in per_field.values() for s in v}),
        "per_field": per_field,
        "row_stride": max(strides, default=1),
    }
    if not per_field:
        summary["cannot_assess"] = f"no calibrator (intents {', '.join(CAL_INTENTS)}) data in {Path(ms).name}"
    return summary, arrays
