"""The QA2 review: what the DRM sees at once (per-EB scores and findings, image QA against the
request, the checklist, the README, the suggested outcome), the decision (a note for semipass
or fail, a confirmation), and what the ticket hears: the summary, the README, the paths and
the verdict on sensitivity and resolution, with the calibration scripts attached; on QA2 fail,
the imaging script."""

from dataclasses import dataclass

from django.conf import settings

from assignments.datafiles import eb_folder, mous_folder, relative_to_data_root
from assignments.models import ExecutionBlock, Mous, MousState
from calibration.combination import latest_calibration_run
from calibration.imaging import imaging_folder
from calibration.models import Run, Script
from qa2portal.errors import DomainError
from reports import image_assessment
from reports.imaging import latest_images, mous_assessment
from reports.models import Finding, ReadmeVersion
from reports.services import topic_scores
from reports.thresholds import OPEN_SCORE

DECISIONS = {"pass": MousState.QA2_PASS, "semipass": MousState.QA2_SEMIPASS, "fail": MousState.QA2_FAIL}


class DecisionRefused(DomainError, ValueError):
    """A decision without its note or confirmation (400): nothing changes."""


@dataclass(frozen=True)
class EbReview:
    eb: ExecutionBlock
    run: Run | None
    scores: dict[str, float | None]
    open_findings: list[Finding]


def eb_reviews(mous: Mous) -> list[EbReview]:
    reviews = []
    for eb in mous.execution_blocks.order_by("uid"):
        run = latest_calibration_run(eb)
        reviews.append(
            EbReview(
                eb=eb,
                run=run,
                scores=topic_scores(run) if run is not None else {},
                open_findings=list(Finding.objects.filter(run=run, score__lte=OPEN_SCORE).order_by("score"))
                if run is not None
                else [],
            )
        )
    return reviews


def verdict_text(mous: Mous, assessment: image_assessment.Assessment) -> str:
    """Whether the sensitivity and the resolution reach the request, in one paragraph."""
    if image_assessment.is_multi_array_compact(mous.array):
        head = (
            "Sensitivity and resolution are not directly comparable with the request: this is the "
            "compact part of a multi-array science goal."
        )
    else:
        head = ""
    parts = []
    for name, label in (("rms", "Sensitivity"), ("beam", "Resolution")):
        c = assessment.criterion(name)
        if c is not None:
            parts.append(f"{label}: {c.status} ({c.value}; {c.limit}).")
    outcome = assessment.outcome or "none (see the criteria)"
    return " ".join(filter(None, [head, *parts, f"Suggested outcome: {outcome}."]))


def _paths(mous: Mous) -> list[str]:
    root = settings.DATA_ROOT
    lines = [f"MOUS folder: {root}/{relative_to_data_root(mous_folder(mous))}"]
    for eb in mous.execution_blocks.order_by("uid"):
        lines.append(f"{eb.uid}: {root}/{relative_to_data_root(eb_folder(eb))} (QA2 plots in qa2/)")
    lines.append(f"Images: {root}/{relative_to_data_root(imaging_folder(mous))}")
    return lines


def ready_for_review_comment(change) -> tuple[str, list[dict]]:
    """The ticket's comment when a MOUS is ready for review, and the scripts to attach."""
    mous: Mous = change.mous
    assessment = mous_assessment(mous)
    lines = ["h3. QA2 summary"]
    for review in eb_reviews(mous):
        if review.run is None:
            lines.append(f"* {review.eb.uid}: not calibrated")
            continue
        worst = ", ".join(f"{f.topic} {f.antenna} {f.spw_label}".strip() for f in review.open_findings[:5])
        lines.append(
            f"* {review.eb.uid}: calibration run #{review.run.pk}; "
            f"{len(review.open_findings)} open finding(s){': ' + worst if worst else ''}"
        )
    for qa in latest_images(mous):
        s = qa.summary
        if "cannot_assess" not in s:
            lines.append(
                f"* {qa.name}: beam {s.get('bmaj_arcsec', 0):.2f} x {s.get('bmin_arcsec', 0):.2f} arcsec, "
                f"rms {1e3 * (s.get('rms_jy') or 0):.4g} mJy/beam over {s.get('bandwidth_mhz', 0):.0f} MHz"
            )
    lines += ["", "h3. Sensitivity and resolution", verdict_text(mous, assessment), "", "h3. Where"]
    lines += [f"* {p}" for p in _paths(mous)]
    readme = ReadmeVersion.objects.filter(mous=mous).first()
    lines += ["", f"h3. README (v{readme.number})" if readme else "h3. README", "{noformat}"]
    lines += [readme.text if readme else "(no README)", "{noformat}"]
    attachments = []
    for eb in mous.execution_blocks.order_by("uid"):
        run = latest_calibration_run(eb)
        if run is not None and run.script_version is not None:
            attachments.append(
                {"name": run.script_version.script.filename, "content": run.script_version.text()}
            )
    return "\n".join(lines), attachments


def qa2_fail_comment(change) -> tuple[str, list[dict]]:
    """On QA2 fail the imaging script goes to the ticket; the data go to qa2fails."""
    mous: Mous = change.mous
    script = Script.objects.filter(mous=mous, kind=Script.Kind.IMAGING).first()
    version = script.latest_version() if script is not None else None
    text = "The MOUS folder goes to qa2fails once a data analyst moves it."
    if version is None:
        return text + " No imaging script to attach.", []
    return text + f" Attached: scriptForImaging.py v{version.number}.", [
        {"name": script.filename if script else "scriptForImaging.py", "content": version.text()}
    ]


def decide(*, mous: Mous, outcome: str, note: str, confirmed: bool, by) -> None:
    """The DRM's QA2 decision (from REVIEWING): a note for semipass or fail, and a confirmation."""
    state = DECISIONS.get(outcome)
    if state is None:
        raise DecisionRefused(f"{outcome!r} is no QA2 outcome: pass, semipass or fail")
    if outcome != "pass" and not note.strip():
        raise DecisionRefused(f"a QA2 {outcome} needs a note saying why")
    if not confirmed:
        raise DecisionRefused("confirm the decision (the checkbox): it is final")
    mous.transition(state, by=by, note=note.strip(), check_role=True)
