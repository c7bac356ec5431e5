"""The text of scriptForImagingPrep.py and scriptForImaging.py (pure: no Django, no CASA).

The prep script splits the science target out of the calibrated data copied into Imaging/
(concatenating several EBs' splits first) into PREPARED_MS. The imaging script is written from
what that MS holds (calibration.models.ImagingData, read in CASA by the prep run) and from the
PI's request:
- per target, the mosaic gridder when the source was observed at several pointings;
- cell = beam / 5, the beam estimated as 0.574 lambda / L80 (the OT's formula: L80 the 80th
  percentile baseline) at the highest frequency; imsize covers 1.5 x the primary beam
  (1.13 lambda / D at the lowest frequency, D the smallest dish: 12 m or 7 m) around the
  pointings, rounded up to a size the FFT likes;
- a continuum image over the line-free channels (calibration.continuum);
- a cube of the representative spw (the one holding the representative frequency), with the
  requested spectral resolution for a line project;
- a threshold of THRESHOLD_SIGMA x the requested rms scaled to the image's bandwidth, or x the
  thermal rms the visibility weights predict when the data are better than requested;
- impbcor, then exportfits to `.pbcor.fits` and the primary beam to `.flux.fits`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from calibration.continuum import ContinuumChannels, continuum_selection
from calibration.imaging_names import FLUX_FITS_SUFFIX, PBCOR_FITS_SUFFIX, PREPARED_MS
from calibration.standard_scripts import GOOD_IMSIZES, ScriptWriter, round_sig

C_M_S = 299792458.0
RAD_TO_ARCSEC = 206264.80624709636
THRESHOLD_SIGMA = 3.0
PIXELS_PER_BEAM = 5
PB_COVERAGE = 1.5
NITER = 10000  # the threshold stops tclean; this only bounds it
BRIGGS_FACTOR = 1.1  # robust 0.5 costs about 10% of natural weighting's sensitivity


@dataclass(frozen=True)
class ImagingRequest:
    """What the PI asked for (the MOUS's request fields); None where not given."""

    goal: str  # continuum | line
    representative_frequency_ghz: float | None
    rms_mjy: float | None
    rms_bandwidth_mhz: float | None


@dataclass(frozen=True)
class Target:
    name: str
    field_ids: tuple[int, ...]
    phasecenter: int  # the pointing nearest the centre of a mosaic
    extent_arcsec: float  # largest separation between two pointings (0: one pointing)

    @property
    def is_mosaic(self) -> bool:
        return len(self.field_ids) > 1


@dataclass(frozen=True)
class Geometry:
    beam_arcsec: float
    cell_arcsec: float
    pb_arcsec: float
    dish_m: float


def prep_script(inputs: Sequence[str], targets: Sequence[str]) -> str:
    """scriptForImagingPrep.py: the calibrated data copied into Imaging/ -> PREPARED_MS."""
    if not inputs:
        raise ValueError("no calibrated data to prepare")
    w = ScriptWriter()
    source = inputs[0]
    if len(inputs) > 1:
        source = "calibrated.ms"
        w.step(
            "Concatenate the calibrated data",
            [
                f"os.system('rm -rf {source}')",
                f"concat(vis = {list(inputs)!r}, concatvis = '{source}')",
            ],
        )
    fields = ",".join(targets)
    selection = f"field = '{fields}', " if fields else ""
    w.step(
        "Split out the science target",
        [
            f"os.system('rm -rf {PREPARED_MS}')",
            f"split(vis = '{source}', outputvis = '{PREPARED_MS}', {selection}datacolumn = 'data', "
            "keepflags = False)",
            f"os.system('rm -rf {PREPARED_MS}.listobs')",
            f"listobs(vis = '{PREPARED_MS}', listfile = '{PREPARED_MS}.listobs')",
        ],
    )
    header = [
        "",
        f"# Imaging preparation: {', '.join(inputs)} -> {PREPARED_MS} "
        + (f"({fields})" if fields else "(targets not known from the EBs' data: every field kept)"),
    ]
    return w.render(header)


def targets_of(data: dict) -> list[Target]:
    """The data's target fields, grouped by source name (several pointings: a mosaic)."""
    by_name: dict[str, list[dict]] = {}
    for f in data["fields"]:
        by_name.setdefault(str(f["name"]), []).append(f)
    targets = []
    for name, fields in by_name.items():
        ra0, dec0 = _mean_direction(fields)
        centre = min(fields, key=lambda f: _separation(f["ra_rad"], f["dec_rad"], ra0, dec0))
        extent = max(
            (
                _separation(a["ra_rad"], a["dec_rad"], b["ra_rad"], b["dec_rad"])
                for a in fields
                for b in fields
            ),
            default=0.0,
        )
        targets.append(
            Target(name, tuple(int(f["id"]) for f in fields), int(centre["id"]), extent * RAD_TO_ARCSEC)
        )
    return targets


def _mean_direction(fields: list[dict]) -> tuple[float, float]:
    """The mean of the pointings' unit vectors as (ra, dec): right across RA 0h/24h and 12h."""
    x = sum(math.cos(f["dec_rad"]) * math.cos(f["ra_rad"]) for f in fields)
    y = sum(math.cos(f["dec_rad"]) * math.sin(f["ra_rad"]) for f in fields)
    z = sum(math.sin(f["dec_rad"]) for f in fields)
    return math.atan2(y, x), math.atan2(z, math.hypot(x, y))


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angular distance in radians (haversine)."""
    h = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(h)))


def geometry(data: dict) -> Geometry:
    spws = data["spws"]
    max_ghz = max(max(s["first_freq_ghz"], s["last_freq_ghz"]) for s in spws)
    min_ghz = min(min(s["first_freq_ghz"], s["last_freq_ghz"]) for s in spws)
    l80 = data["baselines_m"]["p80"] or data["baselines_m"]["max"]
    if not l80:
        raise ValueError("the data have no baselines")
    dish = min(data["dish_diameters_m"]) if data["dish_diameters_m"] else 12.0
    beam = 0.574 * (C_M_S / (max_ghz * 1e9)) / l80 * RAD_TO_ARCSEC
    pb = 1.13 * (C_M_S / (min_ghz * 1e9)) / dish * RAD_TO_ARCSEC
    return Geometry(
        beam_arcsec=beam, cell_arcsec=round_sig(beam / PIXELS_PER_BEAM), pb_arcsec=pb, dish_m=dish
    )


def imsize_for(target: Target, geo: Geometry) -> int:
    needed = (target.extent_arcsec + PB_COVERAGE * geo.pb_arcsec) / geo.cell_arcsec
    return next((s for s in GOOD_IMSIZES if s >= needed), GOOD_IMSIZES[-1])


def representative_spw(data: dict, frequency_ghz: float | None) -> dict:
    """The spw holding the representative frequency; else the nearest one; else the first."""
    spws = data["spws"]
    if frequency_ghz is None:
        return spws[0]
    for s in spws:
        lo, hi = sorted((s["first_freq_ghz"], s["last_freq_ghz"]))
        if lo <= frequency_ghz <= hi:
            return s
    return min(spws, key=lambda s: abs(s["mean_freq_ghz"] - frequency_ghz))


def cube_width(spw: dict, request: ImagingRequest) -> int:
    """Channels averaged in the cube: the requested spectral resolution of a line project."""
    if request.goal != "line" or not request.rms_bandwidth_mhz or not spw["chan_width_mhz"]:
        return 1
    return max(1, min(spw["nchan"], round(request.rms_bandwidth_mhz / spw["chan_width_mhz"])))


def requested_rms_mjy(request: ImagingRequest, bandwidth_mhz: float) -> float | None:
    """The requested rms scaled to an image's bandwidth (rms ~ 1/sqrt(bandwidth))."""
    if not request.rms_mjy or not request.rms_bandwidth_mhz or bandwidth_mhz <= 0:
        return None
    return request.rms_mjy * math.sqrt(request.rms_bandwidth_mhz / bandwidth_mhz)


def thermal_rms_mjy(data: dict, channels: dict[int, int]) -> float | None:
    """The rms the visibility weights predict for an image of `channels` ({spw id: number of
    channels}): 1/sqrt(sum of weights), natural weighting, times BRIGGS_FACTOR for robust 0.5."""
    sums = data.get("weight_sums") or {}
    total = sum(float(sums.get(str(spw), 0.0)) * n for spw, n in channels.items())
    return BRIGGS_FACTOR * 1e3 / math.sqrt(total) if total > 0 else None


def threshold_mjy(requested: float | None, thermal: float | None) -> float | None:
    """THRESHOLD_SIGMA x the requested rms at the image's bandwidth, or x the thermal rms when
    the data are better than requested: cleaning only to the request would leave the source's
    emission in the residual (and in the rms measured there)."""
    known = [v for v in (requested, thermal) if v]
    return THRESHOLD_SIGMA * min(known) if known else None


def imaging_script(data: dict, request: ImagingRequest, continuum: Sequence[ContinuumChannels]) -> str:
    """scriptForImaging.py for every target of `data` (an ImagingData summary)."""
    geo = geometry(data)
    spw_by_id = {s["id"]: s for s in data["spws"]}
    selection = continuum_selection(continuum)
    cont_bw = sum(spw_by_id[c.spw]["chan_width_mhz"] * c.free_count for c in continuum if c.spw in spw_by_id)
    rep = representative_spw(data, request.representative_frequency_ghz)
    width = cube_width(rep, request)
    w = ScriptWriter()
    for target in targets_of(data):
        name = target.name.replace(" ", "_")
        imsize = imsize_for(target, geo)
        common = [
            f"  field = '{target.name}',",
            f"  imsize = [{imsize}, {imsize}],",
            f"  cell = '{geo.cell_arcsec}arcsec',",
            f"  gridder = '{'mosaic' if target.is_mosaic else 'standard'}',",
        ]
        if target.is_mosaic:
            common.append(f"  phasecenter = {target.phasecenter},")
        common += ["  deconvolver = 'hogbom',", "  weighting = 'briggs',", "  robust = 0.5,"]
        cont_threshold = threshold_mjy(
            requested_rms_mjy(request, cont_bw),
            thermal_rms_mjy(data, {c.spw: c.free_count for c in continuum}),
        )
        w.step(
            f"Continuum image of {target.name}",
            [
                f"os.system('rm -rf {name}_cont.*')",
                f"tclean(vis = '{PREPARED_MS}',",
                f"  imagename = '{name}_cont',",
                *common,
                f"  spw = '{selection}',",
                "  specmode = 'mfs',",
                f"  niter = {NITER},",
                f"  threshold = '{_threshold_text(cont_threshold)}',",
                "  usemask = 'pb',",
                "  pbmask = 0.3,",
                "  interactive = False)",
            ],
        )
        cube_threshold = threshold_mjy(
            requested_rms_mjy(request, rep["chan_width_mhz"] * width),
            thermal_rms_mjy(data, {rep["id"]: width}),
        )
        w.step(
            f"Cube of {target.name} (spw {rep['id']})",
            [
                f"os.system('rm -rf {name}_cube.*')",
                f"tclean(vis = '{PREPARED_MS}',",
                f"  imagename = '{name}_cube',",
                *common,
                f"  spw = '{rep['id']}',",
                "  specmode = 'cube',",
                f"  width = {width},",
                *_restfreq(rep, request),
                "  outframe = 'LSRK',",
                "  restoringbeam = 'common',",
                f"  niter = {NITER},",
                f"  threshold = '{_threshold_text(cube_threshold)}',",
                "  usemask = 'pb',",
                "  pbmask = 0.3,",
                "  interactive = False)",
            ],
        )
        w.step(
            f"Primary beam correction and FITS export of {target.name}",
            [
                f"for im in ['{name}_cont', '{name}_cube']:",
                "  os.system('rm -rf ' + im + '.image.pbcor')",
                "  impbcor(imagename = im + '.image', pbimage = im + '.pb', outfile = im + '.image.pbcor', "
                "overwrite = True)",
                f"  exportfits(imagename = im + '.image.pbcor', fitsimage = im + '{PBCOR_FITS_SUFFIX}', "
                "overwrite = True)",
                f"  exportfits(imagename = im + '.pb', fitsimage = im + '{FLUX_FITS_SUFFIX}', "
                "overwrite = True)",
            ],
        )
    lines = [
        "",
        f"# Imaging of {', '.join(t.name for t in targets_of(data))} from {PREPARED_MS}",
        f'# beam ~{geo.beam_arcsec:.2f}" (0.574 lambda/L80, L80 {data["baselines_m"]["p80"]:.0f} m); '
        f'cell {geo.cell_arcsec}" = beam/{PIXELS_PER_BEAM}; primary beam {geo.pb_arcsec:.1f}" '
        f"({geo.dish_m:g} m dishes)",
        f"# continuum: {selection or 'no line-free channel found: choose by hand'} ({cont_bw:.0f} MHz)",
        f"# cube: spw {rep['id']} (representative frequency "
        f"{request.representative_frequency_ghz or 'not given'} GHz), width {width} channel(s)",
    ]
    if not (request.rms_mjy and request.rms_bandwidth_mhz):
        lines.append("# the request gives no rms (or no bandwidth for it): thresholds from the weights only")
    else:
        lines.append(
            f"# thresholds: {THRESHOLD_SIGMA:g} x the requested {request.rms_mjy} mJy/beam at "
            f"{request.rms_bandwidth_mhz} MHz scaled to each image's bandwidth, or x the thermal rms "
            "the weights predict when that is lower"
        )
    return w.render(lines)


def _restfreq(spw: dict, request: ImagingRequest) -> list[str]:
    """The representative frequency as the cube's rest frequency when the cube holds it (the
    line the request is about), so the spectral axis has velocities."""
    f = request.representative_frequency_ghz
    lo, hi = sorted((spw["first_freq_ghz"], spw["last_freq_ghz"]))
    return [f"  restfreq = '{f}GHz',"] if f is not None and lo <= f <= hi else []


def _threshold_text(mjy: float | None) -> str:
    return f"{mjy:.3g}mJy" if mjy is not None else "0mJy"
