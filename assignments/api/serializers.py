"""REST shapes of the assignments app: read serializers and explicit *Input serializers."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from assignments.models import (
    Assignment,
    ExecutionBlock,
    Investigator,
    Mous,
    MousState,
    Person,
    Project,
    StateChange,
    validate_alma_uid,
)
from assignments.services import EDITABLE_FIELDS
from qa2portal.api import IdField


class InvestigatorSerializer(serializers.ModelSerializer):
    account = serializers.CharField(
        source="user.username",
        read_only=True,
        default=None,
        allow_null=True,
        help_text="the linked qa2portal account",
    )

    class Meta:
        model = Investigator
        fields = ["name", "email", "role", "account"]
        read_only_fields = fields


class ProjectSerializer(serializers.ModelSerializer):
    investigators = InvestigatorSerializer(many=True, read_only=True)
    cycle = serializers.IntegerField(read_only=True, help_text="derived from the code")

    class Meta:
        model = Project
        fields = ["id", "code", "title", "cycle", "investigators"]
        read_only_fields = fields


class PersonInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField()


class ProjectCreateInputSerializer(serializers.Serializer):
    """A new project; the service checks the code, duplicates and the investigators."""

    code = serializers.CharField(max_length=20, help_text="e.g. 2019.1.01234.S; the cycle follows from it")
    title = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    pi_name = serializers.CharField(max_length=200)
    pi_email = serializers.EmailField(help_text="links the PI to the account with this e-mail")
    co_investigators = PersonInputSerializer(many=True, required=False, default=list)


class MousSerializer(serializers.ModelSerializer):
    """One whiteboard row; expects assignments.selectors.whiteboard_rows() (no query per row)."""

    project = serializers.CharField(source="project.code", read_only=True)
    cycle = serializers.IntegerField(source="project.cycle", read_only=True)
    assignee = serializers.CharField(
        source="assignee.user.username", read_only=True, default=None, allow_null=True
    )
    assignee_initials = serializers.CharField(
        source="assignee.initials", read_only=True, default=None, allow_null=True
    )
    # The state a blocked MOUS returns to; empty unless BLOCKED.
    blocked_from = serializers.ChoiceField(choices=MousState.choices, allow_blank=True, read_only=True)
    # An http(s) URL or empty (a URLField's schema would say every value is a URI).
    weblog_url = serializers.CharField(read_only=True, help_text="pipeline weblog URL, or empty")
    eb_count = serializers.IntegerField(read_only=True)
    latest_run_status = serializers.CharField(read_only=True, allow_null=True)
    next_action = serializers.CharField(read_only=True)

    class Meta:
        model = Mous
        fields = [
            "id",
            "uid",
            "project",
            "cycle",
            *EDITABLE_FIELDS,
            "state",
            "state_changed_at",
            "blocked_from",
            "blocked_reason",
            "assignee",
            "assignee_initials",
            "version",
            "eb_count",
            "latest_run_status",
            "next_action",
        ]
        read_only_fields = fields


class MousCreateInputSerializer(serializers.Serializer):
    """A new MOUS; the model's own validation gives the field messages (service runs full_clean)."""

    project = serializers.SlugRelatedField(slug_field="code", queryset=Project.objects.all())
    uid = serializers.CharField(max_length=64, validators=[validate_alma_uid])
    eb_uids = serializers.ListField(
        child=serializers.CharField(max_length=64, validators=[validate_alma_uid]),
        required=False,
        default=list,
    )
    sb_name = serializers.CharField(max_length=120)
    array = serializers.ChoiceField(choices=Mous.Array.choices)
    band = serializers.IntegerField(min_value=1, max_value=10)
    science_goal = serializers.CharField(max_length=120, required=False, allow_blank=True)
    representative_frequency_ghz = serializers.FloatField(required=False, allow_null=True)
    requested_rms_mjy = serializers.FloatField(required=False, allow_null=True)
    rms_bandwidth_mhz = serializers.FloatField(required=False, allow_null=True)
    resolution_min_arcsec = serializers.FloatField(required=False, allow_null=True)
    resolution_max_arcsec = serializers.FloatField(required=False, allow_null=True)
    goal = serializers.ChoiceField(choices=Mous.Goal.choices, required=False)
    due_date = serializers.DateField(required=False, allow_null=True)
    jira_key = serializers.CharField(max_length=32, required=False, allow_blank=True)


class MousEditInputSerializer(serializers.ModelSerializer):
    """PATCH body: any editable field, plus the version you edited (or an If-Match header)."""

    version = serializers.IntegerField(required=False, min_value=1, write_only=True)

    class Meta:
        model = Mous
        fields = [*EDITABLE_FIELDS, "version"]
        extra_kwargs = {name: {"required": False} for name in EDITABLE_FIELDS}

    def validate(self, attrs: dict) -> dict:
        # DRF drops fields it does not know; a client sending `state` or `id` would believe it
        # changed them. Name them instead (400), and change nothing.
        sent = self.initial_data.keys() if hasattr(self.initial_data, "keys") else ()
        refused = sorted(set(sent) - set(self.fields))
        if refused:
            raise serializers.ValidationError(
                {
                    name: "This field cannot be edited here (state moves: POST transition/)."
                    if name == "state"
                    else "This field cannot be edited here."
                    for name in refused
                }
            )
        if not set(attrs) - {"version"}:
            raise serializers.ValidationError(
                {"non_field_errors": [f"Send at least one field to edit: {', '.join(EDITABLE_FIELDS)}."]}
            )
        return attrs


class TransitionInputSerializer(serializers.Serializer):
    to = serializers.ChoiceField(
        choices=MousState.choices, error_messages={"invalid_choice": "{input} is no MOUS state."}
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    version = serializers.IntegerField(required=False, min_value=1)
    override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        help_text="A DRM's reason to move although the checklist is not complete (kept on the move).",
    )


@extend_schema_field(OpenApiTypes.STR)
class ReducerField(serializers.SlugRelatedField):
    """A Person given by username."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            slug_field="user__username",
            queryset=Person.objects.select_related("user"),
            error_messages={"does_not_exist": "No person with username {value}."},
            **kwargs,
        )


class AssignInputSerializer(serializers.Serializer):
    reducer = ReducerField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    version = serializers.IntegerField(required=False, min_value=1)


class UnassignInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    version = serializers.IntegerField(required=False, min_value=1)


class BulkAssignInputSerializer(serializers.Serializer):
    mous = serializers.ListField(child=IdField(), min_length=1, max_length=500)
    reducer = ReducerField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ExecutionBlockSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionBlock
        fields = ["id", "uid", "mous", "observed_at", "data_status", "data_name"]
        read_only_fields = fields


# Only the data ingest (a worker that copied and checked the data) may set these.
INGEST_ONLY_FIELDS = ("data_status", "data_name")


class ExecutionBlockCreateInputSerializer(serializers.Serializer):
    """A new EB of a MOUS; its data comes later through the data ingest, never from this body."""

    mous = serializers.PrimaryKeyRelatedField(queryset=Mous.objects.all())
    uid = serializers.CharField(max_length=64)
    observed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict) -> dict:
        sent = [name for name in INGEST_ONLY_FIELDS if name in self.initial_data]
        if sent:
            raise serializers.ValidationError(
                {name: "Set by the data ingest only (it copies and checks the data first)." for name in sent}
            )
        return attrs


class AssignmentSerializer(serializers.ModelSerializer):
    reducer = serializers.CharField(source="reducer.user.username")
    assigned_by = serializers.CharField(source="assigned_by.username", default=None, allow_null=True)
    ended_by = serializers.CharField(source="ended_by.username", default=None, allow_null=True)

    class Meta:
        model = Assignment
        fields = ["id", "mous", "reducer", "assigned_by", "assigned_at", "ended_at", "ended_by", "note"]
        read_only_fields = fields


class StateChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.CharField(source="changed_by.username", default=None, allow_null=True)

    class Meta:
        model = StateChange
        fields = ["id", "mous", "old_state", "new_state", "changed_by", "note", "created_at"]
        read_only_fields = fields


class ConflictSerializer(serializers.Serializer):
    """Body of a 409 (illegal move, conflict of interest) or 412 (stale version)."""

    detail = serializers.CharField()
    current = serializers.CharField(required=False)
    allowed = serializers.ListField(child=serializers.CharField(), required=False)
    version = serializers.IntegerField(required=False)
