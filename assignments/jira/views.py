"""JIRA webhook endpoint (the one csrf_exempt view: the HMAC signature protects it) and the DRM page."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from assignments.jira.inbound import delivery_accept, delivery_replay
from assignments.jira.models import OutboxComment, WebhookDelivery
from assignments.jira.outbox import outbox_retry_now


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    # Read at most limit+1 bytes: a liar's Content-Length (or none) cannot make us buffer more.
    limit = settings.JIRA_WEBHOOK_MAX_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    too_large = declared.isdigit() and int(declared) > limit
    # An oversized declared length is answered 413 without reading the stream at all.
    body = b"x" * (limit + 1) if too_large else request.read(limit + 1)
    result = delivery_accept(
        body=body, headers=request.headers, remote_addr=request.META.get("REMOTE_ADDR", "")
    )
    return JsonResponse({"status": result.outcome, "delivery": result.delivery_id}, status=result.status_code)


def drm_required(view):
    """Logged in and a DRM or deputy DRM (the JIRA page shows raw ticket data and can replay)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        person = getattr(request.user, "person", None)
        if person is None or not person.is_manager:
            raise PermissionDenied("the JIRA page is for data-reduction managers")
        return view(request, *args, **kwargs)

    return wrapped


@drm_required
def jira_page(request: HttpRequest) -> HttpResponse:
    deliveries = WebhookDelivery.objects.defer("body")[:100]
    outbox = OutboxComment.objects.select_related("mous")[:100]
    delivery_counts = WebhookDelivery.objects.aggregate(
        total=Count("pk"),
        duplicates=Count("pk", filter=Q(duplicates__gt=0)),
        failed=Count("pk", filter=Q(status=WebhookDelivery.Status.FAILED)),
    )
    outbox_counts = dict(
        OutboxComment.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    return render(
        request,
        "assignments/jira/page.html",
        {
            "deliveries": deliveries,
            "outbox": outbox,
            "delivery_counts": delivery_counts,
            "outbox_counts": outbox_counts,
            "configured": {
                "webhook": bool(settings.JIRA_WEBHOOK_SECRET),
                "comments": bool(settings.JIRA_BASE_URL),
            },
        },
    )


@drm_required
def delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk)
    return render(request, "assignments/jira/delivery.html", {"delivery": delivery})


@require_POST
@drm_required
def delivery_replay_view(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk)
    if delivery.status == WebhookDelivery.Status.REJECTED:
        messages.error(request, f"Delivery {pk} is malformed; there is nothing to replay.")
    else:
        delivery_replay(delivery=delivery, by=request.user)
        messages.success(request, f"Delivery {pk} queued for processing again.")
    return redirect("assignments-jira")


@require_POST
@drm_required
def outbox_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(OutboxComment, pk=pk)
    if row.status == OutboxComment.Status.SENT:
        messages.error(request, f"Comment {pk} was already sent to {row.issue_key}.")
    else:
        outbox_retry_now(outbox=row)
        messages.success(request, f"Comment {pk} for {row.issue_key} queued to send now.")
    return redirect("assignments-jira")
