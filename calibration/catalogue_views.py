"""The calibrator flux catalogue page: DRMs list, add and edit the entries setjy and the flux
check use."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from assignments.models import user_is_manager
from calibration.forms import CalibratorFluxForm
from calibration.models import CalibratorFlux

DRM_ONLY = "Only a DRM or deputy DRM may see and edit the calibrator flux catalogue."


def _require_manager(user) -> None:
    if not user_is_manager(user):
        raise PermissionDenied(DRM_ONLY)


def _page(request: HttpRequest, form: CalibratorFluxForm, editing: CalibratorFlux | None, status=200):
    entries = CalibratorFlux.objects.select_related("updated_by")
    context = {"entries": entries, "form": form, "editing": editing}
    return render(request, "calibration/catalogue.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def catalogue_page(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The list with a form: a new entry (no pk) or the entry `pk` being edited."""
    _require_manager(request.user)
    editing = get_object_or_404(CalibratorFlux, pk=pk) if pk is not None else None
    if request.method == "GET":
        return _page(request, CalibratorFluxForm(instance=editing), editing)
    form = CalibratorFluxForm(request.POST, instance=editing)
    if not form.is_valid():
        messages.error(request, "Not saved: correct the entry below (nothing was changed).")
        return _page(request, form, editing, status=400)
    entry = form.save_by(request.user)
    messages.success(request, f"Saved {entry}.")
    return redirect("calibration-catalogue")
