"""The combination page of a MOUS: copy the EBs' calibrated data, allFluxes (table, plot,
edits with their history), generate scriptForFluxCalibration.py, run it, the concat summary."""

import plotly.io as pio
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from assignments.models import Mous
from assignments.permissions import may_work_on, require_may_work_on
from calibration import combination as copying
from calibration.models import CalibratedCopy, Script, ScriptVersion
from qa2portal.errors import refusal_page
from reports import combination, figures
from reports.models import FluxEdit


def _copy_state(mous: Mous) -> CalibratedCopy | None:
    return CalibratedCopy.objects.filter(
        mous=mous, destination=CalibratedCopy.Destination.COMBINATION
    ).first()


@login_required
def combination_page(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    inputs, problems = copying.combination_inputs(mous)
    fluxes = combination.all_fluxes(mous, inputs) if not problems else None
    script = Script.objects.filter(mous=mous, kind=Script.Kind.COMBINATION).first()
    copy = _copy_state(mous)
    context = {
        "mous": mous,
        "problems": problems,
        "inputs": inputs,
        "fluxes": fluxes,
        "table": _table(fluxes) if fluxes else [],
        "history": FluxEdit.objects.filter(mous=mous).select_related("by")[:50],
        "copy": copy,
        "versions": list(script.versions.select_related("author")) if script else [],
        "run": combination.latest_combination_run(mous),
        "concat": combination.concat_summary(mous),
        "modes": combination.MODES,
        "can_work": may_work_on(request.user, mous),
    }
    return render(request, "reports/combination.html", context)


def _table(fluxes: combination.AllFluxes) -> list[dict]:
    """One row per calibrator and spw: each EB's flux, the weighted mean and the value in use."""
    rows = []
    for name, spws in fluxes.means.items():
        for spw, mean in sorted(spws.items(), key=lambda kv: int(kv[0])):
            rows.append(
                {
                    "field": name,
                    "spw": spw,
                    "ms_spws": [eb.ms_spw.get(spw) for eb in fluxes.ebs],
                    "freq_ghz": mean["freq_ghz"],
                    "per_eb": [eb.fields.get(name, {}).get(spw) for eb in fluxes.ebs],
                    "mean": mean,
                }
            )
    return rows


@login_required
def combination_figure(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    inputs, problems = copying.combination_inputs(mous)
    if problems:
        return JsonResponse({"error": "; ".join(problems)}, status=409)
    fluxes = combination.all_fluxes(mous, inputs)
    fig = figures.combination_fluxes(
        [(eb.uid, eb.fields) for eb in fluxes.ebs],
        fluxes.means,
        {
            name: (fit.alpha, fit.flux_at_ref, fit.ref_freq_ghz) if fit else None
            for name, fit in fluxes.fits.items()
        },
    )
    return HttpResponse(pio.to_json(fig), content_type="application/json")


@login_required
def combination_status(request: HttpRequest, pk: int) -> JsonResponse:
    copy = _copy_state(get_object_or_404(Mous, pk=pk))
    if copy is None:
        return JsonResponse({"status": None})
    return JsonResponse(copy.progress)


@login_required
@require_POST
@refusal_page(back="reports-combination", prefix="Combination refused: ")
def combination_copy(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    scratch = request.POST.get("from_scratch") == "1"
    copying.combination_copy_request(mous=mous, by=request.user, from_scratch=scratch)
    messages.info(
        request,
        "Removing what combination made, then copying" if scratch else "Copying the EBs' calibrated data",
    )
    return redirect("reports-combination", pk=mous.pk)


@login_required
@require_POST
@refusal_page(back="reports-combination", prefix="Flux not changed: ", also=(ValidationError,))
def combination_flux_edit(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    edit = combination.flux_edit(
        mous=mous,
        field=request.POST.get("field", ""),
        spw=request.POST.get("spw", ""),
        value=request.POST.get("flux", ""),
        note=request.POST.get("note", ""),
        by=request.user,
    )
    messages.success(
        request, f"{edit.field} spw {edit.spw}: {edit.flux_jy:g} Jy (was {edit.previous_jy:.4g})"
    )
    return redirect("reports-combination", pk=mous.pk)


@login_required
@require_POST
@refusal_page(back="reports-combination", prefix="Script not generated: ", also=(ValidationError,))
def combination_generate(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    version = combination.combination_script_create(
        mous=mous, mode=request.POST.get("mode", combination.SCALE), by=request.user
    )
    messages.success(request, f"scriptForFluxCalibration.py v{version.number} generated ({version.note}).")
    return redirect("reports-combination", pk=mous.pk)


@login_required
@require_POST
@refusal_page(back="reports-combination", prefix="Run refused: ")
def combination_run(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    require_may_work_on(request.user, mous)
    version = get_object_or_404(
        ScriptVersion, pk=request.POST.get("version"), script__mous=mous, script__kind=Script.Kind.COMBINATION
    )
    run = combination.combination_run_create(mous=mous, version=version, by=request.user)
    return redirect("calibration-run", pk=run.pk)
