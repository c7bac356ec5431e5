"""REST API for bringing an EB's raw data in (thin: parse, check who, call calibration.ingest).

POST /api/execution-blocks/<id>/ingest/         {"path": "/ingest/root/uid___A002_X1_X2.asdm.sdm"}
POST /api/execution-blocks/<id>/ingest/upload/  multipart, field "file": a tar/tgz (streamed to disk)
GET  /api/execution-blocks/<id>/ingest/         that EB's ingests, newest first
GET  /api/ingests/<id>/                         one ingest: status, progress, error, summary
POST /api/ingests/<id>/cancel/                  cancel a queued or running ingest (the EB unchanged)
"""

from collections.abc import Sequence
from functools import partial

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assignments.auth import HashedTokenAuthentication
from assignments.models import ExecutionBlock
from calibration import ingest, uploads
from calibration.models import DataIngest
from qa2portal.api import id_param


class DataIngestSerializer(serializers.ModelSerializer):
    """One ingest row as JSON: the API's answer and the status page's poll alike."""

    percent = serializers.IntegerField(read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = DataIngest
        fields = [
            "id",
            "execution_block",
            "source_kind",
            "source",
            "status",
            "status_display",
            "active",
            "bytes_total",
            "bytes_done",
            "percent",
            "error",
            "data_name",
            "summary",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


CONFLICT = inline_serializer("IngestConflict", {"detail": serializers.CharField()})


class PathInputSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=4096, trim_whitespace=True)


class IngestApiMixin:
    authentication_classes: Sequence[type[BaseAuthentication]] = [
        HashedTokenAuthentication,
        SessionAuthentication,
    ]

    def require_may_ingest(self, request: Request) -> None:
        if not ingest.may_ingest(request.user):
            raise PermissionDenied(ingest.MAY_NOT)


def _accepted(item: DataIngest) -> Response:
    item.refresh_from_db()  # FAILED already when the queue could not take it
    return Response(DataIngestSerializer(item).data, status=status.HTTP_202_ACCEPTED)


class EbIngestView(IngestApiMixin, APIView):
    parser_classes = [JSONParser, FormParser]

    @extend_schema(responses=DataIngestSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        eb = get_object_or_404(ExecutionBlock, pk=pk)
        items = eb.data_ingests.all()[:50]
        return Response(DataIngestSerializer(items, many=True).data)

    @extend_schema(request=PathInputSerializer, responses={202: DataIngestSerializer, 409: CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        eb = get_object_or_404(ExecutionBlock, pk=pk)
        self.require_may_ingest(request)
        data = PathInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _accepted(ingest.ingest_from_path(eb=eb, path=data.validated_data["path"], by=request.user))


class EbIngestUploadView(IngestApiMixin, APIView):
    """The file is streamed to INGEST_UPLOAD_DIR as it arrives (never in memory)."""

    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        # Before authentication: the session CSRF check reads the body, and must stream it too.
        # The gate runs before the file's first byte is stored, whoever reads the body first.
        self.upload_handler = uploads.install(
            request, gate=partial(self.may_store, request, kwargs.get("pk"))
        )
        return super().initialize_request(request, *args, **kwargs)

    def may_store(self, django_request, pk) -> None:
        """Who asks (the session's or the token's user: DRF sets it on the Django request), the
        EB's state and the declared size, checked before the upload is written anywhere."""
        if not ingest.may_ingest(getattr(django_request, "user", None)):
            raise PermissionDenied(ingest.MAY_NOT)
        eb = ExecutionBlock.objects.filter(pk=pk).first()
        if eb is None:
            raise NotFound("No ExecutionBlock matches the given query.")
        ingest.refuse_if_busy(eb)
        uploads.refuse_too_large(django_request)

    def finalize_response(self, request, response, *args, **kwargs):
        uploads.discard(self.upload_handler)  # what the service did not take
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": inline_serializer("IngestUpload", {"file": serializers.FileField()})},
        responses={202: DataIngestSerializer, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        eb = get_object_or_404(ExecutionBlock, pk=pk)
        self.require_may_ingest(request)
        if self.upload_handler.refused is None:  # not read yet (a token client): ask before reading
            self.may_store(request._request, pk)
        upload = request.data.get(uploads.FIELD)
        if self.upload_handler.refused is not None:
            raise self.upload_handler.refused
        if self.upload_handler.too_large:
            raise uploads.UploadTooLarge(f"the file is over the upload limit of {uploads.limit_text()}")
        if upload is None or isinstance(upload, str):
            return Response(
                {"file": ["Send a tar or tgz of an MS or ASDM in the multipart field 'file'."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return _accepted(ingest.ingest_from_upload(eb=eb, uploaded_file=upload, by=request.user))


@extend_schema(
    parameters=[
        OpenApiParameter("execution_block", int),
        OpenApiParameter("status", str, enum=DataIngest.Status.values),
    ]
)
class DataIngestViewSet(IngestApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = DataIngestSerializer

    def get_queryset(self):
        qs = DataIngest.objects.all()
        if (eb := id_param(self.request, "execution_block")) is not None:
            qs = qs.filter(execution_block_id=eb)
        if state := self.request.query_params.get("status"):
            if state not in DataIngest.Status.values:
                raise serializers.ValidationError({"status": f"one of {', '.join(DataIngest.Status.values)}"})
            qs = qs.filter(status=state)
        return qs

    @extend_schema(request=None, responses={200: DataIngestSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: int) -> Response:
        """Cancel a queued or running ingest: FAILED at once, nothing of it kept, the EB unchanged."""
        self.require_may_ingest(request)
        item = ingest.cancel(self.get_object(), by=request.user)
        return Response(DataIngestSerializer(item).data)
