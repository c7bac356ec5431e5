"""Build a simulated ALMA EB from an EbSpec. Runs INSIDE a CASA subprocess:

    python -P -m calibration.simulate.builder spec.json OUTDIR

started by calibration.simulate.build.build_eb through calibration.casa. Writes
OUTDIR/<ms_name>, OUTDIR/truth.json and OUTDIR/truth.npz and prints one line
`SIMBUILD {json}`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibration.simulate import faults, layout, subtables
from calibration.simulate.atmosphere import (
    JY_PER_K,
    WET_PATH_PER_PWV,
    AtmModel,
    system_temperature,
    turbulent_pwv,
)
from calibration.simulate.spec import EbSpec, Spw, effective_spws, spec_hash, validate
from calibration.simulate.visibilities import (
    C_M_S,
    TROPO_SIGN,
    bandpass,
    instrumental_gains,
    model_visibilities,
    receiver_temperatures,
    thermal_sigma,
)

WVR_SPW_NAME = "WVR#NOMINAL"
ROWS_PER_CHUNK_CHANNELS = 6_000_000  # rows x channels per write chunk: bounds memory for wide spws


@dataclass
class Geometry:
    """Per unique main-table time: field, az/el, airmass; per antenna: ENU position."""

    utimes: np.ndarray
    t0: float
    az: np.ndarray
    el: np.ndarray
    airmass: np.ndarray
    enu: np.ndarray
    antpos: np.ndarray


def _tools():
    import casatools

    return casatools.simulator(), casatools.measures(), casatools.quanta(), casatools.table()


def _antenna_xyz(spec: EbSpec) -> np.ndarray:
    import casatools

    cfg = Path(casatools.ctsys.resolve("alma/simmos")) / spec.configuration
    pads: dict[str, tuple[float, float, float]] = {}
    for line in cfg.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and not line.startswith("#"):
            pads[parts[4]] = (float(parts[0]), float(parts[1]), float(parts[2]))
    return np.array([pads[a.pad] for a in spec.antennas])


# --- 1. skeleton ------------------------------------------------------------------------------
def make_skeleton(spec: EbSpec, spws: list[Spw], path: str) -> None:
    """Empty visibilities with the right rows: one sm.observe per (subscan, spw), because
    observe() starts a new scan per call and covers one spw; scan numbers are fixed later."""
    sm, me, _, _ = _tools()
    xyz = _antenna_xyz(spec)
    nant = len(spec.antennas)
    sch = spec.schedule
    sm.open(path)
    sm.setconfig(
        telescopename="ALMA",
        x=xyz[:, 0],
        y=xyz[:, 1],
        z=xyz[:, 2],
        dishdiameter=[12.0] * nant,
        mount=["ALT-AZ"] * nant,
        antname=spec.antenna_names,
        padname=[a.pad for a in spec.antennas],
        coordsystem="local",
        referencelocation=me.observatory("ALMA"),
    )
    sm.setspwindow(
        spwname=WVR_SPW_NAME,
        freq="184.55GHz",
        deltafreq="2GHz",
        freqresolution="2GHz",
        nchannels=4,
        stokes="XX",
    )
    for spw in spws:
        width = spw.bandwidth_mhz * 1e6 / spw.nchan
        first = spw.center_ghz * 1e9 - spw.bandwidth_mhz * 1e6 / 2 + width / 2
        sm.setspwindow(
            spwname=spw.name,
            freq=f"{first:.3f}Hz",
            deltafreq=f"{width:.3f}Hz",
            freqresolution=f"{width:.3f}Hz",
            nchannels=spw.nchan,
            stokes="XX YY",
        )
    sm.setfeed(mode="perfect X Y", pol=[""])
    for f in spec.fields:
        sm.setfield(sourcename=f.name, sourcedirection=me.direction("J2000", f.ra, f.dec))
    sm.setlimits(shadowlimit=1.0, elevationlimit="3deg")  # no flagging at simulation time
    sm.setauto(autocorrwt=1.0)  # autocorrelation rows: the WVR data live there
    reftime = me.epoch("UTC", sch.start_utc)
    common = {"project": spec.project, "observer": "simulator"}
    for scan in layout.scans(spec):
        for sub in scan.subscans:
            sm.settimes(
                integrationtime=f"{sch.integration_s:.3f}s", usehourangle=False, referencetime=reftime
            )
            for spw in spws:
                sm.observe(
                    sourcename=scan.field,
                    spwname=spw.name,
                    starttime=f"{sub.start_s:.3f}s",
                    stoptime=f"{sub.stop_s:.3f}s",
                    state_obs_mode=sub.obs_mode,
                    state_sub_scan=sub.number,
                    **common,
                )
            nwvr = int((sub.stop_s - sub.start_s) / sch.wvr_integration_s)
            sm.settimes(
                integrationtime=f"{sch.wvr_integration_s:.3f}s", usehourangle=False, referencetime=reftime
            )
            sm.observe(
                sourcename=scan.field,
                spwname=WVR_SPW_NAME,
                starttime=f"{sub.start_s:.3f}s",
                stoptime=f"{sub.start_s + nwvr * sch.wvr_integration_s:.3f}s",
                state_obs_mode=sub.obs_mode,
                state_sub_scan=sub.number,
                **common,
            )
    sm.close()


def finish_skeleton(spec: EbSpec, skeleton: str, ms: str) -> float:
    """Scan numbers by time window, then a time-sorted deep copy without WVR cross-correlations
    (rows cannot be removed from the simulator's storage managers). Returns T0 (MJD s)."""
    _, _, _, tb = _tools()
    tb.open(skeleton, nomodify=False)
    tb.removecols(["MODEL_DATA", "CORRECTED_DATA"])
    tim = tb.getcol("TIME")
    t0 = float((tim - tb.getcol("INTERVAL") / 2).min())
    trel = tim - t0
    scan_numbers = np.zeros(len(tim), np.int32)
    for scan in layout.scans(spec):
        scan_numbers[(trel >= scan.start_s - 0.01) & (trel <= scan.stop_s + 0.01)] = scan.number
    if (scan_numbers == 0).any():
        raise RuntimeError("rows outside the scan windows: the simulator and the layout disagree")
    tb.putcol("SCAN_NUMBER", scan_numbers)
    tb.close()
    tb.open(skeleton)
    sorted_rows = tb.query(
        "NOT (DATA_DESC_ID==0 AND ANTENNA1!=ANTENNA2)", sortlist="TIME,DATA_DESC_ID,ANTENNA1,ANTENNA2"
    )
    sorted_rows.copy(ms, deep=True, valuecopy=True)
    sorted_rows.close()
    tb.close()
    shutil.rmtree(skeleton, ignore_errors=True)
    return t0


# --- 2. geometry -----------------------------------------------------------------------------
def geometry(spec: EbSpec, ms: str, t0: float) -> Geometry:
    _, me, qa, tb = _tools()
    tb.open(ms)
    times, field_ids = tb.getcol("TIME"), tb.getcol("FIELD_ID")
    tb.close()
    tb.open(ms + "/ANTENNA")
    antpos = tb.getcol("POSITION").T
    tb.close()
    utimes, first = np.unique(times, return_index=True)
    ufield = field_ids[first]
    obs = me.observatory("ALMA")
    me.doframe(obs)
    directions = {i: me.direction("J2000", f.ra, f.dec) for i, f in enumerate(spec.fields)}
    az, el = np.zeros(len(utimes)), np.zeros(len(utimes))
    for i, (t, f) in enumerate(zip(utimes, ufield, strict=True)):
        me.doframe(me.epoch("UTC", qa.quantity(float(t), "s")))
        azel = me.measure(directions[int(f)], "AZELGEO")
        az[i], el[i] = azel["m0"]["value"], azel["m1"]["value"]
    lon, lat = obs["m0"]["value"], obs["m1"]["value"]
    rot = np.array(
        [
            [-np.sin(lon), np.cos(lon), 0],
            [-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)],
        ]
    )
    enu = (antpos - antpos.mean(axis=0)) @ rot.T
    return Geometry(utimes, t0, az, el, 1.0 / np.sin(el), enu, antpos)


# --- 3. visibilities -------------------------------------------------------------------------
@dataclass
class Corruptions:
    gains: np.ndarray  # (nant, 2, nspw, nt)
    bandpasses: list[np.ndarray]  # per spw (nant, 2, nchan)
    trx: list[np.ndarray]  # per spw (nant, 2, nchan)
    dpath_m: np.ndarray  # (nt, nant) slant wet-path differences
    pwv_mm: np.ndarray  # (nt, nant) zenith PWV


def write_science(
    spec: EbSpec,
    spws: list[Spw],
    ms: str,
    geo: Geometry,
    cor: Corruptions,
    atm: AtmModel,
    chan_freqs: list[np.ndarray],
    rng: np.random.Generator,
) -> None:
    _, _, _, tb = _tools()
    scans = {s.number: s for s in layout.scans(spec)}
    tint = spec.schedule.integration_s
    ref_hz = spec.reference_freq_ghz * 1e9
    tb.open(ms, nomodify=False)
    for s, spw in enumerate(spws):
        nu = chan_freqs[s + 1]
        width = spw.bandwidth_mhz * 1e6 / spw.nchan
        sigma = thermal_sigma(width, tint)
        sub = tb.query(f"DATA_DESC_ID=={s + 1}")
        nrow = sub.nrows()
        chunk = max(1000, ROWS_PER_CHUNK_CHANNELS // spw.nchan)
        for start in range(0, nrow, chunk):
            n = min(chunk, nrow - start)
            a1 = sub.getcol("ANTENNA1", start, n)
            a2 = sub.getcol("ANTENNA2", start, n)
            t = sub.getcol("TIME", start, n)
            uvw = sub.getcol("UVW", start, n)
            fld = sub.getcol("FIELD_ID", start, n)
            scan_no = sub.getcol("SCAN_NUMBER", start, n)
            ti = np.searchsorted(geo.utimes, t)
            vis = np.zeros((n, spw.nchan), complex)
            for f in np.unique(fld):
                m = fld == f
                vis[m] = model_visibilities(spec.fields[int(f)], uvw[0, m], uvw[1, m], nu, ref_hz)
            since_start = (t - sub.getcol("INTERVAL", start, n) / 2 - geo.t0) - np.array(
                [scans[int(k)].start_s for k in scan_no]
            )
            atm_row = np.array([scans[int(k)].atm for k in scan_no])
            vis *= faults.quack_factor(spec, since_start, atm_row)[:, None]
            vis[faults.dead_antenna_rows(spec, a1, a2)] = 0.0
            # sky temperature and opacity per unique time of this chunk
            uti, inv = np.unique(ti, return_inverse=True)
            sky = [atm.sky(s, geo.airmass[i]) for i in uti]
            tsky = np.array([x[0] for x in sky])[inv]
            tau = np.array([x[1] for x in sky])[inv]
            dphase = (
                TROPO_SIGN
                * 2
                * np.pi
                * (cor.dpath_m[ti, a1] - cor.dpath_m[ti, a2])[:, None]
                * nu[None, :]
                / C_M_S
            )
            auto = a1 == a2
            data = np.empty((2, spw.nchan, n), np.complex64)
            for p in range(2):
                tsys1 = system_temperature(cor.trx[s][a1, p, :], tsky, tau)
                tsys2 = system_temperature(cor.trx[s][a2, p, :], tsky, tau)
                g1 = cor.gains[a1, p, s, ti][:, None] * cor.bandpasses[s][a1, p, :]
                g2 = cor.gains[a2, p, s, ti][:, None] * cor.bandpasses[s][a2, p, :]
                rho = vis * g1 * np.conj(g2) * np.exp(1j * dphase) / (JY_PER_K * np.sqrt(tsys1 * tsys2))
                noise = sigma * (rng.normal(size=rho.shape) + 1j * rng.normal(size=rho.shape)) / np.sqrt(2)
                rho[auto] = 1.0  # normalised autocorrelations
                noise[auto] = noise[auto].real * 0.01
                data[p] = (rho + noise).T
            sub.putcol("DATA", data, start, n)
            sub.putcol("FLAG", np.zeros((2, spw.nchan, n), bool), start, n)
            sig = np.full((2, n), sigma, np.float32)
            sub.putcol("SIGMA", sig, start, n)
            sub.putcol("WEIGHT", (1 / sig**2).astype(np.float32), start, n)
        sub.close()
    tb.close()


def write_wvr(
    spec: EbSpec, ms: str, geo: Geometry, cor: Corruptions, atm: AtmModel, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """WVR autocorrelations: DATA.real = brightness temperature (K) of the 4 channels."""
    _, _, _, tb = _tools()
    tb.open(ms, nomodify=False)
    sub = tb.query("DATA_DESC_ID==0")
    t, ant = sub.getcol("TIME"), sub.getcol("ANTENNA1")
    ti = np.searchsorted(geo.utimes, t)
    temps = atm.wvr_brightness(cor.pwv_mm[ti, ant] * geo.airmass[ti])
    temps += rng.normal(scale=0.05, size=temps.shape)  # ~50 mK radiometer noise
    done = faults.bad_wvr(spec, temps, ant, rng)
    sub.putcol("DATA", temps.T[None].astype(np.complex64))
    sub.putcol("FLAG", np.zeros((1, 4, len(t)), bool))
    sub.putcol("SIGMA", np.ones((1, len(t)), np.float32))
    sub.putcol("WEIGHT", np.ones((1, len(t)), np.float32))
    sub.close()
    tb.close()
    return done


# --- 4. the whole build ----------------------------------------------------------------------
def build(spec: EbSpec, outdir: Path) -> dict[str, Any]:
    from casatasks import casalog

    started = time.perf_counter()
    validate(spec)
    outdir.mkdir(parents=True, exist_ok=True)
    casalog.setlogfile(str(outdir / "build.casa.log"))
    ms = str(outdir / spec.ms_name)
    rng = np.random.default_rng(spec.seed)
    spws = effective_spws(spec)
    nant, nspw = len(spec.antennas), len(spws)
    timings: dict[str, float] = {}

    def lap(name: str, since: list[float] = [started]) -> None:  # noqa: B006 - a running clock
        now = time.perf_counter()
        timings[name] = round(now - since[0], 2)
        since[0] = now

    skeleton = ms + ".skeleton"
    shutil.rmtree(skeleton, ignore_errors=True)
    shutil.rmtree(ms, ignore_errors=True)
    make_skeleton(spec, spws, skeleton)
    lap("simulator")
    t0 = finish_skeleton(spec, skeleton, ms)
    _, _, _, tb = _tools()
    chan_freqs = subtables.fix_spectral_setup(tb, ms)
    subtables.set_observation(tb, ms, spec.project, spec.eb_uid)
    geo = geometry(spec, ms, t0)
    lap("layout")

    trel = geo.utimes - t0
    pwv = turbulent_pwv(geo.enu, trel, spec.weather, rng)
    wetpath = WET_PATH_PER_PWV * pwv * 1e-3 * geo.airmass[:, None]  # slant, metres
    dpath = wetpath - wetpath.mean(axis=1, keepdims=True)  # only differences matter
    atm = AtmModel(spws, chan_freqs[1:], spec.weather.pwv_mm)
    lap("atmosphere")

    trx0 = np.zeros((nant, 2))
    shapes = []
    for spw in spws:
        base, shape = receiver_temperatures(nant, spw.nchan, rng)
        trx0 += base / nspw
        shapes.append(shape)
    truth_faults = faults.hot_receivers(spec, trx0)
    bandpasses = [bandpass(nant, s.nchan, s.bandwidth_mhz * 1e6 / s.nchan, rng) for s in spws]
    truth_faults += faults.bandpass_defects(spec, bandpasses)
    cor = Corruptions(
        gains=instrumental_gains(nant, nspw, trel, rng),
        bandpasses=bandpasses,
        trx=[trx0[:, :, None] * shape[None, None, :] for shape in shapes],
        dpath_m=dpath,
        pwv_mm=pwv,
    )
    write_science(spec, spws, ms, geo, cor, atm, chan_freqs, rng)
    lap("science")
    truth_faults += write_wvr(spec, ms, geo, cor, atm, rng)
    truth_faults += faults.describe_simple(
        spec, spec.schedule.integration_s, [s.bandwidth_mhz * 1e6 / s.nchan for s in spws]
    )
    lap("wvr")

    subtables.pointing_to_azel(tb, ms, geo.utimes, geo.az, geo.el)
    syscal, calwvr, tsys_atm = [], [], {}
    for scan in (s for s in layout.scans(spec) if s.atm):
        tmid = t0 + (scan.start_s + scan.stop_s) / 2
        i = int(np.argmin(abs(geo.utimes - tmid)))
        for s in range(nspw):
            tsys = atm.tsys(s, geo.airmass[i], cor.trx[s])
            tsys_atm[(scan.number, s + 1)] = tsys
            tsky = atm.sky(s, geo.airmass[i])[0]
            for a in range(nant):
                syscal.append((a, s + 1, tmid, scan.stop_s - scan.start_s, tsys[a], cor.trx[s][a], tsky))
        for a, name in enumerate(spec.antenna_names):
            calwvr.append((name, t0 + scan.start_s, t0 + scan.stop_s, pwv[i, a] * 1e-3, wetpath[i, a]))
    subtables.write_syscal(tb, ms, syscal)
    subtables.write_weather(tb, ms, t0, t0 + trel.max(), rng)
    subtables.write_calwvr(tb, ms, calwvr)
    lap("subtables")

    truth = make_truth(spec, spws, chan_freqs, geo, cor, tsys_atm, truth_faults, trx0)
    size = sum(f.stat().st_size for f in Path(ms).rglob("*") if f.is_file())
    truth["build"] = {
        "seconds": round(time.perf_counter() - started, 2),
        "size_mb": round(size / 1e6, 2),
        "timings": timings,
        "spec_hash": spec_hash(spec),
    }
    (outdir / "truth.json").write_text(json.dumps(truth, indent=1))
    np.savez(
        outdir / "truth.npz",
        utimes=geo.utimes,
        dpath_m=dpath,
        pwv_mm=pwv,
        airmass=geo.airmass,
        az=geo.az,
        el=geo.el,
    )
    return truth


def make_truth(
    spec: EbSpec,
    spws: list[Spw],
    chan_freqs: list[np.ndarray],
    geo: Geometry,
    cor: Corruptions,
    tsys_atm: dict[tuple[int, int], np.ndarray],
    truth_faults: list[dict[str, Any]],
    trx0: np.ndarray,
) -> dict[str, Any]:
    names = spec.antenna_names
    ref = spec.reference_freq_ghz
    fields = {}
    for f in spec.fields:
        main = f.components[0]
        fields[f.name] = {
            "role": f.role,
            "flux_jy": main.flux_jy,
            "spectral_index": main.spectral_index,
            "components": [c.__dict__ | {"offset_arcsec": list(c.offset_arcsec)} for c in f.components],
            "line": f.line.__dict__ if f.line else None,
            # flux of the first (compact) component at each spw's centre frequency
            "flux_jy_per_spw": {
                str(i): round(
                    main.flux_jy * (float(chan_freqs[i].mean()) / 1e9 / ref) ** main.spectral_index, 5
                )
                for i in range(1, len(spws) + 1)
            },
        }
    median_tsys = {
        name: round(float(np.median([np.median(v[a]) for v in tsys_atm.values()])), 2)
        for a, name in enumerate(names)
    }
    return {
        "ms_name": spec.ms_name,
        "spec": spec.to_dict(),
        "antennas": names,
        "wvr_spw": 0,
        "spws": [
            {
                "spw": i,
                "name": s.name,
                "center_ghz": s.center_ghz,
                "nchan": s.nchan,
                "bandwidth_mhz": s.bandwidth_mhz,
                "chan_width_hz": s.bandwidth_mhz * 1e6 / s.nchan,
                "first_freq_hz": float(chan_freqs[i][0]),
            }
            for i, s in enumerate(spws, start=1)
        ],
        "fields": fields,
        "reference_freq_ghz": ref,
        "jy_per_k": JY_PER_K,
        "tropo_sign": TROPO_SIGN,
        "t0_mjd_s": geo.t0,
        "trx_k": {name: trx0[a].round(1).tolist() for a, name in enumerate(names)},
        "tsys_median_k": median_tsys,
        "path_rms_um": {
            name: round(float(np.std(cor.dpath_m[:, a]) * 1e6), 1) for a, name in enumerate(names)
        },
        "scans": [
            {
                "scan": s.number,
                "field": s.field,
                "role": s.role,
                "intent": s.intent,
                "start_s": s.start_s,
                "stop_s": s.stop_s,
            }
            for s in layout.scans(spec)
        ],
        "faults": truth_faults,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: builder SPEC.json OUTDIR")
    spec = EbSpec.from_json(Path(args[0]).read_text())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    truth = build(spec, Path(args[1]).resolve())
    print("SIMBUILD " + json.dumps({"ms": spec.ms_name, **truth["build"]}), flush=True)


if __name__ == "__main__":
    main()
