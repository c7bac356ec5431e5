"""Sky models and instrumental corruptions of the simulated EB (pure numpy).

Raw science data are correlation coefficients, as in an ALMA MS before Tsys calibration:
    rho_ij = V_ij g_i conj(g_j) / (JY_PER_K sqrt(Tsys_i Tsys_j)) + noise,
with g = instrumental gain x bandpass x tropospheric phase exp(-2 pi i nu L / c) -- the sign
wvrgcal corrects (verified in casa-lab).
"""

from __future__ import annotations

import numpy as np

from calibration.simulate.spec import Field

C_M_S = 299_792_458.0
TROPO_SIGN = -1.0


def model_visibilities(
    field: Field, u_m: np.ndarray, v_m: np.ndarray, nu_hz: np.ndarray, ref_hz: float
) -> np.ndarray:
    """(nrow,) u, v in metres and (nchan,) frequencies -> (nrow, nchan) complex Jy.

    With the simulator's UVW, exp(+2 pi i (u l + v m)) puts a component at +l = east,
    +m = north (verified by imaging in casa-lab)."""
    ul = u_m[:, None] * nu_hz[None, :] / C_M_S
    vl = v_m[:, None] * nu_hz[None, :] / C_M_S
    vis = np.zeros(ul.shape, complex)
    for n, comp in enumerate(field.components):
        spectrum = comp.flux_jy * (nu_hz / ref_hz) ** comp.spectral_index
        if n == 0 and field.line is not None:
            sigma = field.line.fwhm_mhz * 1e6 / 2.3548
            spectrum = spectrum + field.line.flux_jy * np.exp(
                -0.5 * ((nu_hz - field.line.freq_ghz * 1e9) / sigma) ** 2
            )
        term = np.broadcast_to(spectrum[None, :], ul.shape).astype(complex)
        if comp.fwhm_arcsec:
            theta = np.deg2rad(comp.fwhm_arcsec / 3600.0)
            term = term * np.exp(-((np.pi * theta) ** 2) * (ul**2 + vl**2) / (4 * np.log(2)))
        dx, dy = comp.offset_arcsec
        if dx or dy:
            l_rad, m_rad = np.deg2rad(dx / 3600.0), np.deg2rad(dy / 3600.0)
            term = term * np.exp(2j * np.pi * (ul * l_rad + vl * m_rad))
        vis += term
    return vis


def instrumental_gains(nant: int, nspw: int, trel_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(nant, 2, nspw, nt) complex: amplitude 0.85-1.15 with a 1 % slow wobble (ALMA 12-m
    amplitude stability; a larger wobble alone moves the flux transfer by several %), phase
    offsets per antenna/pol/spw and drifts up to 40 deg/h."""
    amp0 = rng.uniform(0.85, 1.15, size=(nant, 2, 1, 1))
    wobble = 1 + 0.01 * np.sin(
        2 * np.pi * trel_s[None, None, None, :] / 1500.0 + rng.uniform(0, 2 * np.pi, (nant, 1, 1, 1))
    )
    phase0 = rng.uniform(-np.pi, np.pi, size=(nant, 2, nspw, 1))
    drift = np.deg2rad(rng.uniform(-40, 40, size=(nant, 1, 1, 1))) * trel_s[None, None, None, :] / 3600.0
    return amp0 * wobble * np.exp(1j * (phase0 + drift))


def bandpass(nant: int, nchan: int, chan_width_hz: float, rng: np.random.Generator) -> np.ndarray:
    """(nant, 2, nchan) complex: edge roll-off, 5 % ripple, delay slope up to 40 ps, 3 deg ripple."""
    ch = np.arange(nchan)
    roll = max(1.2, nchan / 53.0)  # roll-off a few channels wide at 64 channels, scaled with nchan
    edge = (
        0.5
        * (1 + np.tanh((ch - 2.1 * roll) / roll))
        * 0.5
        * (1 + np.tanh((nchan - 1 - 2.1 * roll - ch) / roll))
    )
    x = ch / nchan
    period = rng.uniform(0.2, 0.45, size=(nant, 2, 1))
    ripple = 1 + 0.05 * np.sin(2 * np.pi * x / period + rng.uniform(0, 2 * np.pi, (nant, 2, 1)))
    delay = rng.uniform(-40e-12, 40e-12, (nant, 2, 1))
    phase = 2 * np.pi * delay * (ch - nchan / 2) * chan_width_hz + np.deg2rad(3) * np.sin(2 * np.pi * x * 7)
    return edge * ripple * np.exp(1j * phase)


def receiver_temperatures(nant: int, nchan: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(base Trx per antenna/pol (nant, 2), its spectral shape (nchan,)): 40-55 K, +8 % at the edges."""
    x = np.linspace(-1, 1, nchan)
    return rng.uniform(40, 55, size=(nant, 2)), 1 + 0.08 * x**2


def thermal_sigma(chan_width_hz: float, integration_s: float) -> float:
    """Noise of one correlation coefficient per channel and integration: 1/sqrt(2 dnu tau)."""
    return 1.0 / np.sqrt(2 * chan_width_hz * integration_s)
