"""Image QA, computed in CASA right after a tclean call of an imaging run.

For each image: the restoring beam (a cube's median per-plane beam when it has several), the
peak, the achieved rms and the dynamic range, the image's bandwidth, and the theoretical rms
that CASA's imager estimates from the visibility weights for the same selection and weighting
(imager.apparentsens).

The achieved rms is measured where the noise is flat and there is no emission: on tclean's
residual (the emission it cleaned removed; the image itself when there is no residual), before
primary-beam correction, inside the primary-beam level PB_INNER, after iteratively dropping
pixels beyond CLIP_SIGMA (what emission is left). For a cube that is done per channel; the
cube's rms is the median over line-free channels: those whose peak differs from the median
channel peak (the continuum) by less than LINE_PEAK_SIGMA x the median channel rms.
"""

from pathlib import Path

import casatools
import numpy as np

from calibration.imaging_names import IMAGE_SUFFIX, PB_SUFFIX

RESIDUAL_SUFFIX = ".residual"

PB_INNER = 0.5
CLIP_SIGMA = 3.0
CLIP_ROUNDS = 6
LINE_PEAK_SIGMA = 5.0
PLANE_PIXELS = 4_000_000  # a larger plane is read in strides (every n-th pixel)


def clipped_rms(values: np.ndarray) -> float | None:
    """1.4826 x MAD after CLIP_ROUNDS rounds of dropping |x - median| > CLIP_SIGMA x rms."""
    x = values[np.isfinite(values)]
    rms = None
    for _ in range(CLIP_ROUNDS):
        if x.size < 10:
            break
        median = float(np.median(x))
        rms = 1.4826 * float(np.median(np.abs(x - median)))
        if rms == 0:
            break
        x = x[np.abs(x - median) < CLIP_SIGMA * rms]
    return rms


def _arcsec(quantity: dict) -> float:
    qa = casatools.quanta()
    return float(qa.convert(quantity, "arcsec")["value"])


def _beam(ia) -> tuple[float, float, float]:
    """(bmaj, bmin arcsec, pa deg); a cube with per-plane beams: the median plane's."""
    info = ia.restoringbeam()
    if "major" in info:
        return (
            _arcsec(info["major"]),
            _arcsec(info["minor"]),
            float(casatools.quanta().convert(info["positionangle"], "deg")["value"]),
        )
    beams = [b for plane in info.get("beams", {}).values() for b in plane.values()]
    majors = [_arcsec(b["major"]) for b in beams]
    order = np.argsort(majors)
    if not beams:
        return float("nan"), float("nan"), float("nan")
    b = beams[int(order[len(order) // 2])]
    return (
        _arcsec(b["major"]),
        _arcsec(b["minor"]),
        float(casatools.quanta().convert(b["positionangle"], "deg")["value"]),
    )


def _open_if(path: Path):
    if not path.exists():
        return None
    opened = casatools.image()
    opened.open(str(path))
    return opened


def _spectral_axis(cs) -> int | None:
    names = [str(n).lower() for n in cs.names()]
    return next((i for i, n in enumerate(names) if n.startswith("freq")), None)


def _plane(ia, axis: int | None, channel: int, shape: list[int], stride: int) -> np.ndarray:
    blc = [0] * len(shape)
    trc = [s - 1 for s in shape]
    if axis is not None:
        blc[axis] = trc[axis] = channel
    inc = [stride, stride] + [1] * (len(shape) - 2)
    chunk = ia.getchunk(blc=blc, trc=trc, inc=inc, getmask=False)
    mask = ia.getchunk(blc=blc, trc=trc, inc=inc, getmask=True)
    plane = np.where(mask, chunk, np.nan).astype(float)
    return plane.reshape(plane.shape[0], plane.shape[1])


def measure(folder: Path, imagename: str) -> dict:
    """The numbers of `<imagename>.image` (and its `.pb`)."""
    image = str(folder / f"{imagename}{IMAGE_SUFFIX}")
    pb_path = folder / f"{imagename}{PB_SUFFIX}"
    ia = casatools.image()
    ia.open(image)
    try:
        shape = [int(s) for s in ia.shape()]
        cs = ia.coordsys()
        axis = _spectral_axis(cs)
        nchan = shape[axis] if axis is not None else 1
        increment = cs.increment(type="spectral")["numeric"] if axis is not None else [0.0]
        ref_freq = cs.referencevalue(type="spectral")["numeric"] if axis is not None else [0.0]
        chan_width_hz = abs(float(increment[0]))
        freq_ghz = float(ref_freq[0]) / 1e9
        cell_arcsec = (
            abs(float(cs.increment(type="direction", format="n")["numeric"][0])) * 206264.80624709636
        )
        cs.done()
        bmaj, bmin, bpa = _beam(ia)
        stride = max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / PLANE_PIXELS))))
        pb_ia = _open_if(pb_path)
        residual_path = folder / f"{imagename}{RESIDUAL_SUFFIX}"
        residual_ia = _open_if(residual_path)
        rms_per_channel: list[float | None] = []
        peak_per_channel: list[float | None] = []
        try:
            for channel in range(nchan):
                plane = _plane(ia, axis, channel, shape, stride)
                noise = (
                    _plane(residual_ia, axis, channel, shape, stride) if residual_ia is not None else plane
                )
                if pb_ia is not None:
                    pb = _plane(pb_ia, axis, channel, shape, stride)
                    noise = np.where(pb >= PB_INNER, noise, np.nan)
                rms_per_channel.append(clipped_rms(noise))
                finite = plane[np.isfinite(plane)]
                peak_per_channel.append(float(finite.max()) if finite.size else None)
        finally:
            for opened in (pb_ia, residual_ia):
                if opened is not None:
                    opened.close()
    finally:
        ia.close()
    rms_values = np.array([r for r in rms_per_channel if r], float)
    median_rms = float(np.median(rms_values)) if rms_values.size else None
    peak_values = np.array([p for p in peak_per_channel if p is not None], float)
    continuum_peak = float(np.median(peak_values)) if peak_values.size else 0.0
    line_free = [
        i
        for i, (r, p) in enumerate(zip(rms_per_channel, peak_per_channel, strict=True))
        if r and p is not None and median_rms and abs(p - continuum_peak) < LINE_PEAK_SIGMA * median_rms
    ]
    if nchan == 1:
        rms = rms_per_channel[0]
    else:
        chosen = [rms_per_channel[i] for i in line_free] or [r for r in rms_per_channel if r]
        rms = float(np.median(np.array(chosen, float))) if chosen else None
    peaks = [p for p in peak_per_channel if p is not None]
    peak = max(peaks) if peaks else None
    return {
        "image": f"{imagename}{IMAGE_SUFFIX}",
        "shape": shape,
        "nchan": nchan,
        "freq_ghz": freq_ghz,
        "chan_width_mhz": chan_width_hz / 1e6,
        "cell_arcsec": cell_arcsec,
        "bmaj_arcsec": bmaj,
        "bmin_arcsec": bmin,
        "bpa_deg": bpa,
        "peak_jy": peak,
        "rms_jy": rms,
        "dynamic_range": (peak / rms) if peak is not None and rms else None,
        "rms_per_channel_jy": rms_per_channel,
        "peak_per_channel_jy": peak_per_channel,
        "line_free_channels": line_free if nchan > 1 else [0],
        "pixel_stride": stride,
        "rms_method": f"clipped rms ({CLIP_SIGMA:g} sigma, {CLIP_ROUNDS} rounds) of the "
        + ("residual" if residual_path.exists() else "image")
        + f" inside pb >= {PB_INNER:g}"
        + ("; median of line-free channels" if nchan > 1 else ""),
    }


def selected_bandwidth_mhz(vis: str, spw: str) -> float:
    """The summed width of the channels a tclean spw selection picks ('' = all)."""
    ms = casatools.ms()
    msmd = casatools.msmetadata()
    indices = ms.msseltoindex(vis=vis, spw=spw or "*")
    msmd.open(vis)
    try:
        total = 0.0
        for spw_id, first, last, step in np.asarray(indices["channel"], int).reshape(-1, 4):
            widths = np.abs(np.asarray(msmd.chanwidths(int(spw_id)), float))
            total += float(widths[first : last + 1 : max(1, step)].sum())
    finally:
        msmd.close()
    return total / 1e6


def theoretical_rms(folder: Path, kw: dict, shape: list[int], cell_arcsec: float) -> float | None:
    """imager.apparentsens for tclean's vis/field/spw/weighting (first MS of a list)."""
    vis = kw.get("vis")
    vis = vis[0] if isinstance(vis, list | tuple) and vis else vis
    if not isinstance(vis, str):
        return None
    im = casatools.imager()
    im.open(str(folder / vis))
    try:
        im.selectvis(field=str(kw.get("field") or ""), spw=str(kw.get("spw") or ""))
        cell = f"{cell_arcsec}arcsec"
        im.defineimage(nx=shape[0], ny=shape[1], cellx=cell, celly=cell)
        weighting = str(kw.get("weighting") or "natural")
        if weighting == "briggs":
            im.weight(type="briggs", robust=float(kw.get("robust", 0.5)))
        else:
            im.weight(type=weighting)
        result = im.apparentsens()
    finally:
        im.close()
    ok, sensitivity = result[0], float(result[1])
    return sensitivity if ok and sensitivity > 0 else None


def image_items(folder: Path, calls: list[tuple[str, dict, object]]) -> list[dict]:
    """One item per tclean call of the step whose image exists."""
    items = []
    for name, kw, _result in calls:
        imagename = kw.get("imagename")
        if name != "tclean" or not isinstance(imagename, str):
            continue
        if not (folder / f"{imagename}{IMAGE_SUFFIX}").exists():
            continue
        try:
            summary = measure(folder, imagename)
            specmode = str(kw.get("specmode") or "mfs")
            summary["kind"] = "cube" if specmode.startswith("cube") else "continuum"
            summary["specmode"] = specmode
            summary["tclean"] = {
                k: kw.get(k)
                for k in ("vis", "field", "spw", "weighting", "robust", "gridder", "threshold", "niter")
            }
            vis = kw.get("vis")
            first = vis[0] if isinstance(vis, list | tuple) and vis else vis
            if summary["kind"] == "continuum" and isinstance(first, str):
                summary["bandwidth_mhz"] = selected_bandwidth_mhz(
                    str(folder / first), str(kw.get("spw") or "")
                )
            else:
                summary["bandwidth_mhz"] = summary["chan_width_mhz"]
            theoretical = theoretical_rms(folder, kw, summary["shape"], summary["cell_arcsec"])
            if theoretical is not None and summary["kind"] == "cube" and isinstance(first, str):
                # apparentsens is for every selected channel together; one channel of the cube
                # has (selected bandwidth / channel width) times fewer visibilities.
                selected = selected_bandwidth_mhz(str(folder / first), str(kw.get("spw") or ""))
                theoretical *= (
                    float(np.sqrt(selected / summary["chan_width_mhz"])) if summary["chan_width_mhz"] else 1.0
                )
            summary["theoretical_rms_jy"] = theoretical
        except Exception as exc:  # an image we cannot measure is said, not a crash
            summary = {"cannot_assess": f"{type(exc).__name__}: {exc}", "kind": "continuum"}
        items.append({"topic": "image", "name": imagename, "artifact": "", "product": "", "summary": summary})
    return items
