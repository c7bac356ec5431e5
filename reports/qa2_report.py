"""The qa2 report of an EB (ALMA's es.generateQA2Report): a worker reads the observation in
CASA (reports.incasa.observation), writes textfile.txt (observation, calibration, findings and
edits: reports.qa2_text) and static PNGs of the diagnostics (reports.qa2_plots, from the same
artifacts as the pages) into the EB's qa2/ folder, every file through the confined helper.

Made from the EB's latest calibration run when it ran every step (mysteps=[]) and succeeded.
"""

import logging
import tempfile
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assignments.datafiles import eb_folder, mkdir_confined, write_confined
from assignments.models import ExecutionBlock
from calibration import casa
from calibration.combination import latest_calibration_run
from calibration.incasa.events import SUMMARY_MARKER
from calibration.models import Run
from qa2portal.errors import Conflict
from reports import qa2_plots, qa2_text
from reports.checklist import QA2_FOLDER, QA2_TEXTFILE
from reports.models import Diagnostic, Finding, Qa2Report
from reports.services import edit_checks

log = logging.getLogger(__name__)
OBSERVATION_MODULE = "reports.incasa.observation"
OBSERVATION_TIMEOUT = 1800
QA2_REPORT_TASK = "reports.tasks.qa2_report"


class Qa2Refused(Conflict, ValueError):
    """No qa2 report now (the EB is not calibrated with every step, or a report is running): 409."""


def _reportable_run(eb: ExecutionBlock) -> Run:
    run = latest_calibration_run(eb)
    if run is None:
        raise Qa2Refused(f"EB {eb.uid} has no calibration run")
    if run.status != Run.Status.SUCCEEDED:
        raise Qa2Refused(f"EB {eb.uid}: its latest calibration run #{run.pk} is {run.get_status_display()}")
    if run.selected_steps:
        raise Qa2Refused(
            f"EB {eb.uid}: run #{run.pk} ran steps {run.selected_steps}; the qa2 report needs a run "
            "of every step (mysteps=[])"
        )
    return run


@transaction.atomic
def qa2_report_request(*, eb: ExecutionBlock, by) -> Qa2Report:
    run = _reportable_run(eb)
    active = (
        Qa2Report.objects.select_for_update().filter(execution_block=eb, status__in=Qa2Report.ACTIVE).first()
    )
    if active is not None:
        raise Qa2Refused(f"qa2 report {active.pk} of {eb.uid} is {active.get_status_display()}: wait for it")
    report = Qa2Report.objects.create(execution_block=eb, run=run, requested_by=by)
    transaction.on_commit(partial(current_app.send_task, QA2_REPORT_TASK, (report.pk,)))
    return report


def _calibration_items(run: Run) -> list[dict]:
    items: list[dict] = []
    refant = run.script_version.parsed.get("refant") if run.script_version else None
    if refant:
        items.append({"topic": "refant", "name": "refant", "summary": {"refant": refant}})
    for d in Diagnostic.objects.filter(run=run).order_by("topic", "name"):
        items.append({"topic": d.topic, "name": d.name, "summary": d.summary})
    return items


def _findings(run: Run) -> list[dict]:
    return [
        {"topic": f.topic, "antenna": f.antenna, "spw": f.spw_label, "score": f.score, "message": f.message}
        for f in Finding.objects.filter(run=run).order_by("score")
    ]


def _edits(run: Run) -> list[dict]:
    """The edits that made this run's script, with whether this run shows they worked."""
    return [
        {
            "version": check["edit"].version.number,
            "description": check["edit"].description,
            "expect": str(check["expect"].get("says", "")),
            "verdict": f"{check['verdict'].status}: {check['verdict'].says}",
        }
        for check in edit_checks(run)
    ]


def _arrays(diagnostic: Diagnostic) -> dict[str, np.ndarray]:
    path = diagnostic.artifact_path
    if path is None:
        return {}
    # The artifact is the worker's own output (run folder); loaded without pickles.
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def qa2_report_execute(report_id: int) -> Qa2Report:
    """The task body: observation (CASA), textfile.txt, PNGs; qa2/ replaced file by file."""
    claimed = Qa2Report.objects.filter(pk=report_id, status=Qa2Report.Status.QUEUED).update(
        status=Qa2Report.Status.RUNNING, heartbeat_at=timezone.now()
    )
    report = Qa2Report.objects.select_related("execution_block__mous__project", "run__script_version").get(
        pk=report_id
    )
    if not claimed:
        return report
    eb, run = report.execution_block, report.run
    try:
        folder = eb_folder(eb)
        ms = eb.ms_name
        observation, _ = casa.run_casa_json(
            OBSERVATION_MODULE,
            SUMMARY_MARKER,
            cwd=folder,
            timeout=OBSERVATION_TIMEOUT,
            args=[str(folder / ms)],
        )
        observation["eb_uid"] = eb.uid
        text = qa2_text.report_header(
            eb.mous.project.code, eb.mous.uid, eb.uid, f"{timezone.now():%Y-%m-%d %H:%M:%S} UTC"
        ) + qa2_text.textfile(observation, _calibration_items(run), _findings(run), _edits(run))
        mkdir_confined(QA2_FOLDER, base=folder)
        target = folder / QA2_FOLDER
        write_confined(QA2_TEXTFILE, text, base=target)
        written = [QA2_TEXTFILE]
        scratch_root = Path(settings.VAR_DIR) / "qa2-scratch"
        scratch_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
            diagnostics = list(Diagnostic.objects.filter(run=run).order_by("topic", "name"))
            per_topic = Counter(d.topic for d in diagnostics)
            for diagnostic in diagnostics:
                # Several tables of one topic (phase_int, ampli_inf ...) each get their own PNGs.
                tag = diagnostic.name.removeprefix(ms).strip(".") if per_topic[diagnostic.topic] > 1 else ""
                for png in qa2_plots.render(
                    diagnostic.topic,
                    diagnostic.name,
                    diagnostic.summary,
                    _arrays(diagnostic),
                    Path(scratch),
                    ms,
                    tag=tag,
                ):
                    name = qa2_plots.safe_name(png.name)
                    write_confined(name, png.read_bytes(), base=target)
                    if name not in written:
                        written.append(name)
        Qa2Report.objects.filter(pk=report.pk, status=Qa2Report.Status.RUNNING).update(
            status=Qa2Report.Status.DONE, files=written, finished_at=timezone.now()
        )
    except Exception as exc:  # the report says why; the run and its data are untouched
        log.exception("qa2 report %s failed", report.pk)
        Qa2Report.objects.filter(pk=report.pk, status=Qa2Report.Status.RUNNING).update(
            status=Qa2Report.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
    report.refresh_from_db()
    return report
