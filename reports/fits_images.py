"""Read the exported FITS images for the image page (web side: astropy, never CASA).

Every file is opened through the confined helper (no link followed, nothing outside Imaging/).
A plane is sent as float32 in base64, block-averaged to at most MAX_SIDE pixels a side, so a
1000 x 1000 image is a ~1 MB payload; the QA numbers are computed on the full image in CASA.
Axes are RA/Dec from the image's WCS (tick labels along the centre row and column).
"""

from __future__ import annotations

import base64
import math
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

from assignments.datafiles import UnsafePath, open_confined

MAX_SIDE = 512
TICKS = 5
BEAM_POINTS = 48


class ImageUnreadable(ValueError):
    """The FITS file cannot be read as an image (shown on the page)."""


def _open(base: Path, name: str):
    handle = open_confined(name, base=base)
    try:
        return fits.open(handle, memmap=False, lazy_load_hdus=True), handle
    except (OSError, ValueError) as exc:
        handle.close()
        raise ImageUnreadable(f"{name}: {exc}") from None


def _axes(header: fits.Header) -> tuple[int, int | None]:
    """(number of axes, the spectral axis's numpy index or None)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis < 2:
        raise ImageUnreadable("not an image (fewer than 2 axes)")
    spectral = None
    for i in range(3, naxis + 1):
        if str(header.get(f"CTYPE{i}", "")).upper().startswith(("FREQ", "VRAD", "VELO")):
            spectral = naxis - i  # numpy order is reversed
    return naxis, spectral


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return WCS(header).celestial


def channel_count(header: fits.Header) -> int:
    naxis, spectral = _axes(header)
    return int(header.get(f"NAXIS{naxis - spectral}", 1)) if spectral is not None else 1


def frequencies_ghz(header: fits.Header) -> list[float]:
    naxis, spectral = _axes(header)
    if spectral is None:
        return [float(header.get("CRVAL3", 0.0)) / 1e9]
    i = naxis - spectral
    n = int(header[f"NAXIS{i}"])
    crval, cdelt, crpix = float(header[f"CRVAL{i}"]), float(header[f"CDELT{i}"]), float(header[f"CRPIX{i}"])
    return [(crval + (k + 1 - crpix) * cdelt) / 1e9 for k in range(n)]


def _plane(hdu, channel: int) -> np.ndarray:
    naxis, spectral = _axes(hdu.header)
    index: list[int | slice] = [*([0] * (naxis - 2)), slice(None), slice(None)]
    if spectral is not None:
        index[spectral] = channel
    return np.asarray(hdu.section[tuple(index)], dtype=np.float32)


def block_mean(plane: np.ndarray, stride: int) -> np.ndarray:
    """Mean over stride x stride blocks, ignoring NaN (a block of NaN stays NaN)."""
    if stride == 1:
        return plane
    ny, nx = plane.shape
    padded = np.full((math.ceil(ny / stride) * stride, math.ceil(nx / stride) * stride), np.nan, np.float32)
    padded[:ny, :nx] = plane
    blocks = padded.reshape(padded.shape[0] // stride, stride, padded.shape[1] // stride, stride)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3)).astype(np.float32)


def _ticks(wcs: WCS, nx: int, ny: int) -> dict:
    xs = np.linspace(0, nx - 1, TICKS)
    ys = np.linspace(0, ny - 1, TICKS)
    ra = wcs.pixel_to_world(xs, np.full(TICKS, (ny - 1) / 2))
    dec = wcs.pixel_to_world(np.full(TICKS, (nx - 1) / 2), ys)
    return {
        "x": {"vals": xs.tolist(), "text": [c.ra.to_string(unit=u.hour, sep=":", precision=2) for c in ra]},
        "y": {"vals": ys.tolist(), "text": [c.dec.to_string(unit=u.deg, sep=":", precision=1) for c in dec]},
    }


def beam_ellipse(header: fits.Header, nx: int, ny: int) -> dict | None:
    """The restoring beam as a closed path in pixels, drawn in the lower-left corner."""
    bmaj, bmin, bpa = header.get("BMAJ"), header.get("BMIN"), header.get("BPA", 0.0)
    cdelt = abs(float(header.get("CDELT2", 0.0)))
    if not bmaj or not bmin or not cdelt:
        return None
    a, b = float(bmaj) / cdelt / 2, float(bmin) / cdelt / 2
    pa = math.radians(float(bpa))  # east of north: from +y towards -x (RA grows to the left)
    cx, cy = 0.08 * nx + a, 0.08 * ny + a
    xs, ys = [], []
    for k in range(BEAM_POINTS + 1):
        t = 2 * math.pi * k / BEAM_POINTS
        along, across = a * math.cos(t), b * math.sin(t)
        xs.append(cx - along * math.sin(pa) + across * math.cos(pa))
        ys.append(cy + along * math.cos(pa) + across * math.sin(pa))
    return {
        "x": xs,
        "y": ys,
        "bmaj_arcsec": float(bmaj) * 3600,
        "bmin_arcsec": float(bmin) * 3600,
        "bpa_deg": float(bpa),
    }


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode()


def snr_plane(base: Path, pb_name: str, channel: int, plane: np.ndarray, rms: float) -> np.ndarray | None:
    """Signal to noise of a primary-beam corrected plane: value x pb / rms (the noise of a
    pb-corrected image is rms / pb). None when the primary beam cannot be read or differs."""
    try:
        hdul, handle = _open(base, pb_name)
    except (OSError, UnsafePath, ImageUnreadable):
        return None
    try:
        pb = _plane(hdul[0], min(channel, channel_count(hdul[0].header) - 1))
    except (OSError, ValueError, KeyError, IndexError):
        return None
    finally:
        hdul.close()
        handle.close()
    if pb.shape != plane.shape:
        return None
    return plane * pb / rms


def plane_payload(
    base: Path, name: str, channel: int = 0, *, pb_name: str | None = None, rms: float | None = None
) -> dict:
    """One plane of `name` (in `base`) for the page: z (base64 float32, row-major), its shape,
    the pixel each block starts at, RA/Dec ticks, the beam, the channel's frequency; with the
    primary beam `pb_name` and the image's `rms`, also `snr` (for the contours)."""
    hdul, handle = _open(base, name)
    try:
        hdu = hdul[0]
        header = hdu.header
        nchan = channel_count(header)
        if not 0 <= channel < nchan:
            raise ImageUnreadable(f"channel {channel}: the image has channels 0 to {nchan - 1}")
        plane = _plane(hdu, channel)
        ny, nx = plane.shape
        stride = max(1, math.ceil(max(nx, ny) / MAX_SIDE))
        small = block_mean(plane, stride)
        finite = plane[np.isfinite(plane)]
        payload = {
            "name": name,
            "channel": channel,
            "nchan": nchan,
            "freq_ghz": frequencies_ghz(header)[channel] if nchan > 1 else frequencies_ghz(header)[0],
            "shape": [int(small.shape[0]), int(small.shape[1])],
            "pixels": [int(ny), int(nx)],
            "stride": stride,
            "z": _b64(small),
            "unit": str(header.get("BUNIT", "")),
            "peak": float(finite.max()) if finite.size else None,
            "ticks": _ticks(_wcs(header), nx, ny),
            "beam": beam_ellipse(header, nx, ny),
            "rms": rms,
            "snr": None,
        }
        if pb_name and rms:
            snr = snr_plane(base, pb_name, channel, plane, rms)
            payload["snr"] = _b64(block_mean(snr.astype(np.float32), stride)) if snr is not None else None
        return payload
    except ImageUnreadable:
        raise
    except (OSError, ValueError, KeyError, IndexError) as exc:  # a truncated or malformed file
        raise ImageUnreadable(f"{name}: {exc}") from None
    finally:
        hdul.close()
        handle.close()


def spectrum_payload(base: Path, name: str, x: int, y: int) -> dict:
    """The values of every channel at pixel (x, y) of `name`, with RA/Dec of the pixel."""
    hdul, handle = _open(base, name)
    try:
        hdu = hdul[0]
        header = hdu.header
        naxis, spectral = _axes(header)
        nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
        if not (0 <= x < nx and 0 <= y < ny):
            raise ImageUnreadable(f"pixel ({x}, {y}) is outside the {nx} x {ny} image")
        index: list[int | slice] = [*([0] * (naxis - 2)), y, x]
        if spectral is not None:
            index[spectral] = slice(None)
        values = np.atleast_1d(np.asarray(hdu.section[tuple(index)], dtype=float))
        coord = _wcs(header).pixel_to_world(x, y)
        return {
            "x": x,
            "y": y,
            "ra": coord.ra.to_string(unit=u.hour, sep=":", precision=3),
            "dec": coord.dec.to_string(unit=u.deg, sep=":", precision=2),
            "freq_ghz": frequencies_ghz(header)[: len(values)],
            # A channel tclean could not image (blank PSF) is exactly 0: no value, not a 0 Jy point.
            "values": [float(v) if np.isfinite(v) and v != 0.0 else None for v in values],
            "unit": str(header.get("BUNIT", "")),
        }
    except ImageUnreadable:
        raise
    except (OSError, ValueError, KeyError, IndexError) as exc:  # a truncated or malformed file
        raise ImageUnreadable(f"{name}: {exc}") from None
    finally:
        hdul.close()
        handle.close()
