"""REST API of the assignments app: thin viewsets, verbs as @actions that call the model or services."""

from collections.abc import Sequence

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework import status, viewsets
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assignments import intake, services
from assignments.api import serializers as s
from assignments.auth import (
    ApiToken,
    HashedTokenAuthentication,
    client_address,
    lockout_message,
    login_locked_for,
    token_issue,
)
from assignments.forms import PAGE_SIZES, WhiteboardFilter
from assignments.models import Assignment, ExecutionBlock, Mous, Project, StateChange
from assignments.permissions import IsManager, MayIngest, MayIngestOrReadOnly, MayWorkOnMous
from assignments.selectors import whiteboard_rows
from qa2portal.api import id_param
from qa2portal.ids import parse_id


class Pagination(PageNumberPagination):
    """?page=N&per_page=M, M one of PAGE_SIZES (as on the whiteboard); anything else is a 400
    (DRF would silently fall back to the default size)."""

    page_size = 50
    page_size_query_param = "per_page"
    max_page_size = max(PAGE_SIZES)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        size = parse_id(raw)
        if size not in PAGE_SIZES:
            sizes = ", ".join(map(str, PAGE_SIZES))
            raise ValidationError({"per_page": f"per_page must be one of {sizes}, got {raw[:40]!r}."})
        return size

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "enum": list(PAGE_SIZES)}
        return parameters


class AssignmentsApiMixin:
    """Token first, so an anonymous request is answered 401 with a WWW-Authenticate header
    (with SessionAuthentication first DRF can only say 403). Domain errors (InvalidTransition,
    StaleVersion, ConflictOfInterest, TransitionForbidden) carry their HTTP codes: the project's
    exception handler answers them (qa2portal/errors.py)."""

    authentication_classes: Sequence[type[BaseAuthentication]] = [
        HashedTokenAuthentication,
        SessionAuthentication,
    ]
    pagination_class: type[BasePagination] | None = Pagination


def _mous_filter_parameters() -> list[OpenApiParameter]:
    form = WhiteboardFilter()
    return [
        OpenApiParameter(name, OpenApiTypes.STR, description=str(field.help_text or field.label or name))
        for name, field in form.fields.items()
        if name != "per_page"
    ]


def expected_version(request: Request, body_version: int | None) -> int | None:
    """The version the client edited: If-Match: "<n>" (the ETag we sent) or `version` in the body."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        return body_version
    version = parse_id(header.removeprefix("W/").strip('"'))
    if version is None:
        raise ValidationError(
            {"If-Match": f"If-Match must be the ETag of the MOUS, e.g. '\"3\"', got {header[:40]!r}."}
        )
    return version


def _version_required(what: str) -> Response:
    body = {"detail": f'Send If-Match: "<version>" (the ETag) or `version` with {what}.'}
    return Response(body, status=status.HTTP_428_PRECONDITION_REQUIRED)


def _with_etag(response: Response, mous: Mous) -> Response:
    response["ETag"] = f'"{mous.version}"'
    return response


class ProjectViewSet(AssignmentsApiMixin, viewsets.ReadOnlyModelViewSet):
    """ALMA projects with their PI and co-Is (and the accounts they are linked to by e-mail);
    DRMs and data analysts register new ones."""

    queryset = Project.objects.prefetch_related("investigators__user").order_by("code")
    serializer_class = s.ProjectSerializer
    permission_classes = [IsAuthenticated, MayIngestOrReadOnly]

    @extend_schema(request=s.ProjectCreateInputSerializer, responses={201: s.ProjectSerializer})
    def create(self, request: Request) -> Response:
        data = s.ProjectCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        project = intake.project_create(
            code=fields["code"],
            title=fields["title"],
            pi_name=fields["pi_name"],
            pi_email=fields["pi_email"],
            cois=[(person["name"], person["email"]) for person in fields["co_investigators"]],
            by=request.user,
        )
        project = self.get_queryset().get(pk=project.pk)
        return Response(s.ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


@extend_schema_view(list=extend_schema(parameters=_mous_filter_parameters()))
class MousViewSet(AssignmentsApiMixin, viewsets.ReadOnlyModelViewSet):
    """Every MOUS with its whiteboard columns; lifecycle verbs as actions."""

    serializer_class = s.MousSerializer
    permission_classes = [IsAuthenticated, MayWorkOnMous]

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), MayIngest()]
        if self.action in ("partial_update", "assign", "unassign", "bulk_assign"):
            return [IsAuthenticated(), IsManager()]
        return super().get_permissions()

    def get_queryset(self):
        queryset = whiteboard_rows()
        if self.action != "list":
            return queryset
        form = WhiteboardFilter(self.request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data(escape_html=True))
        return form.apply(queryset)

    def _reload(self, mous: Mous) -> Mous:
        return whiteboard_rows().get(pk=mous.pk)

    def _answer(self, mous: Mous, code: int = status.HTTP_200_OK) -> Response:
        mous = self._reload(mous)
        return _with_etag(Response(s.MousSerializer(mous).data, status=code), mous)

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        mous = self.get_object()
        return _with_etag(Response(self.get_serializer(mous).data), mous)

    @extend_schema(request=s.MousCreateInputSerializer, responses={201: s.MousSerializer})
    def create(self, request: Request) -> Response:
        data = s.MousCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        mous = intake.mous_create(
            project=fields.pop("project"), eb_uids=fields.pop("eb_uids"), by=request.user, **fields
        )
        return self._answer(mous, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.MousEditInputSerializer,
        responses={200: s.MousSerializer, 412: s.ConflictSerializer, 428: s.ConflictSerializer},
        parameters=[OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER)],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        mous = self.get_object()
        data = s.MousEditInputSerializer(mous, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        version = expected_version(request, changes.pop("version", None))
        if version is None:
            # Without the version an edit could silently overwrite another DRM's edit.
            return _version_required("an edit")
        services.mous_edit(mous=mous, by=request.user, expected_version=version, changes=changes)
        return self._answer(mous)

    @extend_schema(
        request=s.TransitionInputSerializer,
        responses={
            200: s.MousSerializer,
            409: s.ConflictSerializer,
            412: s.ConflictSerializer,
            428: s.ConflictSerializer,
        },
        parameters=[OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER)],
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str) -> Response:
        """Move the MOUS along the lifecycle; 409 with the allowed moves when the table forbids it.
        Like an edit, a move names the version it was decided on (If-Match or `version`): 428
        without it, 412 when the MOUS changed meanwhile (a QA2 decision on a stale page)."""
        mous = self.get_object()
        data = s.TransitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = expected_version(request, data.validated_data.get("version"))
        if version is None:
            return _version_required("a move")
        mous.transition(
            data.validated_data["to"],
            by=request.user,
            note=data.validated_data["note"],
            expected_version=version,
            check_role=True,
            override_reason=data.validated_data["override_reason"],
        )
        return self._answer(mous)

    @extend_schema(
        request=s.AssignInputSerializer, responses={200: s.MousSerializer, 409: s.ConflictSerializer}
    )
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        """Assign or reassign; refused (409) when the reducer is the project's PI or a co-I."""
        mous = self.get_object()
        data = s.AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.mous_assign(
            mous=mous,
            reducer=data.validated_data["reducer"],
            by=request.user,
            note=data.validated_data["note"],
            expected_version=expected_version(request, data.validated_data.get("version")),
        )
        return self._answer(mous)

    @extend_schema(request=s.UnassignInputSerializer, responses={200: s.MousSerializer})
    @action(detail=True, methods=["post"])
    def unassign(self, request: Request, pk: str) -> Response:
        mous = self.get_object()
        data = s.UnassignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.mous_unassign(
            mous=mous,
            by=request.user,
            note=data.validated_data["note"],
            expected_version=expected_version(request, data.validated_data.get("version")),
        )
        return self._answer(mous)

    @extend_schema(request=s.BulkAssignInputSerializer, responses={200: s.MousSerializer(many=True)})
    @action(detail=False, methods=["post"], url_path="bulk-assign")
    def bulk_assign(self, request: Request) -> Response:
        """Assign several MOUS to one reducer, all or nothing."""
        data = s.BulkAssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.mous_bulk_assign(
            mous_ids=data.validated_data["mous"],
            reducer=data.validated_data["reducer"],
            by=request.user,
            note=data.validated_data["note"],
        )
        rows = whiteboard_rows().filter(pk__in=data.validated_data["mous"])
        return Response(s.MousSerializer(rows, many=True).data)

    @extend_schema(responses=s.StateChangeSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """The lifecycle timeline (audit rows), newest first."""
        mous = self.get_object()
        rows = StateChange.objects.filter(mous=mous).select_related("changed_by")
        return Response(s.StateChangeSerializer(rows, many=True).data)


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("mous", OpenApiTypes.INT)]))
class ExecutionBlockViewSet(AssignmentsApiMixin, viewsets.ReadOnlyModelViewSet):
    """Execution blocks; DRMs and data analysts add them to a MOUS. data_status and data_name
    are read only: the data ingest sets them once it has copied and checked the data."""

    serializer_class = s.ExecutionBlockSerializer
    permission_classes = [IsAuthenticated, MayIngestOrReadOnly]

    def get_queryset(self):
        queryset = ExecutionBlock.objects.order_by("mous_id", "observed_at", "uid")
        mous_id = id_param(self.request, "mous") if self.action == "list" else None
        return queryset if mous_id is None else queryset.filter(mous_id=mous_id)

    @extend_schema(request=s.ExecutionBlockCreateInputSerializer, responses={201: s.ExecutionBlockSerializer})
    def create(self, request: Request) -> Response:
        data = s.ExecutionBlockCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        eb = intake.eb_create(
            mous=data.validated_data["mous"],
            uid=data.validated_data["uid"],
            observed_at=data.validated_data["observed_at"],
            by=request.user,
        )
        return Response(s.ExecutionBlockSerializer(eb).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("mous", OpenApiTypes.INT), OpenApiParameter("reducer", OpenApiTypes.STR)]
    )
)
class AssignmentViewSet(AssignmentsApiMixin, viewsets.ReadOnlyModelViewSet):
    """Assignment history: who reduced which MOUS, from when to when."""

    serializer_class = s.AssignmentSerializer

    def get_queryset(self):
        queryset = Assignment.objects.select_related("reducer__user", "assigned_by", "ended_by")
        if self.action != "list":
            return queryset
        mous_id = id_param(self.request, "mous")
        if mous_id is not None:
            queryset = queryset.filter(mous_id=mous_id)
        if reducer := self.request.query_params.get("reducer"):
            queryset = queryset.filter(reducer__user__username=reducer)
        return queryset


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("mous", OpenApiTypes.INT)]))
class StateChangeViewSet(AssignmentsApiMixin, viewsets.ReadOnlyModelViewSet):
    """The lifecycle audit trail of every MOUS, newest first."""

    serializer_class = s.StateChangeSerializer

    def get_queryset(self):
        queryset = StateChange.objects.select_related("changed_by")
        mous_id = id_param(self.request, "mous") if self.action == "list" else None
        return queryset if mous_id is None else queryset.filter(mous_id=mous_id)


class TokenView(APIView):
    """POST user name + password: a new API token, shown this once (only its sha256 is kept).
    DELETE with `Authorization: Token <key>`: revoke that token.

    Wrong passwords are counted per user name and address (assignments/auth.py): after
    LOGIN_FAILURE_LIMIT of them the pair is refused with 429 for LOGIN_LOCKOUT_SECONDS, the
    right password too."""

    authentication_classes = [HashedTokenAuthentication]
    serializer_class = AuthTokenSerializer

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else []

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("IssuedToken", {"token": drf_serializers.CharField()}),
            429: s.ConflictSerializer,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if isinstance(username, str) and username:
            seconds = login_locked_for(username, client_address(request))
            if seconds:
                return Response(
                    {"detail": lockout_message(seconds)},
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                    headers={"Retry-After": str(seconds)},
                )
        data = AuthTokenSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        return Response({"token": token_issue(data.validated_data["user"])})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            request.auth.delete()
            return Response(status=status.HTTP_204_NO_CONTENT)
        raise ValidationError({"detail": "Send the token to revoke as Authorization: Token <key>."})
