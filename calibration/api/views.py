"""REST API of the calibration app: script versions, runs, products (thin: parse, call a service)."""

from collections.abc import Sequence
from typing import Protocol

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from assignments.auth import HashedTokenAuthentication
from assignments.models import ExecutionBlock, Mous
from assignments.permissions import NOT_YOURS, may_work_on
from calibration import runs, script_generation, scripts
from calibration.api import serializers as s
from calibration.models import Product, Run, Script, ScriptVersion
from qa2portal.api import id_param


class _HasRequest(Protocol):
    request: Request


class CalibrationApiMixin:
    authentication_classes: Sequence[type[BaseAuthentication]] = [
        HashedTokenAuthentication,
        SessionAuthentication,
    ]

    def require_may_work_on(self: _HasRequest, mous: Mous) -> None:
        # DRF's own PermissionDenied keeps the message in the 403 body (Django's would not).
        if not may_work_on(self.request.user, mous):
            raise PermissionDenied(NOT_YOURS)


@extend_schema(parameters=[OpenApiParameter("execution_block", int), OpenApiParameter("mous", int)])
class ScriptVersionViewSet(CalibrationApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.ScriptVersionSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        qs = ScriptVersion.objects.select_related("script", "author").order_by("script_id", "-number")
        if (eb := id_param(self.request, "execution_block")) is not None:
            qs = qs.filter(script__execution_block_id=eb)
        if (mous := id_param(self.request, "mous")) is not None:
            qs = qs.filter(script__mous_id=mous)
        return qs

    @extend_schema(
        request={"multipart/form-data": s.UploadInputSerializer}, responses={201: s.ScriptVersionSerializer}
    )
    @action(detail=False, methods=["post"])
    def upload(self, request: Request) -> Response:
        data = s.UploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        eb = None
        if v["kind"] == Script.Kind.CALIBRATION:
            eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=v["execution_block"])
            mous = eb.mous
        else:
            mous = get_object_or_404(Mous, pk=v["mous"])
        self.require_may_work_on(mous)
        upload = v["file"]
        scripts.check_script_size(upload.name, upload.size)  # before reading it
        version = scripts.script_upload(
            kind=v["kind"],
            mous=mous,
            eb=eb,
            data=upload.read(),
            filename=upload.name,
            by=request.user,
            note=v["note"],
        )
        return Response(s.ScriptVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.GenerateInputSerializer, responses={202: None})
    @action(detail=False, methods=["post"])
    def generate(self, request: Request) -> Response:
        data = s.GenerateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        eb = get_object_or_404(
            ExecutionBlock.objects.select_related("mous"), pk=data.validated_data["execution_block"]
        )
        self.require_may_work_on(eb.mous)
        item = script_generation.script_generate_request(eb=eb, by=request.user)
        return Response({"generation": item.pk, "status": item.status}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={201: s.ScriptVersionSerializer})
    @action(detail=True, methods=["post"])
    def convert(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()
        self.require_may_work_on(version.script.mous)
        converted = scripts.script_convert_python2(version=version, by=request.user)
        return Response(s.ScriptVersionSerializer(converted).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "text/x-python"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        version = self.get_object()
        response = HttpResponse(version.read_bytes(), content_type="text/x-python; charset=utf-8")
        name = version.script.filename.replace(".py", f".v{version.number}.py")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@extend_schema(
    parameters=[
        OpenApiParameter("execution_block", int),
        OpenApiParameter("mous", int),
        OpenApiParameter("status", str, enum=Run.Status.values),
    ]
)
class RunViewSet(CalibrationApiMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.RunSerializer

    def get_queryset(self):
        qs = Run.objects.select_related("created_by").prefetch_related("steps")
        if (eb := id_param(self.request, "execution_block")) is not None:
            qs = qs.filter(execution_block_id=eb)
        if (mous := id_param(self.request, "mous")) is not None:
            qs = qs.filter(mous_id=mous)
        if state := self.request.query_params.get("status"):
            if state not in Run.Status.values:
                raise ValidationError({"status": f"one of {', '.join(Run.Status.values)}"})
            qs = qs.filter(status=state)
        return qs

    @extend_schema(request=s.RunCreateInputSerializer, responses={201: s.RunSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = s.RunCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        version = get_object_or_404(
            ScriptVersion.objects.select_related("script__mous"), pk=v["script_version"]
        )
        self.require_may_work_on(version.script.mous)
        if v["from_scratch"]:
            run = runs.run_from_scratch(version=version, by=request.user)
        else:
            run = runs.run_create(
                version=version,
                steps=v["steps"],
                by=request.user,
                step_timeout_seconds=v["step_timeout_seconds"],
            )
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.RunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        run = self.get_object()
        self.require_may_work_on(run.mous)
        return Response(s.RunSerializer(runs.run_cancel(run=run, by=request.user)).data)

    @extend_schema(request=s.RerunInputSerializer, responses={201: s.RunSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: str | None = None) -> Response:
        run = self.get_object()
        self.require_may_work_on(run.mous)
        data = s.RerunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if run.script_version is None:
            raise runs.RunRefused("this maintenance run cannot be re-run")
        new = runs.run_rerun(run=run, from_step=data.validated_data["from_step"], by=request.user)
        return Response(s.RunSerializer(new).data, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[
        OpenApiParameter("execution_block", int),
        OpenApiParameter("kind", str, enum=Product.Kind.values),
    ]
)
class ProductViewSet(CalibrationApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.ProductSerializer

    def get_queryset(self):
        qs = Product.objects.select_related("step")
        if (eb := id_param(self.request, "execution_block")) is not None:
            qs = qs.filter(execution_block_id=eb)
        if kind := self.request.query_params.get("kind"):
            if kind not in Product.Kind.values:
                raise ValidationError({"kind": f"one of {', '.join(Product.Kind.values)}"})
            qs = qs.filter(kind=kind)
        return qs
