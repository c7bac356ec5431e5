"""calibrate_mous: the demo ALMA MOUS's two EBs calibrated on two worker slots vs on one.

The two EBs are the demo's (make_demo_data.ALMA_EBS: the small preset with each night's
faults and seed), each with its generated standard script, queued together as the run page
queues them (run_create, every step). Two real Celery worker processes, each with
concurrency 1 and prefetch 1 (acks late): worker A consumes the sequential queue and the
parallel one, worker B only the parallel one. Sequential: both runs on A's one slot, one
after the other. Parallel: one run per worker (a worker holds one unacked message, so
neither can hoard both). Wall time from queuing to both SUCCEEDED in the database; the
sides alternate (sequential, parallel, ...), each round on a fresh MOUS (fresh EB folders),
since the machine is shared. Ratio = parallel / sequential (medians).
"""

import time
import uuid
from pathlib import Path

import pytest
from django.db import transaction

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, MousState
from assignments.staging import mous_stage
from calibration import runs, script_generation
from calibration.management.commands.make_demo_data import ALMA_EBS
from calibration.models import Run, ScriptVersion
from calibration.rawdata import RAW_FOLDER
from calibration.simulate import presets
from calibration.simulate.build import EbBuild, cached_eb, copy_ms
from tests.benchmarks.harness import median, report
from tests.calibration.conftest import reducer  # noqa: F401 - fixture
from tests.factories import ExecutionBlockFactory, MousFactory

ORDER = ("sequential", "parallel", "sequential", "parallel")
TIMEOUT = 1800


def demo_builds() -> list[EbBuild]:
    """The demo's two ALMA EBs, as make_demo_data builds them (same specs, same cache)."""
    builds = []
    for demo in ALMA_EBS:
        ms_name = ExecutionBlock(uid=demo.uid).ms_name
        spec = presets.small().with_faults(*demo.faults, seed=demo.seed, ms_name=ms_name)
        builds.append(cached_eb(spec))
    return builds


def make_mous(builds: list[EbBuild], reducer) -> list[ScriptVersion]:  # noqa: F811
    """An ASSIGNED MOUS with one EB per build (its MS as raw data), each with its generated
    standard calibration script."""
    mous = MousFactory(state=MousState.ASSIGNED, assignee=reducer)
    ebs = [ExecutionBlockFactory(mous=mous) for _ in builds]
    mous_stage(mous)
    versions = []
    for eb, build in zip(ebs, builds, strict=True):
        copy_ms(build.ms, eb_folder(eb) / RAW_FOLDER)
        eb.data_name = f"{RAW_FOLDER}/{build.ms.name}"
        eb.data_status = ExecutionBlock.DataStatus.PRESENT
        eb.save(update_fields=["data_name", "data_status"])
        summary = script_generation.data_summary_refresh(eb)
        versions.append(script_generation.calibration_script_create(eb=eb, summary=summary, by=reducer.user))
    return versions


def calibrate(versions: list[ScriptVersion], by) -> dict:
    """Queue one run per EB (all steps) at once; wait until every one is terminal."""
    with transaction.atomic():  # sent on commit, together
        queued = [runs.run_create(version=v, steps=[], by=by) for v in versions]
    started = time.perf_counter()
    began: dict[int, float] = {}
    ended: dict[int, float] = {}
    while len(ended) < len(queued):
        time.sleep(0.2)
        now = time.perf_counter() - started
        for run in Run.objects.filter(pk__in=[r.pk for r in queued]).only("status"):
            if run.status != Run.Status.QUEUED:
                began.setdefault(run.pk, now)
            if run.is_terminal:
                ended.setdefault(run.pk, now)
        assert now < TIMEOUT, f"runs not done after {TIMEOUT} s: {began} {ended}"
    wall = time.perf_counter() - started
    for run in queued:
        run.refresh_from_db()
        assert run.status == Run.Status.SUCCEEDED, f"{run}: {run.error[-2000:]}"
    return {
        "wall": wall,
        # per EB, seconds after queuing: seen running, seen finished (polled every 0.2 s)
        "ebs": [
            {
                "eb": r.execution_block.uid,
                "began": began[r.pk],
                "ended": ended[r.pk],
                "steps": r.steps.count(),
            }
            for r in queued
        ],
    }


def wait_all_terminal(timeout: float = TIMEOUT) -> None:
    """A run left queued or running while the test database is flushed deadlocks the flush."""
    deadline = time.monotonic() + timeout
    while Run.objects.exclude(status__in=Run.TERMINAL).exists() and time.monotonic() < deadline:
        time.sleep(1)


@pytest.mark.casa
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_calibrate_mous(dedicated_worker, reducer, calibrator_catalogue, settings):  # noqa: F811
    builds = demo_builds()
    tag = uuid.uuid4().hex[:8]
    queues = {"sequential": f"bench-seq-{tag}", "parallel": f"bench-par-{tag}"}
    # A takes both sides' work, B only the parallel side's: one run per slot when parallel.
    dedicated_worker(f"{queues['sequential']},{queues['parallel']}")
    dedicated_worker(queues["parallel"])

    measured: dict[str, list[dict]] = {"sequential": [], "parallel": []}
    rounds = []
    try:
        for side in ORDER:
            versions = make_mous(builds, reducer)
            settings.CASA_QUEUE = queues[side]  # run_create sends to this queue
            result = calibrate(versions, reducer.user)
            measured[side].append(result)
            rounds.append({"side": side, **result})
            print(side, f"{result['wall']:.1f}s", result["ebs"], flush=True)
    finally:
        wait_all_terminal()

    seq = [r["wall"] for r in measured["sequential"]]
    par = [r["wall"] for r in measured["parallel"]]
    ratio = median(par) / median(seq)

    def per_eb(side: str) -> str:
        # each EB's own time (seen running -> seen finished), median over the rounds
        times = zip(*[[e["ended"] - e["began"] for e in r["ebs"]] for r in measured[side]], strict=True)
        return "/".join(f"{median(t):.1f}" for t in times)

    report(
        "calibrate_mous",
        ratio,
        goal="<= 0.6",
        details=(
            f"sequential={median(seq):.1f}s parallel={median(par):.1f}s "
            f"per_eb_seq={per_eb('sequential')}s per_eb_par={per_eb('parallel')}s "
            f"order={','.join(s[:3] for s in ORDER)} n={len(seq)}"
        ),
        sequential_seconds=seq,
        parallel_seconds=par,
        rounds=rounds,
        order=list(ORDER),
        ebs=[demo.uid for demo in ALMA_EBS],
        preset="small",
        ms=[str(Path(b.ms).name) for b in builds],
    )
