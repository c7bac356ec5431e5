from rest_framework import serializers

from calibration.models import Product, Run, RunStep, ScriptVersion
from qa2portal.api import IdField


class ScriptVersionSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="script.kind", read_only=True)
    filename = serializers.CharField(source="script.filename", read_only=True)
    execution_block = serializers.IntegerField(source="script.execution_block_id", read_only=True)
    mous = serializers.IntegerField(source="script.mous_id", read_only=True)
    author = serializers.CharField(source="author.username", default=None, read_only=True)

    class Meta:
        model = ScriptVersion
        fields = [
            "id",
            "kind",
            "filename",
            "mous",
            "execution_block",
            "number",
            "sha256",
            "size",
            "source",
            "author",
            "note",
            "parent",
            "parsed",
            "created_at",
        ]
        read_only_fields = fields


class UploadInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    execution_block = IdField(required=False)
    mous = IdField(required=False)
    kind = serializers.ChoiceField(choices=["calibration", "imaging", "combination"], default="calibration")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate(self, attrs: dict) -> dict:
        if attrs["kind"] == "calibration" and "execution_block" not in attrs:
            raise serializers.ValidationError({"execution_block": "a calibration script belongs to an EB"})
        if attrs["kind"] != "calibration" and "mous" not in attrs:
            raise serializers.ValidationError({"mous": "imaging and combination scripts belong to a MOUS"})
        return attrs


class GenerateInputSerializer(serializers.Serializer):
    execution_block = IdField()


class RunStepSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True)

    class Meta:
        model = RunStep
        fields = [
            "number",
            "title",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "error",
            "skipped_helpers",
            "casa_tasks",
            "severe_messages",
            "warnings",
            "output_tail",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    steps = RunStepSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "script_version",
            "mous",
            "execution_block",
            "purpose",
            "selected_steps",
            "parameters",
            "folder",
            "status",
            "error",
            "exit_signal",
            "attempts",
            "cancel_requested",
            "heartbeat_at",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "steps",
        ]
        read_only_fields = fields


class RunStepProgressSerializer(RunStepSerializer):
    """A step as the run page polls it (static/js/run.js): the API's step under the page's names."""

    # The page shows the end of the output only: it polls every few seconds.
    PAGE_OUTPUT_TAIL = 4000

    severe = serializers.ListField(source="severe_messages", read_only=True)
    output_tail = serializers.SerializerMethodField()

    class Meta(RunStepSerializer.Meta):
        fields = [*RunStepSerializer.Meta.fields, "severe"]
        read_only_fields = fields

    def get_output_tail(self, step: RunStep) -> str:
        return step.output_tail[-self.PAGE_OUTPUT_TAIL :]


class RunProgressSerializer(RunSerializer):
    """The run page's poll (/calibration/runs/<pk>/status/): the API's run plus the progress bar.

    The view adds log_tail (the end of the run's output log, read confined to the run folder).
    """

    steps = RunStepProgressSerializer(many=True, read_only=True)
    terminal = serializers.BooleanField(source="is_terminal", read_only=True)
    steps_done = serializers.SerializerMethodField()
    steps_total = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "terminal", "steps_done", "steps_total", "duration_seconds"]
        read_only_fields = fields

    def get_steps_done(self, run: Run) -> int:
        finished = (RunStep.Status.SUCCEEDED, RunStep.Status.FAILED)
        return sum(1 for step in run.steps.all() if step.status in finished)

    def get_steps_total(self, run: Run) -> int:
        return len(run.steps.all())


class RunCreateInputSerializer(serializers.Serializer):
    script_version = IdField()
    steps = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False, default=list)
    step_timeout_seconds = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, default=0)
    from_scratch = serializers.BooleanField(default=False)


class RerunInputSerializer(serializers.Serializer):
    from_step = serializers.IntegerField(required=False, allow_null=True, default=None)


class ProductSerializer(serializers.ModelSerializer):
    step = serializers.IntegerField(source="step.number", default=None, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "run",
            "step",
            "execution_block",
            "mous",
            "relpath",
            "kind",
            "viscal",
            "size",
            "created_at",
        ]
        read_only_fields = fields
