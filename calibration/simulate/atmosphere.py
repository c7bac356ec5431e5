"""Atmosphere of the simulated EB: a turbulent PWV screen (numpy) and the ATM model
(casatools.atmosphere) for WVR brightness temperatures and science-band Tsys.

Runs inside the CASA subprocess.
"""

from __future__ import annotations

import numpy as np

from calibration.simulate.spec import Spw, Weather

# The ALMA WVR: four double-sideband channels around the 183.31 GHz water line. libair
# (wvrgcal) hard-codes this filter model; the MS spw carries ALMA's WVR#NOMINAL layout.
WVR_LINE_GHZ = 183.31
WVR_IF_GHZ = np.array([1.25, 3.25, 5.5, 7.25])
WVR_BW_HZ = np.array([1.5e9, 2.5e9, 2.0e9, 1.5e9])
WVR_CHAN_FREQ_HZ = np.array([184.55e9, 186.55e9, 188.80e9, 190.55e9])
WET_PATH_PER_PWV = 6.3  # mm of wet path per mm of PWV (standard conversion)

ETA_FORWARD = 0.95
T_AMBIENT_K = 270.0
JY_PER_K = 35.0  # 12-m antenna gain at band 6
SITE = {"altitude_m": 5059.0, "temperature_k": 270.0, "pressure_mbar": 555.0, "humidity": 20.0}


def turbulent_pwv(
    enu_m: np.ndarray, trel_s: np.ndarray, weather: Weather, rng: np.random.Generator
) -> np.ndarray:
    """Zenith PWV (mm) per (time, antenna): a frozen 1-D Kolmogorov-like screen blown over
    the array, scaled so the mean baseline rms of the zenith wet path is `path_rms_um`, on a
    slow common 10 % trend."""
    wdir = np.deg2rad(weather.wind_direction_deg)
    proj = enu_m[:, 0] * np.cos(wdir) + enu_m[:, 1] * np.sin(wdir)
    grid = np.arange(proj.min() - 3000.0, proj.max() + weather.wind_m_s * (trel_s.max() + 60) + 3000.0, 1.0)
    k = np.fft.rfftfreq(len(grid), d=1.0)
    amp = (k**2 + (1 / 1500.0) ** 2) ** (-4.0 / 6.0)  # outer scale 1.5 km
    amp[0] = 0
    screen = np.fft.irfft(amp * (rng.normal(size=len(k)) + 1j * rng.normal(size=len(k))), n=len(grid))
    dw = np.interp(proj[None, :] + weather.wind_m_s * trel_s[:, None], grid, screen)
    nant = enu_m.shape[0]
    iu, ju = np.triu_indices(nant, k=1)
    bl_rms = np.std(dw[:, iu] - dw[:, ju], axis=0).mean()
    dw *= (weather.path_rms_um * 1e-3 / WET_PATH_PER_PWV) / bl_rms
    trend = weather.pwv_mm * (1.0 + 0.1 * trel_s / max(trel_s.max(), 1.0))
    return trend[:, None] + dw


def channel_average(
    grid_hz: np.ndarray, values: np.ndarray, chan_hz: np.ndarray, width_hz: float
) -> np.ndarray:
    """Average a finely sampled ATM spectrum over each channel (interpolate when a channel is
    narrower than the ATM sampling)."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    lo = np.searchsorted(grid_hz, chan_hz - width_hz / 2)
    hi = np.searchsorted(grid_hz, chan_hz + width_hz / 2)
    count = hi - lo
    out = np.interp(chan_hz, grid_hz, values)
    ok = count > 0
    out[ok] = (csum[hi[ok]] - csum[lo[ok]]) / count[ok]
    return out


class AtmModel:
    """ATM tables: WVR brightness vs slant water column, and per science spw the sky
    brightness and opacity per channel vs airmass (tabulated once, interpolated after)."""

    AIRMASS_GRID = np.linspace(1.0, 3.0, 41)
    WATER_GRID_MM = np.linspace(0.1, 8.0, 159)

    def __init__(self, spws: list[Spw], chan_freqs_hz: list[np.ndarray], pwv_mm: float) -> None:
        import casatools

        self.at, self.qa = casatools.atmosphere(), casatools.quanta()
        q = self.qa.quantity
        self.at.initAtmProfile(
            altitude=q(SITE["altitude_m"], "m"),
            temperature=q(SITE["temperature_k"], "K"),
            pressure=q(SITE["pressure_mbar"], "mbar"),
            maxAltitude=q(48, "km"),
            humidity=SITE["humidity"],
            atmType=1,  # tropical: the Chajnantor standard in ALMA tools
        )
        centers, widths, resolutions = [], [], []
        for offset, bw in zip(WVR_IF_GHZ, WVR_BW_HZ / 1e9, strict=True):
            centers += [WVR_LINE_GHZ - offset, WVR_LINE_GHZ + offset]
            widths += [bw, bw]
            resolutions += [0.05, 0.05]
        for spw in spws:
            chan_mhz = spw.bandwidth_mhz / spw.nchan
            # pad by one channel so edge channels are averaged over their full width
            centers.append(spw.center_ghz)
            widths.append((spw.bandwidth_mhz + 2 * chan_mhz) / 1e3)
            resolutions.append(min(5.0, chan_mhz) / 1e3)
        self.at.initSpectralWindow(
            nbands=len(centers),
            fCenter={"value": centers, "unit": "GHz"},
            fWidth={"value": widths, "unit": "GHz"},
            fRes={"value": resolutions, "unit": "GHz"},
        )
        self.wvr_table = self._wvr_table()
        self.sky_tables = [
            self._sky_table(8 + i, chan_freqs_hz[i], spw.bandwidth_mhz * 1e6 / spw.nchan, pwv_mm)
            for i, spw in enumerate(spws)
        ]

    def _wvr_table(self) -> np.ndarray:
        table = np.zeros((len(self.WATER_GRID_MM), 4))
        for i, w in enumerate(self.WATER_GRID_MM):
            temps = [
                self.at.getAverageTebbSky(spwid=j, wh2o=self.qa.quantity(w, "mm"))["value"] for j in range(8)
            ]
            table[i] = np.array(temps).reshape(4, 2).mean(axis=1)  # DSB: mean of the two sidebands
        return table

    def _sky_table(self, atm_spw: int, chan_hz: np.ndarray, width_hz: float, pwv_mm: float) -> np.ndarray:
        grid = np.asarray(self.at.getSpectralWindow(atm_spw)["value"], dtype=float)
        self.at.setUserWH2O(self.qa.quantity(pwv_mm, "mm"))
        table = np.zeros((len(self.AIRMASS_GRID), 2, len(chan_hz)))
        for i, airmass in enumerate(self.AIRMASS_GRID):
            self.at.setAirMass(airmass)
            tsky = np.asarray(self.at.getTebbSkySpec(spwid=atm_spw)[1]["value"], dtype=float)
            tau = np.asarray(self.at.getDryOpacitySpec(spwid=atm_spw)[1], dtype=float) + np.asarray(
                self.at.getWetOpacitySpec(spwid=atm_spw)[1]["value"], dtype=float
            )
            table[i, 0] = channel_average(grid, tsky, chan_hz, width_hz)
            table[i, 1] = channel_average(grid, tau, chan_hz, width_hz) * airmass
        self.at.setAirMass(1.0)
        return table

    def wvr_brightness(self, water_slant_mm: np.ndarray) -> np.ndarray:
        """(...,) slant water (mm) -> (..., 4) WVR brightness temperatures (K)."""
        return np.stack(
            [np.interp(water_slant_mm, self.WATER_GRID_MM, self.wvr_table[:, c]) for c in range(4)], axis=-1
        )

    def sky(self, spw_index: int, airmass: float) -> tuple[np.ndarray, np.ndarray]:
        """(Tsky per channel, slant opacity per channel) at `airmass`."""
        grid, table = self.AIRMASS_GRID, self.sky_tables[spw_index]
        am = float(np.clip(airmass, grid[0], grid[-1]))
        i = min(int(np.searchsorted(grid, am)) - 1, len(grid) - 2)
        i = max(i, 0)
        f = (am - grid[i]) / (grid[i + 1] - grid[i])
        both = (1 - f) * table[i] + f * table[i + 1]
        return both[0], both[1]

    def tsys(self, spw_index: int, airmass: float, trx: np.ndarray) -> np.ndarray:
        """Tsys (K) for receiver temperatures `trx` (..., nchan) at `airmass`."""
        tsky, tau = self.sky(spw_index, airmass)
        return system_temperature(trx, tsky, tau)


def system_temperature(trx: np.ndarray, tsky: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Tsys referred to above the atmosphere: (Trx + eta Tsky + (1-eta) Tamb) e^tau / eta."""
    return (trx + ETA_FORWARD * tsky + (1 - ETA_FORWARD) * T_AMBIENT_K) * np.exp(tau) / ETA_FORWARD
