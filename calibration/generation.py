"""Generate the standard scripts: inspect the data in CASA (worker side), then write the script."""

from functools import partial
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from assignments.models import ExecutionBlock, Mous
from assignments.services import eb_folder
from calibration import casa, generator
from calibration.incasa.events import SUMMARY_MARKER
from calibration.models import DataSummary, Script, ScriptGeneration, ScriptVersion
from calibration.rawdata import raw_data
from calibration.services import script_get_or_create, script_version_create

INSPECT_CODE = "from calibration.incasa.inspect_ms import main\nmain()\n"
INSPECT_TIMEOUT = 1800


class GenerationFailed(RuntimeError):
    """The data could not be read to generate a script."""


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
            INSPECT_CODE, SUMMARY_MARKER, cwd=eb_folder(eb), timeout=INSPECT_TIMEOUT, args=[str(ms)]
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
    from calibration.tasks import script_generate as script_generate_task

    transaction.on_commit(partial(script_generate_task.delay, generation.pk))
    return generation


def script_generate(*, generation_id: int) -> ScriptGeneration:
    """The task body: inspect the data, write the script as a new GENERATED version."""
    generation = ScriptGeneration.objects.select_related("execution_block__mous").get(pk=generation_id)
    if generation.status in (ScriptGeneration.Status.DONE, ScriptGeneration.Status.FAILED):
        return generation
    ScriptGeneration.objects.filter(pk=generation.pk).update(status=ScriptGeneration.Status.RUNNING)
    eb = generation.execution_block
    try:
        summary = data_summary_refresh(eb)
        version = calibration_script_create(eb=eb, summary=summary, by=generation.requested_by)
    except Exception as exc:
        generation.status, generation.error = ScriptGeneration.Status.FAILED, str(exc)
        generation.finished_at = timezone.now()
        generation.save(update_fields=["status", "error", "finished_at"])
        return generation
    generation.status, generation.version, generation.finished_at = (
        ScriptGeneration.Status.DONE,
        version,
        timezone.now(),
    )
    generation.save(update_fields=["status", "version", "finished_at"])
    return generation


def calibration_script_create(*, eb: ExecutionBlock, summary: dict, by) -> ScriptVersion:
    text = generator.calibration_script(summary, ms=eb.ms_name, raw=raw_data(eb))
    refant, _ = generator.reference_antenna(summary)
    script = script_get_or_create(kind=Script.Kind.CALIBRATION, mous=eb.mous, eb=eb)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.GENERATED,
        by=by,
        note=f"standard script generated from the data (refant {refant})",
    )


def imaging_script_create(*, mous: Mous, by) -> ScriptVersion:
    """scriptForImaging.py for the MOUS, from the summaries of its EBs (no CASA needed)."""
    ebs = list(mous.execution_blocks.select_related("data_summary"))
    summaries = [eb.data_summary.summary for eb in ebs if hasattr(eb, "data_summary")]
    if not summaries:
        raise GenerationFailed(f"{mous.uid}: generate the calibration scripts first (their data summaries)")
    vislist = [f"../{eb.folder_name}/{eb.ms_name}.split.cal" for eb in ebs if hasattr(eb, "data_summary")]
    text = generator.imaging_script(summaries, vislist=vislist, line_goal=mous.goal == Mous.Goal.LINE)
    script = script_get_or_create(kind=Script.Kind.IMAGING, mous=mous)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.GENERATED,
        by=by,
        note="imaging script generated",
    )
