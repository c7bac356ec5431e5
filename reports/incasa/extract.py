"""Read the caltables a step made into compact artifacts (runs inside the run's CASA process).

This is the one place that reads caltables for diagnostics. Every function returns plain
dicts and writes float32 .npz files; nothing here knows about Django. A table it cannot
read becomes a diagnostic that says so ("cannot assess"), never an exception for the step.
Layout of the artifacts: reports/ARTIFACTS.md.
"""

import functools
import math
import shutil
import tempfile
from pathlib import Path

import casatools
import numpy as np

from calibration.antennas import live_antennas
from calibration.incasa.imaging_data import prepared_items
from reports.incasa.image_qa import image_items
from reports.incasa.visibilities import calibrated, calibrated_outputs
from reports.metrics import bandpass_metrics
from reports.reference import wvr_reference

C_M_S = 299792458.0
MAX_POINTS = 2000  # per time series in an artifact; pages decimate further per pixel
ATM_POINTS = 128  # ATM model points per spw (see atm_transmission)

Item = dict[str, object]


# --- table reading -------------------------------------------------------------------------
def _col(table: str, name: str, query: str = "") -> np.ndarray:
    tb = casatools.table()
    tb.open(table)
    try:
        if query:
            sub = tb.query(query)
            try:
                return sub.getcol(name)
            finally:
                sub.close()
        return tb.getcol(name)
    finally:
        tb.close()


def _antenna_names(table: str) -> list[str]:
    return [str(n) for n in _col(table + "/ANTENNA", "NAME")]


def _chan_freqs(table: str) -> dict[int, np.ndarray]:
    tb = casatools.table()
    tb.open(table + "/SPECTRAL_WINDOW")
    try:
        # Variable-shaped column: per-row getcell (getcol fails when nchan differs, casa-facts §5).
        return {i: np.asarray(tb.getcell("CHAN_FREQ", i), dtype=float) for i in range(tb.nrows())}
    finally:
        tb.close()


def _per_spw(table: str, column: str) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """{spw: (values [pol, chan, row], flag, antenna [row], time [row])} read spw by spw."""
    spws = sorted({int(s) for s in _col(table, "SPECTRAL_WINDOW_ID")})
    out = {}
    for spw in spws:
        query = f"SPECTRAL_WINDOW_ID=={spw}"
        out[spw] = (
            _col(table, column, query),
            _col(table, "FLAG", query),
            _col(table, "ANTENNA1", query),
            _col(table, "TIME", query),
        )
    return out


def _finite_median(values: np.ndarray) -> float | None:
    """None when nothing is finite (a summary is JSON: NaN has no place in it)."""
    finite = np.asarray(values)[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _masked(values: np.ndarray, flag: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    out[flag] = np.nan
    return out


# --- Tsys ----------------------------------------------------------------------------------
def tsys(table: str, ms: str | None) -> tuple[dict, dict[str, np.ndarray]]:
    names = _antenna_names(table)
    freqs = _chan_freqs(table)
    arrays: dict[str, np.ndarray] = {}
    per_antenna: dict[str, dict[str, dict[str, float]]] = {n: {} for n in names}
    array_median: dict[str, float] = {}
    atm_lines: dict[str, dict] = {}
    for spw, (values, flag, ant, time) in _per_spw(table, "FPARAM").items():
        data = _masked(values, flag)  # [pol, chan, row]
        times = np.unique(time)
        spectra = np.full((len(names), data.shape[1]), np.nan)
        medians_t = np.full((len(names), len(times)), np.nan)
        for a in range(len(names)):
            rows = ant == a
            if not rows.any():
                continue
            block = data[:, :, rows]
            with np.errstate(all="ignore"):
                spectra[a] = np.nanmean(block, axis=(0, 2))
                med = np.nanmedian(block, axis=(0, 1))
            medians_t[a, np.searchsorted(times, time[rows])] = med
            finite = block[np.isfinite(block)]
            if finite.size:
                per_antenna[names[a]][str(spw)] = {
                    "median": float(np.median(finite)),
                    "max": float(finite.max()),
                    "rms": float(np.std(np.nanmean(block, axis=(0, 2))[np.isfinite(spectra[a])])),
                }
        meds = [v[str(spw)]["median"] for v in per_antenna.values() if str(spw) in v]
        array_median[str(spw)] = float(np.median(meds)) if meds else math.nan
        arrays[f"freq_ghz_{spw}"] = freqs[spw] / 1e9
        arrays[f"tsys_{spw}"] = spectra
        arrays[f"median_t_{spw}"] = medians_t
        arrays[f"time_{spw}"] = times - times.min()
        transmission = atm_transmission(freqs[spw], ms)
        if transmission is not None:
            arrays[f"atm_{spw}"] = transmission
            atm_lines[str(spw)] = atm_line(freqs[spw], transmission, spectra)
    summary = {
        "antennas": names,
        "spws": sorted(int(s) for s in array_median),
        "per_antenna": per_antenna,
        "array_median": array_median,
        "atm_lines": atm_lines,
    }
    if not any(per_antenna.values()):
        summary["cannot_assess"] = "every Tsys solution is flagged"
    return summary, arrays


def atm_transmission(freq_hz: np.ndarray, ms: str | None, airmass: float = 1.4) -> np.ndarray | None:
    """Zenith-scaled atmospheric transmission across a spw from casatools' ATM (for overlay)."""
    try:
        pwv_mm = _median_pwv(ms)
        at, qa = casatools.atmosphere(), casatools.quanta()
        at.initAtmProfile(
            altitude=qa.quantity(5059, "m"),
            temperature=qa.quantity(270, "K"),
            pressure=qa.quantity(555, "mbar"),
            maxAltitude=qa.quantity(48, "km"),
            humidity=20.0,
            atmType=1,
        )
        width = float(abs(freq_hz[-1] - freq_hz[0])) or 1e6
        # At most ATM_POINTS per spw: ATM's radiative transfer costs ~2 ms a point (0.5 s a spw
        # at 256), and at ~15 MHz on a 1.9 GHz spw the curve and its O3 dips (tens of MHz
        # wide at the stratosphere's pressure) are still drawn.
        resolution = max(width / min(max(len(freq_hz) - 1, 1), ATM_POINTS), 1e5)
        at.initSpectralWindow(
            nbands=1,
            fCenter=qa.quantity(float(np.mean(freq_hz)) / 1e9, "GHz"),
            fWidth=qa.quantity((width + 2 * resolution) / 1e9, "GHz"),
            fRes=qa.quantity(resolution / 1e9, "GHz"),
        )
        at.setUserWH2O(qa.quantity(pwv_mm, "mm"))
        grid = np.asarray(at.getSpectralWindow(0)["value"], dtype=float)
        tau = np.asarray(at.getDryOpacitySpec(0)[1], dtype=float) + np.asarray(
            at.getWetOpacitySpec(0)[1]["value"], dtype=float
        )
        return np.exp(-np.interp(freq_hz, grid, tau) * airmass)
    except Exception:  # the overlay is a help, not a requirement
        return None


def atm_line(freq_hz: np.ndarray, transmission: np.ndarray, spectra: np.ndarray) -> dict:
    """The deepest transmission dip of a spw (relative to its median) and the array's Tsys there."""
    edge = max(1, len(freq_hz) // 10)  # the bandpass roll-off is not a line
    inner = slice(edge, len(freq_hz) - edge) if len(freq_hz) > 2 * edge + 2 else slice(None)
    t = np.asarray(transmission, dtype=float)[inner]
    level = float(np.median(t))
    at = int(np.argmin(t)) + (inner.start or 0)
    with np.errstate(all="ignore"):
        array_spectrum = np.nanmedian(spectra, axis=0)
        typical = float(np.nanmedian(array_spectrum[inner]))
        rise = float(array_spectrum[at] / typical - 1) if typical > 0 else 0.0
    return {
        "freq_ghz": float(freq_hz[at]) / 1e9,
        "dip": float((level - transmission[at]) / level) if level > 0 else 0.0,
        "tsys_rise": rise if math.isfinite(rise) else 0.0,
    }


@functools.lru_cache(maxsize=8)
def _median_pwv(ms: str | None) -> float:
    if ms and Path(ms, "ASDM_CALWVR").exists():
        water = _col(ms + "/ASDM_CALWVR", "water")
        if len(water):
            return float(np.median(water)) * 1e3
    return 1.0


# --- bandpass ------------------------------------------------------------------------------
def bandpass(table: str) -> tuple[dict, dict[str, np.ndarray]]:
    names = _antenna_names(table)
    freqs = _chan_freqs(table)
    arrays: dict[str, np.ndarray] = {}
    per_antenna: dict[str, dict[str, dict]] = {n: {} for n in names}
    spw_snr: dict[str, float | None] = {}
    nchans: dict[str, int] = {}
    widths_mhz: dict[str, float] = {}
    for spw, (values, flag, ant, _time) in _per_spw(table, "CPARAM").items():
        npol, nchan, _ = values.shape
        snr = _masked(_col(table, "SNR", f"SPECTRAL_WINDOW_ID=={spw}"), flag)  # per channel solution
        nchans[str(spw)] = int(nchan)
        widths_mhz[str(spw)] = float(abs(freqs[spw][1] - freqs[spw][0])) / 1e6 if nchan > 1 else 0.0
        spw_snr[str(spw)] = _finite_median(snr)
        amp = np.full((len(names), npol, nchan), np.nan)
        phase = np.full((len(names), npol, nchan), np.nan)
        for a in range(len(names)):
            rows = np.where(ant == a)[0]
            if not len(rows):
                continue
            z = np.where(flag[:, :, rows], np.nan, values[:, :, rows]).mean(axis=2)  # [pol, chan]
            amp[a], phase[a] = np.abs(z), np.degrees(np.angle(z))
            per_antenna[names[a]][str(spw)] = {
                **bandpass_metrics(amp[a], phase[a]),
                "snr_median": _finite_median(snr[:, :, rows]),
            }
        arrays[f"freq_ghz_{spw}"] = freqs[spw] / 1e9
        arrays[f"amp_{spw}"] = amp
        arrays[f"phase_{spw}"] = phase
    summary = {
        "antennas": names,
        "spws": sorted(freqs),
        "per_antenna": per_antenna,
        "spw_snr": spw_snr,
        "nchan": nchans,
        "chan_width_mhz": widths_mhz,
    }
    if not any(per_antenna.values()):
        summary["cannot_assess"] = "every bandpass solution is flagged"
    return summary, arrays


# --- gains ---------------------------------------------------------------------------------
def gains(table: str) -> tuple[dict, dict[str, np.ndarray]]:
    names = _antenna_names(table)
    arrays: dict[str, np.ndarray] = {}
    per_antenna: dict[str, dict[str, dict]] = {n: {} for n in names}
    spw_snr: dict[str, float | None] = {}
    for spw, (values, flag, ant, time) in _per_spw(table, "CPARAM").items():
        spw_snr[str(spw)] = _finite_median(_masked(_col(table, "SNR", f"SPECTRAL_WINDOW_ID=={spw}"), flag))
        times = np.unique(time)
        z = np.where(flag, np.nan, values)[:, 0, :]  # [pol, row]; gains have one channel
        phase_t = np.full((len(names), len(times)), np.nan)
        amp_t = np.full((len(names), len(times)), np.nan)
        for a in range(len(names)):
            rows = np.where(ant == a)[0]
            if not len(rows):
                continue
            idx = np.searchsorted(times, time[rows])
            with np.errstate(all="ignore"):
                zz = np.nanmean(z[:, rows], axis=0)
            phase_t[a, idx], amp_t[a, idx] = np.degrees(np.angle(zz)), np.abs(zz)
            good = np.isfinite(zz)
            if good.sum() >= 1:
                ref = np.exp(1j * np.angle(np.nanmedian(zz[good].real) + 1j * np.nanmedian(zz[good].imag)))
                rel = np.degrees(np.angle(zz[good] / ref))
                steps = (
                    np.abs(np.degrees(np.angle(zz[good][1:] / zz[good][:-1]))) if good.sum() > 1 else [0.0]
                )
                per_antenna[names[a]][str(spw)] = {
                    "phase_rms_deg": float(np.sqrt(np.mean(rel**2))),
                    "max_jump_deg": float(np.max(steps)),
                    "amp_median": float(np.median(np.abs(zz[good]))),
                    "flagged_fraction": float(1 - good.mean()),
                }
            else:
                per_antenna[names[a]][str(spw)] = {"flagged_fraction": 1.0}
        arrays[f"time_{spw}"] = times - times.min()
        arrays[f"phase_{spw}"] = phase_t
        arrays[f"amp_{spw}"] = amp_t
    spws = sorted({int(key.split("_")[1]) for key in arrays})
    summary = {"antennas": names, "spws": spws, "per_antenna": per_antenna, "spw_snr": spw_snr}
    if all(s.get("flagged_fraction", 1.0) >= 1.0 for v in per_antenna.values() for s in v.values()):
        summary["cannot_assess"] = "every gain solution is flagged"
    return summary, arrays


# --- WVR -----------------------------------------------------------------------------------
def wvr(table: str, ms: str, report: dict | None, spws: list[int]) -> tuple[dict, dict[str, np.ndarray]]:
    """The wvrgcal report, the WVR path per antenna, and phase rms before/after WVR on the calibrators."""
    names = _antenna_names(table)
    freqs = _chan_freqs(table)
    spw = spws[0] if spws else min(freqs)
    values, flag, ant, time = _per_spw(table, "CPARAM")[spw]
    times = np.unique(time)
    path = np.full((len(names), len(times)), np.nan)
    nu = float(np.mean(freqs[spw]))
    for a in range(len(names)):
        rows = np.where(ant == a)[0]
        if len(rows):
            z = np.where(flag[0, 0, rows], np.nan, values[0, 0, rows])
            path[a, np.searchsorted(times, time[rows])] = (
                np.unwrap(np.angle(np.nan_to_num(z))) * C_M_S / (2 * np.pi * nu) * 1e6
            )
    step = max(1, len(times) // MAX_POINTS)
    before, after, refant = phase_rms_with_and_without(ms, table, report, spws)
    ratios = [after[n] / before[n] for n in names if before.get(n) and after.get(n)]
    summary = {
        "antennas": names,
        "report": _clean_report(report),
        "phase_rms_before": before,
        "phase_rms_after": after,
        "improvement": float(1.0 / np.median(ratios)) if ratios else None,
        "reference_antenna": refant,
    }
    return summary, {"time": (times - times.min())[::step], "path_um": path[:, ::step]}


def _clean_report(report: dict | None) -> dict:
    if not isinstance(report, dict):
        return {}
    keys = ("Name", "WVR", "Flag", "Frac_unflagged", "RMS_um", "Disc_um")
    return {k: [v.item() if hasattr(v, "item") else v for v in report[k]] for k in keys if k in report}


def phase_rms_with_and_without(
    ms: str, wvr_table: str, report: dict | None, spws: list[int]
) -> tuple[dict, dict, str]:
    """Per-antenna phase rms (deg) on the bandpass and phase calibrators, with and without WVR,
    and the reference antenna they were measured against (reports.reference.wvr_reference).

    As the pipeline does (hifa_wvrgcal QA): phase-only gaincal per integration, rms about the
    complex median of each scan, median over scans and calibrators."""
    from casatasks import gaincal

    msmd = casatools.msmetadata()
    msmd.open(ms)
    try:
        fields = sorted(
            {int(f) for i in ("CALIBRATE_BANDPASS*", "CALIBRATE_PHASE*") for f in _fields_for(msmd, i)}
        )
        names = [str(n) for n in msmd.antennanames()]
    finally:
        msmd.close()
    refant = wvr_reference(names, _live_antennas(ms, names, fields, spws), report)
    work = Path(tempfile.mkdtemp(prefix="qa2wvr", dir="."))
    result = []
    try:
        for label, tables in (("before", []), ("after", [wvr_table])):
            out = str(work / f"{label}.g")
            gaincal(
                vis=ms,
                caltable=out,
                field=",".join(map(str, fields)),
                spw=_inner_channels(ms, spws),
                intent="CALIBRATE_BANDPASS*,CALIBRATE_PHASE*",
                solint="int",
                calmode="p",
                refant=refant,
                minsnr=2.0,
                gaintable=tables,
            )
            result.append(_phase_rms_per_antenna(out, names) if Path(out).exists() else {})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result[0], result[1], refant


def _inner_channels(ms: str, spws: list[int]) -> str:
    """spw selection without the 10% edge channels at each side (bandpass roll-off)."""
    freqs = _chan_freqs(ms)
    parts = []
    for spw in spws:
        n = len(freqs[spw])
        edge = n // 10
        parts.append(f"{spw}:{edge}~{n - edge - 1}" if n > 10 else str(spw))
    return ",".join(parts)


def _fields_for(msmd, intent: str) -> list[int]:
    try:
        return list(msmd.fieldsforintent(intent))
    except RuntimeError:
        return []


def _scans_for(msmd, intent: str) -> list[int]:
    try:
        return list(msmd.scansforintent(intent))
    except RuntimeError:
        return []


def _live_antennas(ms: str, names: list[str], fields: list[int], spws: list[int]) -> set[str]:
    """Antennas with signal on the first calibrator (a dead one must not be the reference)."""
    from calibration.incasa.inspect_ms import antenna_amplitudes

    ddid = _col(ms + "/DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID").tolist().index(spws[0]) if spws else 0
    return live_antennas(names, antenna_amplitudes(ms, ddid, fields[0] if fields else 0, len(names)))


def _phase_rms_per_antenna(table: str, names: list[str]) -> dict[str, float]:
    """Median over (scan, spw, pol) of the phase rms about that chunk's mean phase (deg)."""
    values, flag = _col(table, "CPARAM"), _col(table, "FLAG")
    ant, scan, spw = _col(table, "ANTENNA1"), _col(table, "SCAN_NUMBER"), _col(table, "SPECTRAL_WINDOW_ID")
    phases = np.where(flag[:, 0, :], np.nan, np.angle(values[:, 0, :]))  # [pol, row]
    out = {}
    for a, name in enumerate(names):
        per_chunk = []
        for s_, w in {(int(x), int(y)) for x, y in zip(scan[ant == a], spw[ant == a], strict=True)}:
            rows = (ant == a) & (scan == s_) & (spw == w)
            for pol in range(phases.shape[0]):
                z = np.exp(1j * phases[pol, rows])
                z = z[np.isfinite(z)]
                if len(z) < 3:
                    continue
                mean = z.mean()
                per_chunk.append(float(np.degrees(np.std(np.angle(z * np.conj(mean / abs(mean)))))))
        if per_chunk:
            out[name] = float(np.median(per_chunk))
    return out


# --- flux and flags ------------------------------------------------------------------------
def flux(
    result: dict, reference: str, freqs: dict[int, float], widths_mhz: dict[int, float] | None = None
) -> dict:
    """fluxscale's return dict -> per field per spw flux with error, and the fitted index."""
    fields = {}
    spectral_index = {}
    for value in (result or {}).values():
        if not isinstance(value, dict) or "fieldName" not in value:
            continue
        spws = {}
        for spw_key, entry in value.items():
            measured = spw_key.isdigit() and isinstance(entry, dict) and "fluxd" in entry
            if measured and float(entry["fluxd"][0]) > 0:
                spws[spw_key] = {
                    "flux": float(entry["fluxd"][0]),
                    "error": float(entry["fluxdErr"][0]),
                    "freq_ghz": freqs.get(int(spw_key), math.nan) / 1e9,
                    "bandwidth_mhz": (widths_mhz or {}).get(int(spw_key)),
                }
        fields[value["fieldName"]] = spws
        if "spidx" in value:
            spectral_index[value["fieldName"]] = float(np.asarray(value["spidx"])[1])
    return {"fields": fields, "spectral_index": spectral_index, "reference": reference}


def flags(vis: str, stage: str) -> dict:
    from casatasks import flagdata

    result = flagdata(vis=vis, mode="summary")

    def fractions(group: dict) -> dict[str, float]:
        return {k: v["flagged"] / v["total"] for k, v in group.items() if v.get("total")}

    return {
        "stage": stage,
        "vis": vis,
        "total_fraction": result["flagged"] / result["total"] if result.get("total") else 0.0,
        "antenna": fractions(result.get("antenna", {})),
        "spw": fractions(result.get("spw", {})),
        "quack": quack_profile(vis),
    }


def _bandwidths_mhz(chans: dict[int, np.ndarray]) -> dict[int, float]:
    out = {}
    for spw, f in chans.items():
        step = float(abs(f[1] - f[0])) if len(f) > 1 else 0.0
        out[spw] = (float(abs(f[-1] - f[0])) + step) / 1e6
    return out


QUACK_CHANNELS = 256
CALIBRATOR_INTENTS = ("CALIBRATE_BANDPASS*", "CALIBRATE_PHASE*", "CALIBRATE_FLUX*", "CALIBRATE_AMPLI*")


def quack_profile(vis: str, max_integrations: int = 4) -> dict:
    """The first integrations of each calibrator scan against the rest of that scan.

    Per scan: the baseline-median, channel-averaged amplitude of each of its first integrations
    divided by the median of the scan's later integrations (flagged data left out), on the first
    science spw. One channel-averaged read per scan, so memory stays small on wide spws."""
    msmd = casatools.msmetadata()
    msmd.open(vis)
    try:
        fields = sorted({int(f) for i in CALIBRATOR_INTENTS for f in _fields_for(msmd, i)})
        scans = sorted({int(s) for i in CALIBRATOR_INTENTS for s in _scans_for(msmd, i)})
        science = [int(s) for s in msmd.spwsforintent("OBSERVE_TARGET*")] if fields else []
        if not scans:
            return {}
        spws = science or [int(s) for s in msmd.spwsforscan(scans[0])]
        spws = [s for s in spws if msmd.nchan(s) > 4] or spws
        if not spws:
            return {}
        spw = spws[0]
        ddid = int(msmd.datadescids(spw=spw)[0])
        nchan = int(msmd.nchan(spw))
        field_of = {s: int(msmd.fieldsforscan(s)[0]) for s in scans}
        names = {f: str(msmd.namesforfields(f)[0]) for f in fields}
        interval = float(np.median(msmd.exposuretime(scan=scans[0], spwid=spw)["value"]))
        integrations = {s: msmd.timesforscan(s) for s in scans}
    finally:
        msmd.close()
    ms = casatools.ms()
    ms.open(vis)
    out: dict[str, dict] = {}
    try:
        for scan in scans:
            if len(integrations.get(scan, ())) < 3:
                continue  # too short to tell a low start from the rest
            try:
                ms.selectinit(reset=True)
                ms.selectinit(datadescid=ddid)
                if not ms.select({"scan_number": [scan]}):
                    continue
                # The central channels (at most QUACK_CHANNELS), averaged: a scan's start is
                # low across the band, and a wide spw's every channel is not worth reading.
                width = min(nchan, QUACK_CHANNELS)
                ms.selectchannel(1, (nchan - width) // 2, width, 1)
                rec = ms.getdata(["amplitude", "flag", "time", "antenna1", "antenna2"])
            except RuntimeError:  # a scan without this spw (an ATM or pointing scan)
                continue
            cross = rec["antenna1"] != rec["antenna2"]
            amp = np.where(rec["flag"], np.nan, rec["amplitude"])[:, 0, :]  # [pol, row]
            times = np.unique(rec["time"][cross])
            if len(times) < 3:
                continue
            per_time = np.array(
                [_finite_median(amp[:, cross & (rec["time"] == t)]) for t in times], dtype=float
            )
            later = _finite_median(per_time[min(max_integrations, len(times) // 2) :])
            if later is None or later <= 0:
                continue
            out[str(scan)] = {
                "field": names[field_of[scan]],
                "first": [float(v / later) if np.isfinite(v) else None for v in per_time[:max_integrations]],
            }
    finally:
        ms.close()
    return {"spw": spw, "integration_s": interval, "scans": out}


# --- after each step -------------------------------------------------------------------------
def after_step(
    folder: Path, out_dir: str, made: list[dict], calls: list[tuple[str, dict, object]]
) -> list[Item]:
    """Diagnostics for what a step made: one item per caltable / `.cal` split / fluxscale / flag save."""
    items: list[Item] = []
    wvr_tables = {str(kw.get("caltable")): (kw, result) for name, kw, result in calls if name == "wvrgcal"}
    # caltable -> the MS it was solved on: the first call naming both (a later plotbandpass or
    # plotms names the caltable without a vis).
    vis_of: dict[str, str] = {}
    for _name, kw, _r in calls:
        if kw.get("caltable") and kw.get("vis"):
            vis_of.setdefault(str(kw["caltable"]), str(kw["vis"]))
    for product in made:
        rel = str(product["relpath"])
        # wvrgcal also writes <caltable>_unsmoothed: part of the WVR diagnostic, not a gain table.
        if product["kind"] != "caltable" or any(rel.startswith(f"{t}_") for t in wvr_tables):
            continue
        viscal = str(product["viscal"])
        table = str(folder / rel)
        try:
            table_of = _table_of(folder, vis_of.get(rel))
            if rel in wvr_tables:
                kw, report = wvr_tables[rel]
                spws = [int(s) for s in (kw.get("spw") or [])]
                summary, arrays = wvr(
                    table, str(folder / str(kw["vis"])), report if isinstance(report, dict) else None, spws
                )
                items.append(_item(folder, out_dir, "wvr", rel, summary, arrays, table_of))
            elif viscal.startswith("B TSYS"):
                summary, arrays = tsys(table, _ms_of(folder, vis_of.get(rel)))
                items.append(_item(folder, out_dir, "tsys", rel, summary, arrays, table_of))
            elif viscal.startswith("B Jones"):
                summary, arrays = bandpass(table)
                summary["averaged"] = channels_averaged(folder, vis_of.get(rel), summary["nchan"])
                items.append(_item(folder, out_dir, "bandpass", rel, summary, arrays, table_of))
            elif viscal.startswith(("G Jones", "T Jones")):
                summary, arrays = gains(table)
                summary["calmode"] = _calmode(calls, rel)
                items.append(_item(folder, out_dir, "gains", rel, summary, arrays, table_of))
            else:
                items.append(
                    {
                        "topic": "gains",
                        "name": rel,
                        "artifact": "",
                        "product": rel,
                        "summary": {"cannot_assess": f"{viscal or 'unknown'} tables are not assessed"},
                    }
                )
        except Exception as exc:  # a table we cannot read is a finding, not a crash
            items.append(
                {
                    "topic": _topic_guess(viscal),
                    "name": rel,
                    "artifact": "",
                    "product": rel,
                    "summary": {"cannot_assess": f"{type(exc).__name__}: {exc}"},
                }
            )
    for vis in calibrated_outputs(folder, calls):  # the `.cal` split: calibrated visibilities
        try:
            summary, arrays = calibrated(str(folder / vis))
            items.append(_item(folder, out_dir, "calibrated", vis, summary, arrays, _table_of(folder, vis)))
        except Exception as exc:
            items.append(
                {
                    "topic": "calibrated",
                    "name": vis,
                    "artifact": "",
                    "product": vis,
                    "summary": {"cannot_assess": f"{type(exc).__name__}: {exc}"},
                }
            )
    for name, kw, result in calls:
        if name == "concat" and kw.get("concatvis"):
            items.append(_concat_item(folder, kw))
            continue
        try:
            if name == "fluxscale" and isinstance(result, dict):
                chans = _chan_freqs(str(folder / str(kw["vis"])))
                freqs = {s: float(np.mean(f)) for s, f in chans.items()}
                summary = flux(result, str(kw.get("reference", "")), freqs, _bandwidths_mhz(chans))
                try:
                    summary["ms_spw"] = ms_spw_map(folder, str(kw["vis"]))
                except Exception as exc:
                    summary["spw_note"] = f"spw ids are the table's own: {type(exc).__name__}: {exc}"
                items.append(
                    {
                        "topic": "flux",
                        "name": str(kw.get("fluxtable") or "fluxscale"),
                        "artifact": "",
                        "product": str(kw.get("fluxtable") or ""),
                        "summary": summary,
                    }
                )
            elif name == "flagmanager" and kw.get("mode") == "save":
                stage = str(kw.get("versionname"))
                summary = flags(str(folder / str(kw["vis"])), stage)
                items.append(
                    {
                        "topic": "flags",
                        "name": f"{kw['vis']}: {stage}",
                        "artifact": "",
                        "product": "",
                        "summary": summary,
                    }
                )
        except Exception as exc:
            items.append(
                {
                    "topic": "flux" if name == "fluxscale" else "flags",
                    "name": f"{name} {kw.get('vis')}",
                    "artifact": "",
                    "product": "",
                    "summary": {"cannot_assess": f"{type(exc).__name__}: {exc}"},
                }
            )
    # An imaging run: the numbers of each image tclean made, and the layout of the MS the
    # imaging-prep step wrote (the imaging script is generated from it).
    items += image_items(folder, calls)
    items += prepared_items(folder, calls)
    return items


def _topic_guess(viscal: str) -> str:
    return "tsys" if "TSYS" in viscal else "bandpass" if viscal.startswith("B") else "gains"


def _calmode(calls: list, rel: str) -> str:
    for name, kw, _result in calls:
        if str(kw.get("caltable")) == rel or str(kw.get("fluxtable")) == rel:
            return "fluxscale" if name == "fluxscale" else str(kw.get("calmode", "ap"))
    return ""


def _ms_of(folder: Path, vis: str | None) -> str | None:
    return str(folder / vis) if vis else None


def _table_of(folder: Path, vis: str | None) -> dict:
    """What a table or split was made from: its MS and the spw map to the MS it was split from."""
    table_of: dict = {"vis": vis, "ms_spw": {}}
    try:
        table_of["ms_spw"] = ms_spw_map(folder, vis)
    except Exception as exc:  # the MS's ids are a help for the reader, not a requirement
        table_of["spw_note"] = f"spw ids are the table's own: {type(exc).__name__}: {exc}"
    return table_of


def channels_averaged(folder: Path, vis: str | None, table_nchan: dict[str, int]) -> dict[str, int]:
    """{spw: data channels per solution channel} (solint 'inf,Nch' or 'inf,XMHz'); 1 when the
    solutions are at the data's resolution or the data cannot be read."""
    try:
        data_nchan = {str(s): len(f) for s, f in _chan_freqs(str(folder / vis)).items()} if vis else {}
    except Exception:
        data_nchan = {}
    return {spw: max(1, data_nchan.get(spw, n) // max(n, 1)) for spw, n in table_nchan.items()}


def ms_spw_map(folder: Path, vis: str | None) -> dict[str, int]:
    """{spw id in `vis`: spw id in the MS it was split from} ({} when `vis` is that MS).

    ALMA names a split `<uid>.ms.split` (and `.split.cal`): the parent is `<uid>.ms` in the same
    folder. Spws are matched by frequency (split renumbers them and may average channels)."""
    if not vis or ".ms" not in vis:
        return {}
    parent = vis[: vis.index(".ms") + 3]
    if parent == vis:
        return {}
    if not (folder / parent).exists() or not (folder / vis).exists():
        raise FileNotFoundError(f"{parent} or {vis} is not in {folder}")
    ranges = {i: (float(f.min()), float(f.max())) for i, f in _chan_freqs(str(folder / parent)).items()}
    out = {}
    for spw, freqs in _chan_freqs(str(folder / vis)).items():
        centre, width = float(freqs.mean()), float(freqs.max() - freqs.min())
        matches = [
            i
            for i, (low, high) in ranges.items()
            if low <= centre <= high and abs((high - low) - width) <= 0.1 * max(high - low, width) + 1.0
        ]
        if len(matches) == 1:
            out[str(spw)] = matches[0]
    return out


def _item(
    folder: Path, out_dir: str, topic: str, rel: str, summary: dict, arrays: dict, table_of: dict
) -> Item:
    """One artifact; `table_of`: what the caltable was solved on (its vis, the spw map)."""
    summary.update(table_of)
    target = folder / out_dir / f"{rel.replace('/', '_')}.{topic}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    packed: dict[str, np.ndarray] = {
        k: np.asarray(v, dtype=np.float64 if k.startswith("time") else np.float32) for k, v in arrays.items()
    }
    # numpy 2.4 stubs type **arrays as the allow_pickle flag; the arrays go in as keyword arrays.
    np.savez(target, **packed)  # type: ignore[arg-type]
    return {
        "topic": topic,
        "name": rel,
        "artifact": str(target.relative_to(folder)),
        "product": rel,
        "summary": summary,
    }


def ms_layout(vis: str) -> dict:
    """Fields (names), spws (id, centre GHz, channels) and rows of an MS (msmetadata + table)."""
    msmd = casatools.msmetadata()
    tb = casatools.table()
    msmd.open(vis)
    try:
        fields = [str(n) for n in msmd.fieldnames()]
        spws = [
            {"id": int(s), "freq_ghz": float(np.mean(msmd.chanfreqs(s))) / 1e9, "nchan": int(msmd.nchan(s))}
            for s in range(msmd.nspw())
        ]
        observations = int(msmd.nobservations())
    finally:
        msmd.close()
    tb.open(vis)
    try:
        rows = int(tb.nrows())
    finally:
        tb.close()
    return {"vis": vis, "fields": fields, "spws": spws, "rows": rows, "observations": observations}


def _concat_item(folder: Path, kw: dict) -> Item:
    """What concat made against its inputs: the reducer's listobs summary, and whether fields or
    spws multiplied (pointings that differ slightly, or other Doppler settings)."""
    out = str(kw["concatvis"])
    inputs = kw.get("vis") or []
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    try:
        made = ms_layout(str(folder / out))
        made["vis"] = out
        layouts = []
        for vis in inputs:
            layout = ms_layout(str(folder / str(vis)))
            layout["vis"] = str(vis)
            layouts.append(layout)
        expected_fields = len({f for layout in layouts for f in layout["fields"]})
        expected_spws = max((len(layout["spws"]) for layout in layouts), default=0)
        summary: dict = {
            "concat": {
                **made,
                "inputs": layouts,
                "input_rows": sum(layout["rows"] for layout in layouts),
                "expected_fields": expected_fields,
                "expected_spws": expected_spws,
                "fields_multiplied": len(made["fields"]) > expected_fields,
                "spws_multiplied": len(made["spws"]) > expected_spws,
            }
        }
    except Exception as exc:
        summary = {"cannot_assess": f"{type(exc).__name__}: {exc}"}
    return {
        "topic": "calibrated",
        "name": f"concat {out}",
        "artifact": "",
        "product": out,
        "summary": summary,
    }
