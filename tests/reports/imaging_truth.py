"""The simulator's truth against an image: the target's flux and position measured by imfit in
a CASA subprocess, and the flux the simulator put in over the imaged channels."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from calibration import casa
from calibration.continuum import ContinuumChannels
from calibration.simulate.spec import EbSpec

# The source's flux: the primary-beam corrected image summed in a circle around the phase
# centre (radius: the farthest component plus one beam) over the beam area in pixels; its
# position: one Gaussian fitted to the brightest part (within one beam of the centre).
MEASURE = """
import json, sys
import numpy as np, casatools
from casatasks import imfit, imstat
image, pbcor, extent = sys.argv[1], sys.argv[2], float(sys.argv[3])
ia = casatools.image(); ia.open(image)
shape = ia.shape(); beam = ia.restoringbeam(); cs = ia.coordsys()
cell = abs(cs.increment(type='direction', format='n')['numeric'][0]) * 206264.806
ia.close()
bmaj, bmin = beam['major']['value'], beam['minor']['value']
x, y = shape[0] // 2, shape[1] // 2
radius = (extent + bmaj) / cell
stats = imstat(imagename=pbcor, region='circle[[%dpix,%dpix],%.1fpix]' % (x, y, radius))
beam_pixels = np.pi * bmaj * bmin / (4 * np.log(2)) / cell ** 2
fit = imfit(imagename=image, region='circle[[%dpix,%dpix],%.1fpix]' % (x, y, bmaj / cell))
comp = fit['results']['component0']
print(json.dumps({'flux_jy': float(stats['sum'][0]) / beam_pixels,
  'ra_rad': float(comp['shape']['direction']['m0']['value']),
  'dec_rad': float(comp['shape']['direction']['m1']['value']),
  'bmaj_arcsec': float(bmaj), 'aperture_arcsec': float(radius * cell)}))
"""


def measure_source(image: Path, pbcor: Path, extent_arcsec: float) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(image), str(pbcor), str(extent_arcsec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=casa.casa_environment(),
        cwd=image.parent,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def continuum_frequencies_ghz(data: dict, found: list[ContinuumChannels]) -> tuple[np.ndarray, np.ndarray]:
    """The frequencies of the line-free channels the continuum image was made of, and their
    widths (an mfs image weighs a channel by its weight, which grows with its width)."""
    spws = {s["id"]: s for s in data["spws"]}
    freqs: list[float] = []
    widths: list[float] = []
    for c in found:
        s = spws[c.spw]
        step = (s["last_freq_ghz"] - s["first_freq_ghz"]) / max(1, s["nchan"] - 1)
        for first, last in c.free:
            freqs += [s["first_freq_ghz"] + k * step for k in range(first, last + 1)]
            widths += [s["chan_width_mhz"]] * (last - first + 1)
    return np.array(freqs), np.array(widths)


def injected_flux_jy(spec: EbSpec, channels: tuple[np.ndarray, np.ndarray]) -> float:
    """Every component of the target (a Gaussian disc and a point source beside it), averaged
    over the continuum channels weighted by their width (the line is outside them)."""
    freqs_ghz, widths = channels
    target = spec.field_by_role("target")
    return float(
        sum(
            np.average(c.flux_jy * (freqs_ghz / spec.reference_freq_ghz) ** c.spectral_index, weights=widths)
            for c in target.components
        )
    )


def target_extent_arcsec(spec: EbSpec) -> float:
    """How far the target's farthest component lies from the phase centre (plus its size)."""
    target = spec.field_by_role("target")
    return max(float(np.hypot(*c.offset_arcsec)) + c.fwhm_arcsec for c in target.components)


def target_direction_rad(spec: EbSpec) -> tuple[float, float]:
    from astropy.coordinates import Angle

    target = spec.field_by_role("target")
    return float(
        Angle(target.ra.replace("h", ":").replace("m", ":").rstrip("s"), unit="hourangle").rad
    ), float(Angle(target.dec.replace("d", ":").replace("m", ":").rstrip("s"), unit="deg").rad)


def separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    dra = (ra1 - ra2 + np.pi) % (2 * np.pi) - np.pi
    return float(np.hypot(dra * np.cos(dec2), dec1 - dec2) * 206264.806)
