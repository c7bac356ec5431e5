"""Scripts (immutable versions), runs and their steps, and the products a run made."""

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from assignments.models import ExecutionBlock, Mous
from calibration.calibrators import CatalogueFlux, problems


class Script(models.Model):
    """A calibration script of one EB, or a combination/imaging script of one MOUS."""

    class Kind(models.TextChoices):
        CALIBRATION = "calibration", "Calibration"
        COMBINATION = "combination", "Combination"
        IMAGING_PREP = "imaging_prep", "Imaging preparation"
        IMAGING = "imaging", "Imaging"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="scripts")
    execution_block = models.ForeignKey(
        ExecutionBlock, null=True, blank=True, on_delete=models.CASCADE, related_name="scripts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["execution_block", "kind"], name="script_one_per_eb_kind"),
            models.CheckConstraint(
                condition=models.Q(kind="calibration", execution_block__isnull=False)
                | ~models.Q(kind="calibration"),
                name="script_calibration_has_eb",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.owner})"

    @property
    def owner(self) -> ExecutionBlock | Mous:
        return self.execution_block or self.mous

    @property
    def filename(self) -> str:
        """ALMA's names: <ms>.scriptForCalibration.py, scriptForImagingPrep.py, scriptForImaging.py,
        scriptForFluxCalibration.py."""
        if self.kind == self.Kind.CALIBRATION:
            eb = self.execution_block
            assert eb is not None, "a calibration script has an EB (script_calibration_has_eb)"
            return f"{eb.ms_name}.scriptForCalibration.py"
        if self.kind == self.Kind.IMAGING:
            return "scriptForImaging.py"
        if self.kind == self.Kind.IMAGING_PREP:
            return "scriptForImagingPrep.py"
        return "scriptForFluxCalibration.py"

    def latest_version(self) -> "ScriptVersion | None":
        return self.versions.order_by("-number").first()


def script_storage_path(sha256: str) -> Path:
    """Content-addressed: the bytes of a version live at scripts/<sha[:2]>/<sha>.py, written once."""
    return Path(settings.MEDIA_ROOT) / "scripts" / sha256[:2] / f"{sha256}.py"


class ScriptVersion(models.Model):
    """One immutable version of a script: never modified after it is written."""

    class Source(models.TextChoices):
        GENERATED = "generated", "Generated"
        UPLOADED = "uploaded", "Uploaded"
        CONVERTED = "converted", "Converted from Python 2"
        EDITED = "edited", "Edited (suggested fix applied)"

    script = models.ForeignKey(Script, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    source = models.CharField(max_length=10, choices=Source.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    original_name = models.CharField(
        max_length=255, blank=True, help_text="as uploaded; never used as a path"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The parser's answer, computed once at creation: steps, warnings, python2 flag.
    parsed = models.JSONField(default=dict)
    # An error-level parse finding blocks running this version until a reducer confirms it.
    blocking_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    blocking_confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["script", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["script", "number"], name="scriptversion_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.script.filename} v{self.number}"

    @property
    def path(self) -> Path:
        return script_storage_path(self.sha256)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def verify(self) -> bytes:
        """The stored bytes, after checking they still hash to sha256 (refuse to run otherwise)."""
        data = self.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.sha256:
            raise ScriptTampered(f"{self} changed on disk: sha256 {actual[:12]}... != {self.sha256[:12]}...")
        return data

    @property
    def step_numbers(self) -> list[int]:
        return [step["number"] for step in self.parsed.get("steps", [])]

    @property
    def is_python2(self) -> bool:
        return bool(self.parsed.get("python2"))

    @property
    def blocking_findings(self) -> list[dict]:
        """The parser's error-level findings: running waits for a fix or a confirmation."""
        return [f for f in self.parsed.get("findings", []) if f.get("severity") == "error"]

    @property
    def blocked(self) -> bool:
        return bool(self.blocking_findings) and self.blocking_confirmed_at is None


class ScriptTampered(RuntimeError):
    """The stored bytes of a version no longer match its sha256."""


class TimedWork(models.Model):
    """Something that starts and finishes (a run, a step): its timing."""

    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class Run(TimedWork):
    """One execution of a script version on a worker: a step selection in a target folder."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"
        TIMED_OUT = "TIMED_OUT", "Timed out"

    # The one table of a run's moves. A final state has no way out: whoever ends a run first
    # (its worker, a cancel, the reaper) wins, and a late writer changes nothing.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
        # RUNNING -> RUNNING: a redelivered task claims the run again (a new attempt).
        Status.RUNNING: frozenset(
            {Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT}
        ),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
        Status.CANCELLED: frozenset(),
        Status.TIMED_OUT: frozenset(),
    }
    TERMINAL = frozenset(state for state, targets in TRANSITIONS.items() if not targets)
    MAX_ATTEMPTS = 3

    class Purpose(models.TextChoices):
        SCRIPT = "script", "Script steps"
        RESTORE_FLAGS = "restore_flags", "Restore flag version"

    # Null for maintenance runs the portal writes itself (e.g. restoring a flag version).
    script_version = models.ForeignKey(
        ScriptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="runs")
    execution_block = models.ForeignKey(
        ExecutionBlock, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.SCRIPT)
    # Empty = all steps of the script, in order (ALMA's `mysteps = []`).
    selected_steps = models.JSONField(default=list, blank=True)
    # Extra parameters for non-script purposes (e.g. the flag version to restore).
    parameters = models.JSONField(default=dict, blank=True)
    folder = models.CharField(max_length=500, help_text="absolute path of the working folder (cwd)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    exit_signal = models.IntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    step_timeout_seconds = models.PositiveIntegerField(default=0, help_text="0 = the site default")
    cancel_requested = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["execution_block", "-created_at"]),
            models.Index(fields=["mous", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def folder_path(self) -> Path:
        return Path(self.folder)

    @property
    def casa_log_name(self) -> str:
        return f"casa-run{self.pk}.log"

    @property
    def output_log_name(self) -> str:
        return f"run{self.pk}.output.txt"

    def effective_step_timeout(self) -> int:
        return self.step_timeout_seconds or settings.CASA_STEP_WALLCLOCK_LIMIT

    @classmethod
    def may_move(cls, old: str, new: str) -> bool:
        return new in cls.TRANSITIONS.get(old, frozenset())

    @classmethod
    def sources_of(cls, new: str) -> list[str]:
        """The states from which a run may move to `new`."""
        return [old for old, targets in cls.TRANSITIONS.items() if new in targets]

    def move(self, new: str, **fields) -> bool:
        """Move to `new` if the table allows it from the state in the database (one conditional
        UPDATE, so two writers cannot both win); True when this call made the move. The
        instance is refreshed either way."""
        moved = Run.objects.filter(pk=self.pk, status__in=self.sources_of(new)).update(status=new, **fields)
        self.refresh_from_db()
        return bool(moved)

    def finish(self, status: str, error: str = "", exit_signal: int | None = None) -> bool:
        """End the run in `status` unless it already ended: a final state is never overwritten
        (the reaper's FAILED stays FAILED when the worker reports late)."""
        if status not in self.TERMINAL:
            raise ValueError(f"{status} is not a final state of a run")
        return self.move(status, error=error, exit_signal=exit_signal, finished_at=timezone.now())


class RunStep(TimedWork):
    """One script step within a run: its state, timing, output tail and what was skipped."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"
        TIMED_OUT = "TIMED_OUT", "Timed out"
        NOT_RUN = "NOT_RUN", "Not run"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    number = models.IntegerField()
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    output_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # ALMA-only helper calls (aU/es) that were skipped, as "es.fixSyscalTimes(...)" strings.
    skipped_helpers = models.JSONField(default=list, blank=True)
    casa_tasks = models.JSONField(default=list, blank=True)
    severe_messages = models.JSONField(default=list, blank=True)
    # What the worker refused from the step (a product path outside the folder, a bad event).
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["run", "pk"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="runstep_unique_number")]

    def __str__(self) -> str:
        return f"step {self.number} of run {self.run_id}: {self.status}"


class Product(models.Model):
    """A file or table a run step created or changed in its folder."""

    class Kind(models.TextChoices):
        MS = "ms", "Measurement set"
        CALTABLE = "caltable", "Calibration table"
        IMAGE = "image", "CASA image"
        FITS = "fits", "FITS"
        PNG = "png", "PNG plot"
        TXT = "txt", "Text"
        LOG = "log", "Log"
        FLAGVERSIONS = "flagversions", "Flag versions"
        OTHER = "other", "Other"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="products")
    step = models.ForeignKey(
        RunStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    execution_block = models.ForeignKey(
        ExecutionBlock, null=True, blank=True, on_delete=models.CASCADE, related_name="products"
    )
    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="products")
    relpath = models.CharField(max_length=500, help_text="relative to the run folder")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    viscal = models.CharField(max_length=32, blank=True, help_text="caltables: VisCal type, e.g. 'B Jones'")
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["relpath", "-created_at"]
        indexes = [models.Index(fields=["execution_block", "kind"])]

    def __str__(self) -> str:
        return self.relpath

    @property
    def path(self) -> Path:
        return Path(self.run.folder) / self.relpath


class DataSummary(models.Model):
    """What the script generators need to know about an EB's MS (read once, in CASA, by a worker)."""

    execution_block = models.OneToOneField(
        ExecutionBlock, on_delete=models.CASCADE, related_name="data_summary"
    )
    summary = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"summary of {self.execution_block}"


class ScriptGeneration(models.Model):
    """A request to generate the standard calibration script of an EB on a worker."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    execution_block = models.ForeignKey(ExecutionBlock, on_delete=models.CASCADE, related_name="generations")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    version = models.ForeignKey(
        ScriptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched while CASA reads the data: the reaper fails a generation whose worker went away.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"generation {self.pk} of {self.execution_block} ({self.status})"


class CopyProgress:
    """How far a copy of data is (an ingest, the combination's copy): its state, in percent."""

    ACTIVE: tuple[str, ...]
    status: str
    bytes_done: int
    bytes_total: int | None

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def percent(self) -> int:
        if self.status == "DONE":
            return 100
        if not self.bytes_total:
            return 0
        return min(100, int(100 * self.bytes_done / self.bytes_total))

    @property
    def progress(self) -> dict:
        """What a page polls: the state, how far, and why it failed."""
        return {"status": self.status, "percent": self.percent, "error": getattr(self, "error", "")}


class DataIngest(CopyProgress, TimedWork):
    """Bringing an EB's raw data in: copied (or extracted) into raw/, checked in CASA, then present."""

    class SourceKind(models.TextChoices):
        PATH = "path", "Path under INGEST_ROOTS"
        UPLOAD = "upload", "Uploaded tar/tgz"

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        COPYING = "COPYING", "Copying"
        CHECKING = "CHECKING", "Checking in CASA"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    ACTIVE = (Status.QUEUED, Status.COPYING, Status.CHECKING)

    execution_block = models.ForeignKey(ExecutionBlock, on_delete=models.CASCADE, related_name="data_ingests")
    source_kind = models.CharField(max_length=6, choices=SourceKind.choices)
    # The path asked for, or the uploaded file's name as the browser sent it (display only).
    source = models.CharField(max_length=1000)
    # Uploads only: the file's name in INGEST_UPLOAD_DIR (server-chosen, never from the client).
    upload_name = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    # What the CASA check read (antennas, spws, fields, scans, time range); set when DONE.
    summary = models.JSONField(default=dict, blank=True)
    # The raw data's path relative to the EB folder (raw/<name>), set when DONE.
    data_name = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Touched with every progress update: the reaper fails ingests whose worker went away.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # The database backs the service's "one ingest at a time per EB".
            models.UniqueConstraint(
                fields=["execution_block"],
                condition=models.Q(status__in=["QUEUED", "COPYING", "CHECKING"]),
                name="dataingest_one_active_per_eb",
            )
        ]

    def __str__(self) -> str:
        return f"ingest {self.pk} of {self.execution_block} ({self.status})"

    @property
    def staging_name(self) -> str:
        """raw/.incoming-<id>/: where the data is copied and checked before it is renamed into raw/."""
        return f".incoming-{self.pk}"


class CalibratorFlux(models.Model):
    """One catalogue flux of a calibrator: what the generated setjy and the flux check use.

    Seeded from calibration/data/calibrator_fluxes.csv, edited by DRMs. The rules (positive
    flux, 30-1000 GHz, a name, a provenance) are calibration.calibrators.problems."""

    source = models.CharField(max_length=64, help_text="field name as in the data, e.g. J1924-2914")
    freq_ghz = models.FloatField("frequency (GHz)", help_text="where the flux was measured")
    flux_jy = models.FloatField("flux density (Jy)")
    spectral_index = models.FloatField(
        null=True, blank=True, help_text="alpha in S ~ nu^alpha; empty when not known (flat assumed)"
    )
    measured_on = models.DateField(null=True, blank=True, help_text="empty when there is no measurement")
    provenance = models.TextField(help_text="where the number comes from")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "freq_ghz"]
        constraints = [
            models.UniqueConstraint(fields=["source", "freq_ghz"], name="calibratorflux_one_per_source_freq"),
            models.CheckConstraint(condition=models.Q(flux_jy__gt=0), name="calibratorflux_flux_positive"),
            models.CheckConstraint(
                condition=models.Q(freq_ghz__gte=30.0, freq_ghz__lte=1000.0), name="calibratorflux_freq_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.flux_jy:g} Jy at {self.freq_ghz:g} GHz"

    def clean(self) -> None:
        wrong = problems(
            source=self.source or "",
            freq_ghz=self.freq_ghz,
            flux_jy=self.flux_jy,
            provenance=self.provenance or "",
        )
        if wrong:
            raise ValidationError(wrong)

    def entry(self) -> CatalogueFlux:
        return CatalogueFlux(
            source=self.source,
            freq_ghz=self.freq_ghz,
            flux_jy=self.flux_jy,
            spectral_index=self.spectral_index,
            measured=self.measured_on.isoformat() if self.measured_on else None,
            provenance=self.provenance,
        )


class CalibratedCopy(CopyProgress, TimedWork):
    """Copying calibrated data where a MOUS-level script runs: every EB's calibrated split (and
    its fluxscale log) into Combination/calibrated, or the calibrated data to image into Imaging/.

    Done by a worker (calibration.combination), outside CASA: the sandbox of a run sees only
    its own folder, so the combination or imaging-prep run finds its inputs already in place."""

    class Destination(models.TextChoices):
        COMBINATION = "combination", "Combination/calibrated"
        IMAGING = "imaging", "Imaging"

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        COPYING = "COPYING", "Copying"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    ACTIVE = (Status.QUEUED, Status.COPYING)

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="calibrated_copies")
    destination = models.CharField(
        max_length=12, choices=Destination.choices, default=Destination.COMBINATION
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    from_scratch = models.BooleanField(default=False)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    # [{"eb": uid (or "combination"), "run": id, "names": ["<ms>.split.cal", ...]}]: what it copied.
    copied = models.JSONField(default=list, blank=True)
    # Names it removed first (from scratch): only what a combination made.
    removed = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"copy {self.pk} of {self.mous} into {self.get_destination_display()} ({self.status})"


class ImagingData(models.Model):
    """What the data prepared for imaging holds (read in CASA by the imaging-prep run, right
    after it wrote the MS): target fields and pointings, spws, antennas' diameters, baselines,
    and each target's spectrum per spw (for the continuum finder). The imaging script is
    generated from it without CASA."""

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="imaging_data")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="imaging_data")
    vis = models.CharField(max_length=300)
    summary = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"imaging data of {self.vis} (run {self.run_id})"
