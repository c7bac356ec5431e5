"""The README of a MOUS (the seeds' list): generated from what the portal knows, edited by the
reducer, every save a new version; the latest is written to README in the MOUS folder."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from assignments.datafiles import mous_folder, replace_confined
from assignments.models import Mous
from calibration.combination import latest_calibration_run
from calibration.imaging import latest_imaging_data, latest_script_run
from calibration.models import DataSummary, ImagingData, Script
from qa2portal.errors import DomainError
from reports import image_assessment
from reports.checklist import README_NAME
from reports.imaging import latest_images, mous_assessment
from reports.models import AppliedEdit, Diagnostic, Finding, ReadmeVersion, Topic
from reports.thresholds import OPEN_SCORE

README_MAX_CHARS = 200_000
HEAVY_FLAGGING = 0.2  # a stage that flags more than this is a significant issue


class ReadmeRefused(DomainError, ValueError):
    """An edit that cannot be kept (empty, too long): 400, nothing changes."""


def _section(title: str, lines: list[str]) -> list[str]:
    return ["", title, "-" * len(title), *(lines or ["none"])]


def _longest_baseline_m(mous: Mous, data: ImagingData | None) -> float | None:
    if data is not None and data.summary.get("baselines_m"):
        return float(data.summary["baselines_m"]["max"])
    best = None
    for summary in DataSummary.objects.filter(execution_block__mous=mous):
        ants = summary.summary.get("antennas", [])
        for i, a in enumerate(ants):
            for b in ants[i + 1 :]:
                length = ((a["east_m"] - b["east_m"]) ** 2 + (a["north_m"] - b["north_m"]) ** 2) ** 0.5
                best = length if best is None or length > best else best
    return best


def _calibration_lines(mous: Mous) -> list[str]:
    lines = []
    for eb in mous.execution_blocks.order_by("uid"):
        run = latest_calibration_run(eb)
        if run is None or run.script_version is None:
            lines.append(f"{eb.uid}: not calibrated")
            continue
        version = run.script_version
        lines.append(
            f"{eb.uid}: {version.script.filename} v{version.number} "
            f"({version.get_source_display().lower()}), run #{run.pk} {run.get_status_display().lower()}: "
            "ALMA standard manual calibration (a priori flagging, WVR, Tsys, antenna positions, "
            "bandpass, flux scale and gains, applycal, split)."
        )
    if mous.execution_blocks.count() > 1:
        run = latest_script_run(mous, Script.Kind.COMBINATION)
        if run is not None and run.script_version is not None:
            lines.append(
                f"The EBs were combined with scriptForFluxCalibration.py v{run.script_version.number} "
                f"({run.script_version.note or 'generated'})."
            )
    return lines


def _issue_lines(mous: Mous) -> list[str]:
    lines = []
    for eb in mous.execution_blocks.order_by("uid"):
        run = latest_calibration_run(eb)
        if run is None:
            continue
        for edit in AppliedEdit.objects.filter(version__script__execution_block=eb).order_by("created_at"):
            lines.append(f"{eb.uid}: {edit.description}")
        for finding in Finding.objects.filter(run=run, score__lte=OPEN_SCORE).order_by("score")[:10]:
            where = " ".join(filter(None, [finding.antenna, finding.spw_label, finding.field]))
            lines.append(
                f"{eb.uid}: still open ({finding.topic}{', ' + where if where else ''}): {finding.message}"
            )
        for diagnostic in Diagnostic.objects.filter(run=run, topic=Topic.FLAGS):
            total = diagnostic.summary.get("total_fraction")
            if isinstance(total, int | float) and total > HEAVY_FLAGGING:
                lines.append(
                    f"{eb.uid}: {100 * total:.1f} % of the data flagged at {diagnostic.summary.get('stage')}"
                )
    return lines


def _image_lines(mous: Mous, assessment: image_assessment.Assessment) -> list[str]:
    lines = []
    for qa in latest_images(mous):
        s = qa.summary
        if "cannot_assess" in s:
            lines.append(f"{qa.name}: could not be measured ({s['cannot_assess']})")
            continue
        lines.append(
            f'{qa.name} ({qa.get_kind_display().lower()}): beam {s.get("bmaj_arcsec", 0):.2f}" x '
            f'{s.get("bmin_arcsec", 0):.2f}" PA {s.get("bpa_deg", 0):.0f} deg; '
            f"rms {1e3 * (s.get('rms_jy') or 0):.4g} "
            f"mJy/beam over {s.get('bandwidth_mhz', 0):.1f} MHz (theoretical "
            f"{1e3 * (s.get('theoretical_rms_jy') or 0):.4g}); peak {s.get('peak_jy') or 0:.4g} Jy/beam; "
            f"dynamic range {s.get('dynamic_range') or 0:.0f}"
        )
    if lines:
        dr = assessment.criterion("dynamic range")
        lines.append(
            "Self-calibration: not done"
            + (" (suggested: the dynamic range is high)." if dr is not None and dr.status == "note" else ".")
        )
        lines.append("Continuum subtraction: not done; the continuum image uses the line-free channels only.")
    return lines


def readme_text(mous: Mous) -> str:
    """The README from what the portal knows now (the reducer edits it afterwards)."""
    assessment = mous_assessment(mous)
    data = latest_imaging_data(mous)
    longest = _longest_baseline_m(mous, data)
    bandwidth = f"{mous.rms_bandwidth_mhz} MHz" if mous.rms_bandwidth_mhz else "not given"
    lines = [
        f"README of {mous.uid} ({mous.sb_name}), project {mous.project.code}",
        f"Science goal: {mous.science_goal or '-'} ({mous.get_goal_display().lower()}); band {mous.band}; "
        f"{mous.get_array_display()}",
        f"Generated by qa2portal on {timezone.now():%Y-%m-%d} from what it knows; the data reducer edits it "
        "before review.",
    ]
    lines += _section(
        "Requested sensitivity",
        [f"{mous.requested_rms_mjy or 'not given'} mJy/beam over a bandwidth of {bandwidth}"],
    )
    lines += _section(
        "Configuration",
        [f"longest baseline {longest:.0f} m" if longest else "not known"]
        + ([f"{len(data.summary.get('fields', []))} pointing(s) of the target"] if data else []),
    )
    lines += _section("How the data were calibrated", _calibration_lines(mous))
    lines += _section("Significant issues (antennas, spws or large parts flagged)", _issue_lines(mous))
    lines += _section("Image quality", _image_lines(mous, assessment))
    comparison = [
        f"{c.name}: {c.status}: {c.value} (limit {c.limit}). {c.reason}" for c in assessment.criteria
    ]
    comparison.append(f"Suggested QA2 outcome: {assessment.outcome or 'none'} (the DRM decides).")
    lines += _section("Comparison with the request", comparison)
    lines += _section(
        "Multi-array note",
        [
            "This is the compact part of a multi-array science goal: sensitivity and resolution are "
            "not directly comparable with the request until it is combined with the other array(s)."
            if image_assessment.is_multi_array_compact(mous.array)
            else "Not part of a multi-array combination."
        ],
    )
    lines += _section("Suggested improvements", [r for r in assessment.reasons if r] or [])
    return "\n".join(lines) + "\n"


@transaction.atomic
def readme_save(*, mous: Mous, text: str, by, source: str = ReadmeVersion.Source.EDITED) -> ReadmeVersion:
    """Keep `text` as the next version and write it to README in the MOUS folder."""
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise ReadmeRefused("the README is empty")
    if len(text) > README_MAX_CHARS:
        raise ReadmeRefused(f"the README has {len(text)} characters; at most {README_MAX_CHARS}")
    locked = Mous.objects.select_for_update().get(pk=mous.pk)
    number = (ReadmeVersion.objects.filter(mous=locked).aggregate(n=Max("number"))["n"] or 0) + 1
    version = ReadmeVersion.objects.create(mous=locked, number=number, text=text, source=source, author=by)
    replace_confined(README_NAME, text, base=mous_folder(locked))
    return version


def readme_generate(*, mous: Mous, by) -> ReadmeVersion:
    return readme_save(mous=mous, text=readme_text(mous), by=by, source=ReadmeVersion.Source.GENERATED)
