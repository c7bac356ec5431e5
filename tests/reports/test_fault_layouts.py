"""The diagnostics loop on two fault layouts the simulator builds, with real CASA on a real worker:

- the demo's first ALMA EB, exactly as `make_demo_data` builds it (seed, faults, MS name);
- an EB with the faults on other antennas and spws, another seed, a quack and a narrow spw.

In each layout: every injected fault is found on its antenna and spw, nothing is found on a
healthy antenna; then every suggested edit is applied (each a new version, as "Apply this edit"
does) and the script runs again: each edit's verdict is "worked", nothing appears on a healthy
antenna, and every topic an edit fixed scores better.
"""

import time
from dataclasses import dataclass

import pytest

from calibration import runs, script_generation
from calibration.management.commands.make_demo_data import ALMA_EBS
from calibration.models import Run, ScriptVersion
from calibration.simulate import presets
from calibration.simulate.build import cached_eb
from calibration.simulate.spec import BadWvr, BandpassDefect, DeadAntenna, HotTsys, LowSnrSpw, Quack
from reports.models import Finding
from reports.services import edit_checks, finding_apply, topic_scores
from reports.thresholds import OPEN_SCORE

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]

LOW_SNR_CODES = {"bandpass_low_snr_spw", "gains_low_snr_spw", "flux_low_snr_spw"}


@dataclass(frozen=True)
class Layout:
    faults: tuple
    seed: int
    ms_name: str


DEMO = ALMA_EBS[0]
LAYOUTS = {
    "demo": Layout(DEMO.faults, DEMO.seed, "uid___A002_Xsim01_X1.ms"),
    "other": Layout(
        (
            BadWvr("DA42"),
            BandpassDefect("DA45", spw=1),
            HotTsys("DV05"),
            DeadAntenna("DV02"),
            Quack(),
            # 3.9 MHz over 64 channels: SNR 20x lower than the 2 GHz spws, below what a bandpass
            # per channel and a gain per integration need (the demo's 62.5 MHz still has enough).
            LowSnrSpw(spw=2, bandwidth_mhz=3.90625),
        ),
        seed=404,
        ms_name="uid___A002_Xd1a_X4.ms",
    ),
}


def run_to_end(version: ScriptVersion, by) -> Run:
    run = runs.run_create(version=version, steps=[], by=by)
    deadline = time.monotonic() + 600
    while not run.is_terminal:
        assert time.monotonic() < deadline, f"run {run.pk} stuck in {run.status}"
        time.sleep(0.5)
        run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    return run


def found(fault: dict, findings: list[Finding]) -> list[Finding]:
    """The open findings that name this injected fault where it was injected."""
    open_ = [f for f in findings if f.score <= OPEN_SCORE]
    kind = fault["kind"]
    if kind == "bad_wvr":
        return [f for f in open_ if f.code == "wvr_bad_antenna" and f.antenna == fault["antenna"]]
    if kind == "hot_tsys":
        return [f for f in open_ if f.code == "tsys_high" and f.antenna == fault["antenna"]]
    if kind == "bandpass_defect":
        return [
            f
            for f in open_
            if f.code == "bandpass_notch" and f.antenna == fault["antenna"] and f.spw == fault["spw"]
        ]
    if kind == "dead_antenna":
        return [f for f in open_ if f.code == "gains_antenna" and f.antenna == fault["antenna"]]
    if kind == "quack":
        return [f for f in open_ if f.code == "quack"]
    if kind == "low_snr_spw":
        return [f for f in open_ if f.code in LOW_SNR_CODES and f.spw == fault["spw"]]
    raise AssertionError(f"no rule for {kind}")


def _edit_key(finding: Finding) -> str:
    return repr({k: v for k, v in (finding.edit or {}).items() if k not in ("expect", "description")})


def on_healthy(findings: list[Finding], truth: dict) -> list[str]:
    faulty = {f.get("antenna") for f in truth["faults"]} - {None}
    return [
        f"{f.code} {f.antenna}: {f.message}"
        for f in findings
        if f.antenna and f.antenna not in faulty and f.score <= OPEN_SCORE
    ]


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_fault_is_found_and_every_suggested_edit_fixes_its_topic(
    name, celery_worker_process, calibrator_catalogue, make_eb, reducer
):
    layout = LAYOUTS[name]
    build = cached_eb(presets.small().with_faults(*layout.faults, seed=layout.seed, ms_name=layout.ms_name))
    truth = build.truth
    eb = make_eb(build.ms)
    version = script_generation.calibration_script_create(
        eb=eb, summary=script_generation.data_summary_refresh(eb), by=reducer.user
    )
    first = run_to_end(version, reducer.user)
    before = list(first.findings.all())
    missed = [
        f["kind"] + str(f.get("antenna") or f.get("spw") or "")
        for f in truth["faults"]
        if not found(f, before)
    ]
    snr = {d.name: d.summary.get("spw_snr") for d in first.diagnostics.all() if "spw_snr" in d.summary}
    fluxes = {d.name: d.summary.get("fields") for d in first.diagnostics.filter(topic="flux")}
    assert missed == [], (
        missed,
        sorted(f"{f.code} {f.antenna} {f.spw} {f.score:.2f}" for f in before),
        snr,
        fluxes,
    )
    assert on_healthy(before, truth) == []

    applied: dict[str, Finding] = {}
    for finding in sorted(before, key=lambda f: f.score):
        key = _edit_key(finding)
        if finding.score <= OPEN_SCORE and finding.edit and key not in applied:
            finding_apply(finding=finding, by=reducer.user)
            applied[key] = finding
    assert applied, "the faults come with edits"
    edited = ScriptVersion.objects.filter(script=version.script).latest("number")
    assert edited.number == version.number + len(applied)

    second = run_to_end(edited, reducer.user)
    after = list(second.findings.all())
    verdicts = {c["edit"].description: c["verdict"] for c in edit_checks(second)}
    assert len(verdicts) == len(applied)
    not_worked = {d: v.says for d, v in verdicts.items() if not v.ok}
    assert not_worked == {}, not_worked
    assert on_healthy(after, truth) == []
    for fault in truth["faults"]:
        # an edit applied from this finding, or the same edit from another finding of the fault
        fixed = [f for f in found(fault, before) if f.edit and _edit_key(f) in applied]
        assert fixed or found(fault, after), f"{fault} was neither fixed by an edit nor still found"
    # A fault's topic (where its finding is) scores better once every open finding of that
    # topic had its edit applied; a topic's score is its worst check (the pipeline's rule).
    # The calibrated topic is the cross-check of them all: it may show what the edits cost
    # (a narrow spw's averaged band edges, the data the flags removed) as new findings, which
    # the compare page marks red; it is not where a fault is fixed.
    scores_before, scores_after = topic_scores(first), topic_scores(second)
    fault_topics = {
        f.topic
        for fault in truth["faults"]
        for f in found(fault, before)
        if f.edit and _edit_key(f) in applied and f.topic != "calibrated"
    }
    assert fault_topics, "the applied edits fix faults"
    for topic in fault_topics:
        change = (
            topic,
            scores_before[topic],
            scores_after[topic],
            [f"{f.code} {f.antenna} {f.spw} {f.score:.2f}: {f.message}" for f in after if f.topic == topic],
        )
        assert scores_after[topic] >= scores_before[topic], change
        open_before = [f for f in before if f.topic == topic and f.score <= OPEN_SCORE]
        if all(f in applied.values() or (f.edit and _same_edit(f, applied)) for f in open_before):
            assert scores_after[topic] > scores_before[topic], change


def _same_edit(finding: Finding, applied: dict[str, Finding]) -> bool:
    return _edit_key(finding) in applied
