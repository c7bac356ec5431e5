"""Diagnostics pages: EB overview (scores, findings, apply an edit), one page per topic, compare."""

from collections.abc import Callable
from typing import TypedDict
from urllib.parse import quote

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from assignments.models import ExecutionBlock, Mous
from assignments.permissions import may_work_on, require_may_work_on
from calibration.models import Run
from qa2portal.errors import refusal_page
from qa2portal.ids import parse_id
from reports import artifacts, figures, services
from reports.models import Diagnostic, Finding, Topic, score_band
from reports.selectors import runs_with_diagnostics
from reports.spws import spw_label
from reports.thresholds import BLUE

pio.json.config.default_engine = "orjson"


def _scores_rows(scores: dict[str, float | None]) -> list[dict]:
    return [
        {"topic": value, "label": label, "score": scores.get(value), "band": score_band(scores.get(value))}
        for value, label in Topic.choices
    ]


@login_required
def eb_overview(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous__project"), pk=pk)
    runs = runs_with_diagnostics(eb)
    run = runs[0] if runs else None
    if (wanted_run := parse_id(request.GET.get("run", ""))) is not None:
        run = next((r for r in runs if r.pk == wanted_run), run)
    findings = list(run.findings.select_related("diagnostic__step").order_by("score", "topic")) if run else []
    context = {
        "eb": eb,
        "mous": eb.mous,
        "run": run,
        "runs": runs,
        "scores": _scores_rows(services.topic_scores(run)) if run else [],
        "findings": findings,
        "open_count": sum(1 for f in findings if f.score <= BLUE),
        "can_work": may_work_on(request.user, eb.mous),
        "edit_checks": services.edit_checks(run) if run else [],
    }
    return render(request, "reports/overview.html", context)


class _EbRow(TypedDict):
    eb: ExecutionBlock
    run: Run | None
    open: int | None


@login_required
def mous_diagnostics(request: HttpRequest, pk: int) -> HttpResponse:
    """The MOUS's way into diagnostics (the whiteboard's findings cell): the overview of the EB
    that has diagnostics, or, when several have, a choice with each EB's open findings."""
    mous = get_object_or_404(Mous.objects.select_related("project"), pk=pk)
    rows: list[_EbRow] = []
    for eb in mous.execution_blocks.order_by("uid"):  # a handful of EBs: one query each is fine
        runs = runs_with_diagnostics(eb)
        run = runs[0] if runs else None
        open_count = run.findings.filter(score__lte=BLUE).count() if run else None
        rows.append({"eb": eb, "run": run, "open": open_count})
    diagnosed = [row for row in rows if row["run"] is not None]
    if len(diagnosed) == 1:
        return redirect("reports-eb", pk=diagnosed[0]["eb"].pk)
    return render(request, "reports/mous.html", {"mous": mous, "rows": rows, "diagnosed": diagnosed})


@login_required
def topic_page(request: HttpRequest, pk: int, topic: str) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("execution_block", "mous"), pk=pk)
    if topic not in Topic.values:
        raise Http404(f"no topic {topic!r}")
    diagnostics = list(run.diagnostics.filter(topic=topic).select_related("step"))
    chosen = _choose(diagnostics, request.GET.get("diag"))
    params = _params(chosen, request)
    context = {
        "run": run,
        "eb": run.execution_block,
        "mous": run.mous,
        "topic": topic,
        "topic_label": Topic(topic).label,
        "diagnostics": diagnostics,
        "chosen": chosen,
        "params": params,
        "figures": [
            {
                "name": name,
                "url": reverse("reports-figure", args=[run.pk, topic, name]) + "?" + _query(chosen, params),
            }
            for name in FIGURES.get(topic, {})
        ]
        if chosen
        else [],
        "findings": run.findings.filter(topic=topic).order_by("score"),
        "can_work": may_work_on(request.user, run.mous),
        "spws": [(s, spw_label(chosen.summary, s)) for s in chosen.summary.get("spws", [])] if chosen else [],
        "antennas": chosen.summary.get("antennas", []) if chosen else [],
        "fields": chosen.summary.get("fields", []) if chosen and topic == Topic.CALIBRATED else [],
        "table": _table(topic, chosen) if chosen else [],
        "topic_choices": Topic.choices,
    }
    return render(request, "reports/topic.html", context)


def _choose(diagnostics: list[Diagnostic], wanted: str | None) -> Diagnostic | None:
    """The asked-for diagnostic, else the first assessable one; for gains a phase table first
    (an amplitude table's phase axis is all zeros, which tells the reducer nothing)."""
    # A concat summary (the combination run) has nothing to plot here: the combination page shows it.
    diagnostics = [d for d in diagnostics if "concat" not in d.summary]
    usable = [d for d in diagnostics if "cannot_assess" not in d.summary] or diagnostics
    usable = sorted(usable, key=lambda d: d.topic == Topic.GAINS and d.summary.get("calmode") != "p")
    if (wanted_pk := parse_id(wanted or "")) is not None:
        return next((d for d in diagnostics if d.pk == wanted_pk), usable[0] if usable else None)
    return usable[0] if usable else None


def _params(diagnostic: Diagnostic | None, request: HttpRequest) -> dict[str, str]:
    if diagnostic is None:
        return {}
    spws = [str(s) for s in diagnostic.summary.get("spws", [])]
    antennas = diagnostic.summary.get("antennas", [])
    spw = request.GET.get("spw", "")
    antenna = request.GET.get("antenna", "")
    fields = diagnostic.summary.get("fields", [])
    field = request.GET.get("field", "")
    params = {
        "spw": spw if spw in spws else (spws[0] if spws else ""),
        "antenna": antenna
        if antenna in antennas
        else (_worst_antenna(diagnostic) or (antennas[0] if antennas else "")),
    }
    if fields and isinstance(fields, list):  # calibrated: one calibrator at a time
        params["field"] = field if field in fields else _worst_field(diagnostic) or fields[0]
    return params


def _worst_field(diagnostic: Diagnostic) -> str:
    finding = diagnostic.findings.exclude(field="").order_by("score").first()
    return finding.field if finding else ""


def _worst_antenna(diagnostic: Diagnostic) -> str:
    """The antenna of the worst finding, else the one worst on the topic's own metric."""
    finding = diagnostic.findings.exclude(antenna="").order_by("score").first()
    if finding:
        return finding.antenna
    s = diagnostic.summary
    metric = {
        Topic.GAINS: "phase_rms_deg",
        Topic.BANDPASS: "chan2chan",
        Topic.TSYS: "median",
    }.get(Topic(diagnostic.topic))
    if metric:
        values = {
            a: max((v[metric] for v in per_spw.values() if metric in v), default=None)
            for a, per_spw in s.get("per_antenna", {}).items()
        }
        scored = {a: v for a, v in values.items() if v is not None}
        return max(scored, key=lambda a: scored[a]) if scored else ""
    if diagnostic.topic == Topic.WVR:
        after = {a: v for a, v in s.get("phase_rms_after", {}).items() if a != s.get("reference_antenna")}
        return max(after, key=lambda a: after[a]) if after else ""
    return ""


def _query(diagnostic: Diagnostic, params: dict[str, str]) -> str:
    query = f"diag={diagnostic.pk}&spw={params.get('spw', '')}&antenna={params.get('antenna', '')}"
    return query + (f"&field={quote(params['field'])}" if "field" in params else "")


def _table(topic: str, diagnostic: Diagnostic) -> list[list]:
    """The numbers behind the plots, for the table under them."""
    s = diagnostic.summary
    if "cannot_assess" in s:
        return [["cannot assess", s["cannot_assess"]]]
    if topic == Topic.WVR:
        report = s.get("report", {})
        rows: list[list] = [
            ["antenna", "WVR", "flagged (interpolated)", "RMS (µm)", "Disc (µm)", "phase rms before", "after"]
        ]
        for i, name in enumerate(report.get("Name", [])):
            rows.append(
                [
                    name,
                    report["WVR"][i],
                    report["Flag"][i],
                    round(report["RMS_um"][i]),
                    round(report["Disc_um"][i]),
                    _round(s["phase_rms_before"].get(name)),
                    _round(s["phase_rms_after"].get(name)),
                ]
            )
        return rows
    if topic == Topic.FLUX:
        rows = [["field", "spw", "flux (Jy)", "error (Jy)", "frequency (GHz)"]]
        for field, spws in s["fields"].items():
            rows += [
                [field, spw_label(s, spw), round(v["flux"], 4), round(v["error"], 4), round(v["freq_ghz"], 3)]
                for spw, v in spws.items()
            ]
        return rows
    if topic == Topic.TSYS:
        rows = [["antenna", *[f"{spw_label(s, spw)} median / max (K)" for spw in s["spws"]]]]
        for antenna, per_spw in s["per_antenna"].items():
            rows.append([antenna, *[_pair(per_spw.get(str(spw)), "median", "max") for spw in s["spws"]]])
        return rows
    if topic == Topic.FLAGS:
        # flagdata's per-antenna fraction counts every baseline for both its antennas, so the
        # antennas' fractions do not average to the total: both are shown, and labelled.
        rows = [
            ["stage", "flagged (all data)", "antenna", "flagged (its baselines)"],
            [s["stage"], f"{s['total_fraction']:.1%}", "", ""],
        ]
        for antenna, fraction in sorted(s.get("antenna", {}).items(), key=lambda kv: -(kv[1] or 0)):
            rows.append(["", "", antenna, "-" if fraction is None else f"{fraction:.1%}"])
        return rows
    if topic == Topic.CALIBRATED:
        rows = [
            [
                "field",
                "spw",
                "amp (Jy)",
                "amp departure vs freq",
                "phase rms vs freq (°)",
                "phase rms vs time (°)",
                "amp rms vs time",
                "uv outer/inner",
                "flagged",
            ]
        ]
        for field, spws in s["per_field"].items():
            for spw, m in spws.items():
                rows.append(
                    [
                        field,
                        spw_label(s, spw),
                        _fmt(m.get("amp_mean"), "{:.3f}"),
                        _fmt(m.get("amp_freq_dev"), "{:.1%}"),
                        _fmt(m.get("phase_freq_rms_deg"), "{:.1f}"),
                        _fmt(m.get("phase_time_rms_deg"), "{:.1f}"),
                        _fmt(m.get("amp_time_rms_frac"), "{:.1%}"),
                        _fmt(m.get("uv_ratio"), "{:.3f}"),
                        _fmt(m.get("flagged_fraction"), "{:.1%}"),
                    ]
                )
        return rows
    return []


def _fmt(value: object, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) and np.isfinite(value) else "-"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _pair(stats: dict | None, a: str, b: str) -> str:
    return f"{stats[a]:.0f} / {stats[b]:.0f}" if stats else "-"


# --- figures -------------------------------------------------------------------------------
def _spw_arrays(diagnostic: Diagnostic, spw: str) -> dict[str, np.ndarray]:
    data = artifacts.load(diagnostic)
    return {key.rsplit("_", 1)[0]: value for key, value in data.items() if key.endswith(f"_{spw}")}


def _tsys_spectra(d: Diagnostic, p: dict) -> go.Figure:
    a = _spw_arrays(d, p["spw"])
    return figures.tsys_spectra(
        a["freq_ghz"],
        a["tsys"],
        d.summary["antennas"],
        spw=int(p["spw"]),
        highlight=p["antenna"],
        atm=a.get("atm"),
    )


def _tsys_medians(d: Diagnostic, p: dict) -> go.Figure:
    names = d.summary["antennas"]
    medians = [d.summary["per_antenna"][n].get(p["spw"], {}).get("median") for n in names]
    return figures.tsys_medians(
        names, medians, d.summary["array_median"][p["spw"]], spw=int(p["spw"]), highlight=p["antenna"]
    )


def _wvr_bars(d: Diagnostic, p: dict) -> go.Figure:
    return figures.wvr_phase_rms(
        d.summary["antennas"],
        d.summary["phase_rms_before"],
        d.summary["phase_rms_after"],
        reference=d.summary.get("reference_antenna", ""),
    )


def _wvr_path(d: Diagnostic, p: dict) -> go.Figure:
    a = artifacts.load(d)
    return figures.wvr_path(a["time"], a["path_um"], d.summary["antennas"], antenna=p["antenna"])


def _bandpass(kind: str) -> Callable[[Diagnostic, dict], go.Figure]:
    def build(d: Diagnostic, p: dict) -> go.Figure:
        a = _spw_arrays(d, p["spw"])
        return figures.bandpass_overlay(
            a["freq_ghz"],
            a[kind],
            d.summary["antennas"],
            spw=int(p["spw"]),
            kind=kind,
            highlight=p["antenna"],
        )

    return build


def _bandpass_pair(d: Diagnostic, p: dict) -> go.Figure:
    a = _spw_arrays(d, p["spw"])
    names = d.summary["antennas"]
    metrics = {n: d.summary["per_antenna"][n].get(p["spw"], {}) for n in names}
    scored = [n for n in names if "notch_depth" in metrics[n]]
    worst = p["antenna"] if p["antenna"] in scored else min(scored, key=lambda n: metrics[n]["notch_depth"])
    others = sorted((n for n in scored if n != worst), key=lambda n: metrics[n]["chan2chan"])
    typical = others[len(others) // 2] if others else worst
    return figures.bandpass_pair(
        a["freq_ghz"], a["amp"], a["phase"], names, worst=worst, typical=typical, spw=int(p["spw"])
    )


def _gains(kind: str) -> Callable[[Diagnostic, dict], go.Figure]:
    def build(d: Diagnostic, p: dict) -> go.Figure:
        a = _spw_arrays(d, p["spw"])
        label = "phase (deg)" if kind == "phase" else "amplitude"
        title = f"{d.name}: gain {label} vs time, spw {p['spw']}"
        return figures.gains_vs_time(
            a["time"], a[kind], d.summary["antennas"], highlight=p["antenna"], title=title, ylabel=label
        )

    return build


def _flags_stages(d: Diagnostic, p: dict) -> go.Figure:
    stages = list(d.run.diagnostics.filter(topic=Topic.FLAGS).order_by("pk"))
    return figures.flags_stages(
        [s.name for s in stages], [s.summary.get("total_fraction", 0) for s in stages]
    )


def _flags_heatmap(d: Diagnostic, p: dict) -> go.Figure:
    stages = [s for s in d.run.diagnostics.filter(topic=Topic.FLAGS).order_by("pk") if "antenna" in s.summary]
    antennas = sorted({a for s in stages for a in s.summary["antenna"]})
    matrix = [[s.summary["antenna"].get(a, 0.0) for a in antennas] for s in stages]
    return figures.flags_heatmap(antennas, [s.name for s in stages], matrix)


def _flux(d: Diagnostic, p: dict) -> go.Figure:
    return figures.flux_spectrum(d.summary["fields"], d.summary.get("spectral_index", {}))


def _calibrated_arrays(d: Diagnostic, p: dict) -> tuple[dict[str, np.ndarray], str, str]:
    """The chosen field's arrays for the chosen spw, keyed without the `f<i>_` prefix."""
    fields = d.summary["fields"]
    index = fields.index(p["field"]) if p.get("field") in fields else 0
    a = _spw_arrays(d, p["spw"])
    prefix = f"f{index}_"
    picked = {k.removeprefix(prefix): v for k, v in a.items() if k.startswith(prefix)}
    if "amp_freq" not in picked:
        raise Http404(f"no data of {fields[index]} in spw {p['spw']}")
    picked["freq_ghz"] = a["freq_ghz"]
    return picked, fields[index], spw_label(d.summary, p["spw"])


def _calibrated_frequency(d: Diagnostic, p: dict) -> go.Figure:
    a, field, spw = _calibrated_arrays(d, p)
    return figures.calibrated_vs_frequency(
        a["freq_ghz"], a["amp_freq"], a["phase_freq"], field=field, spw=spw
    )


def _calibrated_time(d: Diagnostic, p: dict) -> go.Figure:
    a, field, spw = _calibrated_arrays(d, p)
    names = d.summary["antennas"]
    antenna = p["antenna"] if p["antenna"] in names else ""
    own = a["phase_ant_time"][names.index(antenna)] if antenna else None
    return figures.calibrated_vs_time(
        a["time"],
        a["amp_time"],
        a["phase_time"],
        a["scan"],
        field=field,
        spw=spw,
        antenna=antenna,
        antenna_phase=own,
    )


def _calibrated_uv(d: Diagnostic, p: dict) -> go.Figure:
    a, field, spw = _calibrated_arrays(d, p)
    return figures.calibrated_vs_uv(a["uv_klambda"], a["amp_uv"], a["phase_uv"], field=field, spw=spw)


FIGURES: dict[str, dict[str, Callable[[Diagnostic, dict], go.Figure]]] = {
    Topic.TSYS: {"spectra": _tsys_spectra, "medians": _tsys_medians},
    Topic.WVR: {"phase_rms": _wvr_bars, "path": _wvr_path},
    Topic.BANDPASS: {"amplitude": _bandpass("amp"), "phase": _bandpass("phase"), "worst": _bandpass_pair},
    Topic.GAINS: {"phase": _gains("phase"), "amplitude": _gains("amp")},
    Topic.FLAGS: {"stages": _flags_stages, "antennas": _flags_heatmap},
    Topic.FLUX: {"spectrum": _flux},
    Topic.CALIBRATED: {"frequency": _calibrated_frequency, "time": _calibrated_time, "uv": _calibrated_uv},
}


@login_required
def figure_json(request: HttpRequest, pk: int, topic: str, name: str) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    build = FIGURES.get(topic, {}).get(name)
    if build is None:
        raise Http404(f"no figure {topic}/{name}")
    diagnostics = list(run.diagnostics.filter(topic=topic))
    diagnostic = _choose(diagnostics, request.GET.get("diag"))
    if diagnostic is None or "cannot_assess" in diagnostic.summary:
        raise Http404("nothing to plot for this run and topic")
    try:
        fig = build(diagnostic, _params(diagnostic, request))
    except artifacts.ArtifactUnavailable as exc:  # missing, or a file the run planted
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return HttpResponse(pio.to_json(fig), content_type="application/json")


def _finding_eb_page(request: HttpRequest, pk: int) -> str:
    """The diagnostics page of the finding's EB (the finding exists: the view found it)."""
    eb_id = Finding.objects.values_list("run__execution_block_id", flat=True).get(pk=pk)
    return reverse("reports-eb", args=[eb_id])


@login_required
@require_POST
@refusal_page(back=_finding_eb_page, prefix="Edit not applied: ", also=(ValueError,))
def finding_apply(request: HttpRequest, pk: int) -> HttpResponse:
    finding = get_object_or_404(Finding.objects.select_related("run__mous", "run__script_version"), pk=pk)
    require_may_work_on(request.user, finding.run.mous)
    version = services.finding_apply(finding=finding, by=request.user)
    expect = version.applied_edit.expect["says"]
    messages.success(
        request,
        f"v{version.number} created with the edit: review the diff, then run it. "
        f"What it should change: {expect}; the next run's diagnostics will say whether it did.",
    )
    return redirect(f"{reverse('calibration-version-diff', args=[version.parent_id])}?against={version.pk}")


@login_required
def compare(request: HttpRequest, pk: int) -> HttpResponse:
    eb = get_object_or_404(ExecutionBlock.objects.select_related("mous"), pk=pk)
    runs = runs_with_diagnostics(eb)
    by_pk = {r.pk: r for r in runs}
    a_id, b_id = parse_id(request.GET.get("a", "")), parse_id(request.GET.get("b", ""))
    a = by_pk.get(a_id) if a_id is not None else None
    b = by_pk.get(b_id) if b_id is not None else None
    if a is None or b is None:
        a, b = (runs[1], runs[0]) if len(runs) >= 2 else (None, None)
    rows = []
    if a and b:
        sa, sb = services.topic_scores(a), services.topic_scores(b)
        for value, label in Topic.choices:
            score_a, score_b = sa[value], sb[value]
            change = None if score_a is None or score_b is None else round(score_b - score_a, 3)
            rows.append(
                {
                    "label": label,
                    "topic": value,
                    "a": score_a,
                    "b": score_b,
                    "change": change,
                    "band_a": score_band(score_a),
                    "band_b": score_band(score_b),
                }
            )
    figures_ab = []
    if a and b:
        for run in (a, b):
            if run.diagnostics.filter(topic=Topic.WVR).exists():
                figures_ab.append(
                    {"run": run, "url": reverse("reports-figure", args=[run.pk, "wvr", "phase_rms"])}
                )
    context = {
        "eb": eb,
        "mous": eb.mous,
        "runs": runs,
        "a": a,
        "b": b,
        "rows": rows,
        "figures": figures_ab,
        "changes": services.compare_runs(a, b) if a and b else [],
        "edit_checks": services.edit_checks(b) if b else [],
    }
    return render(request, "reports/compare.html", context)
