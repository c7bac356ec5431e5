"""The DRM's review page: everything at once, then the decision."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from assignments.models import Mous, MousState, user_is_manager
from qa2portal.errors import refusal_page
from reports import checklist, review
from reports.imaging import latest_images, mous_assessment, request_of
from reports.models import ReadmeVersion


@login_required
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    mous = get_object_or_404(Mous.objects.select_related("project", "assignee__user"), pk=pk)
    assessment = mous_assessment(mous)
    items = checklist.checklist(mous)
    return render(
        request,
        "reports/review.html",
        {
            "mous": mous,
            "ebs": review.eb_reviews(mous),
            "images": latest_images(mous),
            "assessment": assessment,
            "request_numbers": request_of(mous),
            "verdict": review.verdict_text(mous, assessment),
            "items": items,
            "complete": all(i.ok for i in items),
            "readme": ReadmeVersion.objects.filter(mous=mous).first(),
            "is_manager": user_is_manager(request.user),
            "reviewing": mous.state == MousState.REVIEWING,
            # After a refused decision: what the DRM had chosen and written.
            "chosen": request.GET.get("outcome") or assessment.outcome,
            "note": request.GET.get("note", ""),
            "ready": mous.state == MousState.READY_FOR_REVIEW,
        },
    )


def _require_manager(request: HttpRequest) -> None:
    if not user_is_manager(request.user):
        raise PermissionDenied("only a DRM reviews and decides QA2")


@login_required
@require_POST
@refusal_page(back="reports-review", prefix="Review not started: ")
def review_start(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    mous = get_object_or_404(Mous, pk=pk)
    mous.transition(MousState.REVIEWING, by=request.user, note="review started", check_role=True)
    messages.success(request, f"{mous.uid} is now in review.")
    return redirect("reports-review", pk=pk)


def _back_with_choice(request: HttpRequest, pk: int) -> str:
    """Back to the review with what the DRM chose, so a refused decision is not reset."""
    query = urlencode({"outcome": request.POST.get("outcome", ""), "note": request.POST.get("note", "")})
    return f"{reverse('reports-review', args=[pk])}?{query}"


@login_required
@require_POST
@refusal_page(back=_back_with_choice, prefix="Decision refused: ")
def review_decide(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    mous = get_object_or_404(Mous, pk=pk)
    review.decide(
        mous=mous,
        outcome=request.POST.get("outcome", ""),
        note=request.POST.get("note", ""),
        confirmed=request.POST.get("confirm") == "1",
        by=request.user,
    )
    messages.success(request, f"{mous.uid} is now {mous.get_state_display()}.")
    return redirect("reports-review", pk=pk)
