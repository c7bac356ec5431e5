"""Record diagnostics and their findings; topic scores; apply a finding's edit as a new version."""

import math

from django.db import transaction

from assignments.models import person_of
from calibration import catalogue
from calibration.models import Product, Run, RunStep, ScriptVersion
from calibration.scripts import script_version_create
from reports import edit_loop, qa
from reports.edits import apply_edit
from reports.models import AppliedEdit, Diagnostic, Finding, ImageQA, Topic

IMAGE_TOPIC = "image"

# How far up a version's parents an earlier edit is still checked on a later run.
EDIT_CHAIN_LIMIT = 50


@transaction.atomic
def diagnostics_record(*, run: Run, step: RunStep, items: list[dict]) -> list[Diagnostic]:
    """Store what the CASA process extracted after `step` and score it (called by the engine)."""
    steps = {
        s["number"]: s["title"]
        for s in (run.script_version.parsed.get("steps", []) if run.script_version else [])
    }
    context = qa.ScriptContext(steps=steps, step=step.number)
    image_qa_record(run=run, step=step, items=[i for i in items if i["topic"] == IMAGE_TOPIC])
    made = []
    for item in (i for i in items if i["topic"] != IMAGE_TOPIC):
        item["summary"] = json_safe(item["summary"])
        product = Product.objects.filter(run=run, relpath=item.get("product") or "").first()
        if item["topic"] == Topic.FLAGS and "vis" in item["summary"]:
            item["summary"]["previous"] = _previous_flags(run, item["summary"]["vis"])
        if item["topic"] == Topic.GAINS and item["summary"].get("vis"):
            item["summary"]["flagged_antennas"] = _fully_flagged_antennas(run, item["summary"]["vis"])
        if item["topic"] == Topic.FLUX and "fields" in item["summary"]:
            # The catalogue entries the flux check compares with, kept with the summary.
            item["summary"]["catalogue"] = catalogue.for_flux_check(item["summary"])
        diagnostic, _ = Diagnostic.objects.update_or_create(
            run=run,
            topic=item["topic"],
            name=item["name"],
            defaults={
                "step": step,
                "product": product,
                "execution_block": run.execution_block,
                "mous": run.mous,
                "artifact": item.get("artifact", ""),
                "summary": item["summary"],
            },
        )
        diagnostic.findings.all().delete()
        Finding.objects.bulk_create(
            Finding(diagnostic=diagnostic, run=run, topic=diagnostic.topic, **f)
            for f in qa.assess(diagnostic.topic, diagnostic.name, diagnostic.summary, context)
        )
        made.append(diagnostic)
    return made


def image_qa_record(*, run: Run, step: RunStep, items: list[dict]) -> list[ImageQA]:
    """Store what CASA measured on each image of an imaging step (one row per imagename)."""
    made = []
    for item in items:
        summary = json_safe(item["summary"])
        kind = ImageQA.Kind.CUBE if summary.get("kind") == ImageQA.Kind.CUBE else ImageQA.Kind.CONTINUUM
        qa_row, _ = ImageQA.objects.update_or_create(
            run=run,
            name=str(item["name"])[:300],
            defaults={"step": step, "mous": run.mous, "kind": kind, "summary": summary},
        )
        made.append(qa_row)
    return made


def json_safe(value):
    """NaN and infinities become None: PostgreSQL's jsonb refuses them, and one such number
    would lose every diagnostic of the step."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _fully_flagged_antennas(run: Run, vis: str) -> list[str]:
    """Antennas the run's latest flag save of `vis` shows entirely flagged (on purpose: a reducer's
    flagdata), so their missing gain solutions are expected, not a finding."""
    name = vis.rsplit("/", 1)[-1]
    for diagnostic in Diagnostic.objects.filter(run=run, topic=Topic.FLAGS).order_by("-pk"):
        if str(diagnostic.summary.get("vis", "")).rsplit("/", 1)[-1] == name:
            return sorted(
                a for a, f in diagnostic.summary.get("antenna", {}).items() if f is not None and f >= 0.999
            )
    return []


def _previous_flags(run: Run, vis: str) -> dict | None:
    """The latest earlier flag save of the same MS in this run (to score what is newly flagged)."""
    earlier = Diagnostic.objects.filter(run=run, topic=Topic.FLAGS, summary__vis=vis).order_by("-pk").first()
    if earlier is None:
        return None
    return {
        "stage": earlier.summary["stage"],
        "fraction": earlier.summary["total_fraction"],
        "step": earlier.step.number if earlier.step else None,
    }


def topic_scores(run: Run) -> dict[str, float | None]:
    """Topic score = min of its assessed checks (the pipeline's aggregation); a check that could
    not be assessed (CANNOT_ASSESS) decides the topic only when nothing in it was assessed;
    None where the topic has no check."""
    assessed: dict[str, list[float]] = {t: [] for t in Topic.values}
    unassessed: dict[str, list[float]] = {t: [] for t in Topic.values}
    for topic, score in run.findings.values_list("topic", "score"):
        (assessed if score >= 0 else unassessed)[topic].append(score)
    return {
        t: min(assessed[t]) if assessed[t] else (min(unassessed[t]) if unassessed[t] else None)
        for t in Topic.values
    }


def finding_apply(*, finding: Finding, by) -> ScriptVersion:
    """A new script version with the finding's edit applied, for the reducer to review and run."""
    if not finding.edit:
        raise ValueError("this finding has no suggested edit")
    version = finding.run.script_version
    if version is None:
        raise ValueError("the run had no script to edit")
    latest = version.script.latest_version()
    assert latest is not None  # the run's own version is one of them
    person = person_of(by)
    text = apply_edit(
        latest.text(),
        finding.edit,
        initials=person.initials if person else "QA",
        reason=finding.edit.get("description", finding.message),
    )
    description = finding.edit.get("description", finding.message)
    edited = script_version_create(
        script=latest.script,
        text=text,
        source=ScriptVersion.Source.EDITED,
        by=by,
        note=f"{description} — from finding: {finding.message}",
        parent=latest,
    )
    expect = finding.edit.get("expect") or edit_loop.expectation(finding_dict(finding))
    AppliedEdit.objects.create(
        version=edited, finding=finding, from_run=finding.run, description=description, expect=expect
    )
    return edited


def finding_dict(finding: Finding) -> dict:
    """The pure shape reports.edit_loop works on."""
    return {
        "topic": finding.topic,
        "code": finding.code,
        "score": finding.score,
        "metric": finding.metric,
        "value": finding.value,
        "antenna": finding.antenna,
        "spw": finding.spw,
        "field": finding.field,
        "message": finding.message,
        "edit": finding.edit,
    }


def edit_checks(run: Run) -> list[dict]:
    """For each edit that made this run's script (its version or an ancestor), whether it worked."""
    versions: list[ScriptVersion] = []
    version = run.script_version
    while version is not None and len(versions) < EDIT_CHAIN_LIMIT:
        versions.append(version)
        version = version.parent
    edits = AppliedEdit.objects.filter(version__in=versions).exclude(from_run=run).select_related("version")
    findings = [finding_dict(f) for f in run.findings.all()]
    assessed = set(run.diagnostics.values_list("topic", flat=True))
    checks = []
    for edit in edits:
        verdict = edit_loop.verdict(edit.expect, findings, assessed)
        checks.append({"edit": edit, "expect": edit.expect, "verdict": verdict})
    return checks


def compare_runs(a: Run, b: Run) -> list[edit_loop.FindingChange]:
    return edit_loop.compare_findings(
        [finding_dict(f) for f in a.findings.all()],
        [finding_dict(f) for f in b.findings.all()],
        assessed_a=a.diagnostics.values_list("topic", flat=True),
        assessed_b=b.diagnostics.values_list("topic", flat=True),
    )
