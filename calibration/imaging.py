"""Imaging of a MOUS, the calibration side: what is imaged, its copy into Imaging/, and the two
scripts (scriptForImagingPrep.py, scriptForImaging.py) as immutable versions that run in
Imaging/ through the same engine as every other script.

What is imaged: the combined MS of a multi-EB MOUS (Combination/calibrated/calibrated.ms, from
its latest successful combination run), else the one EB's calibrated split. The image QA and
its assessment against the request are the reports layer's.
"""

from functools import partial
from pathlib import Path

from celery import current_app
from django.db import transaction

from assignments.datafiles import eb_folder, inside_data_root, mous_folder
from assignments.models import Mous
from calibration import continuum, imaging_scripts, task_names
from calibration.combination import COMBINED_MS, SPLIT_SUFFIX, CopySource, latest_calibration_run, made_in
from calibration.imaging_names import PREPARED_MS
from calibration.models import CalibratedCopy, DataSummary, ImagingData, Run, Script, ScriptVersion
from calibration.runs import ACTIVE_RUN_STATES, IMAGING_FOLDER, RunRefused, combination_folder
from calibration.scripts import script_get_or_create, script_version_create
from calibration.standard_scripts import field_roles
from qa2portal.errors import Conflict


class ImagingRefused(Conflict, ValueError):
    """The MOUS cannot be imaged now (not calibrated, not combined, busy, not prepared): 409."""


def imaging_folder(mous: Mous) -> Path:
    return inside_data_root(mous_folder(mous) / IMAGING_FOLDER)


def latest_script_run(mous: Mous, kind: str) -> Run | None:
    return (
        Run.objects.filter(mous=mous, execution_block__isnull=True, script_version__script__kind=kind)
        .order_by("-created_at", "-pk")
        .first()
    )


def imaging_inputs(mous: Mous) -> tuple[list[CopySource], list[str]]:
    """What is copied into Imaging/, and why the MOUS cannot be imaged yet."""
    ebs = list(mous.execution_blocks.order_by("uid"))
    if not ebs:
        return [], [f"{mous.uid} has no EBs"]
    if len(ebs) > 1:
        run = latest_script_run(mous, Script.Kind.COMBINATION)
        if run is None or run.status != Run.Status.SUCCEEDED:
            state = "has no combination run" if run is None else f"combination run #{run.pk} is {run.status}"
            return [], [f"{mous.uid} has {len(ebs)} EBs and {state}: combine them first"]
        folder = combination_folder(mous)
        if not (folder / COMBINED_MS / "table.dat").is_file():
            return [], [f"{COMBINED_MS} is not in Combination/calibrated: run the combination script"]
        return [CopySource("combination", run.pk, folder, COMBINED_MS)], []
    eb = ebs[0]
    run = latest_calibration_run(eb)
    split = f"{eb.ms_name}{SPLIT_SUFFIX}"
    if run is None or run.status != Run.Status.SUCCEEDED:
        state = "no calibration run" if run is None else f"calibration run #{run.pk} is {run.status}"
        return [], [f"EB {eb.uid} is not calibrated: {state}"]
    if not (eb_folder(eb) / split / "table.dat").is_file():
        return [], [f"EB {eb.uid} is not calibrated: {split} is not in its folder"]
    return [CopySource(eb.uid, run.pk, eb_folder(eb), split)], []


def imaging_sources(mous: Mous) -> list[CopySource]:
    sources, problems = imaging_inputs(mous)
    if problems:
        raise ImagingRefused("; ".join(problems))
    return sources


def made_by_imaging(mous: Mous) -> list[str]:
    """What imaging made in Imaging/: copies, run products, scripts, logs, the prepared MS."""
    return made_in(
        mous,
        CalibratedCopy.Destination.IMAGING,
        imaging_folder(mous),
        {PREPARED_MS, f"{PREPARED_MS}.flagversions", f"{PREPARED_MS}.listobs", COMBINED_MS},
    )


def latest_copy(mous: Mous) -> CalibratedCopy | None:
    return CalibratedCopy.objects.filter(mous=mous, destination=CalibratedCopy.Destination.IMAGING).first()


@transaction.atomic
def imaging_copy_request(*, mous: Mous, by, from_scratch: bool = False) -> CalibratedCopy:
    """Queue the copy of the calibrated data into Imaging/ (refused with the reason)."""
    mous = Mous.objects.select_for_update().get(pk=mous.pk)
    imaging_sources(mous)
    active = CalibratedCopy.objects.filter(
        mous=mous, destination=CalibratedCopy.Destination.IMAGING, status__in=CalibratedCopy.ACTIVE
    ).first()
    if active is not None:
        raise ImagingRefused(f"copy {active.pk} is {active.get_status_display()}: wait for it")
    busy = Run.objects.filter(folder=str(imaging_folder(mous)), status__in=ACTIVE_RUN_STATES).first()
    if busy is not None:
        raise RunRefused(f"run {busy.pk} is {busy.status} in Imaging: wait for it or cancel it")
    copy = CalibratedCopy.objects.create(
        mous=mous, destination=CalibratedCopy.Destination.IMAGING, from_scratch=from_scratch, requested_by=by
    )
    transaction.on_commit(partial(current_app.send_task, task_names.CALIBRATED_COPY, (copy.pk,)))
    return copy


def _target_names(mous: Mous) -> list[str]:
    """The science targets, from the EBs' data summaries (intents, or names without intents)."""
    names: list[str] = []
    for summary in DataSummary.objects.filter(execution_block__mous=mous).order_by("execution_block__uid"):
        for f in field_roles(summary.summary).target:
            if f["name"] not in names:
                names.append(f["name"])
    return names


def prep_script_create(*, mous: Mous, by) -> ScriptVersion:
    """scriptForImagingPrep.py: from what the latest (done) copy put in Imaging/."""
    copy = latest_copy(mous)
    if copy is None or copy.status != CalibratedCopy.Status.DONE:
        raise ImagingRefused("copy the calibrated data into Imaging/ first")
    inputs = [name for item in copy.copied for name in item.get("names", [])]
    # Without the EBs' data summaries (a reducer's own script) the targets are not known here:
    # every field is kept, and the imaging data step picks the target intent from the MS.
    text = imaging_scripts.prep_script(inputs, _target_names(mous))
    script = script_get_or_create(kind=Script.Kind.IMAGING_PREP, mous=mous)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.GENERATED,
        by=by,
        note=f"imaging prep generated: {', '.join(inputs)} -> {PREPARED_MS}",
    )


def latest_imaging_data(mous: Mous) -> ImagingData | None:
    """What the latest successful prep run read from the MS it wrote."""
    run = latest_script_run(mous, Script.Kind.IMAGING_PREP)
    if run is None or run.status != Run.Status.SUCCEEDED:
        return None
    return ImagingData.objects.filter(run=run).first()


def request_of(mous: Mous) -> imaging_scripts.ImagingRequest:
    return imaging_scripts.ImagingRequest(
        goal=mous.goal,
        representative_frequency_ghz=mous.representative_frequency_ghz,
        rms_mjy=mous.requested_rms_mjy,
        rms_bandwidth_mhz=mous.rms_bandwidth_mhz,
    )


def continuum_channels(data: dict) -> list[continuum.ContinuumChannels]:
    found = []
    for spw in data["spws"]:
        spectrum = data["spectra"].get(str(spw["id"]))
        if spectrum:
            found.append(
                continuum.find_continuum(spw["id"], [float("nan") if v is None else v for v in spectrum])
            )
    return found


def imaging_script_create(*, mous: Mous, by) -> ScriptVersion:
    """scriptForImaging.py from the prepared data (read by the prep run) and the request."""
    data = latest_imaging_data(mous)
    if data is None:
        raise ImagingRefused(f"run scriptForImagingPrep.py first: {PREPARED_MS} is what is imaged")
    if "cannot_assess" in data.summary:
        raise ImagingRefused(f"{PREPARED_MS} could not be read: {data.summary['cannot_assess']}")
    if not data.summary.get("fields"):
        raise ImagingRefused(f"{PREPARED_MS} holds no target field")
    try:
        text = imaging_scripts.imaging_script(
            data.summary, request_of(mous), continuum_channels(data.summary)
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The summary comes out of the run's sandbox, where the reducer's script also ran: a
        # summary that is not what imaging_data writes is refused, not a server error.
        raise ImagingRefused(
            f"what run #{data.run_id} read from {PREPARED_MS} is not usable ({type(exc).__name__}: {exc}): "
            "run scriptForImagingPrep.py again"
        ) from None
    script = script_get_or_create(kind=Script.Kind.IMAGING, mous=mous)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.GENERATED,
        by=by,
        note=f"imaging script generated from {PREPARED_MS} (run #{data.run_id}) and the request",
    )
