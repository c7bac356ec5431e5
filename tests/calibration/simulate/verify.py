"""Does real CASA recover the injected truth? Runs INSIDE a CASA subprocess, on a private
copy of a built EB (it writes caltables and flags):

    python -P -m tests.calibration.simulate.verify verify MS TRUTH_DIR
    python -P -m tests.calibration.simulate.verify inspect MS

(started by tests.calibration.simulate.casa_checks; test-only: it checks the simulator).

`verify` prints one line `SIMVERIFY {json}` with what CASA measured, next to what truth.json says;
the tests assert on it. The chain is the standard ALMA one, cut to what each check needs:
gencal tsys, wvrgcal, a-priori flags, setjy, phase-up + bandpass, gains, fluxscale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

C_M_S = 299_792_458.0


def _table():
    import casatools

    return casatools.table()


def _faults(truth: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in truth["faults"] if f["kind"] == kind]


def _roles(truth: dict[str, Any]) -> dict[str, str]:
    return {v["role"]: name for name, v in truth["fields"].items()}


def _refant(truth: dict[str, Any]) -> str:
    faulty = {f.get("antenna") for f in truth["faults"]}
    return next(a for a in truth["antennas"] if a not in faulty)


# --- checks on the raw DATA (before any flagging) ---------------------------------------------
def raw_data_checks(ms: str, truth: dict[str, Any]) -> dict[str, Any]:
    tb = _table()
    names = truth["antennas"]
    roles = _roles(truth)
    field_ids = list(truth["fields"])  # builder writes fields in spec order
    bp_field = field_ids.index(roles["bandpass"])
    target_field = field_ids.index(roles["target"])
    scan_start = {s["scan"]: truth["t0_mjd_s"] + s["start_s"] for s in truth["scans"]}
    atm_scans = [s["scan"] for s in truth["scans"] if s["intent"] == "ATM"]
    out: dict[str, Any] = {}
    dead = [names.index(f["antenna"]) for f in _faults(truth, "dead_antenna")]

    tb.open(ms)
    q = tb.query(
        f"DATA_DESC_ID==1 AND ANTENNA1!=ANTENNA2 AND FIELD_ID=={bp_field} AND SCAN_NUMBER NOT IN {atm_scans}"
    )
    amp = np.abs(q.getcol("DATA")).mean(axis=(0, 1))
    a1, a2 = q.getcol("ANTENNA1"), q.getcol("ANTENNA2")
    since = (
        q.getcol("TIME")
        - q.getcol("INTERVAL") / 2
        - np.array([scan_start[s] for s in q.getcol("SCAN_NUMBER")])
    )
    q.close()
    touches_dead = np.isin(a1, dead) | np.isin(a2, dead)
    if dead:
        out["dead_amp_ratio"] = float(np.median(amp[touches_dead]) / np.median(amp[~touches_dead]))
    for quack in _faults(truth, "quack"):
        early = since < quack["seconds"] - 1e-3
        out["quack_amp_ratio"] = float(
            np.median(amp[early & ~touches_dead]) / np.median(amp[~early & ~touches_dead])
        )

    noise = {}
    for spw in truth["spws"]:
        q = tb.query(
            f"DATA_DESC_ID=={spw['spw']} AND ANTENNA1!=ANTENNA2 AND FIELD_ID=={target_field} "
            f"AND SCAN_NUMBER NOT IN {atm_scans}"
        )
        data = q.getcol("DATA")[0]  # (nchan, nrow), XX
        q.close()
        n = data.shape[0]
        core = data[n // 8 : n - n // 8]
        # adjacent-channel differences remove the (smooth) signal; MAD is robust to the line
        diff = np.diff(core.real, axis=0)
        noise[spw["spw"]] = float(np.median(np.abs(diff)) / 0.6745 / np.sqrt(2))
    out["noise_per_spw"] = noise
    for f in _faults(truth, "low_snr_spw"):
        others = [v for k, v in noise.items() if k != f["spw"]]
        out["low_snr_noise_ratio"] = noise[f["spw"]] / float(np.median(others))
    tb.close()
    return out


# --- Tsys ------------------------------------------------------------------------------------
def tsys_checks(ms: str, truth: dict[str, Any], caltable: str) -> dict[str, Any]:
    from casatasks import gencal

    gencal(vis=ms, caltable=caltable, caltype="tsys")
    tb = _table()
    tb.open(caltable)
    ant, spw = tb.getcol("ANTENNA1"), tb.getcol("SPECTRAL_WINDOW_ID")
    per_spw = {int(s): tb.query(f"SPECTRAL_WINDOW_ID=={int(s)}") for s in np.unique(spw)}
    medians = {}
    spectra = {}
    for s, q in per_spw.items():
        fp, a = q.getcol("FPARAM"), q.getcol("ANTENNA1")  # (npol, nchan, nrow)
        spectra[s] = (fp, a)
        q.close()
    tb.close()
    names = truth["antennas"]
    for i, name in enumerate(names):
        medians[name] = float(
            np.median(np.concatenate([fp[:, :, a == i].ravel() for fp, a in spectra.values()]))
        )
    out: dict[str, Any] = {"tsys_rows": len(ant), "tsys_median_k": medians}
    for f in _faults(truth, "hot_tsys"):
        others = [v for k, v in medians.items() if k != f["antenna"]]
        out["hot_tsys_ratio"] = medians[f["antenna"]] / float(np.median(others))
    tb.open(caltable + "/SPECTRAL_WINDOW")
    freqs = {s: np.asarray(tb.getcell("CHAN_FREQ", s)) for s in spectra}
    tb.close()
    for f in _faults(truth, "atm_line"):
        fp, a = spectra[f["spw"]]
        spectrum = np.median(fp, axis=(0, 2))  # median over pol and antennas/times
        peak = int(np.argmax(spectrum))
        out["atm_line"] = {
            "peak_channel": peak,
            "expected_channel": int(np.argmin(abs(freqs[f["spw"]] - f["freq_ghz"] * 1e9))),
            "peak_over_median": float(spectrum[peak] / np.median(spectrum)),
        }
    return out


# --- WVR -------------------------------------------------------------------------------------
def wvr_checks(ms: str, truth: dict[str, Any], truth_dir: Path, caltable: str) -> dict[str, Any]:
    from casatasks import wvrgcal

    roles = _roles(truth)
    spws = [s["spw"] for s in truth["spws"]]
    report = wvrgcal(
        vis=ms,
        caltable=caltable,
        toffset=0,
        tie=[f"{roles['phase']},{roles['target']}"],
        statsource=roles["phase"],
        wvrspw=[truth["wvr_spw"]],
        spw=spws,
    )
    names = list(report["Name"])
    disc = dict(zip(names, (float(x) for x in report["Disc_um"]), strict=True))
    rms = dict(zip(names, (float(x) for x in report["RMS_um"]), strict=True))
    bad = [f["antenna"] for f in _faults(truth, "bad_wvr")]
    good = [n for n in truth["antennas"] if n not in bad]
    out: dict[str, Any] = {"wvr_success": bool(report["success"]), "wvr_disc_um": disc, "wvr_rms_um": rms}
    if bad:
        out["bad_wvr_disc_over_good"] = min(disc[b] for b in bad) / float(np.median([disc[g] for g in good]))

    # WVR-derived path vs the injected path, per good antenna
    tb = _table()
    tb.open(caltable + "/SPECTRAL_WINDOW")
    nu = float(tb.getcol("REF_FREQUENCY")[spws[0]])
    tb.close()
    tb.open(caltable)
    q = tb.query(f"SPECTRAL_WINDOW_ID=={spws[0]}")
    gain, t, a = q.getcol("CPARAM")[0, 0], q.getcol("TIME"), q.getcol("ANTENNA1")
    q.close()
    tb.close()
    arrays = np.load(truth_dir / "truth.npz")
    utimes, dpath = arrays["utimes"], arrays["dpath_m"]
    wvr_times = np.unique(t)
    idx = np.clip(np.searchsorted(utimes, wvr_times), 0, len(utimes) - 1)
    matched = np.abs(utimes[idx] - wvr_times) < 0.01
    names_all = truth["antennas"]
    good_idx = [names_all.index(g) for g in good]
    # A caltable holds the corruption g = exp(i sign 2 pi nu L / c), so L = sign phase c / (2 pi nu).
    # Phases are taken relative to the reference antenna before unwrapping: the total wet path
    # jumps by more than a wavelength between fields (airmass), the differences do not.
    gains = np.ones((len(wvr_times), len(names_all)), complex)
    for i in range(len(names_all)):
        m = a == i
        gains[np.searchsorted(wvr_times, t[m]), i] = gain[m]
    ref = names_all.index(_refant(truth))
    phase = np.unwrap(np.angle(gains * np.conj(gains[:, ref : ref + 1])), axis=0)
    path = truth["tropo_sign"] * phase * C_M_S / (2 * np.pi * nu)
    injected = dpath[idx[matched]]
    measured = path[matched]

    def clean(x: np.ndarray) -> np.ndarray:  # only path differences between antennas are defined
        x = x - x[:, good_idx].mean(axis=1, keepdims=True)
        return x - x.mean(axis=0, keepdims=True)

    inj, mea = clean(injected), clean(measured)
    out["wvr_path_correlation"] = {
        n: float(np.corrcoef(inj[:, i], mea[:, i])[0, 1]) for i, n in enumerate(names_all)
    }
    out["wvr_path_slope"] = {
        n: float(np.polyfit(inj[:, i], mea[:, i], 1)[0]) for i, n in enumerate(names_all)
    }
    out["wvr_matched_times"] = int(matched.sum())
    return out


# --- a-priori flags, bandpass, fluxscale -----------------------------------------------------
def calibration_checks(ms: str, truth: dict[str, Any], tsys: str, wvr: str) -> dict[str, Any]:
    from casatasks import bandpass, flagdata, fluxscale, gaincal, setjy

    roles = _roles(truth)
    refant = _refant(truth)
    flagdata(vis=ms, mode="manual", autocorr=True, flagbackup=False)
    flagdata(vis=ms, mode="manual", intent="*ATMOSPHERE*", flagbackup=False)
    dead = ",".join(f["antenna"] for f in _faults(truth, "dead_antenna"))
    if dead:
        flagdata(vis=ms, mode="manual", antenna=dead, flagbackup=False)
    for quack in _faults(truth, "quack"):
        flagdata(vis=ms, mode="quack", quackinterval=quack["seconds"], quackmode="beg", flagbackup=False)
    spws = ",".join(str(s["spw"]) for s in truth["spws"])
    bp = truth["fields"][roles["bandpass"]]
    setjy(
        vis=ms,
        field=roles["bandpass"],
        standard="manual",
        fluxdensity=[bp["flux_jy"], 0, 0, 0],
        spix=[bp["spectral_index"], 0],
        reffreq=f"{truth['reference_freq_ghz']}GHz",
        usescratch=False,
    )
    pre = [tsys, wvr]
    pre_interp = ["linear,linear", "nearest"]
    # Tsys from each field's own ATM scan (ALMA scripts do this with per-field gainfield)
    pre_field = ["nearest", ""]
    gaincal(
        vis=ms,
        caltable="ph_pre_bp",
        field=roles["bandpass"],
        spw=spws,
        solint="int",
        refant=refant,
        calmode="p",
        gaintable=pre,
        gainfield=pre_field,
        interp=pre_interp,
    )
    bandpass(
        vis=ms,
        caltable="bandpass",
        field=roles["bandpass"],
        spw=spws,
        solint="inf",
        combine="scan",
        refant=refant,
        solnorm=True,
        bandtype="B",
        gaintable=[*pre, "ph_pre_bp"],
        gainfield=[*pre_field, ""],
        interp=[*pre_interp, "nearest"],
    )
    cals = f"{roles['bandpass']},{roles['phase']}"
    with_bp = [*pre, "bandpass"]
    gaincal(
        vis=ms,
        caltable="phase_int",
        field=cals,
        spw=spws,
        solint="int",
        refant=refant,
        calmode="p",
        gaintable=with_bp,
        gainfield=[*pre_field, ""],
        interp=[*pre_interp, "nearest"],
    )
    gaincal(
        vis=ms,
        caltable="ampli_inf",
        field=cals,
        spw=spws,
        solint="inf",
        refant=refant,
        calmode="a",
        gaintype="T",
        gaintable=[*with_bp, "phase_int"],
        gainfield=[*pre_field, "", ""],
        interp=[*pre_interp, "nearest", "nearest"],
    )
    result = fluxscale(
        vis=ms,
        caltable="ampli_inf",
        fluxtable="flux_inf",
        reference=roles["bandpass"],
        transfer=roles["phase"],
    )
    field_ids = list(truth["fields"])
    ph_id = str(field_ids.index(roles["phase"]))
    measured = {str(s["spw"]): float(result[ph_id][str(s["spw"])]["fluxd"][0]) for s in truth["spws"]}
    expected = truth["fields"][roles["phase"]]["flux_jy_per_spw"]
    out: dict[str, Any] = {
        "fluxscale_jy": measured,
        "fluxscale_expected_jy": expected,
        "fluxscale_rel_error": {k: measured[k] / expected[k] - 1 for k in measured},
        "fluxscale_fitted_spix": float(result[ph_id].get("spidx", [0, 0])[1])
        if "spidx" in result[ph_id]
        else None,
    }
    out.update(bandpass_checks("bandpass", truth, refant))
    return out


def defect_metrics(
    gain: np.ndarray, flag: np.ndarray, notch: tuple[int, int], jump: int
) -> dict[str, float] | None:
    """Notch depth (amplitude in the notch / around it) and phase step at `jump` of one
    antenna's bandpass (npol, nchan); None when the antenna has no unflagged solution."""
    g = np.ma.masked_array(gain, flag)
    if g.mask.all():
        return None
    lo, hi = notch
    width = max(2, hi - lo)
    amp = np.ma.abs(g).mean(axis=0)
    around = np.ma.concatenate([amp[max(0, lo - width) : lo], amp[hi : hi + width]])
    phase = np.ma.angle(g.mean(axis=0), deg=True)
    step = phase[jump : jump + 3].mean() - phase[max(0, jump - 3) : jump].mean()
    return {"notch_depth": float(amp[lo:hi].mean() / around.mean()), "phase_jump_deg": float(step)}


def bandpass_checks(caltable: str, truth: dict[str, Any], refant: str) -> dict[str, Any]:
    tb = _table()
    names = truth["antennas"]
    out: dict[str, Any] = {"refant": refant, "bandpass_defects": []}
    for f in _faults(truth, "bandpass_defect"):
        tb.open(caltable)
        q = tb.query(f"SPECTRAL_WINDOW_ID=={f['spw']}")
        cp, fl, a = q.getcol("CPARAM"), q.getcol("FLAG"), q.getcol("ANTENNA1")
        q.close()
        tb.close()
        notch, jump = tuple(f["notch_channels"]), f["jump_channel"]
        per_antenna = {
            n: defect_metrics(cp[:, :, a == i][..., 0], fl[:, :, a == i][..., 0], notch, jump)
            for i, n in enumerate(names)
            if (a == i).any()
        }
        faulty = per_antenna.pop(f["antenna"])
        others = [m for m in per_antenna.values() if m is not None]
        out["bandpass_defects"].append(
            {
                "antenna": f["antenna"],
                "spw": f["spw"],
                **(faulty or {}),
                "others_min_notch_depth": min(o["notch_depth"] for o in others),
                "others_max_abs_phase_jump_deg": max(abs(o["phase_jump_deg"]) for o in others),
            }
        )
    return out


def verify(ms: str, truth_dir: Path) -> dict[str, Any]:
    from casatasks import casalog

    casalog.setlogfile(str(Path(ms).resolve().parent / "verify.casa.log"))
    truth = json.loads((truth_dir / "truth.json").read_text())
    out: dict[str, Any] = {}
    out.update(raw_data_checks(ms, truth))
    out.update(tsys_checks(ms, truth, "tsys"))
    out.update(wvr_checks(ms, truth, truth_dir, "wvr"))
    out.update(calibration_checks(ms, truth, "tsys", "wvr"))
    return out


def main(argv: list[str] | None = None) -> None:
    """`verify MS TRUTH_DIR` or `inspect MS`."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["verify"]:
        main_verify(args[1:])
    elif args[:1] == ["inspect"]:
        main_inspect(args[1:])
    else:
        raise SystemExit("usage: verify MS TRUTH_DIR | inspect MS")


def main_verify(args: list[str]) -> None:
    result = verify(args[0], Path(args[1]))
    print("SIMVERIFY " + json.dumps(result), flush=True)


def inspect_ms(ms: str) -> dict[str, Any]:
    """What an ALMA reducer checks first: antennas, spws, intents, scans, the ALMA subtables."""
    import casatools

    msmd = casatools.msmetadata()
    msmd.open(ms)
    nspw = msmd.nspw()
    out: dict[str, Any] = {
        "antennas": list(msmd.antennanames()),
        "fields": list(msmd.fieldnames()),
        "intents": sorted(msmd.intents()),
        "nscans": len(msmd.scannumbers()),
        "spw_nchan": [int(msmd.nchan(i)) for i in range(nspw)],
        "spw_names": list(msmd.namesforspws(list(range(nspw)))),
        "wvr_spws": [int(x) for x in msmd.almaspws(wvr=True)],
    }
    msmd.close()
    tb = _table()
    tb.open(ms)
    times = tb.getcol("TIME")
    out["duration_s"] = float(times.max() - times.min())
    out["keywords"] = sorted(tb.getkeywords())
    out["columns"] = sorted(tb.colnames())
    tb.close()
    tb.open(ms + "/POLARIZATION")
    out["ncorr"] = [int(n) for n in tb.getcol("NUM_CORR")]
    tb.close()
    tb.open(ms + "/POINTING")
    out["pointing_frame"] = tb.getcolkeywords("DIRECTION")["MEASINFO"]["Ref"]
    tb.close()
    tb.open(ms + "/SYSCAL")
    out["syscal_rows"] = tb.nrows()
    out["syscal_columns"] = sorted(tb.colnames())
    tb.close()
    return out


def main_inspect(args: list[str]) -> None:
    print("SIMINSPECT " + json.dumps(inspect_ms(args[0])), flush=True)


if __name__ == "__main__":
    main()
