"""Diagnostics extracted from caltables (by the worker, in CASA) and the QA findings on them.

The web process reads only these rows and their small artifacts (float32 .npz + JSON
summaries under the run folder), never a CASA table. Artifact layout: reports/ARTIFACTS.md.
"""

from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from assignments.models import ExecutionBlock, Mous
from calibration.models import CopyProgress, Product, Run, RunStep, ScriptVersion
from reports.thresholds import BLUE, RED, YELLOW


def score_band(score: float | None) -> str:
    if score is None or score < 0:
        return "unknown"
    if score <= RED:
        return "red"
    if score <= YELLOW:
        return "yellow"
    if score <= BLUE:
        return "blue"
    return "green"


class Topic(models.TextChoices):
    TSYS = "tsys", "Tsys"
    WVR = "wvr", "WVR"
    BANDPASS = "bandpass", "Bandpass"
    GAINS = "gains", "Gains"
    FLUX = "flux", "Flux"
    FLAGS = "flags", "Flagging"
    CALIBRATED = "calibrated", "Calibrated data"


class Diagnostic(models.Model):
    """What one caltable (or one flag-saving stage) looks like, in compact arrays + a summary."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="diagnostics")
    step = models.ForeignKey(RunStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    execution_block = models.ForeignKey(
        ExecutionBlock, null=True, blank=True, on_delete=models.CASCADE, related_name="diagnostics"
    )
    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="diagnostics")
    topic = models.CharField(max_length=10, choices=Topic.choices)
    name = models.CharField(max_length=300, help_text="the caltable, or the flag-saving stage")
    artifact = models.CharField(max_length=500, blank=True, help_text=".npz relative to the run folder")
    summary = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "topic", "name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "topic", "name"], name="diagnostic_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.get_topic_display()} {self.name} (run {self.run_id})"

    @property
    def artifact_path(self) -> Path | None:
        return Path(self.run.folder) / self.artifact if self.artifact else None


class Finding(models.Model):
    """One QA check on a diagnostic: a score in [0, 1], what it measured, and the fix if any."""

    diagnostic = models.ForeignKey(Diagnostic, on_delete=models.CASCADE, related_name="findings")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="findings")
    topic = models.CharField(max_length=10, choices=Topic.choices)
    code = models.CharField(max_length=40, help_text="which check, e.g. tsys_high")
    score = models.FloatField()
    metric = models.CharField(max_length=80, blank=True)
    value = models.FloatField(null=True, blank=True)
    antenna = models.CharField(max_length=16, blank=True)
    spw = models.IntegerField(null=True, blank=True, help_text="the MS's spw id")
    split_spw = models.IntegerField(null=True, blank=True, help_text="the split id, if not the MS one")
    field = models.CharField(max_length=64, blank=True)
    message = models.TextField()
    # The concrete script edit: {"step": 4, "task": "wvrgcal", "param": "wvrflag", "value": [...],
    # "description": "..."} or {"step": 10, "append": ["flagdata(...)"], "description": "..."}.
    edit = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["run", "score", "topic", "code"]
        indexes = [models.Index(fields=["run", "topic"])]

    def __str__(self) -> str:
        return f"{self.topic}/{self.code} {self.score:.2f}: {self.message[:60]}"

    @property
    def band(self) -> str:
        return score_band(self.score)

    @property
    def table_spw(self) -> int | None:
        """The spw id in the diagnostic's own table (what its plots are keyed by)."""
        return self.split_spw if self.split_spw is not None else self.spw

    @property
    def spw_label(self) -> str:
        if self.spw is None:
            return ""
        return f"spw {self.spw}" + (f" (split {self.split_spw})" if self.split_spw is not None else "")


class AppliedEdit(models.Model):
    """A finding's edit applied to make a script version, and what it promised to change.

    The expectation is copied from the edit (the finding row itself is replaced when its run is
    diagnosed again), so every later run of this version or its descendants can say whether
    the edit did what it said (reports.edit_loop.verdict).
    """

    version = models.OneToOneField(ScriptVersion, on_delete=models.CASCADE, related_name="applied_edit")
    finding = models.ForeignKey(Finding, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    description = models.TextField()
    expect = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"v{self.version.number}: {self.description[:60]}"


class FluxEdit(models.Model):
    """A reducer's edit of a calibrator's combined flux in one spw (allFluxes), kept as history.

    The latest edit of a (field, spw) replaces the weighted mean in the combination script."""

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="flux_edits")
    field = models.CharField(max_length=64)
    spw = models.CharField(max_length=8, help_text="the splits' spw id")
    flux_jy = models.FloatField()
    previous_jy = models.FloatField(null=True, blank=True, help_text="the value it replaced")
    note = models.CharField(max_length=300, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(flux_jy__gt=0), name="fluxedit_flux_positive")
        ]

    def __str__(self) -> str:
        return f"{self.field} spw {self.spw}: {self.flux_jy:g} Jy"


class ImageQA(models.Model):
    """What one image of an imaging run measures (computed in CASA right after its tclean):
    rms, restoring beam, peak, dynamic range, the theoretical rms; layout in ARTIFACTS.md."""

    class Kind(models.TextChoices):
        CONTINUUM = "continuum", "Continuum"
        CUBE = "cube", "Cube"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="image_qa")
    step = models.ForeignKey(RunStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="image_qa")
    name = models.CharField(max_length=300, help_text="tclean's imagename, relative to Imaging/")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    summary = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="imageqa_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, run {self.run_id})"

    @property
    def pbcor_fits(self) -> str:
        return f"{self.name}.pbcor.fits"

    @property
    def flux_fits(self) -> str:
        return f"{self.name}.flux.fits"


class ReadmeVersion(models.Model):
    """One version of the MOUS's README (generated from what the portal knows, or the
    reducer's edit); the latest is written to README in the MOUS folder."""

    class Source(models.TextChoices):
        GENERATED = "generated", "Generated"
        EDITED = "edited", "Edited"

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="readme_versions")
    number = models.PositiveIntegerField()
    text = models.TextField()
    source = models.CharField(max_length=10, choices=Source.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["mous", "number"], name="readme_unique_number")]

    def __str__(self) -> str:
        return f"README v{self.number} of {self.mous}"


class Qa2Report(models.Model):
    """The qa2/ folder of one EB (PNGs and textfile.txt, ALMA's generateQA2Report), built by a
    worker from a successful run of every step of its calibration script."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    execution_block = models.ForeignKey(ExecutionBlock, on_delete=models.CASCADE, related_name="qa2_reports")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="qa2_reports")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    files = models.JSONField(default=list, blank=True, help_text="names written into qa2/")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"qa2 report {self.pk} of {self.execution_block} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class Delivery(CopyProgress, models.Model):
    """The data analyst's last step: a QA2-passed MOUS packaged into DELIVERIES_ROOT (the
    packager's tree, a sha256 manifest), or a QA2-failed MOUS folder moved to QA2FAILS_ROOT.
    Built in a staging folder, verified, then renamed into place: a half package is never
    where a delivered one would be."""

    class Kind(models.TextChoices):
        PACKAGE = "package", "Package for delivery"
        QA2_FAIL = "qa2fail", "Move to qa2fails"

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        COPYING = "COPYING", "Copying"
        VERIFYING = "VERIFYING", "Verifying"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    ACTIVE = (Status.QUEUED, Status.COPYING, Status.VERIFYING)

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    target = models.CharField(max_length=1000, blank=True, help_text="the package (or moved folder)")
    manifest = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk} of {self.mous} ({self.status})"
