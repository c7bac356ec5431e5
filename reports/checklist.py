"""The final checklist of a MOUS (the seeds' "Final checklist and wrap-up"), computed from the
folders and the database, per EB and per MOUS. "Ready for review" needs every item (the
assignments app asks through its preconditions; a DRM may override with a reason)."""

from dataclasses import dataclass
from pathlib import Path

from assignments.datafiles import UnsafePath, eb_folder, is_file_confined, mous_folder
from assignments.models import ExecutionBlock, Mous
from calibration.combination import latest_calibration_run
from calibration.imaging import imaging_folder, latest_script_run
from calibration.models import Run, Script
from reports.models import ImageQA, Qa2Report, ReadmeVersion

README_NAME = "README"
QA2_FOLDER = "qa2"
QA2_TEXTFILE = "textfile.txt"


@dataclass(frozen=True)
class Item:
    scope: str  # "EB uid://..." or "MOUS"
    name: str
    ok: bool
    reason: str

    def __str__(self) -> str:
        return f"{self.scope}: {self.name}: {self.reason}"


def _exists(base: Path, name: str) -> bool:
    try:
        return is_file_confined(name, base=base)
    except UnsafePath:
        return False


def _run_item(scope: str, name: str, run: Run | None, kind_label: str) -> list[Item]:
    """A clean run of every step of the script's latest version, with its CASA log."""
    if run is None:
        return [Item(scope, name, False, f"no run of {kind_label}")]
    version = run.script_version
    latest = version.script.latest_version() if version is not None else None
    if run.status != Run.Status.SUCCEEDED:
        return [Item(scope, name, False, f"its latest run #{run.pk} is {run.get_status_display()}")]
    if run.selected_steps:
        return [
            Item(scope, name, False, f"run #{run.pk} ran steps {run.selected_steps}, not all (mysteps=[])")
        ]
    if version is not None and latest is not None and latest.number != version.number:
        return [Item(scope, name, False, f"v{latest.number} is newer than run #{run.pk}'s v{version.number}")]
    if not _exists(Path(run.folder), run.casa_log_name):
        return [Item(scope, name, False, f"the CASA log {run.casa_log_name} of run #{run.pk} is missing")]
    return [
        Item(
            scope,
            name,
            True,
            f"run #{run.pk} of v{version.number if version else '?'}, log {run.casa_log_name}",
        )
    ]


def eb_items(eb: ExecutionBlock) -> list[Item]:
    scope = f"EB {eb.uid}"
    run = latest_calibration_run(eb)
    items = _run_item(
        scope,
        f"{eb.ms_name}.scriptForCalibration.py run with mysteps=[] and one clean casa log",
        run,
        "the calibration script",
    )
    report = Qa2Report.objects.filter(execution_block=eb).first()
    folder = eb_folder(eb) / QA2_FOLDER
    if report is None or report.status != Qa2Report.Status.DONE:
        state = "not made" if report is None else report.get_status_display()
        items.append(Item(scope, "qa2 directory", False, f"the qa2 report is {state}"))
    elif run is not None and report.run_id != run.pk:
        items.append(
            Item(
                scope, "qa2 directory", False, f"made from run #{report.run_id}, not the latest run #{run.pk}"
            )
        )
    elif not _exists(folder, QA2_TEXTFILE):
        items.append(Item(scope, "qa2 directory", False, f"{QA2_FOLDER}/{QA2_TEXTFILE} is missing"))
    else:
        items.append(
            Item(scope, "qa2 directory", True, f"{len(report.files)} files from run #{report.run_id}")
        )
    return items


def mous_items(mous: Mous) -> list[Item]:
    scope = "MOUS"
    items: list[Item] = []
    if mous.execution_blocks.count() > 1:
        items += _run_item(
            scope,
            "scriptForFluxCalibration.py and its log",
            latest_script_run(mous, Script.Kind.COMBINATION),
            "the combination script",
        )
    items += _run_item(
        scope,
        "scriptForImagingPrep.py and the log of the prep",
        latest_script_run(mous, Script.Kind.IMAGING_PREP),
        "the imaging prep",
    )
    imaging_run = latest_script_run(mous, Script.Kind.IMAGING)
    items += _run_item(
        scope, "scriptForImaging.py and a clean imaging log", imaging_run, "the imaging script"
    )
    images = list(ImageQA.objects.filter(run=imaging_run)) if imaging_run is not None else []
    folder = imaging_folder(mous)
    if not images:
        items.append(
            Item(scope, ".pbcor.fits and .flux.fits in Imaging/", False, "the imaging run made no image")
        )
    else:
        absent = [n for qa in images for n in (qa.pbcor_fits, qa.flux_fits) if not _exists(folder, n)]
        items.append(
            Item(
                scope,
                ".pbcor.fits and .flux.fits in Imaging/",
                not absent,
                f"missing: {', '.join(absent)}" if absent else f"{2 * len(images)} files",
            )
        )
    readme = ReadmeVersion.objects.filter(mous=mous).first()
    if readme is None:
        items.append(Item(scope, "README", False, "no README yet: generate it on the README page"))
    elif not _exists(mous_folder(mous), README_NAME):
        items.append(Item(scope, "README", False, f"{README_NAME} is not in the MOUS folder"))
    else:
        items.append(Item(scope, "README", True, f"v{readme.number} ({readme.get_source_display()})"))
    return items


def checklist(mous: Mous) -> list[Item]:
    items: list[Item] = []
    for eb in mous.execution_blocks.order_by("uid"):
        items += eb_items(eb)
    return items + mous_items(mous)


def missing(mous) -> list[str]:
    """What is missing before review, in words (the precondition of READY_FOR_REVIEW)."""
    return [str(item) for item in checklist(mous) if not item.ok]
