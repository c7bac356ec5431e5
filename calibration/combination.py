"""Combination of a multi-EB MOUS, the calibration side: who may be combined, and what the copy
of each EB's calibrated split into Combination/calibrated takes (calibration.calibrated_copy
runs it: a worker task, with progress).

The fluxes (allFluxes), the edits and the combination script are reports.combination: they
read the fluxscale diagnostics, which live in the reports layer.

Only what a combination made is ever removed from Combination/calibrated: the names a copy
recorded, and the products and files of the combination runs (their script, logs).
"""

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from celery import current_app
from django.db import transaction

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, Mous
from calibration import task_names
from calibration.models import CalibratedCopy, Product, Run, Script
from calibration.runs import ACTIVE_RUN_STATES, RunRefused, combination_folder
from qa2portal.errors import Conflict

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 1.0
SPLIT_SUFFIX = ".split.cal"
FLUXSCALE_SUFFIX = ".split.fluxscale"
COMBINED_MS = "calibrated.ms"


class CombinationRefused(Conflict, ValueError):
    """The MOUS cannot be combined now (one EB, an EB not calibrated, busy): 409."""


@dataclass(frozen=True)
class CopySource:
    """One file or table to copy: `name` in `base`, on behalf of `owner` (an EB uid, or
    "combination"), made by run `run`."""

    owner: str
    run: int
    base: Path
    name: str


@dataclass(frozen=True)
class EbInput:
    eb: ExecutionBlock
    run: Run

    @property
    def split(self) -> str:
        return f"{self.eb.ms_name}{SPLIT_SUFFIX}"

    @property
    def fluxscale(self) -> str:
        return f"{self.eb.ms_name}{FLUXSCALE_SUFFIX}"


def latest_calibration_run(eb: ExecutionBlock) -> Run | None:
    return (
        Run.objects.filter(
            execution_block=eb,
            purpose=Run.Purpose.SCRIPT,
            script_version__script__kind=Script.Kind.CALIBRATION,
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def combination_inputs(mous: Mous) -> tuple[list[EbInput], list[str]]:
    """Each EB with its latest (succeeded) calibration run, and why the MOUS cannot be combined."""
    ebs = list(mous.execution_blocks.order_by("uid"))
    if len(ebs) < 2:
        return [], [f"{mous.uid} has {len(ebs)} EB: nothing to combine"]
    inputs, problems = [], []
    for eb in ebs:
        run = latest_calibration_run(eb)
        if run is None:
            problems.append(f"EB {eb.uid} is not calibrated: it has no calibration run")
        elif run.status != Run.Status.SUCCEEDED:
            problems.append(
                f"EB {eb.uid} is not calibrated: its latest calibration run #{run.pk} "
                f"is {run.get_status_display()}"
            )
        elif not (eb_folder(eb) / f"{eb.ms_name}{SPLIT_SUFFIX}" / "table.dat").is_file():
            problems.append(f"EB {eb.uid} is not calibrated: {eb.ms_name}{SPLIT_SUFFIX} is not in its folder")
        else:
            inputs.append(EbInput(eb, run))
    return inputs, problems


def require_combinable(mous: Mous) -> list[EbInput]:
    inputs, problems = combination_inputs(mous)
    if problems:
        raise CombinationRefused("; ".join(problems))
    return inputs


def _check_free(mous: Mous) -> None:
    active = CalibratedCopy.objects.filter(
        mous=mous, destination=CalibratedCopy.Destination.COMBINATION, status__in=CalibratedCopy.ACTIVE
    ).first()
    if active is not None:
        raise CombinationRefused(f"copy {active.pk} is {active.get_status_display()}: wait for it")
    busy = Run.objects.filter(folder=str(combination_folder(mous)), status__in=ACTIVE_RUN_STATES).first()
    if busy is not None:
        raise RunRefused(
            f"run {busy.pk} is {busy.status} in Combination/calibrated: wait for it or cancel it"
        )


@transaction.atomic
def combination_copy_request(*, mous: Mous, by, from_scratch: bool = False) -> CalibratedCopy:
    """Queue the copy of every EB's split into Combination/calibrated (refused with the reason)."""
    mous = Mous.objects.select_for_update().get(pk=mous.pk)
    require_combinable(mous)
    _check_free(mous)
    copy = CalibratedCopy.objects.create(
        mous=mous,
        destination=CalibratedCopy.Destination.COMBINATION,
        from_scratch=from_scratch,
        requested_by=by,
    )
    transaction.on_commit(partial(current_app.send_task, task_names.CALIBRATED_COPY, (copy.pk,)))
    return copy


def combination_sources(mous: Mous) -> list[CopySource]:
    """Each EB's `<ms>.split.cal` and, when there, its `<ms>.split.fluxscale`."""
    sources = []
    for item in require_combinable(mous):
        base = eb_folder(item.eb)
        names = [item.split] + ([item.fluxscale] if (base / item.fluxscale).is_file() else [])
        sources += [CopySource(item.eb.uid, item.run.pk, base, name) for name in names]
    return sources


def made_in(mous: Mous, destination: str, folder: Path, also: set[str]) -> list[str]:
    """Top-level names in `folder` that the work there made: what the copies into it copied,
    the products of the runs in it, their script copies and logs, and `also` (what the
    generated scripts make beside their products)."""
    names: set[str] = set(also)
    for copy in CalibratedCopy.objects.filter(mous=mous, destination=destination):
        for item in copy.copied:
            names.update(item.get("names", []))
    for run in Run.objects.filter(folder=str(folder)):
        names.update({run.casa_log_name, run.output_log_name})
        if run.script_version is not None:
            names.add(run.script_version.script.filename)
    for relpath in Product.objects.filter(run__folder=str(folder)).values_list("relpath", flat=True):
        names.add(relpath.split("/", 1)[0])
    return sorted(n for n in names if n and "/" not in n and n not in {".", ".."})


def made_by_combination(mous: Mous) -> list[str]:
    """What a combination made in Combination/calibrated (the concat's flag versions too)."""
    return made_in(
        mous,
        CalibratedCopy.Destination.COMBINATION,
        combination_folder(mous),
        {COMBINED_MS, f"{COMBINED_MS}.flagversions", f"{COMBINED_MS}.listobs"},
    )
