from dataclasses import asdict

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from assignments.models import user_is_manager
from qa2portal import health


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """DRMs land on the whiteboard, everyone else on their own work."""
    return redirect("assignments-whiteboard" if user_is_manager(request.user) else "assignments-my-work")


@login_required
def health_page(request: HttpRequest) -> HttpResponse:
    return render(request, "qa2portal/health.html", {"checks": health.all_checks()})


HEALTH_RESPONSE = inline_serializer(
    "Health",
    {
        "ok": serializers.BooleanField(),
        "checks": inline_serializer(
            "HealthCheck",
            {
                "name": serializers.CharField(),
                "ok": serializers.BooleanField(),
                "summary": serializers.CharField(),
                "details": serializers.DictField(),
            },
            many=True,
        ),
    },
)


@extend_schema(responses=HEALTH_RESPONSE)
@api_view(["GET"])
def health_api(request: Request) -> Response:
    checks = health.all_checks()
    return Response({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]})
