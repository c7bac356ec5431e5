"""Metrics computed from caltable arrays (numpy only: no CASA, no Django), so that the CASA side
computes them and fast unit tests check them on synthetic arrays."""

import numpy as np

from reports.thresholds import (
    BANDPASS_MIN_SNR,
    BANDPASS_MIN_SOLUTIONS,
    BANDPASS_TARGET_SNR,
    NOTCH_DEPTH,
)

# Bandpass statistics skip this fraction of channels at each edge (the pipeline's trimming).
EDGE_FRACTION = 0.1


def bandpass_metrics(amp: np.ndarray, phase: np.ndarray) -> dict:
    """Channel-to-channel variation, notch, phase jump, derivative outliers (10% edges trimmed)."""
    nchan = amp.shape[-1]
    edge = max(1, int(nchan * EDGE_FRACTION))
    a, p = amp[:, edge : nchan - edge], phase[:, edge : nchan - edge]
    finite = np.isfinite(a)
    flagged = 1.0 - float(np.isfinite(amp).mean())
    if finite.sum() < 4:
        return {"flagged_fraction": flagged, "cannot_assess": "too few unflagged channels"}
    with np.errstate(all="ignore"):
        level = np.nanmedian(a, axis=1, keepdims=True)
        chan2chan = float(np.nanmedian(np.abs(np.diff(a, axis=1)) / level))
        depth_per_chan = np.nanmin(a / level, axis=0)
        notch_depth = float(np.nanmin(depth_per_chan))
        low = np.where(depth_per_chan < NOTCH_DEPTH)[0] + edge
        dphase = np.abs(np.diff(np.unwrap(np.radians(np.nan_to_num(p, nan=0.0)), axis=1), axis=1))
        dphase_deg = np.degrees(np.nanmax(dphase, axis=0))
        jump_at = int(np.argmax(dphase_deg))
        deriv = np.diff(p, axis=1).ravel()
        deriv = deriv[np.isfinite(deriv)]
        mad = float(np.median(np.abs(deriv - np.median(deriv)))) if deriv.size else 0.0
        outliers = (
            float(np.mean(np.abs(deriv - np.median(deriv)) > 5 * max(mad, 1e-3))) if deriv.size else 0.0
        )
    return {
        "chan2chan": chan2chan,
        "notch_depth": notch_depth,
        "notch_channels": [int(low.min()), int(low.max())] if len(low) else [],
        "phase_jump_deg": float(dphase_deg.max()),
        "jump_channel": jump_at + edge + 1,
        "dd_outlier_fraction": outliers,
        "flagged_fraction": flagged,
    }


def bandpass_preaverage(snr_per_channel: float, nchan: int) -> int:
    """Channels to average per bandpass solution (aU.bandpassPreAverage's job): enough for the
    target SNR (SNR grows as the square root of the channels averaged), a power of two, and at
    least BANDPASS_MIN_SOLUTIONS solutions left across the spw. 1 when no averaging is needed."""
    if not np.isfinite(snr_per_channel) or snr_per_channel <= 0:
        return 1
    if snr_per_channel >= BANDPASS_MIN_SNR:
        return 1
    needed = (BANDPASS_TARGET_SNR / snr_per_channel) ** 2
    channels = 1
    while channels < needed:
        channels *= 2
    cap = max(1, nchan // BANDPASS_MIN_SOLUTIONS)
    while channels > cap and channels > 1:
        channels //= 2
    return channels
