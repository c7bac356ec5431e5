"""The imaging page of a MOUS (copy the calibrated data into Imaging/, generate and run
scriptForImagingPrep.py and scriptForImaging.py, the images' QA against the request) and the
page of one image (interactive plane, channel slider, spectrum at a clicked pixel)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from assignments.datafiles import UnsafePath
from assignments.models import Mous
from assignments.permissions import may_work_on, require_may_work_on
from calibration import imaging, runs
from calibration.models import Script, ScriptVersion
from qa2portal.errors import refusal_page
from reports import fits_images
from reports.imaging import fits_present, latest_images, latest_imaging_run, mous_assessment, request_of
from reports.models import ImageQA


def _back(request: HttpRequest, pk: int, **kwargs) -> str:
    return reverse("reports-imaging", args=[pk])


SCRIPT_KINDS = {"prep": Script.Kind.IMAGING_PREP, "imaging": Script.Kind.IMAGING}


def _versions(mous: Mous, kind: str) -> list[ScriptVersion]:
    script = Script.objects.filter(mous=mous, kind=kind).first()
    return list(script.versions.select_related("author")) if script else []


@login_required
def imaging_page(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    inputs, problems = imaging.imaging_inputs(mous)
    images = latest_images(mous)
    data = imaging.latest_imaging_data(mous)
    context = {
        "mous": mous,
        "inputs": inputs,
        "problems": problems,
        "copy": imaging.latest_copy(mous),
        "prep_versions": _versions(mous, Script.Kind.IMAGING_PREP),
        "prep_run": imaging.latest_script_run(mous, Script.Kind.IMAGING_PREP),
        "imaging_versions": _versions(mous, Script.Kind.IMAGING),
        "imaging_run": latest_imaging_run(mous),
        "data": data,
        "continuum": imaging.continuum_channels(data.summary) if data and "spws" in data.summary else [],
        "images": [(qa, fits_present(mous, qa)) for qa in images],
        "assessment": mous_assessment(mous, images),
        "request_numbers": request_of(mous),
        "can_work": may_work_on(request.user, mous),
    }
    return render(request, "reports/imaging.html", context)


@login_required
def imaging_status(request: HttpRequest, pk: int) -> JsonResponse:
    copy = imaging.latest_copy(get_object_or_404(Mous, pk=pk))
    if copy is None:
        return JsonResponse({"status": None})
    return JsonResponse(copy.progress)


@login_required
@require_POST
@refusal_page(back="reports-imaging", prefix="Copy refused: ")
def imaging_copy(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    scratch = request.POST.get("from_scratch") == "1"
    imaging.imaging_copy_request(mous=mous, by=request.user, from_scratch=scratch)
    messages.info(
        request, "Removing what imaging made, then copying" if scratch else "Copying the calibrated data"
    )
    return redirect("reports-imaging", pk=mous.pk)


@login_required
@require_POST
@refusal_page(back=_back, prefix="Script not generated: ")
def imaging_generate(request: HttpRequest, pk: int, which: str) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    if which == "prep":
        version = imaging.prep_script_create(mous=mous, by=request.user)
    elif which == "imaging":
        version = imaging.imaging_script_create(mous=mous, by=request.user)
    else:
        return HttpResponse(status=404)
    messages.success(request, f"{version.script.filename} v{version.number} generated.")
    return redirect("reports-imaging", pk=mous.pk)


@login_required
@require_POST
@refusal_page(back=_back, prefix="Run refused: ")
def imaging_run(request: HttpRequest, pk: int, which: str) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    kind = SCRIPT_KINDS.get(which)
    if kind is None:
        return HttpResponse(status=404)
    version = get_object_or_404(
        ScriptVersion, pk=request.POST.get("version"), script__mous=mous, script__kind=kind
    )
    run = runs.run_create(version=version, steps=[], by=request.user)
    return redirect("calibration-run", pk=run.pk)


@login_required
def image_page(request: HttpRequest, pk: int) -> HttpResponse:
    qa = get_object_or_404(ImageQA.objects.select_related("mous", "run"), pk=pk)
    present = fits_present(qa.mous, qa)
    return render(
        request,
        "reports/image.html",
        {
            "qa": qa,
            "mous": qa.mous,
            "present": present,
            "has_fits": present.get(qa.pbcor_fits, False),
            "start_channel": _brightest_channel(qa),
            "assessment": mous_assessment(qa.mous),
            "request_numbers": request_of(qa.mous),
        },
    )


def _brightest_channel(qa: ImageQA) -> int:
    peaks = qa.summary.get("peak_per_channel_jy") or []
    values = [(p, i) for i, p in enumerate(peaks) if isinstance(p, int | float)]
    return max(values)[1] if values else 0


def _int(request: HttpRequest, name: str, default: int | None = None) -> int:
    value = request.GET.get(name)
    if value is None and default is not None:
        return default
    try:
        return int(str(value))
    except ValueError:
        raise fits_images.ImageUnreadable(f"{name} must be a whole number, got {value!r}") from None


@login_required
def image_plane(request: HttpRequest, pk: int) -> JsonResponse:
    qa = get_object_or_404(ImageQA.objects.select_related("mous"), pk=pk)
    rms = qa.summary.get("rms_jy")
    try:
        payload = fits_images.plane_payload(
            imaging.imaging_folder(qa.mous),
            qa.pbcor_fits,
            _int(request, "channel", 0),
            pb_name=qa.flux_fits,
            rms=rms if isinstance(rms, int | float) and rms > 0 else None,
        )
    except (fits_images.ImageUnreadable, UnsafePath) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except FileNotFoundError:
        return JsonResponse({"error": f"{qa.pbcor_fits} does not exist (yet)"}, status=404)
    return JsonResponse(payload)


@login_required
def image_spectrum(request: HttpRequest, pk: int) -> JsonResponse:
    qa = get_object_or_404(ImageQA.objects.select_related("mous"), pk=pk)
    try:
        payload = fits_images.spectrum_payload(
            imaging.imaging_folder(qa.mous), qa.pbcor_fits, _int(request, "x"), _int(request, "y")
        )
    except (fits_images.ImageUnreadable, UnsafePath) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except FileNotFoundError:
        return JsonResponse({"error": f"{qa.pbcor_fits} does not exist (yet)"}, status=404)
    return JsonResponse(payload)
