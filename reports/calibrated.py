"""QA of the calibrated visibilities of the calibrators (topic `calibrated`; pure, Django-free).

The summary is reports/incasa/visibilities.calibrated's: per calibrator field and spw, how flat
the corrected amplitude and phase are vs frequency, time and uv distance (the seeds' plotms
check on `<uid>.ms.split.cal`). A finding names the field and spw (and the antenna when one
antenna carries it); a spectral feature gets a flagdata edit, the others say what to look at.
Thresholds: reports/thresholds.py.
"""

import math
from typing import TypeGuard

from reports.findings import ScriptContext, finding, linear
from reports.spws import spw_label
from reports.thresholds import (
    CAL_AMP_DEV_BAD,
    CAL_AMP_DEV_LIMIT,
    CAL_AMP_TIME_BAD,
    CAL_AMP_TIME_RMS,
    CAL_ANT_AMP_OFF,
    CAL_ANT_PHASE_BAD_DEG,
    CAL_ANT_PHASE_RMS_DEG,
    CAL_FLAGGED_HIGH,
    CAL_NOISE_SIGMAS,
    CAL_PHASE_FREQ_BAD_DEG,
    CAL_PHASE_FREQ_RMS_DEG,
    CAL_PHASE_TIME_BAD_DEG,
    CAL_PHASE_TIME_RMS_DEG,
    CAL_SCAN_START_RATIO,
    CAL_UV_RATIO_BAD,
    CAL_UV_RATIO_OFF,
)


def _ok(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and math.isfinite(value)


def _score(value: float, limit: float, bad: float) -> float:
    return linear(value, limit, bad, 0.66, 0.34)


def _flag_edit(context: ScriptContext, vis: str, selection: dict[str, str], reason: str) -> dict | None:
    """flagdata on the split before calibration (as reports.qa._flag_edit), with a selection."""
    step = context.step_titled("initial flagging")
    if step is None:
        return None
    args = ", ".join(f"{key} = '{value}'" for key, value in selection.items())
    where = " ".join(f"{key} {value}" for key, value in selection.items())
    return {
        "step": step,
        "append": [f"flagdata(vis = '{vis}', mode = 'manual', {args}, flagbackup = False)"],
        "description": f"flag {where} in step {step} ({reason})",
    }


def _quack_edit(context: ScriptContext, vis: str, seconds: float) -> dict | None:
    step = context.step_titled("initial flagging")
    if step is None:
        return None
    return {
        "step": step,
        "append": [
            f"flagdata(vis = '{vis}', mode = 'quack', quackinterval = {seconds}, quackmode = 'beg', "
            "flagbackup = False)"
        ],
        "description": f"quack {seconds} s at the start of every scan in step {step}",
    }


def calibrated(name: str, summary: dict, context: ScriptContext) -> list[dict]:
    out: list[dict] = []
    split = name.removesuffix(".cal")  # the MS the calibration steps run on
    for field, per_spw in summary.get("per_field", {}).items():
        for spw, m in per_spw.items():
            out += _field_spw(summary, field, spw, m, split, context)
    # One quack edit covers every field and spw: keep the worst scan-start finding only.
    starts = sorted((f for f in out if f["code"] == "calibrated_scan_start"), key=lambda f: f["value"])
    if len(starts) > 1:
        starts[0]["message"] += f" (seen in {len(starts)} field/spw pairs)"
        out = [f for f in out if f["code"] != "calibrated_scan_start" or f is starts[0]]
    if not out:
        fields = ", ".join(summary.get("fields", [])) or "no calibrator"
        out.append(
            finding(
                "calibrated_flat",
                1.0,
                f"{name}: the calibrators ({fields}) are flat in amplitude and phase vs frequency, "
                "time and uv distance in every spw.",
            )
        )
    return out


def _field_spw(
    summary: dict, field: str, spw: str, m: dict, split: str, context: ScriptContext
) -> list[dict]:
    out = []
    label = f"{field} {spw_label(summary, spw)}"
    where = {"field": field, "spw": int(spw)}
    dev, noise = m.get("amp_freq_dev"), m.get("amp_noise_frac")
    if _ok(dev) and dev > CAL_AMP_DEV_LIMIT and (not _ok(noise) or dev > CAL_NOISE_SIGMAS * noise):
        first, last = m.get("amp_freq_channels") or [
            m.get("amp_freq_worst_channel"),
            m.get("amp_freq_worst_channel"),
        ]
        out.append(
            finding(
                "calibrated_amp_freq",
                _score(dev, CAL_AMP_DEV_LIMIT, CAL_AMP_DEV_BAD),
                f"{label}: the calibrated amplitude departs {dev:.0%} from flat in channels {first}-{last} "
                f"(limit {CAL_AMP_DEV_LIMIT:.0%}): a spectral feature or bad channels; flag them before "
                "bandpass (fillgaps can interpolate the bandpass over them).",
                metric="max |amp / median - 1| (smoothed)",
                value=dev,
                edit=_flag_edit(context, split, {"spw": f"{spw}:{first}~{last}"}, "not flat on a calibrator"),
                **where,
            )
        )
    rms = m.get("phase_freq_rms_deg")
    if _ok(rms) and rms > CAL_PHASE_FREQ_RMS_DEG:
        slope = m.get("phase_freq_slope_deg")
        shape = (
            f"a slope of {slope:.0f}° across the spw (a residual delay)"
            if _ok(slope) and abs(slope) > 2.5 * rms
            else "structure across the band"
        )
        out.append(
            finding(
                "calibrated_phase_freq",
                _score(rms, CAL_PHASE_FREQ_RMS_DEG, CAL_PHASE_FREQ_BAD_DEG),
                f"{label}: calibrated phase vs frequency scatters {rms:.0f}° rms, {shape} "
                f"(limit {CAL_PHASE_FREQ_RMS_DEG:.0f}°): check the bandpass solutions (solint, the "
                "pre-bandpass phase gaincal).",
                metric="phase rms across the band (deg)",
                value=rms,
                **where,
            )
        )
    antennas = m.get("per_antenna", {})
    noisy = {
        a: v["phase_rms_deg"]
        for a, v in antennas.items()
        if _ok(v.get("phase_rms_deg")) and v["phase_rms_deg"] > CAL_ANT_PHASE_RMS_DEG
    }
    rms = m.get("phase_time_rms_deg")
    if noisy and len(noisy) <= max(1, len(antennas) // 4):
        for antenna, value in sorted(noisy.items(), key=lambda kv: -kv[1]):
            out.append(
                finding(
                    "calibrated_phase_time_antenna",
                    _score(value, CAL_ANT_PHASE_RMS_DEG, CAL_ANT_PHASE_BAD_DEG),
                    f"{label}: {antenna}'s calibrated phase vs time scatters {value:.0f}° rms "
                    f"(limit {CAL_ANT_PHASE_RMS_DEG:.0f}°; the other antennas are flat): flag {antenna} "
                    "if its gain solutions cannot be improved.",
                    metric="antenna phase rms vs time (deg)",
                    value=value,
                    antenna=antenna,
                    edit=_flag_edit(
                        context, split, {"antenna": antenna, "spw": spw}, "phase not flat on a calibrator"
                    ),
                    **where,
                )
            )
    elif (_ok(rms) and rms > CAL_PHASE_TIME_RMS_DEG) or noisy:
        value = rms if _ok(rms) else max(noisy.values())
        out.append(
            finding(
                "calibrated_phase_time",
                _score(value, CAL_PHASE_TIME_RMS_DEG, CAL_PHASE_TIME_BAD_DEG),
                f"{label}: calibrated phase vs time scatters {value:.0f}° rms"
                + (f" on {len(noisy)} of {len(antennas)} antennas" if noisy else "")
                + f" (limit {CAL_PHASE_TIME_RMS_DEG:.0f}°): the gain solutions do not follow the "
                "phases; try a longer solint, a lower minsnr, or combining spws.",
                metric="phase rms vs time (deg)",
                value=value,
                **where,
            )
        )
    level = m.get("amp_time_rms_frac")
    start = m.get("scan_start_ratio")
    if _ok(start) and start < CAL_SCAN_START_RATIO:
        seconds = m.get("integration_s")
        # Half an integration: flags exactly the first one whether flagdata counts from the
        # scan's first timestamp or from the start of its first integration (as reports.qa.quack).
        interval = round(0.5 * seconds, 1) if _ok(seconds) else None
        advice = (
            f"quack {interval} s at the start of every scan" if interval else "quack the first integration"
        )
        out.append(
            finding(
                "calibrated_scan_start",
                _score(1 - start, 1 - CAL_SCAN_START_RATIO, 0.5),
                f"{label}: the first integration of each scan is at {start:.0%} of the rest of its scan "
                f"(limit {CAL_SCAN_START_RATIO:.0%}): {advice}.",
                metric="first integration / scan median amp",
                value=start,
                edit=_quack_edit(context, split, interval) if interval else None,
                **where,
            )
        )
        level = m.get("amp_time_rms_frac_rest", level)  # the rest judged on its own
    if _ok(level) and level > CAL_AMP_TIME_RMS:
        out.append(
            finding(
                "calibrated_amp_time",
                _score(level, CAL_AMP_TIME_RMS, CAL_AMP_TIME_BAD),
                f"{label}: calibrated amplitude vs time varies {level:.0%} rms (limit "
                f"{CAL_AMP_TIME_RMS:.0%}): look for noisy time ranges and flag them.",
                metric="amp rms / mean vs time",
                value=level,
                **where,
            )
        )
    off = {
        a: v["amp_ratio"]
        for a, v in antennas.items()
        if _ok(v.get("amp_ratio")) and abs(v["amp_ratio"] - 1) > CAL_ANT_AMP_OFF
    }
    for antenna, ratio in sorted(off.items()):
        out.append(
            finding(
                "calibrated_amp_antenna",
                0.66,
                f"{label}: {antenna}'s calibrated amplitude is {ratio:.2f}x the array's (limit "
                f"±{CAL_ANT_AMP_OFF:.0%}): its amplitude gains are off; check them, flag {antenna} if bad.",
                metric="antenna amp / array amp",
                value=ratio,
                antenna=antenna,
                **where,
            )
        )
    ratio = m.get("uv_ratio")
    if _ok(ratio) and abs(ratio - 1) > CAL_UV_RATIO_OFF:
        out.append(
            finding(
                "calibrated_amp_uv",
                _score(abs(ratio - 1), CAL_UV_RATIO_OFF, CAL_UV_RATIO_BAD),
                f"{label}: amplitude on the longest baselines is {ratio:.2f}x that on the shortest "
                f"(a point source is flat; limit ±{CAL_UV_RATIO_OFF:.0%}): "
                + (
                    "decorrelation on long baselines (a shorter phase solint)"
                    if ratio < 1
                    else "more flux on long baselines: bad data or a wrong model"
                )
                + ", or a resolved calibrator (use a model).",
                metric="amp outer / inner uv third",
                value=ratio,
                **where,
            )
        )
    flagged = m.get("flagged_fraction")
    if _ok(flagged) and flagged > CAL_FLAGGED_HIGH:
        out.append(
            finding(
                "calibrated_flagged",
                linear(flagged, CAL_FLAGGED_HIGH, 1.0, 0.66, 0.34),
                f"{label}: {flagged:.0%} of the calibrated data are flagged (limit {CAL_FLAGGED_HIGH:.0%}).",
                metric="flagged fraction",
                value=flagged,
                **where,
            )
        )
    return out
