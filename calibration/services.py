"""Calibration workflows: script versions, generation, runs (create, execute, cancel, reap)."""

import difflib
import hashlib
import logging
from functools import partial
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assignments.datafiles import UnsafePath, listdir_confined, read_confined
from assignments.models import ExecutionBlock, Mous, MousState
from assignments.services import eb_folder, inside_data_root, mous_folder, mous_stage
from calibration import scriptparse, task_names
from calibration.models import Run, RunStep, Script, ScriptTampered, ScriptVersion, script_storage_path
from calibration.rawdata import raw_data_is_separate
from qa2portal.errors import Conflict, DomainError

log = logging.getLogger(__name__)

# A run may start while the MOUS is being processed; ASSIGNED moves on to CALIBRATING.
RUNNABLE_STATES = frozenset({MousState.ASSIGNED, MousState.CALIBRATING, MousState.IMAGING})
ACTIVE_RUN_STATES = (Run.Status.QUEUED, Run.Status.RUNNING)
FLAG_VERSION_LIST_MAX_BYTES = 1024 * 1024  # a real list is a few hundred bytes


class InvalidScript(DomainError, ValueError):
    """An upload that is not a script we accept (type, size, encoding, syntax): 400."""


class ScriptTooLarge(InvalidScript):
    """A script over SCRIPT_MAX_BYTES: 413."""

    status = 413


class RunRefused(Conflict, ValueError):
    """A run that cannot start (no data, unknown step, busy folder, wrong MOUS state): 409."""


# --- scripts -----------------------------------------------------------------------------
def script_get_or_create(*, kind: str, mous: Mous, eb: ExecutionBlock | None = None) -> Script:
    if kind == Script.Kind.CALIBRATION and eb is None:
        raise InvalidScript("a calibration script belongs to an execution block")
    script, _ = Script.objects.get_or_create(kind=kind, mous=mous, execution_block=eb)
    return script


def size_text(size: int) -> str:
    """A byte count as people write it: 1 MB, 512 KB, 1.5 GB (binary units), 900 bytes."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


def check_script_size(name: str, size: int) -> None:
    """The one check of a script's size (SCRIPT_MAX_BYTES): ScriptTooLarge when it is over.
    The pages and the API call it with the upload's size before reading it; the service with
    the bytes it was given."""
    if size > settings.SCRIPT_MAX_BYTES:
        raise ScriptTooLarge(
            f"{name}: {size:,} bytes is over the {size_text(settings.SCRIPT_MAX_BYTES)} limit"
        )


def validate_upload(data: bytes, filename: str) -> str:
    """The script text, or InvalidScript naming what is wrong (nothing is stored before this)."""
    name = Path(filename or "").name
    if not name.endswith(".py"):
        raise InvalidScript(f"{name or 'the file'}: only Python scripts (.py) are accepted")
    check_script_size(name, len(data))
    if not data.strip():
        raise InvalidScript(f"{name}: the file is empty")
    if b"\x00" in data:
        raise InvalidScript(f"{name}: binary content (NUL bytes) - a script is UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidScript(f"{name}: not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})") from None


@transaction.atomic
def script_version_create(
    *,
    script: Script,
    text: str,
    source: str,
    by,
    note: str = "",
    original_name: str = "",
    parent: ScriptVersion | None = None,
) -> ScriptVersion:
    """Store `text` as the next immutable version of `script` (content-addressed, written once)."""
    data = text.encode("utf-8")
    parsed = scriptparse.parse_script(text)
    if parsed.syntax_error:
        raise InvalidScript(f"not valid Python ({parsed.syntax_error}); nothing was stored")
    sha = hashlib.sha256(data).hexdigest()
    path = script_storage_path(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            with path.open("xb") as handle:  # never overwrite: identical content has an identical name
                handle.write(data)
        except FileExistsError:
            pass
    locked = Script.objects.select_for_update().get(pk=script.pk)
    last = locked.versions.order_by("-number").first()
    return ScriptVersion.objects.create(
        script=locked,
        number=(last.number + 1) if last else 1,
        sha256=sha,
        size=len(data),
        source=source,
        author=by,
        note=note,
        original_name=original_name[:255],
        parent=parent if parent is not None else last,
        parsed=parsed.to_json(),
    )


def script_upload(
    *, kind: str, mous: Mous, eb: ExecutionBlock | None, data: bytes, filename: str, by, note: str = ""
) -> ScriptVersion:
    """Validate an uploaded script and store it as a new version."""
    text = validate_upload(data, filename)
    script = script_get_or_create(kind=kind, mous=mous, eb=eb)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.UPLOADED,
        by=by,
        note=note,
        original_name=filename,
    )


def script_convert_python2(*, version: ScriptVersion, by) -> ScriptVersion:
    """A new version holding the Python 3 conversion of a Python 2 version (for review)."""
    converted = scriptparse.convert_python2(version.text())
    if converted is None:
        raise InvalidScript(f"{version} is not a Python 2 script that can be converted")
    return script_version_create(
        script=version.script,
        text=converted,
        source=ScriptVersion.Source.CONVERTED,
        by=by,
        note=f"Python 3 conversion of v{version.number} (lib2to3); review the diff before running",
        parent=version,
    )


def version_diff(old: ScriptVersion, new: ScriptVersion) -> dict:
    """Unified diff of two versions and the steps whose lines changed."""
    a, b = old.text().splitlines(), new.text().splitlines()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    changed_new_lines: set[int] = set()
    changed_old_lines: set[int] = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changed_old_lines.update(range(i1 + 1, max(i2, i1 + 1) + 1))
            changed_new_lines.update(range(j1 + 1, max(j2, j1 + 1) + 1))

    def touched(version: ScriptVersion, lines: set[int]) -> list[int]:
        return [
            s["number"]
            for s in version.parsed.get("steps", [])
            if any(s["start_line"] <= n <= s["end_line"] for n in lines)
        ]

    changed_steps = sorted(set(touched(old, changed_old_lines)) | set(touched(new, changed_new_lines)))
    unified = list(difflib.unified_diff(a, b, f"v{old.number}", f"v{new.number}", lineterm="", n=3))
    return {
        "unified": unified,
        "changed_steps": changed_steps,
        "opcodes": matcher.get_opcodes(),
        "a": a,
        "b": b,
    }


# --- runs --------------------------------------------------------------------------------
def run_folder_for(version: ScriptVersion) -> Path:
    script = version.script
    if script.kind == Script.Kind.CALIBRATION:
        return eb_folder(script.execution_block)
    sub = "Imaging" if script.kind == Script.Kind.IMAGING else "Combination"
    return inside_data_root(mous_folder(script.mous) / sub)


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
    script = version.script
    if script.kind == Script.Kind.CALIBRATION:
        eb = script.execution_block
        if eb.data_status != ExecutionBlock.DataStatus.PRESENT:
            raise RunRefused(f"EB {eb.uid} has no data on disk yet ({eb.get_data_status_display()})")
    _check_folder_free(mous, folder)


def _check_folder_free(mous: Mous, folder: Path) -> None:
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
    _enqueue(run)
    return run


def _enqueue(run: Run) -> None:
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


def runs_reap_stale(*, stale_after: int | None = None) -> list[int]:
    """FAIL every RUNNING run whose heartbeat stopped (its worker died): never stuck in RUNNING."""
    limit = timezone.now() - timezone.timedelta(seconds=stale_after or settings.RUN_STALE_AFTER_SECONDS)
    reaped = []
    for run_id in Run.objects.filter(status=Run.Status.RUNNING, heartbeat_at__lt=limit).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            run = Run.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None or run.status != Run.Status.RUNNING or run.heartbeat_at >= limit:
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


def flag_versions(eb: ExecutionBlock) -> dict[str, list[dict[str, str]]]:
    """The saved flag versions of every MS in the EB folder: {ms name: [{name, comment}]}.

    Read without following links (the folder is written by uploaded scripts): a .flagversions
    that is a link, or whose FLAG_VERSION_LIST is one, is left out and logged."""
    try:
        folder = eb_folder(eb)
        entries = listdir_confined(base=folder)
    except (OSError, UnsafePath):
        return {}
    found: dict[str, list[dict[str, str]]] = {}
    for entry in entries:
        if entry.kind != "folder" or not entry.name.endswith(".flagversions"):
            continue
        try:
            text = read_confined(
                f"{entry.name}/FLAG_VERSION_LIST", base=folder, limit=FLAG_VERSION_LIST_MAX_BYTES
            ).decode("utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except (OSError, UnsafePath) as exc:
            log.warning("flag versions of %s not read: %s", eb.folder_name, exc)
            continue
        versions = []
        for line in text.splitlines():
            name, _, comment = line.partition(":")
            if name.strip():
                versions.append({"name": name.strip(), "comment": comment.strip()})
        found[entry.name.removesuffix(".flagversions")] = versions
    return found


@transaction.atomic
def flagversion_restore(*, eb: ExecutionBlock, ms: str, version_name: str, by) -> Run:
    """Queue a run that restores flag version `version_name` of `ms` (flagmanager restore)."""
    available = flag_versions(eb)
    if ms not in available:
        raise RunRefused(f"{ms} has no saved flag versions in {eb.folder_name}")
    if version_name not in {v["name"] for v in available[ms]}:
        raise RunRefused(f"{ms} has no flag version {version_name!r}")
    mous = Mous.objects.select_for_update().get(pk=eb.mous_id)
    folder = eb_folder(eb)
    _check_folder_free(mous, folder)
    run = Run.objects.create(
        mous=mous,
        execution_block=eb,
        purpose=Run.Purpose.RESTORE_FLAGS,
        parameters={"ms": ms, "version": version_name},
        folder=str(folder),
        created_by=by,
    )
    RunStep.objects.create(run=run, number=0, title=f"Restore flag version {version_name} of {ms}")
    _enqueue(run)
    return run
