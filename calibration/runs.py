"""The run lifecycle: queue (create, re-run, from scratch), claim and execute in the worker, cancel, reap."""

import logging
from datetime import timedelta
from functools import partial
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assignments.datafiles import eb_folder, inside_data_root, mous_folder
from assignments.models import ExecutionBlock, Mous, MousState
from assignments.staging import mous_stage
from calibration import task_names
from calibration.models import Run, RunStep, Script, ScriptTampered, ScriptVersion
from calibration.rawdata import raw_data_is_separate
from qa2portal.errors import Conflict

log = logging.getLogger(__name__)

# A run may start while the MOUS is being processed; ASSIGNED moves on to CALIBRATING.
IMAGING_FOLDER = "Imaging"
IMAGING_KINDS = frozenset({Script.Kind.IMAGING_PREP, Script.Kind.IMAGING})
RUNNABLE_STATES = frozenset({MousState.ASSIGNED, MousState.CALIBRATING, MousState.IMAGING})
ACTIVE_RUN_STATES = (Run.Status.QUEUED, Run.Status.RUNNING)


class RunRefused(Conflict, ValueError):
    """A run that cannot start (no data, unknown step, busy folder, wrong MOUS state): 409."""


def run_folder_for(version: ScriptVersion) -> Path:
    script = version.script
    if script.kind == Script.Kind.CALIBRATION:
        assert script.execution_block is not None, (
            "a calibration script has an EB (script_calibration_has_eb)"
        )
        return eb_folder(script.execution_block)
    if script.kind == Script.Kind.COMBINATION:
        return combination_folder(script.mous)
    return inside_data_root(mous_folder(script.mous) / IMAGING_FOLDER)


def combination_folder(mous: Mous) -> Path:
    """Combination/calibrated (lower case, the seeds' name): where the EBs' splits are
    combined and the combination script runs."""
    return inside_data_root(mous_folder(mous) / "Combination" / "calibrated")


def select_steps(version: ScriptVersion, requested: list[int] | None) -> list[dict]:
    steps = version.parsed.get("steps", [])
    if not requested:
        return steps
    known = {s["number"] for s in steps}
    unknown = sorted(set(requested) - known)
    if unknown:
        raise RunRefused(f"unknown step number(s) {unknown}: {version} has steps {sorted(known)}")
    wanted = set(requested)
    return [s for s in steps if s["number"] in wanted]


def _check_runnable(version: ScriptVersion, mous: Mous, folder: Path) -> None:
    if version.is_python2:
        raise RunRefused(f"{version} is Python 2: create its Python 3 conversion and run that instead")
    if not version.parsed.get("steps"):
        raise RunRefused(f"{version} has no steps to run")
    if version.blocked:
        first = version.blocking_findings[0]["message"]
        raise RunRefused(
            f"{version} has {len(version.blocking_findings)} error-level finding(s) ({first}): fix the "
            "script, or confirm on the version page that it should run as it is"
        )
    script = version.script
    if script.kind == Script.Kind.CALIBRATION:
        eb = script.execution_block
        assert eb is not None, "a calibration script has an EB (script_calibration_has_eb)"
        if eb.data_status != ExecutionBlock.DataStatus.PRESENT:
            raise RunRefused(f"EB {eb.uid} has no data on disk yet ({eb.get_data_status_display()})")
    check_folder_free(mous, folder)


def check_folder_free(mous: Mous, folder: Path) -> None:
    """Any run: the MOUS is being processed and no other run works in the same folder
    (casacore locks would make the two block each other)."""
    if mous.state not in RUNNABLE_STATES:
        raise RunRefused(
            f"{mous.uid} is {mous.state}: runs are allowed while it is " + ", ".join(sorted(RUNNABLE_STATES))
        )
    busy = Run.objects.filter(folder=str(folder), status__in=ACTIVE_RUN_STATES).first()
    if busy is not None:
        raise RunRefused(f"run {busy.pk} is {busy.status} in {folder.name}: wait for it or cancel it")


@transaction.atomic
def run_create(
    *,
    version: ScriptVersion,
    steps: list[int] | None,
    by,
    step_timeout_seconds: int = 0,
    from_scratch: bool = False,
) -> Run:
    """Queue a run of `steps` (empty: all) of `version`; the task is sent after commit."""
    mous = Mous.objects.select_for_update().get(pk=version.script.mous_id)
    mous_stage(mous)
    folder = run_folder_for(version)
    _check_runnable(version, mous, folder)
    chosen = select_steps(version, steps)
    run = Run.objects.create(
        script_version=version,
        mous=mous,
        execution_block=version.script.execution_block,
        selected_steps=sorted({s["number"] for s in chosen}) if steps else [],
        parameters={"from_scratch": True} if from_scratch else {},
        folder=str(folder),
        step_timeout_seconds=step_timeout_seconds,
        created_by=by,
    )
    RunStep.objects.bulk_create(RunStep(run=run, number=s["number"], title=s["title"]) for s in chosen)
    if mous.state == MousState.ASSIGNED:
        mous.transition(MousState.CALIBRATING, by=by, note=f"run {run.pk} queued")
    if version.script.kind in IMAGING_KINDS and mous.state == MousState.CALIBRATING:
        mous.transition(MousState.IMAGING, by=by, note=f"imaging run {run.pk} queued")
    enqueue(run)
    return run


def calibration_version_of(eb: ExecutionBlock) -> ScriptVersion | None:
    script = Script.objects.filter(execution_block=eb, kind=Script.Kind.CALIBRATION).first()
    return script.latest_version() if script is not None else None


@transaction.atomic
def runs_calibrate_all(*, mous: Mous, by) -> list[Run]:
    """Start a run of every step of each EB's latest calibration script version, all at once.

    Every EB is checked first; when any is refused nothing starts (one transaction: a run
    refused half-way rolls the others back, and their tasks are only sent after commit).
    The runs go to the casa queue and run in parallel, one per worker slot."""
    ebs = list(mous.execution_blocks.order_by("uid"))
    if not ebs:
        raise RunRefused(f"{mous.uid} has no EBs")
    problems, versions = [], []
    for eb in ebs:
        version = calibration_version_of(eb)
        if version is None:
            problems.append(f"EB {eb.uid} has no calibration script (generate or upload one)")
        if eb.data_status != ExecutionBlock.DataStatus.PRESENT:
            problems.append(f"EB {eb.uid} has no data on disk yet ({eb.get_data_status_display()})")
        versions.append(version)
    if problems:
        raise RunRefused("nothing was started: " + "; ".join(problems))
    started = []
    for eb, version in zip(ebs, versions, strict=True):
        assert version is not None
        try:
            started.append(run_create(version=version, steps=[], by=by))
        except RunRefused as exc:
            raise RunRefused(f"nothing was started: EB {eb.uid}: {exc}") from exc
    return started


def enqueue(run: Run) -> None:
    """Send the run to a CASA worker once the transaction commits."""
    transaction.on_commit(
        partial(current_app.send_task, task_names.RUN_EXECUTE, (run.pk,), queue=settings.CASA_QUEUE)
    )


def run_rerun(*, run: Run, from_step: int | None, by) -> Run:
    """A new run of the same version: all of the original selection, or from `from_step` on."""
    numbers = list(run.steps.order_by("pk").values_list("number", flat=True))
    if from_step is not None:
        if from_step not in numbers:
            raise RunRefused(f"step {from_step} was not part of run {run.pk} (steps {numbers})")
        numbers = numbers[numbers.index(from_step) :]
    if run.script_version is None:
        raise RunRefused(
            f"run {run.pk} is a maintenance run ({run.get_purpose_display()}): it has no script to re-run"
        )
    return run_create(version=run.script_version, steps=numbers, by=by)


def run_from_scratch(*, version: ScriptVersion, by) -> Run:
    """Remove what the import step made (<ms>, <ms>.flagversions), then run every step."""
    eb = version.script.execution_block
    if eb is None:
        raise RunRefused("re-running from scratch applies to a calibration script")
    if not raw_data_is_separate(eb):
        raise RunRefused(
            f"the raw data of {eb.uid} is the working MS itself ({eb.ms_name}): "
            "removing it would lose the data"
        )
    return run_create(version=version, steps=[], by=by, from_scratch=True)


def run_cancel(*, run: Run, by) -> Run:
    """Cancel: a queued run ends now; a running one is killed by its worker within seconds."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.is_terminal:
            raise RunRefused(f"run {run.pk} already ended ({locked.status})")
        locked.cancel_requested = True
        locked.save(update_fields=["cancel_requested"])
        if locked.status == Run.Status.QUEUED and locked.finish(
            Run.Status.CANCELLED, f"cancelled by {by} before it started"
        ):
            locked.steps.update(status=RunStep.Status.NOT_RUN)
    run.refresh_from_db()
    return run


def run_claim(run_id: int) -> Run | None:
    """QUEUED/RUNNING -> RUNNING for this delivery, or None when it must not run (again).

    With acks_late + reject_on_worker_lost, Celery redelivers a task whose worker died; a
    RUNNING run is then restarted from its first selected step, up to MAX_ATTEMPTS.
    """
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.is_terminal:
            log.info("run %s is already %s: delivery ignored", run.pk, run.status)
            return None
        if run.cancel_requested:
            run.finish(Run.Status.CANCELLED, "cancelled before it started")
            return None
        if run.attempts + 1 > Run.MAX_ATTEMPTS:
            run.finish(Run.Status.FAILED, f"worker lost x{Run.MAX_ATTEMPTS}: giving up")
            run.steps.exclude(status=RunStep.Status.SUCCEEDED).update(status=RunStep.Status.NOT_RUN)
            return None
        now = timezone.now()
        run.move(
            Run.Status.RUNNING, attempts=run.attempts + 1, heartbeat_at=now, started_at=run.started_at or now
        )
        run.steps.update(
            status=RunStep.Status.PENDING, started_at=None, finished_at=None, error="", output_tail=""
        )
    return run


def run_execute(run_id: int) -> None:
    """The Celery task's body: claim, verify the script, run CASA, record the end. Never leaves RUNNING.

    Everything that touches the folder happens under the folder's lock, held until the CASA
    process is dead. Every end goes through Run.finish, so a run the reaper (or a cancel)
    already ended keeps its state.
    """
    from calibration import engine, maintenance

    run = run_claim(run_id)
    if run is None:
        return
    try:
        with engine.folder_lock(run):
            if run.parameters.get("from_scratch"):
                maintenance.remove_imported_data(run)
            if run.script_version is not None:
                data, name = run.script_version.verify(), run.script_version.script.filename
            else:
                data, name = maintenance.script_for(run)
            outcome = engine.execute(run, data, name)
    except (ScriptTampered, engine.FolderBusy) as exc:
        if run.finish(Run.Status.FAILED, str(exc)):
            run.steps.update(status=RunStep.Status.NOT_RUN)
        return
    except Exception as exc:
        log.exception("run %s crashed in the worker", run.pk)
        if run.finish(Run.Status.FAILED, f"worker error: {exc!r}"):
            run.steps.filter(status__in=[RunStep.Status.PENDING, RunStep.Status.RUNNING]).update(
                status=RunStep.Status.NOT_RUN
            )
        raise
    if not run.finish(outcome.status, outcome.error, outcome.exit_signal):
        log.warning(
            "run %s ended %s elsewhere; the worker's %s is not recorded", run.pk, run.status, outcome.status
        )


def reap_stale_runs(*, stale_after: int | None = None) -> list[int]:
    """FAIL every RUNNING run whose heartbeat stopped (its worker died): never stuck in RUNNING."""
    limit = timezone.now() - timedelta(seconds=stale_after or settings.RUN_STALE_AFTER_SECONDS)
    reaped = []
    for run_id in Run.objects.filter(status=Run.Status.RUNNING, heartbeat_at__lt=limit).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            run = Run.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None or run.status != Run.Status.RUNNING:
                continue
            if run.heartbeat_at is None or run.heartbeat_at >= limit:  # beat again since the query
                continue
            seen = timezone.localtime(run.heartbeat_at).strftime("%H:%M:%S")
            if not run.finish(Run.Status.FAILED, f"worker lost (no heartbeat since {seen})"):
                continue
            run.steps.filter(status=RunStep.Status.RUNNING).update(
                status=RunStep.Status.FAILED, error="worker lost", finished_at=timezone.now()
            )
            run.steps.filter(status=RunStep.Status.PENDING).update(status=RunStep.Status.NOT_RUN)
        reaped.append(run_id)
    return reaped
