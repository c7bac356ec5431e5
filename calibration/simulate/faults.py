"""Injected faults (pure numpy): each function changes one quantity and returns what it did,
for truth.json. The spectral faults (narrow spw, spw on an ATM line) are applied earlier,
when the spectral layout is made (spec.effective_spws)."""

from __future__ import annotations

from typing import Any

import numpy as np

from calibration.simulate.spec import (
    AtmLine,
    BadWvr,
    BandpassDefect,
    DeadAntenna,
    EbSpec,
    HotTsys,
    LowSnrSpw,
    Quack,
    channel_range,
)


def hot_receivers(spec: EbSpec, trx0: np.ndarray) -> list[dict[str, Any]]:
    """Scale the receiver temperature (nant, 2) of each hot antenna in place."""
    names = spec.antenna_names
    done = []
    for fault in spec.faults_of(HotTsys):
        i = names.index(fault.antenna)
        trx0[i] *= fault.factor
        done.append({**fault.to_dict(), "trx_k": trx0[i].round(1).tolist()})
    return done


def bandpass_defects(spec: EbSpec, bandpasses: list[np.ndarray]) -> list[dict[str, Any]]:
    """Notch and phase jump in one antenna's bandpass (nant, 2, nchan) of one spw, in place."""
    names = spec.antenna_names
    done = []
    for fault in spec.faults_of(BandpassDefect):
        bp = bandpasses[fault.spw - 1]
        nchan = bp.shape[-1]
        i = names.index(fault.antenna)
        lo, hi = channel_range(nchan, fault.notch_start, fault.notch_stop)
        jump = channel_range(nchan, fault.jump_at, 1.0)[0]
        bp[i, :, lo:hi] *= fault.notch_depth
        bp[i, :, jump:] *= np.exp(1j * np.deg2rad(fault.jump_deg))
        done.append({**fault.to_dict(), "notch_channels": [lo, hi], "jump_channel": jump})
    return done


def bad_wvr(
    spec: EbSpec, temps: np.ndarray, antenna_of_row: np.ndarray, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Noise and a random-walk drift on the WVR brightness temperatures (nrow, 4), in place."""
    names = spec.antenna_names
    done = []
    for fault in spec.faults_of(BadWvr):
        rows = antenna_of_row == names.index(fault.antenna)
        n = int(rows.sum())
        drift = np.cumsum(rng.normal(scale=fault.drift_k, size=n))
        temps[rows] += rng.normal(scale=fault.noise_k, size=(n, 4)) + drift[:, None] * np.array(
            [1.0, 0.6, 0.3, 0.2]
        )
        done.append({**fault.to_dict(), "drift_k_final": round(float(drift[-1]) if n else 0.0, 2)})
    return done


def dead_antenna_rows(spec: EbSpec, a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """Cross-correlation rows that touch a dead antenna (their signal is zeroed)."""
    names = spec.antenna_names
    dead = [names.index(f.antenna) for f in spec.faults_of(DeadAntenna)]
    return (a1 != a2) & (np.isin(a1, dead) | np.isin(a2, dead))


def quack_factor(spec: EbSpec, since_scan_start_s: np.ndarray, atm_row: np.ndarray) -> np.ndarray:
    """Amplitude factor per row: `factor` in the first `seconds` of every on-source scan."""
    out = np.ones(len(since_scan_start_s))
    for fault in spec.faults_of(Quack):
        out[(since_scan_start_s < fault.seconds - 1e-3) & ~atm_row] = fault.factor
    return out


def describe_simple(spec: EbSpec, integration_s: float, chan_widths_hz: list[float]) -> list[dict[str, Any]]:
    """Truth entries for the faults applied as layout or row changes."""
    done = []
    for fault in spec.faults:
        if isinstance(fault, DeadAntenna | Quack):
            done.append(fault.to_dict())
        elif isinstance(fault, LowSnrSpw):
            others = [w for i, w in enumerate(chan_widths_hz, start=1) if i != fault.spw]
            ratio = float(np.sqrt(np.median(others) / chan_widths_hz[fault.spw - 1])) if others else 1.0
            done.append({**fault.to_dict(), "expected_noise_ratio": round(ratio, 3)})
        elif isinstance(fault, AtmLine):
            done.append(fault.to_dict())
    return done
