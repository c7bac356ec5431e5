"""QA scores and findings from diagnostic summaries (pure functions: summary in, findings out).

Thresholds live in reports/thresholds.py, each with its source (a pipeline heuristic, a seed,
or our own choice with the reason).
A finding is a dict: code, score, metric, value, antenna, spw, field, message, edit.
"""

import math
from collections.abc import Callable

from calibration.calibrators import scaled_flux
from reports.calibrated import calibrated
from reports.edit_loop import expectation
from reports.findings import ScriptContext, finding, linear
from reports.metrics import bandpass_preaverage
from reports.spws import ms_spw, split_spw, spw_label
from reports.thresholds import (
    ATM_LINE_DIP,
    ATM_TSYS_RISE,
    BANDPASS_MIN_SNR,
    BANDPASS_TARGET_SNR,
    CANNOT_ASSESS,
    CHAN2CHAN_LIMIT,
    FLAGS_APRIORI_BAD,
    FLAGS_APRIORI_GOOD,
    FLAGS_NEW_GOOD,
    FLUX_CATALOGUE_BAD,
    FLUX_CATALOGUE_OK,
    FLUX_SNR_HIGH,
    FLUX_SNR_LOW,
    FLUX_SPW_OFF,
    GAINS_AMP_OFF_FACTOR,
    GAINS_DEAD_FLAGGED,
    GAINS_LOW_SNR,
    GAINS_SNR_FRACTION_OF_BEST,
    NARROW_SPW_FRACTION,
    NOTCH_DEPTH,
    PHASE_JUMP_MIN_DEG,
    PHASE_JUMP_TYPICAL_FACTOR,
    PHASE_RMS_FAIR_DEG,
    PHASE_RMS_GOOD_DEG,
    PHASE_RMS_POOR_DEG,
    QUACK_LOW,
    TSYS_FLAG_RATIO,
    TSYS_WARN_RATIO,
    WVR_DISC_MAX_UM,
    WVR_WORSE_DEG,
    WVR_WORSE_RATIO,
)


def assess(topic: str, name: str, summary: dict, context: ScriptContext) -> list[dict]:
    if "cannot_assess" in summary:
        return [finding("cannot_assess", CANNOT_ASSESS, f"Cannot assess {name}: {summary['cannot_assess']}")]
    checks: dict[str, Callable[[str, dict, ScriptContext], list[dict]]] = {
        "tsys": tsys,
        "wvr": wvr,
        "bandpass": bandpass,
        "gains": gains,
        "flux": flux,
        "flags": flags,
        "calibrated": calibrated,
    }
    if topic == "calibrated" and "concat" in summary:
        return concat_layout(name, summary["concat"])
    found = checks[topic](name, summary, context)
    for f in found:
        if f["spw"] is not None:  # the table's id -> the MS's, the split's beside it
            f["split_spw"] = split_spw(summary, f["spw"])
            f["spw"] = ms_spw(summary, f["spw"])
        if f["edit"]:
            f["edit"]["expect"] = expectation({**f, "topic": topic})
    return found


def _flag_edit(context: ScriptContext, vis: str, antenna: str, spw: str, reason: str) -> dict | None:
    step = context.step_titled("initial flagging") or context.step_titled("a priori flagging")
    if step is None:
        return None
    selection = f", spw = '{spw}'" if spw else ""
    return {
        "step": step,
        "append": [
            f"flagdata(vis = '{vis}', mode = 'manual', antenna = '{antenna}'{selection}, flagbackup = False)"
        ],
        "description": f"flag {antenna}{' spw ' + spw if spw else ''} in step {step} ({reason})",
    }


# --- Tsys ------------------------------------------------------------------------------------
def tsys(name: str, summary: dict, context: ScriptContext) -> list[dict]:
    out = []
    for antenna, per_spw in summary["per_antenna"].items():
        worst = None
        for spw, stats in per_spw.items():
            ratio = stats["median"] / summary["array_median"][spw]
            if worst is None or ratio > worst[1]:
                worst = (spw, ratio, stats["median"], summary["array_median"][spw])
        if worst and worst[1] >= TSYS_WARN_RATIO:
            spw, ratio, value, typical = worst
            hot = sorted(
                (
                    s
                    for s, st in per_spw.items()
                    if st["median"] >= TSYS_WARN_RATIO * summary["array_median"][s]
                ),
                key=int,
            )
            out.append(
                finding(
                    "tsys_high",
                    linear(ratio, TSYS_WARN_RATIO, TSYS_FLAG_RATIO, 0.66, 0.33),
                    f"{antenna} Tsys median {value:.0f} K vs {typical:.0f} K for the array "
                    f"({spw_label(summary, spw)}, "
                    f"{ratio:.1f}x): flag {antenna} in the Tsys table (as hifa_tsysflag does), so "
                    "applycal flags its data.",
                    metric="Tsys median / array median",
                    value=ratio,
                    antenna=antenna,
                    spw=int(spw),
                    edit=_tsys_flag_edit(context, name, antenna, hot, ratio),
                )
            )
    atm_notes = _atm_lines(summary)
    if not out:
        medians = ", ".join(f"{spw_label(summary, s)}: {v:.0f} K" for s, v in summary["array_median"].items())
        out.append(
            finding(
                "tsys_ok",
                1.0,
                f"Every antenna's Tsys is within {TSYS_WARN_RATIO}x the array median ({medians}).",
            )
        )
    return out + atm_notes


def _tsys_flag_edit(context: ScriptContext, table: str, antenna: str, spws: list[str], ratio: float) -> dict:
    """Flag the antenna in the Tsys caltable, in the step that made it: the diagnostic after that
    step reads the flagged table, and applycal flags the antenna's data where its Tsys is."""
    selection = f", spw = '{','.join(spws)}'" if spws else ""
    return {
        "step": context.step,
        "append": [
            f"flagdata(vis = '{table}', mode = 'manual', antenna = '{antenna}'{selection}, "
            "flagbackup = False)"
        ],
        "description": f"flag {antenna} in {table} in step {context.step} (Tsys {ratio:.1f}x the median)",
    }


def _atm_lines(summary: dict) -> list[dict]:
    """Tsys features at atmospheric lines: expected, never flagged, and said so."""
    out = []
    for spw, line in sorted((summary.get("atm_lines") or {}).items(), key=lambda kv: int(kv[0])):
        if line.get("dip", 0.0) < ATM_LINE_DIP:
            continue
        rise = line.get("tsys_rise", 0.0)
        seen = f"the array's Tsys rises {rise:.0%} there" if rise >= ATM_TSYS_RISE else "Tsys barely changes"
        out.append(
            finding(
                "tsys_atm_line",
                1.0,
                f"{spw_label(summary, spw)}: atmospheric line at {line['freq_ghz']:.3f} GHz (transmission "
                f"{line['dip']:.0%} below the spw's median); {seen}. This is the sky, not an antenna "
                "fault: it is not flagged (flagging it would cut the science band).",
                metric="transmission dip",
                value=line["dip"],
                spw=int(spw),
            )
        )
    return out


# --- WVR -------------------------------------------------------------------------------------
def wvr(name: str, summary: dict, context: ScriptContext) -> list[dict]:
    before, after = summary.get("phase_rms_before", {}), summary.get("phase_rms_after", {})
    report = summary.get("report", {})
    disc = dict(zip(report.get("Name", []), report.get("Disc_um", []), strict=False))
    rms = dict(zip(report.get("Name", []), report.get("RMS_um", []), strict=False))
    already = [n for n, f in zip(report.get("Name", []), report.get("Flag", []), strict=False) if f]
    improvement = summary.get("improvement")
    if improvement is None:
        return [
            finding("cannot_assess", CANNOT_ASSESS, "No phase rms with and without WVR could be computed.")
        ]
    bad = []
    for antenna in summary["antennas"]:
        if antenna in already:
            continue
        b, a = before.get(antenna), after.get(antenna)
        worse = b is not None and a is not None and a > WVR_WORSE_RATIO * b and a - b > WVR_WORSE_DEG
        if worse or (disc.get(antenna) or 0) > WVR_DISC_MAX_UM or (rms.get(antenna) or 0) > WVR_DISC_MAX_UM:
            bad.append(antenna)
    out = []
    wvrflag = sorted(set(already) | set(bad))
    for antenna in bad:
        b, a = before.get(antenna), after.get(antenna)
        change = (
            f"its phase rms gets worse with its own WVR: {b:.0f}°→{a:.0f}°"
            if b and a and a > b
            else (f"phase rms {b:.0f}°→{a:.0f}° with WVR" if b and a else "no phase rms")
        )
        out.append(
            finding(
                "wvr_bad_antenna",
                0.5,
                f"{antenna}: add wvrflag={wvrflag!r} to the wvrgcal call in step {context.step} ({change}; "
                f"Disc {disc.get(antenna, math.nan):.0f} µm, limit {WVR_DISC_MAX_UM:.0f}).",
                metric="phase rms after / before WVR (deg)",
                value=(a / b) if a and b else None,
                antenna=antenna,
                edit={
                    "step": context.step,
                    "task": "wvrgcal",
                    "param": "wvrflag",
                    "value": wvrflag,
                    "description": f"interpolate the WVR of {', '.join(wvrflag)} from neighbours (wvrflag)",
                },
            )
        )
    median_disc = _median([d for d in disc.values() if d is not None])
    if improvement >= 1.0:
        score = 1.0 if not bad else max(0.67, 0.9 - 0.1 * (len(bad) - 1))
    elif median_disc > WVR_DISC_MAX_UM:
        score = 0.33
    else:
        score = max(0.34, 0.66 - 0.1 * len(bad))
    out.append(
        finding(
            "wvr_improvement",
            score,
            f"{improvement:.2f}x improvement of the calibrators' phase rms with WVR"
            + (f"; {len(bad)} antenna(s) made worse by their own WVR" if bad else ""),
            metric="1 / median(phase rms with / without WVR)",
            value=improvement,
        )
    )
    return out


def _within_factor(ratio: float, factor: float) -> bool:
    return 1 / factor <= ratio <= factor


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


# --- bandpass --------------------------------------------------------------------------------
def bandpass(name: str, summary: dict, context: ScriptContext) -> list[dict]:
    out = []
    vis = name.removesuffix(".bandpass")
    for spw in summary["spws"]:
        key = str(spw)
        rows = {a: s[key] for a, s in summary["per_antenna"].items() if key in s and "chan2chan" in s[key]}
        if not rows:
            continue
        # The seeds' channel-to-channel rule is about data channels: on solutions averaged over
        # several channels it measures the band's shape, so there the SNR alone decides.
        averaged = int((summary.get("averaged") or {}).get(key, 1))
        noisy = [a for a, m in rows.items() if m["chan2chan"] > CHAN2CHAN_LIMIT] if averaged == 1 else []
        typical_jump = _median([m["phase_jump_deg"] for m in rows.values()])
        raw_snr = (summary.get("spw_snr") or {}).get(key)
        snr: float | None = float(raw_snr) if raw_snr is not None and math.isfinite(raw_snr) else None
        nchan = int((summary.get("nchan") or {}).get(key, 0)) or None
        snr_known = snr is not None
        low_snr = snr is not None and snr < BANDPASS_MIN_SNR
        array_wide = len(noisy) >= max(2, len(rows) // 2)
        if array_wide and snr_known and not low_snr:
            # Enough SNR per solution channel: the variation is the band's own shape at this
            # (perhaps averaged) resolution, the same on every antenna, not noise and no fault.
            out.append(
                finding(
                    "bandpass_structure",
                    1.0,
                    f"{spw_label(summary, spw)}: channel-to-channel variation above {CHAN2CHAN_LIMIT:.0%} on "
                    f"{len(noisy)} of {len(rows)} antennas with a median SNR of {snr:.0f} per solution "
                    "channel: the band's shape at this resolution, not noise.",
                    spw=spw,
                )
            )
            noisy = []
        if low_snr or (array_wide and not snr_known):
            level = _median([rows[a]["chan2chan"] for a in noisy] or [m["chan2chan"] for m in rows.values()])
            edit = _solint_edit(context, snr, nchan, (summary.get("chan_width_mhz") or {}).get(key))
            advice = (
                f"solint={edit['value']!r} in step "
                f"{context.step}, computed from the per-channel SNR {snr:.0f} for a target of "
                f"{BANDPASS_TARGET_SNR:.0f}"
                if edit and snr is not None
                else f"average channels in step {context.step} (or combine spws / map phases)"
            )
            out.append(
                finding(
                    "bandpass_low_snr_spw",
                    0.5,
                    f"{spw_label(summary, spw)}: too little SNR per channel for a bandpass solution "
                    f"(median SNR {_fmt(snr)} per channel, pipeline minimum {BANDPASS_MIN_SNR:.0f}; "
                    f"channel-to-channel variation {level:.0%} on {len(noisy)} of {len(rows)} antennas, "
                    f"seeds' rule > {CHAN2CHAN_LIMIT:.0%}): {advice}.",
                    metric="median SNR per solution channel" if snr_known else "median |Δamp| / amp",
                    value=snr if snr_known else level,
                    spw=spw,
                    edit=edit,
                )
            )
            noisy = []
        for antenna in noisy:
            edit = _solint_edit(
                context,
                rows[antenna].get("snr_median"),
                nchan,
                (summary.get("chan_width_mhz") or {}).get(key),
            )
            out.append(
                finding(
                    "bandpass_chan2chan",
                    linear(rows[antenna]["chan2chan"], CHAN2CHAN_LIMIT, 0.15, 0.66, 0.34),
                    f"bandpass channel-to-channel variation {rows[antenna]['chan2chan']:.0%} on {antenna} "
                    f"{spw_label(summary, spw)} (seeds' rule: > {CHAN2CHAN_LIMIT:.0%}): "
                    + (
                        f"use solint={edit['value']!r} in step {context.step} (from its SNR per channel "
                        f"{_fmt(rows[antenna].get('snr_median'))})."
                        if edit
                        else "check the antenna's plot."
                    ),
                    metric="median |Δamp| / amp",
                    value=rows[antenna]["chan2chan"],
                    antenna=antenna,
                    spw=spw,
                    edit=edit,
                )
            )
        for antenna, m in rows.items():
            if m["notch_depth"] < NOTCH_DEPTH and m["notch_channels"]:
                first, last = m["notch_channels"]
                out.append(
                    finding(
                        "bandpass_notch",
                        linear(m["notch_depth"], NOTCH_DEPTH, 0.2, 0.66, 0.34),
                        f"{antenna} {spw_label(summary, spw)} bandpass notch: amplitude "
                        f"{m['notch_depth']:.2f} of its level "
                        "in "
                        f"channels {first}-{last}: flag them before bandpass.",
                        metric="min amp / median amp",
                        value=m["notch_depth"],
                        antenna=antenna,
                        spw=spw,
                        edit=_flag_edit(context, vis, antenna, f"{spw}:{first}~{last}", "bandpass notch"),
                    )
                )
            if m["phase_jump_deg"] > max(PHASE_JUMP_MIN_DEG, PHASE_JUMP_TYPICAL_FACTOR * typical_jump):
                out.append(
                    finding(
                        "bandpass_phase_jump",
                        0.6,
                        f"{antenna} {spw_label(summary, spw)} bandpass phase jumps "
                        f"{m['phase_jump_deg']:.0f}° at channel "
                        f"{m['jump_channel']} (typical channel step {typical_jump:.1f}°): check the plot.",
                        metric="max |Δphase| between channels (deg)",
                        value=m["phase_jump_deg"],
                        antenna=antenna,
                        spw=spw,
                    )
                )
    if not out:
        out.append(
            finding("bandpass_ok", 1.0, "Bandpass solutions are smooth: no notches, jumps or noisy channels.")
        )
    return out


def _solint_edit(
    context: ScriptContext, snr: float | None, nchan: int | None, chan_width_mhz: float | None = None
) -> dict | None:
    """The bandpass solint that gives this spw enough SNR (bandpass_preaverage), or None when the
    SNR is unknown or needs no averaging.

    With the channel width known it is written in MHz ('inf,0.49MHz'): one bandpass call solves
    every spw, and a width in MHz averages only the spws whose channels are narrower than it
    (a wider channel is one solution channel, as CASA does for 'inf,1MHz' on 31 MHz channels),
    so the wide spws keep their full resolution and their band edges."""
    if snr is None or nchan is None or not math.isfinite(snr):
        return None
    channels = bandpass_preaverage(snr, nchan)
    if channels <= 1:
        return None
    if chan_width_mhz:
        width = f"{channels * chan_width_mhz:.4g}MHz"
        value, what = f"inf,{width}", f"{width} ({channels} channels of this spw)"
    else:
        value, what = f"inf,{channels}ch", f"{channels} channels"
    return {
        "step": context.step,
        "task": "bandpass",
        "param": "solint",
        "value": value,
        "description": f"average {what} per bandpass solution in step {context.step}",
    }


def _fmt(value: float | None) -> str:
    return "unknown" if value is None or not math.isfinite(value) else f"{value:.0f}"


# --- gains -----------------------------------------------------------------------------------
def gains(name: str, summary: dict, context: ScriptContext) -> list[dict]:
    out = []
    vis = name.rsplit(".", 1)[0]
    calmode = summary.get("calmode", "")
    dead = []
    if calmode == "fluxscale":  # derived from the amplitude table, which already said it
        return [finding("gains_ok", 1.0, f"{name}: flux-scaled gains of the amplitude table")]
    flagged_in_data = set(summary.get("flagged_antennas") or [])
    for antenna, per_spw in summary["per_antenna"].items():
        fractions = [s.get("flagged_fraction", 1.0) for s in per_spw.values()]
        if antenna in flagged_in_data:
            continue  # flagged on purpose: no solutions are expected
        if fractions and min(fractions) >= GAINS_DEAD_FLAGGED:
            dead.append(antenna)
    amps = {
        a: _median([s["amp_median"] for s in v.values() if "amp_median" in s])
        for a, v in summary["per_antenna"].items()
    }
    if "a" in calmode or calmode == "fluxscale":
        typical = _median([v for v in amps.values() if v])
        dead += [
            a
            for a, v in amps.items()
            if a not in dead and v and typical and not _within_factor(v / typical, GAINS_AMP_OFF_FACTOR)
        ]
    for antenna in dead:
        out.append(
            finding(
                "gains_antenna",
                0.33,
                f"{antenna}: no usable {name} solutions (all flagged, or amplitude far from the array's): "
                f"a dead or bad antenna; flag {antenna}.",
                antenna=antenna,
                edit=_flag_edit(context, vis, antenna, "", f"no usable gains in {name}"),
            )
        )
    if "p" in calmode or calmode == "":
        rms = _median(
            [
                s["phase_rms_deg"]
                for a, v in summary["per_antenna"].items()
                if a not in dead
                for s in v.values()
                if "phase_rms_deg" in s
            ]
        )
        score = (
            1.0
            if rms < PHASE_RMS_GOOD_DEG
            else 0.9
            if rms < PHASE_RMS_FAIR_DEG
            else 1 - rms / 100
            if rms < PHASE_RMS_POOR_DEG
            else 0.3
        )
        out.append(
            finding(
                "gains_phase_rms",
                score,
                f"median phase rms {rms:.0f}° in {name}",
                metric="phase rms (deg)",
                value=rms,
            )
        )
    out += _gains_low_snr(name, summary)
    if not out:
        out.append(finding("gains_ok", 1.0, f"{name}: every antenna has solutions"))
    return out


def _gains_low_snr(name: str, summary: dict) -> list[dict]:
    """A spw whose gains have too little SNR on their own: map or combine it with a wide one."""
    snr = {k: v for k, v in (summary.get("spw_snr") or {}).items() if v is not None and math.isfinite(v)}
    if len(snr) < 2:
        return []
    best_spw = max(snr, key=lambda k: snr[k])
    out = []
    for spw, value in sorted(snr.items(), key=lambda kv: int(kv[0])):
        if value < GAINS_LOW_SNR and value < GAINS_SNR_FRACTION_OF_BEST * snr[best_spw]:
            out.append(
                finding(
                    "gains_low_snr_spw",
                    linear(value / snr[best_spw], GAINS_SNR_FRACTION_OF_BEST, 0.05, 0.66, 0.34),
                    f"{name} {spw_label(summary, spw)}: median gain SNR {value:.0f} against "
                    f"{snr[best_spw]:.0f} in {spw_label(summary, best_spw)}: solve its phases with the "
                    f"wide spws (gaincal combine = 'spw') and apply them with spwmap in applycal, or map "
                    f"it to {spw_label(summary, best_spw)}.",
                    metric="median gain SNR",
                    value=value,
                    spw=int(spw),
                )
            )
    return out


# --- flux and flags ----------------------------------------------------------------------------
def flux(name: str, summary: dict, context: ScriptContext) -> list[dict]:
    out = []
    for field, spws in summary["fields"].items():
        if not spws:
            out.append(finding("flux_missing", 0.0, f"{field}: fluxscale derived no flux", field=field))
            continue
        snr = [v["flux"] / v["error"] for v in spws.values() if v["error"] > 0]
        scores = [linear(s, FLUX_SNR_LOW, FLUX_SNR_HIGH, 0.66, 1.0) for s in snr]
        score = sum(scores) / len(scores) if scores else 0.66
        values = ", ".join(
            f"{spw_label(summary, s)}: {v['flux']:.3f} ± {v['error']:.3f} Jy" for s, v in sorted(spws.items())
        )
        out.append(
            finding(
                "flux_snr",
                score,
                f"{field}: {values}",
                metric="flux SNR",
                value=min(snr, default=0),
                field=field,
            )
        )
        alpha = summary.get("spectral_index", {}).get(field)
        ref = max(spws.values(), key=lambda v: v["flux"] / v["error"] if v["error"] else 0)
        for spw, v in spws.items():
            expected = ref["flux"] * (v["freq_ghz"] / ref["freq_ghz"]) ** (alpha or 0.0)
            q = abs(1 - v["flux"] / expected) if expected else 1.0
            widths = [w.get("bandwidth_mhz") for w in spws.values() if w.get("bandwidth_mhz")]
            narrow = bool(widths) and (v.get("bandwidth_mhz") or math.inf) < NARROW_SPW_FRACTION * max(widths)
            if q >= FLUX_SPW_OFF and narrow:
                out.append(
                    finding(
                        "flux_low_snr_spw",
                        0.5,
                        f"{field} {spw_label(summary, spw)}: {v['flux']:.3f} Jy is {q:.0%} off the fitted "
                        f"spectrum, and the spw is narrow ({v['bandwidth_mhz']:.1f} MHz against "
                        f"{max(widths):.0f} MHz): low SNR, not a real flux change. Solve its gains with the "
                        "wide spws (combine = 'spw' / spwmap) before fluxscale.",
                        metric="|1 - S/S_fit|",
                        value=q,
                        field=field,
                        spw=int(spw),
                    )
                )
            elif q >= FLUX_SPW_OFF:
                out.append(
                    finding(
                        "flux_spw_consistency",
                        0.75 if q < 0.2 else 0.5,
                        f"{field} {spw_label(summary, spw)}: {v['flux']:.3f} Jy is {q:.0%} "
                        "off the fitted spectrum",
                        metric="|1 - S/S_fit|",
                        value=q,
                        field=field,
                        spw=int(spw),
                    )
                )
    return out + flux_catalogue(summary)


def flux_catalogue(summary: dict) -> list[dict]:
    """Each derived flux against the calibrator catalogue scaled to the spw's frequency with the
    catalogue's spectral index. summary["catalogue"] (field -> entry dict, or None when the
    source is not in the catalogue) is put there by reports.services when it records the run."""
    catalogue = summary.get("catalogue")
    if catalogue is None:
        return []  # recorded without a catalogue lookup: nothing to compare with
    out = []
    for field, spws in summary["fields"].items():
        if not spws:
            continue
        entry = catalogue.get(field)
        if entry is None:
            out.append(
                finding(
                    "flux_catalogue_unknown",
                    CANNOT_ASSESS,
                    f"{field} is not in the calibrator catalogue: its derived flux is not checked against "
                    "a catalogue value (a DRM can add the source on the Calibrator fluxes page)",
                    field=field,
                )
            )
            continue
        alpha = entry["spectral_index"]
        described = (
            f"{entry['flux_jy']:g} Jy at {entry['freq_ghz']:g} GHz, "
            + ("no spectral index: flat assumed" if alpha is None else f"alpha {alpha:g}")
            + f"; {entry['provenance']}"
        )
        for spw, v in sorted(spws.items(), key=lambda item: int(item[0])):
            if not math.isfinite(v["freq_ghz"]) or v["freq_ghz"] <= 0:
                continue
            expected = scaled_flux(entry["flux_jy"], entry["freq_ghz"], alpha, v["freq_ghz"])
            off = v["flux"] / expected - 1
            if abs(off) < FLUX_CATALOGUE_OK:
                score = 1.0
            else:
                score = linear(abs(off), FLUX_CATALOGUE_OK, FLUX_CATALOGUE_BAD, 0.66, 0.33)
            out.append(
                finding(
                    "flux_catalogue",
                    score,
                    f"{field} spw {spw}: derived {v['flux']:.3f} Jy, catalogue {expected:.3f} Jy at "
                    f"{v['freq_ghz']:.1f} GHz ({off:+.0%}; catalogue {described})",
                    metric="S/S_catalogue - 1",
                    value=off,
                    field=field,
                    spw=int(spw),
                )
            )
    return out


def flags(name: str, summary: dict, context: ScriptContext) -> list[dict]:
    """Newly flagged since the previous save of the same MS (score_fraction_newly_flagged);
    the first save holds the deterministic a priori flags (score_online_shadow_template_agents)."""
    fraction = summary["total_fraction"]
    previous = summary.get("previous")
    extra = _most_flagged(summary.get("antenna", {}))
    vis = summary["vis"].rsplit("/", 1)[-1]
    quack_findings = (
        quack(vis, summary.get("quack") or {}, context) if _judges_quack(vis, previous, context) else []
    )
    if previous is None:
        score = linear(fraction, FLAGS_APRIORI_GOOD, FLAGS_APRIORI_BAD, 1.0, 0.0)
        message = f"{summary['stage']}: {fraction:.1%} of {vis} flagged (a priori){extra}"
        return [
            finding("flags_apriori", score, message, metric="flagged fraction", value=fraction),
            *quack_findings,
        ]
    new = max(0.0, fraction - previous["fraction"])
    score = (
        1.0 if new <= FLAGS_NEW_GOOD else linear(new, FLAGS_NEW_GOOD, 0.5, 1.0, 0.5) if new <= 0.5 else 0.0
    )
    message = (
        f"{summary['stage']}: {new:.1%} of {vis} newly flagged since {previous['stage']} "
        f"({fraction:.1%} in all){extra}"
    )
    return [finding("flags_new", score, message, metric="newly flagged fraction", value=new), *quack_findings]


def _judges_quack(vis: str, previous: dict | None, context: ScriptContext) -> bool:
    """Quack is judged once per MS and run, on the MS the script's flagging step works on (the
    split, when the script splits), at its first flag save after that step: an edit to that step
    is what fixes it, and a save before it would still show the unflagged starts."""
    if context.step_titled("split out science") is not None and ".split" not in vis:
        return False
    flagging = context.step_titled("initial flagging") or context.step_titled("a priori flagging")
    if flagging is None:
        return previous is None
    if context.step <= flagging:
        return False
    return previous is None or previous.get("step") is None or previous["step"] <= flagging


def _most_flagged(per_antenna: dict[str, float]) -> str:
    """ "; most flagged antenna(s) X, Y 40%": every antenna of a tie, not the first one found."""
    if not per_antenna:
        return ""
    top = max(per_antenna.values())
    tied = sorted(a for a, v in per_antenna.items() if abs(v - top) < 1e-9)
    if len(tied) == len(per_antenna) and len(tied) > 1:
        return f"; every antenna {top:.0%} flagged"
    label = "antenna" if len(tied) == 1 else "antennas"
    return f"; most flagged {label} {', '.join(tied)} {top:.0%}"


def quack(vis: str, profile: dict, context: ScriptContext) -> list[dict]:
    """Low first integrations of calibrator scans -> a quack edit in the initial flagging."""
    scans = profile.get("scans") or {}
    if not scans:
        return []
    low: dict[str, tuple[int, float, str]] = {}
    for scan, entry in scans.items():
        ratios = entry.get("first") or []
        leading = 0
        for ratio in ratios:
            if ratio is None or ratio >= QUACK_LOW:
                break
            leading += 1
        if leading:
            low[scan] = (leading, float(ratios[0]), str(entry.get("field", "")))
    if not low:
        return [
            finding(
                "quack_ok",
                1.0,
                f"{vis}: the first integrations of {len(scans)} calibrator scans are within "
                f"{1 - QUACK_LOW:.0%} of the rest of their scan.",
            )
        ]
    integrations = max(n for n, _r, _f in low.values())
    # (n - 1/2) integrations: flags exactly the first n whether flagdata counts from the scan's
    # first timestamp (an integration's centre) or from the start of its first integration.
    seconds = round((integrations - 0.5) * float(profile.get("integration_s") or 0), 1)
    worst = min(r for _n, r, _f in low.values())
    listed = ", ".join(
        f"{scan} ({field} {ratio:.0%})"
        for scan, (_n, ratio, field) in sorted(low.items(), key=lambda kv: int(kv[0]))
    )
    step = context.step_titled("initial flagging") or context.step_titled("a priori flagging")
    edit = (
        {
            "step": step,
            "append": [
                f"flagdata(vis = '{vis}', mode = 'quack', quackinterval = {seconds}, quackmode = 'beg', "
                "flagbackup = False)"
            ],
            "description": f"quack the first {seconds} s of every scan in step {step}",
        }
        if step is not None and seconds > 0
        else None
    )
    return [
        finding(
            "quack",
            linear(worst, QUACK_LOW, 0.3, 0.9, 0.5),
            f"{vis}: the first {integrations} integration(s) of {len(low)} of {len(scans)} calibrator scans "
            f"are low (scan, field, amplitude vs the rest of the scan: {listed}): quack {seconds} s at the "
            "start of each scan.",
            metric="first integration / scan median amplitude",
            value=worst,
            edit=edit,
        )
    ]


def concat_layout(name: str, concat: dict) -> list[dict]:
    """After concat: more fields or spws than the inputs had is the seeds' warning sign."""
    fields, spws = len(concat.get("fields", [])), len(concat.get("spws", []))
    layout = f"{concat.get('vis')}: {fields} field(s), {spws} spw(s), {concat.get('rows')} rows"
    problems = []
    if concat.get("fields_multiplied"):
        problems.append(
            f"{fields} fields where the EBs have {concat.get('expected_fields')}: the pointings differ "
            "slightly between EBs; add dirtol (e.g. dirtol = '0.1arcsec') to the concat call"
        )
    if concat.get("spws_multiplied"):
        problems.append(
            f"{spws} spws where each EB has {concat.get('expected_spws')}: the EBs' frequencies differ "
            "(Doppler settings); concat with a frequency tolerance (freqtol) or regrid when imaging"
        )
    if problems:
        return [finding("concat_multiplied", 0.5, f"{layout}. " + "; ".join(problems), metric="concat")]
    return [finding("concat_layout", 1.0, f"{layout}: as many fields and spws as the EBs", metric="concat")]
