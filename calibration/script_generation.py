"""Generate an EB's (or MOUS's) standard script, as a service: inspect the data in CASA
(worker side, calibration.incasa.inspect_ms), then write the text (calibration.standard_scripts)
and store it as a script version."""

import concurrent.futures
from datetime import timedelta
from functools import partial
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock
from calibration import casa, catalogue, standard_scripts, task_names
from calibration.incasa.events import SUMMARY_MARKER
from calibration.models import DataSummary, Script, ScriptGeneration, ScriptVersion
from calibration.rawdata import raw_data
from calibration.scripts import script_get_or_create, script_version_create
from qa2portal.errors import Conflict

INSPECT_MODULE = "calibration.incasa.inspect_ms"
INSPECT_TIMEOUT = 1800


class GenerationFailed(Conflict, RuntimeError):
    """The data could not be read to generate a script (409)."""


def _ms_to_inspect(eb: ExecutionBlock) -> Path | None:
    """The working MS when step 0 has made it, else the raw MS; None for an ASDM or UVFITS."""
    folder = eb_folder(eb)
    working = folder / eb.ms_name
    if (working / "table.dat").exists():
        return working
    raw = raw_data(eb)
    if raw.kind == "ms" and (folder / raw.path / "table.dat").exists():
        return folder / raw.path
    return None


def data_summary_refresh(eb: ExecutionBlock) -> dict:
    """Read the EB's MS in a CASA subprocess and store the summary.

    An ASDM or UVFITS has no MS to read until step 0 has run: its summary is the one the
    ingest check stored (it imported the data into a scratch MS to read it).
    """
    ms = _ms_to_inspect(eb)
    if ms is None:
        stored = DataSummary.objects.filter(execution_block=eb).first()
        if stored is not None:
            return stored.summary
        raise GenerationFailed(
            f"{eb.uid}: no MS to read ({eb.ms_name} is not in the EB folder and the raw data "
            f"{eb.data_name or '(none)'} is not an MS); run step 0 (the import) first"
        )
    try:
        summary, _ = casa.run_casa_json(
            INSPECT_MODULE, SUMMARY_MARKER, cwd=eb_folder(eb), timeout=INSPECT_TIMEOUT, args=[str(ms)]
        )
    except casa.CasaScriptFailed as exc:
        raise GenerationFailed(f"reading {ms.name} failed: {exc}") from exc
    DataSummary.objects.update_or_create(
        execution_block=eb, defaults={"summary": summary, "created_at": timezone.now()}
    )
    return summary


@transaction.atomic
def script_generate_request(*, eb: ExecutionBlock, by) -> ScriptGeneration:
    """Queue the generation of `eb`'s standard calibration script on a worker."""
    if eb.data_status != ExecutionBlock.DataStatus.PRESENT:
        raise GenerationFailed(f"EB {eb.uid} has no data on disk yet ({eb.get_data_status_display()})")
    generation = ScriptGeneration.objects.create(execution_block=eb, requested_by=by)
    transaction.on_commit(partial(current_app.send_task, task_names.SCRIPT_GENERATE, (generation.pk,)))
    return generation


ACTIVE_GENERATION = (ScriptGeneration.Status.QUEUED, ScriptGeneration.Status.RUNNING)


def script_generate(*, generation_id: int) -> ScriptGeneration:
    """The task body: inspect the data, write the script as a new GENERATED version.

    Like a run: claimed with a heartbeat that the reaper watches, and ended only from RUNNING,
    so a generation the reaper failed stays FAILED (and makes no version) when its worker is late.
    """
    generation = ScriptGeneration.objects.select_related("execution_block__mous").get(pk=generation_id)
    now = timezone.now()
    claimed = ScriptGeneration.objects.filter(pk=generation.pk, status__in=ACTIVE_GENERATION).update(
        status=ScriptGeneration.Status.RUNNING, heartbeat_at=now, started_at=generation.started_at or now
    )
    if not claimed:
        return generation
    eb = generation.execution_block
    try:
        summary = _with_heartbeat(generation, data_summary_refresh, eb)
        with transaction.atomic():
            locked = ScriptGeneration.objects.select_for_update().get(pk=generation.pk)
            if locked.status != ScriptGeneration.Status.RUNNING:
                return locked  # the reaper ended it meanwhile
            version = calibration_script_create(eb=eb, summary=summary, by=generation.requested_by)
            _generation_finish(locked, ScriptGeneration.Status.DONE, version=version)
    except Exception as exc:
        _generation_finish(generation, ScriptGeneration.Status.FAILED, error=str(exc))
    generation.refresh_from_db()
    return generation


def _generation_finish(generation: ScriptGeneration, status: str, **fields) -> bool:
    """RUNNING -> DONE/FAILED, never over a final state (one conditional UPDATE)."""
    return bool(
        ScriptGeneration.objects.filter(pk=generation.pk, status=ScriptGeneration.Status.RUNNING).update(
            status=status, finished_at=timezone.now(), **fields
        )
    )


def _with_heartbeat(generation: ScriptGeneration, work, *args):
    """`work(*args)` in a thread while this one touches the generation's heartbeat."""

    def call():
        try:
            return work(*args)
        finally:
            connection.close()  # the thread's own database connection

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(call)
        while True:
            try:
                return future.result(timeout=settings.RUN_HEARTBEAT_SECONDS)
            except concurrent.futures.TimeoutError:
                ScriptGeneration.objects.filter(
                    pk=generation.pk, status=ScriptGeneration.Status.RUNNING
                ).update(heartbeat_at=timezone.now())


def generations_reap_stale(*, stale_after: int | None = None) -> list[int]:
    """FAIL every RUNNING generation whose heartbeat stopped (its worker died), as for runs."""
    limit = timezone.now() - timedelta(seconds=stale_after or settings.RUN_STALE_AFTER_SECONDS)
    reaped = []
    for generation in ScriptGeneration.objects.filter(
        status=ScriptGeneration.Status.RUNNING, heartbeat_at__lt=limit
    ):
        seen = timezone.localtime(generation.heartbeat_at).strftime("%H:%M:%S")
        done = ScriptGeneration.objects.filter(
            pk=generation.pk, status=ScriptGeneration.Status.RUNNING, heartbeat_at__lt=limit
        ).update(
            status=ScriptGeneration.Status.FAILED,
            error=f"worker lost (no heartbeat since {seen})",
            finished_at=timezone.now(),
        )
        if done:
            reaped.append(generation.pk)
    return reaped


def calibration_script_create(*, eb: ExecutionBlock, summary: dict, by) -> ScriptVersion:
    text = standard_scripts.calibration_script(
        summary, ms=eb.ms_name, raw=raw_data(eb), catalogue=catalogue.for_data(summary)
    )
    refant, _ = standard_scripts.reference_antenna(summary)
    script = script_get_or_create(kind=Script.Kind.CALIBRATION, mous=eb.mous, eb=eb)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.GENERATED,
        by=by,
        note=f"standard script generated from the data (refant {refant})",
    )
