"""Combination end to end, with real CASA on a real worker: two small simulated EBs of one
MOUS calibrated at once ("Calibrate all EBs"), copied into Combination/calibrated, allFluxes
from their fluxscale results, the generated scale-and-concatenate script run, and the result
measured in CASA; then a combination from scratch removes only what combination made."""

import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, MousState
from assignments.staging import mous_stage
from calibration import casa, runs, script_generation
from calibration import combination as copying
from calibration.models import CombinationCopy, Run
from calibration.runs import combination_folder
from calibration.simulate import presets
from calibration.simulate.build import cached_eb
from calibration.simulate.spec import Component
from reports import combination
from reports.models import Diagnostic
from tests.factories import ExecutionBlockFactory, MousFactory

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]

PHASE_CAL = "J1733-1304"


def night(n: int, seed: int, phase_flux_jy: float):
    """One night of the MOUS, without injected faults (their calibration is not the subject);
    the phase calibrator varies between nights (1.2 Jy, then 10% brighter), so scaling to the
    weighted mean moves each EB by a few percent, which the test can measure."""
    spec = presets.small().with_faults(seed=seed, ms_name=f"uid___A002_Xcomb_X{n}.ms")
    fields = tuple(
        replace(f, components=(Component(phase_flux_jy, -0.5),)) if f.name == PHASE_CAL else f
        for f in spec.fields
    )
    return replace(spec, fields=fields, schedule=replace(spec.schedule, start_utc=f"2024/06/0{n}/05:00:00"))


SPECS = [night(1, 301, 1.2), night(2, 302, 1.32)]

# Run in a CASA subprocess: per (observation, split spw) the vector average of the phase
# calibrator's visibilities (a point source at the phase centre: its flux), and the rows.
MEASURE = """
import json, sys
import numpy as np, casatools
vis, field = sys.argv[1], sys.argv[2]
msmd = casatools.msmetadata(); msmd.open(vis); fid = int(msmd.fieldsforname(field)[0]); msmd.close()
tb = casatools.table()
tb.open(vis + '/DATA_DESCRIPTION'); spw_of = tb.getcol('SPECTRAL_WINDOW_ID'); tb.close()
tb.open(vis); rows = tb.nrows(); q = tb.query('FIELD_ID==%d' % fid)
data, flag = q.getcol('DATA'), q.getcol('FLAG')
ddid, obs = q.getcol('DATA_DESC_ID'), q.getcol('OBSERVATION_ID')
q.close(); tb.close()
amp = {}
for o in sorted(set(obs.tolist())):
    for d in sorted(set(ddid.tolist())):
        m = (obs == o) & (ddid == d)
        v = np.ma.masked_array(data[:, :, m], flag[:, :, m])
        amp['%d/%d' % (o, spw_of[d])] = float(abs(v.mean()))
print(json.dumps({'rows': int(rows), 'amp': amp}))
"""


def measure(vis: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(vis), PHASE_CAL],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=casa.casa_environment(),
        cwd=vis.parent,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_for(row, done, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while not done(row):
        assert time.monotonic() < deadline, f"{row} did not finish"
        time.sleep(1)
        row.refresh_from_db()
    return row


def test_two_ebs_are_calibrated_at_once_scaled_to_the_weighted_mean_and_concatenated(
    celery_worker_process, reducer, calibrator_catalogue
):
    started = time.monotonic()
    mous = MousFactory(state=MousState.ASSIGNED, assignee=reducer)
    ebs = [ExecutionBlockFactory(mous=mous, uid=f"uid://A002/Xcomb/X{n}") for n in (1, 2)]
    mous_stage(mous)
    for eb, spec in zip(ebs, SPECS, strict=True):
        build = cached_eb(spec)
        shutil.copytree(build.ms, eb_folder(eb) / "raw" / build.ms.name)
        eb.data_name, eb.data_status = f"raw/{build.ms.name}", ExecutionBlock.DataStatus.PRESENT
        eb.save(update_fields=["data_name", "data_status"])
        script_generation.calibration_script_create(
            eb=eb, summary=script_generation.data_summary_refresh(eb), by=reducer.user
        )
    with pytest.raises(copying.CombinationRefused, match="is not calibrated"):
        copying.combination_copy_request(mous=mous, by=reducer.user)

    # 1. Calibrate all EBs: one run per EB, all steps of each latest version.
    eb_runs = runs.runs_calibrate_all(mous=mous, by=reducer.user)
    assert sorted(r.execution_block_id for r in eb_runs) == sorted(eb.pk for eb in ebs)
    for run in eb_runs:
        wait_for(run, lambda r: r.is_terminal)
        assert run.status == Run.Status.SUCCEEDED, run.error
    calibrated_at = time.monotonic()

    # 2. Copy into Combination/calibrated, with progress.
    copy = copying.combination_copy_request(mous=mous, by=reducer.user)
    wait_for(copy, lambda c: not c.is_active)
    assert copy.status == CombinationCopy.Status.DONE, copy.error
    assert copy.percent == 100 and copy.bytes_done == copy.bytes_total > 0
    folder = combination_folder(mous)
    for eb in ebs:
        assert (folder / f"{eb.ms_name}.split.cal" / "table.dat").is_file()

    # allFluxes = each EB's fluxscale results (the dict fluxscale returned, as stored).
    fluxes = combination.all_fluxes(mous)
    for eb, run, got in zip(ebs, eb_runs, fluxes.ebs, strict=True):
        stored = Diagnostic.objects.get(run=run, topic="flux", summary__has_key="fields").summary["fields"]
        assert got.uid == eb.uid and got.fields == {PHASE_CAL: stored[PHASE_CAL]}
    means = fluxes.means[PHASE_CAL]
    for spw, mean in means.items():
        pairs = [(eb.fields[PHASE_CAL][spw]["flux"], eb.fields[PHASE_CAL][spw]["error"]) for eb in fluxes.ebs]
        assert mean["flux"] == pytest.approx(combination.weighted_mean(pairs)[0])

    # 3. Generate (scale and concatenate) and run it in Combination/calibrated.
    version = combination.combination_script_create(mous=mous, mode=combination.SCALE, by=reducer.user)
    run = combination.combination_run_create(mous=mous, version=version, by=reducer.user)
    assert Path(run.folder) == folder
    wait_for(run, lambda r: r.is_terminal)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert (folder / run.casa_log_name).is_file()

    # The concatenated MS: the rows of both splits, their fields, their spws (merged).
    splits = [measure(eb_folder(eb) / f"{eb.ms_name}.split.cal") for eb in ebs]
    combined = measure(folder / "calibrated.ms")
    summary = combination.concat_summary(mous)
    assert summary is not None
    assert summary["rows"] == combined["rows"] == sum(s["rows"] for s in splits)
    assert summary["observations"] == 2
    assert len(summary["spws"]) == summary["expected_spws"] == len(summary["inputs"][0]["spws"])
    assert sorted(summary["fields"]) == sorted(summary["inputs"][0]["fields"])
    assert not summary["fields_multiplied"] and not summary["spws_multiplied"]

    # After scaling, the phase calibrator of each EB has the weighted-mean flux (within 1%),
    # measured on the visibilities: each EB's amplitude moved by mean/own, and both EBs agree.
    print(
        "fluxes",
        {
            spw: (m["flux"], [eb.fields[PHASE_CAL][spw]["flux"] for eb in fluxes.ebs])
            for spw, m in means.items()
        },
    )
    print("amplitudes", splits[0]["amp"], splits[1]["amp"], combined["amp"])
    for k, (eb_flux, split) in enumerate(zip(fluxes.ebs, splits, strict=True)):
        for spw, mean in means.items():
            before = split["amp"][f"0/{spw}"]
            after = combined["amp"][f"{k}/{spw}"]
            own = eb_flux.fields[PHASE_CAL][spw]["flux"]
            assert after / before == pytest.approx(mean["flux"] / own, rel=0.01), (k, spw)
            assert after == pytest.approx(mean["flux"], rel=0.01), (k, spw, after, mean["flux"])
    combined_at = time.monotonic()

    # 4. From scratch: only what combination made goes; a reducer's own file stays.
    (folder / "notes.txt").write_text("mine\n")
    again = copying.combination_copy_request(mous=mous, by=reducer.user, from_scratch=True)
    wait_for(again, lambda c: not c.is_active)
    assert again.status == CombinationCopy.Status.DONE, again.error
    assert {"calibrated.ms", "scriptForFluxCalibration.py", run.casa_log_name} <= set(again.removed)
    assert not (folder / "calibrated.ms").exists()
    assert (folder / "notes.txt").read_text() == "mine\n"
    for eb in ebs:
        assert (folder / f"{eb.ms_name}.split.cal" / "table.dat").is_file()
        assert not (folder / f"{eb.ms_name}.split.cal.rescaled").exists()
    print(
        f"calibrate all {calibrated_at - started:.0f} s, combination {combined_at - calibrated_at:.0f} s, "
        f"total {time.monotonic() - started:.0f} s"
    )
