"""Pages for bringing an EB's raw data in: the form (path or upload), the ingest's progress."""

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from assignments.models import ExecutionBlock
from calibration import ingest, uploads
from calibration.api.ingest import DataIngestSerializer
from calibration.models import DataIngest
from qa2portal.errors import refusal_page

MAY_NOT = ingest.MAY_NOT


def _eb(pk: int) -> ExecutionBlock:
    return get_object_or_404(ExecutionBlock.objects.select_related("mous__project"), pk=pk)


def _require_may_ingest(user) -> None:
    if not ingest.may_ingest(user):
        raise PermissionDenied(MAY_NOT)


@login_required
@require_GET
def eb_ingest(request: HttpRequest, pk: int) -> HttpResponse:
    eb = _eb(pk)
    context = {
        "eb": eb,
        "mous": eb.mous,
        "may_ingest": ingest.may_ingest(request.user),
        "roots": ingest.ingest_roots(),
        "limit": uploads.limit_text(),
        "ingests": eb.data_ingests.select_related("requested_by")[:20],
    }
    return render(request, "calibration/ingest.html", context)


@login_required
@require_POST
@refusal_page(back="calibration-eb-ingest", prefix="Ingest refused: ")
def eb_ingest_path(request: HttpRequest, pk: int) -> HttpResponse:
    eb = _eb(pk)
    _require_may_ingest(request.user)
    item = ingest.ingest_from_path(eb=eb, path=request.POST.get("path", ""), by=request.user)
    return redirect("calibration-ingest", pk=item.pk)


def _may_store(request: HttpRequest, pk: int) -> None:
    """The upload gate: runs when the file's part begins, before a byte of it is stored."""
    _require_may_ingest(request.user)
    ingest.refuse_if_busy(_eb(pk))
    uploads.refuse_too_large(request)


@csrf_exempt  # the CSRF check would read the body with Django's handlers: it runs below instead
@login_required
@refusal_page(back="calibration-eb-ingest", prefix="Upload refused: ")
def eb_ingest_upload(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    # First: whoever reads the body from here on (the CSRF check, Django's 403 and 404 pages,
    # which check CSRF too) streams it through our handler, whose gate refuses before storing.
    handler = uploads.install(request, gate=partial(_may_store, request, pk))
    try:
        eb = _eb(pk)
        _require_may_ingest(request.user)  # before a byte of the body is read
        if (declared := uploads.declared_too_large(request)) is not None:
            messages.error(
                request,
                f"Upload refused: {filesizeformat(declared)} is over the {uploads.limit_text()} limit.",
            )
            return redirect("calibration-eb-ingest", pk=eb.pk)
        ingest.refuse_if_busy(eb)  # data present, an ingest running: say so before storing anything
        return _upload(request, eb=eb, handler=handler)
    finally:
        uploads.discard(handler)


@csrf_protect
def _upload(
    request: HttpRequest, *, eb: ExecutionBlock, handler: uploads.IngestUploadHandler
) -> HttpResponse:
    upload = request.FILES.get(uploads.FIELD)
    if handler.refused is not None:
        if isinstance(handler.refused, PermissionDenied):
            raise handler.refused
        messages.error(request, f"Upload refused: {handler.refused}")
        return redirect("calibration-eb-ingest", pk=eb.pk)
    if handler.too_large:
        messages.error(request, f"Upload refused: the file is over the {uploads.limit_text()} limit.")
        return redirect("calibration-eb-ingest", pk=eb.pk)
    if upload is None:
        messages.error(request, "Choose a tar or tgz file of an MS or ASDM to upload.")
        return redirect("calibration-eb-ingest", pk=eb.pk)
    item = ingest.ingest_from_upload(eb=eb, uploaded_file=upload, by=request.user)
    return redirect("calibration-ingest", pk=item.pk)


@login_required
@require_GET
def ingest_page(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(DataIngest.objects.select_related("execution_block__mous__project"), pk=pk)
    eb = item.execution_block
    context = {
        "item": item,
        "eb": eb,
        "mous": eb.mous,
        "status_url": reverse("calibration-ingest-status", args=[item.pk]),
        "may_cancel": item.is_active and ingest.may_ingest(request.user),
    }
    return render(request, "calibration/ingest_status.html", context)


@login_required
@require_GET
def ingest_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the progress bar polls: the same JSON as GET /api/ingests/<id>/."""
    return JsonResponse(DataIngestSerializer(get_object_or_404(DataIngest, pk=pk)).data)


@login_required
@require_POST
@refusal_page(back="calibration-ingest", prefix="Not cancelled: ")
def ingest_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(DataIngest, pk=pk)
    _require_may_ingest(request.user)
    ingest.cancel(item, by=request.user)
    messages.success(request, f"Ingest {item.pk} cancelled; the EB is unchanged.")
    return redirect("calibration-ingest", pk=item.pk)
