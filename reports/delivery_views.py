"""The delivery page of a MOUS: its state, "Package for delivery" (QA2 pass or semipass, or
Delivering again after a failure) or "Move to qa2fails" (QA2 fail) for DRMs and data analysts,
the progress of the delivery (polled from the status JSON), the package path, and the
manifest's files with their sizes and sha256.

URLs (reports/urls.py):
    path("reports/mous/<int:pk>/delivery/", delivery_views.delivery_page, name="reports-delivery"),
    path("reports/mous/<int:pk>/delivery/start/", delivery_views.delivery_start,
         name="reports-delivery-start"),
    path("reports/mous/<int:pk>/delivery/status/", delivery_views.delivery_status,
         name="reports-delivery-status"),
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from assignments.models import Mous, MousState
from qa2portal.errors import refusal_page
from reports import delivery
from reports.models import Delivery

MAY_NOT = "Only a DRM, deputy DRM or data analyst packages a MOUS for delivery or moves it to qa2fails."


@login_required
def delivery_page(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    deliveries = list(Delivery.objects.filter(mous=mous).select_related("requested_by"))
    latest = deliveries[0] if deliveries else None
    shown = next((d for d in deliveries if d.status == Delivery.Status.DONE), None)
    active = latest is not None and latest.is_active
    may = delivery.may_deliver(request.user)
    return render(
        request,
        "reports/delivery.html",
        {
            "mous": mous,
            "latest": latest,
            "deliveries": deliveries,
            "shown": shown,
            "files": shown.manifest.get("files", []) if shown is not None else [],
            "may_deliver": may,
            "can_package": may and not active and mous.state in delivery.PACKAGE_FROM,
            "can_archive": may and not active and mous.state == MousState.QA2_FAIL,
            "resuming": mous.state == MousState.DELIVERING,
            "package_path": delivery.package_path(mous),
            "archive_path": delivery.archive_path(mous),
        },
    )


@login_required
def delivery_status(request: HttpRequest, pk: int) -> JsonResponse:
    mous = get_object_or_404(Mous, pk=pk)
    return JsonResponse(delivery.status_of(delivery.latest_delivery(mous), mous))


@login_required
@require_POST
@refusal_page(back="reports-delivery", prefix="Delivery refused: ")
def delivery_start(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous, pk=pk)
    if not delivery.may_deliver(request.user):
        raise PermissionDenied(MAY_NOT)
    kind = request.POST.get("kind", Delivery.Kind.PACKAGE)
    started = delivery.delivery_request(mous=mous, kind=kind, by=request.user)
    what = "Packaging" if started.kind == Delivery.Kind.PACKAGE else "Moving to qa2fails"
    messages.info(request, f"{what}: delivery {started.pk} of {mous.uid} queued")
    return redirect("reports-delivery", pk=mous.pk)
