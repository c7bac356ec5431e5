"""The image QA of a MOUS, read back for the pages: the latest imaging run's images and their
suggested QA2 outcome against the PI's request (reports.image_assessment; the DRM decides)."""

from dataclasses import replace

from assignments.datafiles import UnsafePath, is_file_confined
from assignments.models import Mous
from calibration.combination import latest_calibration_run
from calibration.imaging import imaging_folder, latest_script_run
from calibration.models import Run, Script
from reports import image_assessment
from reports.models import Finding, ImageQA
from reports.thresholds import OPEN_SCORE


def latest_imaging_run(mous: Mous) -> Run | None:
    return latest_script_run(mous, Script.Kind.IMAGING)


def latest_images(mous: Mous) -> list[ImageQA]:
    """The images of the latest imaging run that measured any (continuum first)."""
    run = (
        Run.objects.filter(
            mous=mous, image_qa__isnull=False, script_version__script__kind=Script.Kind.IMAGING
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if run is None:
        return []
    return sorted(ImageQA.objects.filter(run=run), key=lambda q: (q.kind != ImageQA.Kind.CONTINUUM, q.name))


def fits_present(mous: Mous, qa: ImageQA) -> dict[str, bool]:
    base = imaging_folder(mous)
    present = {}
    for name in (qa.pbcor_fits, qa.flux_fits):
        try:
            present[name] = is_file_confined(name, base=base)
        except UnsafePath:
            present[name] = False
    return present


def numbers_of(qa: ImageQA) -> image_assessment.ImageNumbers | None:
    s = qa.summary
    needed = ("rms_jy", "bandwidth_mhz", "bmaj_arcsec", "bmin_arcsec", "peak_jy")
    if "cannot_assess" in s or any(not isinstance(s.get(k), int | float) or s[k] <= 0 for k in needed):
        return None
    try:
        return image_assessment.ImageNumbers(
            kind=qa.kind,
            rms_jy=s["rms_jy"],
            bandwidth_mhz=s["bandwidth_mhz"],
            bmaj_arcsec=s["bmaj_arcsec"],
            bmin_arcsec=s["bmin_arcsec"],
            peak_jy=s["peak_jy"],
            theoretical_rms_jy=s.get("theoretical_rms_jy") or None,
        )
    except ValueError:
        return None


def request_of(mous: Mous) -> image_assessment.Request:
    return image_assessment.Request(
        band=mous.band,
        array=mous.array,
        goal=mous.goal,
        rms_mjy=mous.requested_rms_mjy,
        rms_bandwidth_mhz=mous.rms_bandwidth_mhz,
        res_min_arcsec=mous.resolution_min_arcsec,
        res_max_arcsec=mous.resolution_max_arcsec,
    )


def mous_assessment(mous: Mous, images: list[ImageQA] | None = None) -> image_assessment.Assessment:
    """The image's assessment against the request, with a note on the calibration findings
    still open in each EB's latest run (the reviewer weighs them; they do not change the
    suggestion, which is about the image)."""
    images = latest_images(mous) if images is None else images
    numbers = [n for n in (numbers_of(q) for q in images) if n is not None]
    assessment = image_assessment.assess(request_of(mous), numbers)
    open_findings = []
    for eb in mous.execution_blocks.order_by("uid"):
        run = latest_calibration_run(eb)
        if run is not None:
            open_findings += [(eb, f) for f in Finding.objects.filter(run=run, score__lte=OPEN_SCORE)]
    if not open_findings:
        return assessment
    worst = sorted(open_findings, key=lambda pair: pair[1].score)[:3]
    note = image_assessment.Criterion(
        name="calibration",
        status=image_assessment.NOTE,
        value=f"{len(open_findings)} open finding(s): "
        + "; ".join(f"{eb.uid} {f.topic} {f.antenna} {f.spw_label}".strip() for eb, f in worst),
        limit="none open, or each judged acceptable",
        reason="Calibration findings are still open in the EBs' latest runs: check them before deciding.",
    )
    return replace(assessment, criteria=(*assessment.criteria, note))
