"""The QA2 domain: projects, MOUS, execution blocks, people, and the one QA2 state machine."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from assignments import preconditions
from assignments.events import mous_state_changed
from qa2portal.errors import Conflict, Forbidden, PreconditionFailed

# 2019.1.01234.S; the call is 1 for a main call, 0 for Cycle 0, A for DDT / supplemental calls.
PROJECT_CODE_RE = re.compile(r"^\d{4}\.[01A]\.\d{5}\.[A-Z]{1,3}$")
ALMA_UID_RE = re.compile(r"^uid://A\d{3}/X[0-9A-Za-z]+/X[0-9A-Za-z]+$")  # uid://A001/X13e/X1fe

validate_project_code = RegexValidator(
    PROJECT_CODE_RE, "A project code looks like 2019.1.01234.S (year.call.number.type)."
)
validate_alma_uid = RegexValidator(ALMA_UID_RE, "An ALMA uid looks like uid://A001/X13e/X1fe.")


def validate_data_name(name: str) -> None:
    """Raw data names are relative to the EB folder and never climb out of it."""
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or "\x00" in name:
        raise ValidationError(f"{name!r} is not a path inside the EB folder (e.g. raw/uid___A002_X1_X2.ms).")


def uid_to_folder(uid: str) -> str:
    """uid://A001/X13e/X1fe -> uid___A001_X13e_X1fe (the seeds' folder naming)."""
    return uid.replace(":", "_").replace("/", "_")


class Person(models.Model):
    """A qa2portal user's role in the QA2 process (one per Django user)."""

    class Role(models.TextChoices):
        DRM = "drm", "Data reduction manager"
        DEPUTY_DRM = "deputy_drm", "Deputy DRM"
        REDUCER = "reducer", "Data reducer (staff)"
        DATA_ANALYST = "data_analyst", "Data analyst"

    MANAGER_ROLES = frozenset({Role.DRM, Role.DEPUTY_DRM})

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="person")
    role = models.CharField(max_length=16, choices=Role.choices)
    initials = models.CharField(
        max_length=4,
        validators=[RegexValidator(r"^[A-Z]{2,4}$", "Initials are 2-4 capital letters, e.g. 'JM'.")],
        help_text="Marks the reducer's edits in scripts, as the seeds ask.",
    )

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"

    @property
    def is_manager(self) -> bool:
        return self.role in self.MANAGER_ROLES


class Project(models.Model):
    """An ALMA observing project (its PI and co-Is decide conflicts of interest)."""

    code = models.CharField(max_length=20, unique=True, validators=[validate_project_code])
    title = models.CharField(max_length=300, blank=True)
    cycle = models.PositiveSmallIntegerField(help_text="ALMA cycle, e.g. 7 for 2019.1.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        if self.code and PROJECT_CODE_RE.match(self.code) and not self.cycle:
            self.cycle = cycle_from_code(self.code)


def cycle_from_code(code: str) -> int:
    """The ALMA cycle of a project code: 2011.0 -> 0, 2012.1 -> 1, 2013.1 -> 2, 2015.1 -> 3, ...,
    2019.1 -> 7, 2021.1 -> 8, 2024.1 -> 11. There was no 2014 call (Cycle 2 ran into 2015) and no
    2020 call (the pandemic); .A codes (DDT, supplemental calls) belong to that year's cycle."""
    year = int(code[:4])
    if year <= 2011:
        return 0
    if year <= 2014:
        return year - 2011
    if year <= 2020:
        return year - 2012
    return year - 2013


class Investigator(models.Model):
    """The project's PI or a co-I; linked to a qa2portal user when they also have an account."""

    class Role(models.TextChoices):
        PI = "pi", "PI"
        COI = "coi", "co-I"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="investigators")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=3, choices=Role.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["project", "role", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(role="pi"), name="investigator_one_pi_per_project"
            ),
            models.UniqueConstraint(
                "project",
                Lower("email"),
                condition=~models.Q(email=""),
                name="investigator_email_once_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()} of {self.project})"


class MousState(models.TextChoices):
    NEW = "NEW", "New"
    ASSIGNED = "ASSIGNED", "Assigned"
    CALIBRATING = "CALIBRATING", "Calibrating"
    IMAGING = "IMAGING", "Imaging"
    READY_FOR_REVIEW = "READY_FOR_REVIEW", "Ready for review"
    REVIEWING = "REVIEWING", "Reviewing"
    QA2_PASS = "QA2_PASS", "QA2 pass"
    QA2_SEMIPASS = "QA2_SEMIPASS", "QA2 semipass"
    QA2_FAIL = "QA2_FAIL", "QA2 fail"
    DELIVERING = "DELIVERING", "Delivering"
    DELIVERED = "DELIVERED", "Delivered"
    FAILED_ARCHIVED = "FAILED_ARCHIVED", "Failed (archived)"
    BLOCKED = "BLOCKED", "Blocked"


S = MousState
# The whole QA2 lifecycle (modelled on ALMA's OUS states). BLOCKED is reachable from every
# active state and returns to the state it was blocked from (see Mous.transition).
ACTIVE_STATES = frozenset(
    {S.ASSIGNED, S.CALIBRATING, S.IMAGING, S.READY_FOR_REVIEW, S.REVIEWING, S.DELIVERING}
)
MOUS_TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.ASSIGNED}),
    S.ASSIGNED: frozenset({S.CALIBRATING, S.NEW, S.BLOCKED}),  # -> NEW only by unassigning
    S.CALIBRATING: frozenset({S.IMAGING, S.READY_FOR_REVIEW, S.BLOCKED}),
    S.IMAGING: frozenset({S.CALIBRATING, S.READY_FOR_REVIEW, S.BLOCKED}),
    S.READY_FOR_REVIEW: frozenset({S.REVIEWING, S.CALIBRATING, S.BLOCKED}),
    S.REVIEWING: frozenset({S.QA2_PASS, S.QA2_SEMIPASS, S.QA2_FAIL, S.BLOCKED}),
    S.QA2_PASS: frozenset({S.DELIVERING}),
    S.QA2_SEMIPASS: frozenset({S.DELIVERING}),
    S.QA2_FAIL: frozenset({S.ASSIGNED, S.FAILED_ARCHIVED}),
    S.DELIVERING: frozenset({S.DELIVERED, S.BLOCKED}),
    S.DELIVERED: frozenset(),
    S.FAILED_ARCHIVED: frozenset(),
    S.BLOCKED: frozenset(ACTIVE_STATES),  # narrowed to the state it came from at run time
}
TERMINAL_STATES = frozenset(state for state, targets in MOUS_TRANSITIONS.items() if not targets)

# The moves a reducer or data analyst may make on a MOUS assigned to them (work, ask for
# review, flag a processing problem). Everything else in the table is a DRM decision.
REDUCER_WORK_STATES = frozenset({S.ASSIGNED, S.CALIBRATING, S.IMAGING, S.READY_FOR_REVIEW})
REDUCER_TARGETS = frozenset({S.CALIBRATING, S.IMAGING, S.READY_FOR_REVIEW, S.BLOCKED})

# What each state waits for: the "needs next" column of My work and the MOUS page.
NEXT_ACTION: dict[str, str] = {
    S.NEW: "DRM: assign a reducer",
    S.ASSIGNED: "Reducer: generate or upload the calibration scripts and start calibrating",
    S.CALIBRATING: "Reducer: run the calibration steps and check the diagnostics",
    S.IMAGING: "Reducer: image and compare rms and beam with the request",
    S.READY_FOR_REVIEW: "DRM: start the QA2 review",
    S.REVIEWING: "DRM: set QA2 pass, semipass or fail",
    S.QA2_PASS: "DRM: start delivery",
    S.QA2_SEMIPASS: "DRM: start delivery",
    S.QA2_FAIL: "DRM: reassign for reprocessing or archive as failed",
    S.DELIVERING: "DRM: confirm delivery",
    S.DELIVERED: "Nothing: delivered",
    S.FAILED_ARCHIVED: "Nothing: archived as failed",
    S.BLOCKED: "Resolve the blocking problem, then unblock",
}


def person_of(user) -> "Person | None":
    """The Person row of a signed-in user, or None (anonymous or no role yet)."""
    if user is None or not user.is_authenticated:
        return None
    try:
        return user.person
    except Person.DoesNotExist:
        return None


def user_is_manager(user) -> bool:
    """DRMs and deputies decide everything; superusers count as managers (site admins)."""
    if user is None or not user.is_authenticated:
        return False
    person = person_of(user)
    return bool(user.is_superuser or (person is not None and person.is_manager))


def user_may_ingest(user) -> bool:
    """Registering projects, MOUS and EBs: managers, and data analysts (they run data intake)."""
    person = person_of(user)
    return user_is_manager(user) or (person is not None and person.role == Person.Role.DATA_ANALYST)


class InvalidTransition(Conflict):
    """The state machine does not allow this move; carries the allowed moves for a 409 answer."""

    def __init__(self, current: str, new: str, allowed: frozenset[str]) -> None:
        self.current, self.new, self.allowed = current, new, sorted(allowed)
        super().__init__(
            f"cannot go from {current} to {new}; allowed from {current}: {', '.join(self.allowed) or 'none'}"
        )

    def details(self) -> dict:
        return {"current": self.current, "allowed": self.allowed}


class TransitionForbidden(Forbidden, PermissionError):
    """The move exists in the table but this user's role may not make it (HTTP 403)."""


class Mous(models.Model):
    """A member observing unit set: the unit a reducer calibrates, images and delivers."""

    # What the request says about the MOUS: set when it is registered (with its uid), edited
    # by a DRM later. State, assignee and version have their own paths; created_by is the caller.
    REQUEST_FIELDS = (
        "sb_name",
        "science_goal",
        "array",
        "band",
        "representative_frequency_ghz",
        "requested_rms_mjy",
        "rms_bandwidth_mhz",
        "resolution_min_arcsec",
        "resolution_max_arcsec",
        "goal",
        "due_date",
        "jira_key",
        "pipeline_failed",
        "weblog_url",
        "bandwidth_switching",
        "long_baseline",
        "polarization",
        "solar",
        "ephemeris",
        "notes",
    )

    class Array(models.TextChoices):
        TWELVE_M_EXTENDED = "TE", "12m (_TE)"
        TWELVE_M_COMPACT = "TC", "12m compact (_TC)"
        SEVEN_M = "7M", "7m (_7m)"
        TOTAL_POWER = "TP", "Total power (TP)"

    class Goal(models.TextChoices):
        CONTINUUM = "continuum", "Continuum"
        LINE = "line", "Line"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="mous_set")
    uid = models.CharField("MOUS uid", max_length=64, unique=True, validators=[validate_alma_uid])
    sb_name = models.CharField("SB name", max_length=120)
    science_goal = models.CharField(max_length=120, blank=True)
    array = models.CharField(max_length=2, choices=Array.choices)
    band = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)], help_text="ALMA band 1-10.")
    representative_frequency_ghz = models.FloatField(null=True, blank=True)
    requested_rms_mjy = models.FloatField("requested rms (mJy/beam)", null=True, blank=True)
    rms_bandwidth_mhz = models.FloatField("bandwidth for the rms (MHz)", null=True, blank=True)
    resolution_min_arcsec = models.FloatField("min angular resolution (arcsec)", null=True, blank=True)
    resolution_max_arcsec = models.FloatField("max angular resolution (arcsec)", null=True, blank=True)
    goal = models.CharField(max_length=10, choices=Goal.choices, default=Goal.CONTINUUM)
    due_date = models.DateField(null=True, blank=True)
    jira_key = models.CharField(max_length=32, blank=True)
    pipeline_failed = models.BooleanField(default=False)
    weblog_url = models.URLField(blank=True)
    bandwidth_switching = models.BooleanField(default=False)
    long_baseline = models.BooleanField(default=False)
    polarization = models.BooleanField(default=False)
    solar = models.BooleanField(default=False)
    ephemeris = models.BooleanField(default=False)
    notes = models.TextField(blank=True)

    state = models.CharField(max_length=16, choices=MousState.choices, default=MousState.NEW)
    state_changed_at = models.DateTimeField(default=timezone.now)
    blocked_from = models.CharField(max_length=16, choices=MousState.choices, blank=True)
    blocked_reason = models.TextField(blank=True)
    assignee = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_mous"
    )
    # Optimistic locking: every edit bumps it; an edit based on an older version gets 412.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["uid"]
        verbose_name = "MOUS"
        verbose_name_plural = "MOUS"
        indexes = [
            models.Index(fields=["state", "state_changed_at"]),
            models.Index(fields=["due_date"]),
            # The whiteboard's default order (oldest in state first): LIMIT reads 50 index entries
            # instead of sorting every MOUS.
            models.Index(fields=["state_changed_at", "id"], name="mous_whiteboard_order"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(requested_rms_mjy__isnull=True) | models.Q(requested_rms_mjy__gt=0),
                name="mous_rms_positive",
            ),
            models.CheckConstraint(condition=models.Q(band__gte=1, band__lte=10), name="mous_band_1_10"),
        ]

    def __str__(self) -> str:
        return self.uid

    def clean(self) -> None:
        errors = {}
        if self.band is not None and not 1 <= self.band <= 10:
            errors["band"] = "ALMA bands are 1 to 10."
        if self.requested_rms_mjy is not None and self.requested_rms_mjy <= 0:
            errors["requested_rms_mjy"] = "The requested rms must be positive."
        if self.rms_bandwidth_mhz is not None and self.rms_bandwidth_mhz <= 0:
            errors["rms_bandwidth_mhz"] = "The rms bandwidth must be positive."
        lo, hi = self.resolution_min_arcsec, self.resolution_max_arcsec
        if (lo is not None and lo <= 0) or (hi is not None and hi <= 0):
            errors["resolution_min_arcsec"] = "Angular resolutions must be positive."
        elif lo is not None and hi is not None and lo > hi:
            errors["resolution_min_arcsec"] = "The minimum resolution is larger than the maximum."
        if errors:
            raise ValidationError(errors)

    @property
    def folder_name(self) -> str:
        """<project code>_<MOUS uid with '/' and ':' as '_'> (the seeds' naming)."""
        return f"{self.project.code}_{uid_to_folder(self.uid)}"

    @property
    def next_action(self) -> str:
        return NEXT_ACTION[self.state]

    @property
    def days_in_state(self) -> int:
        return (timezone.now() - self.state_changed_at).days

    @property
    def days_to_due(self) -> int | None:
        """Negative when overdue; None without a due date."""
        return None if self.due_date is None else (self.due_date - timezone.localdate()).days

    def allowed_transitions(self) -> frozenset[str]:
        if self.state == MousState.BLOCKED:
            return frozenset({self.blocked_from}) if self.blocked_from else frozenset()
        return MOUS_TRANSITIONS[self.state]

    def is_assigned_to(self, user) -> bool:
        person = person_of(user)
        return person is not None and self.assignee_id == person.pk

    def may_move(self, user, new: str) -> bool:
        """Whether `user`'s role allows the move (the table is checked separately)."""
        if user_is_manager(user):
            return True
        if not self.is_assigned_to(user):
            return False
        if self.state == MousState.BLOCKED:  # unblocking back to where the reducer was working
            return self.blocked_from in REDUCER_WORK_STATES and new == self.blocked_from
        return self.state in REDUCER_WORK_STATES and new in REDUCER_TARGETS

    def moves_for(self, user) -> list[str]:
        """The moves `user` may make now, in lifecycle order (the buttons on the MOUS page)."""
        # NEW is reached by unassigning and ASSIGNED by assigning (own forms), except
        # QA2_FAIL -> ASSIGNED: reprocessing by the reducer already assigned.
        allowed = self.allowed_transitions() - {MousState.NEW}
        if self.state != MousState.QA2_FAIL or self.assignee_id is None:
            allowed = allowed - {MousState.ASSIGNED}
        return [s for s in MousState.values if s in allowed and self.may_move(user, s)]

    def transition(
        self,
        new: str,
        *,
        by=None,
        note: str = "",
        expected_version: int | None = None,
        check_role: bool = False,
        override_reason: str = "",
    ):
        """Move to `new` under a row lock and write the audit row in the same transaction.

        Every path (page, API, webhook, worker) goes through here. Raises InvalidTransition
        when the table forbids the move, StaleVersion when `expected_version` is outdated,
        TransitionForbidden when `check_role` and `by` may not make this move,
        ChecklistIncomplete when a registered precondition is missing and no DRM overrides it
        (`override_reason`, kept on the state change).
        """
        with transaction.atomic():
            # Lock the row: two DRMs clicking at once must not both win.
            locked = Mous.objects.select_for_update(no_key=True).get(pk=self.pk)
            if expected_version is not None and locked.version != expected_version:
                raise StaleVersion(locked.version, expected_version)
            if new not in locked.allowed_transitions():
                raise InvalidTransition(locked.state, new, locked.allowed_transitions())
            if check_role and not locked.may_move(by, new):
                raise TransitionForbidden(
                    f"only a DRM may move {locked.uid} from {locked.state} to {new}"
                    + ("" if locked.is_assigned_to(by) else " (it is not assigned to you)")
                )
            override = ""
            if items := preconditions.missing(locked, new):
                if not override_reason.strip():
                    raise preconditions.ChecklistIncomplete(new, items)
                if not user_is_manager(by):
                    raise TransitionForbidden("only a DRM may override the checklist")
                override = f"{override_reason.strip()} (missing: {'; '.join(items)})"
            if new == MousState.BLOCKED and not note.strip():
                raise ValidationError({"note": "Blocking needs a reason."})
            if new == MousState.ASSIGNED and locked.assignee_id is None:
                raise ValidationError({"to": "Assign a reducer first: ASSIGNED needs an assignee."})
            if new == MousState.NEW and locked.assignee_id is not None:
                raise ValidationError({"to": "Unassign the reducer to return the MOUS to NEW."})
            change = StateChange.objects.create(
                mous=locked,
                old_state=locked.state,
                new_state=new,
                changed_by=by,
                note=note,
                checklist_override=override,
            )
            # Listeners (the JIRA ticket comment) write in this same transaction: no move
            # without its comment.
            mous_state_changed.send(sender=Mous, change=change)
            locked.blocked_from = locked.state if new == MousState.BLOCKED else ""
            locked.blocked_reason = note if new == MousState.BLOCKED else ""
            locked.state, locked.state_changed_at = new, change.created_at
            locked.version += 1
            locked.save(
                update_fields=["state", "state_changed_at", "blocked_from", "blocked_reason", "version"]
            )
        for field in ("state", "state_changed_at", "blocked_from", "blocked_reason", "version"):
            setattr(self, field, getattr(locked, field))
        return change


TRANSITION_FIELDS = ["state", "state_changed_at", "blocked_from", "blocked_reason", "version"]


class StaleVersion(PreconditionFailed):
    """Optimistic-lock failure: the client edited an older version of the row (HTTP 412)."""

    def __init__(self, current: int, expected: int) -> None:
        self.current, self.expected = current, expected
        super().__init__(f"the MOUS changed meanwhile (version {current}, you had {expected}); reload it")

    def details(self) -> dict:
        return {"version": self.current}


class StateChange(models.Model):
    """One row per lifecycle move: the audit trail behind the whiteboard and the timeline."""

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="state_changes")
    old_state = models.CharField(max_length=16, choices=MousState.choices)
    new_state = models.CharField(max_length=16, choices=MousState.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    # A DRM's reason for moving although the checklist was not complete, and what was missing.
    checklist_override = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.mous}: {self.old_state} -> {self.new_state}"


class ExecutionBlock(models.Model):
    """One observation of a MOUS; calibrated in its own Calibration_<uid tail> folder."""

    class DataStatus(models.TextChoices):
        EXPECTED = "expected", "Expected (not yet on disk)"
        PRESENT = "present", "Present"
        MISSING = "missing", "Missing"

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="execution_blocks")
    uid = models.CharField("EB uid", max_length=64, unique=True, validators=[validate_alma_uid])
    observed_at = models.DateTimeField(null=True, blank=True)
    data_status = models.CharField(max_length=10, choices=DataStatus.choices, default=DataStatus.EXPECTED)
    # The raw data (ASDM or MS) path relative to the EB's calibration folder, e.g. uid___A002_X1_X2.ms.
    # Set only by the data ingest (never by an API client); the constraint keeps it inside the folder.
    data_name = models.CharField(max_length=200, blank=True, validators=[validate_data_name])
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["mous", "observed_at", "uid"]
        verbose_name = "execution block"
        constraints = [
            models.CheckConstraint(
                condition=~(
                    models.Q(data_name__startswith="/")
                    | models.Q(data_name="..")
                    | models.Q(data_name__startswith="../")
                    | models.Q(data_name__contains="/../")
                    | models.Q(data_name__endswith="/..")
                ),
                name="eb_data_name_inside_folder",
            ),
        ]

    def __str__(self) -> str:
        return self.uid

    @property
    def uid_tail(self) -> str:
        return self.uid.rsplit("/", 1)[-1]

    @property
    def folder_name(self) -> str:
        """Calibration_<last part of the EB uid> (the seeds' naming)."""
        return f"Calibration_{self.uid_tail}"

    @property
    def ms_name(self) -> str:
        """The MS the standard script imports to: uid___A002_X1_X2.ms."""
        return f"{uid_to_folder(self.uid)}.ms"


class Assignment(models.Model):
    """Assignment history: who reduced the MOUS, from when to when, and who decided it."""

    mous = models.ForeignKey(Mous, on_delete=models.CASCADE, related_name="assignments")
    reducer = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="assignments")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-assigned_at", "-pk"]
        constraints = [
            # At most one open assignment per MOUS: the database backs the service's rule.
            models.UniqueConstraint(
                fields=["mous"],
                condition=models.Q(ended_at__isnull=True),
                name="assignment_one_open_per_mous",
            )
        ]

    def __str__(self) -> str:
        return f"{self.mous} -> {self.reducer}"


# JIRA rows (webhook deliveries, comment outbox) live in their own module of this app.
# API tokens (stored hashed) and failed sign-in counters: assignments/auth.py.
from assignments.auth import ApiToken, LoginFailure  # noqa: E402, F401
from assignments.jira.models import JiraAccount, OutboxComment, WebhookDelivery  # noqa: E402, F401
