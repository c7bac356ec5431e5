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
from playwright.sync_api import expect

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, MousState
from assignments.staging import mous_stage
from calibration import casa, script_generation
from calibration import combination as copying
from calibration.models import CalibratedCopy, Run
from calibration.runs import combination_folder
from calibration.simulate import presets
from calibration.simulate.build import cached_eb
from calibration.simulate.spec import Component
from reports import combination
from reports.models import Diagnostic, FluxEdit
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
    page, live_server, login, celery_worker_process, reducer, calibrator_catalogue
):
    """The reducer's path in Chromium (calibrate all, copy, edit a flux, generate, run, read the
    result); the numbers checked against the database and measured in CASA."""
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
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login("calreducer", "reducer-pw-123")

    # 1. Calibrate all EBs from the MOUS page: one run per EB; the page follows both.
    page.goto(f"{live_server.url}/calibration/mous/{mous.pk}/")
    page.click("#calibrate-all")
    expect(page.locator(".messages")).to_contain_text("2 runs queued")
    eb_runs = list(Run.objects.filter(mous=mous).order_by("pk"))
    assert sorted(r.execution_block_id for r in eb_runs) == sorted(eb.pk for eb in ebs)
    for uid in (eb.uid for eb in ebs):
        expect(page.locator(f'tr[data-eb="{uid}"] .run-progress')).to_have_attribute(
            "data-run-status", "SUCCEEDED", timeout=600_000
        )
    for run in eb_runs:
        run.refresh_from_db()
        assert run.status == Run.Status.SUCCEEDED, run.error
    expect(page.locator(".run-progress span").first).to_contain_text(f"{run.steps.count()} / ")
    calibrated_at = time.monotonic()

    # 2. The combination page (linked), the copy with its progress.
    page.click("#combination-link")
    page.click("#copy-data")
    expect(page.locator("#copy-progress")).to_contain_text("Done 100%", timeout=120_000)
    copy = CalibratedCopy.objects.get(mous=mous)
    assert copy.bytes_done == copy.bytes_total > 0
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
    rows = page.locator("#flux-table tbody tr")
    expect(rows).to_have_count(len(means))
    page.wait_for_function("document.body.dataset.figuresReady === '1'", timeout=30_000)
    alpha = fluxes.fits[PHASE_CAL].alpha
    assert alpha == pytest.approx(-0.5, abs=0.15)  # the simulated calibrator's index
    expect(page.locator(".spectral-fit")).to_contain_text(f"spectral index \u03b1 = {alpha:.3f}")

    # A bad flux is refused with the reason, and changes nothing; a good one is kept with history.
    edit_row = page.locator('#flux-table tr[data-spw="0"]')
    edit_row.locator("input[name=flux]").fill("-1")
    edit_row.locator("button").click()
    expect(page.locator(".messages")).to_contain_text(
        "Flux not changed: -1 Jy: a flux must be a positive number"
    )
    assert not FluxEdit.objects.exists()
    edited = round(means["0"]["flux"] * 1.03, 4)  # the reducer knows better for spw 0
    page.locator('#flux-table tr[data-spw="0"] input[name=flux]').fill(str(edited))
    page.locator('#flux-table tr[data-spw="0"] button').click()
    expect(page.locator('#flux-table tr[data-spw="0"] .in-use')).to_contain_text(f"{edited:.4f}")
    expect(page.locator("#flux-history tbody tr")).to_have_count(1)
    wanted = {spw: (edited if spw == "0" else m["flux"]) for spw, m in means.items()}

    # 3. Generate (scale and concatenate), run it in Combination/calibrated, read the result.
    page.click("#generate")
    expect(page.locator(".messages")).to_contain_text("scriptForFluxCalibration.py v1 generated")
    page.click("#run-combination")
    page.wait_for_function("document.body.dataset.runStatus === 'SUCCEEDED'", timeout=300_000)
    run = Run.objects.filter(mous=mous, execution_block__isnull=True).get()
    assert Path(run.folder) == folder and (folder / run.casa_log_name).is_file()
    page.goto(f"{live_server.url}/reports/mous/{mous.pk}/combination/")
    summary = combination.concat_summary(mous)
    assert summary is not None
    expect(page.locator("#concat-summary")).to_contain_text(f"{summary['rows']} rows")
    expect(page.locator("#fields-multiplied")).to_have_count(0)
    assert not errors, errors

    # The concatenated MS: the rows of both splits, their fields, their spws (merged).
    splits = [measure(eb_folder(eb) / f"{eb.ms_name}.split.cal") for eb in ebs]
    combined = measure(folder / "calibrated.ms")
    assert summary["rows"] == combined["rows"] == sum(s["rows"] for s in splits)
    assert summary["observations"] == 2
    assert len(summary["spws"]) == summary["expected_spws"] == len(summary["inputs"][0]["spws"])
    assert sorted(summary["fields"]) == sorted(summary["inputs"][0]["fields"])
    assert not summary["fields_multiplied"] and not summary["spws_multiplied"]

    # After scaling, the phase calibrator of each EB has the flux in use (the weighted mean;
    # spw 0: the reducer's edit) within 1%, measured on the visibilities (vector average of a
    # point source): each EB moved by wanted/own, from 1.2 and 1.32 Jy to the same value.
    print(
        "flux in use and per EB",
        {spw: (wanted[spw], [eb.fields[PHASE_CAL][spw]["flux"] for eb in fluxes.ebs]) for spw in means},
    )
    print("amplitudes", splits[0]["amp"], splits[1]["amp"], combined["amp"])
    for k, (eb_flux, split) in enumerate(zip(fluxes.ebs, splits, strict=True)):
        for spw in means:
            before = split["amp"][f"0/{spw}"]
            after = combined["amp"][f"{k}/{spw}"]
            own = eb_flux.fields[PHASE_CAL][spw]["flux"]
            assert after / before == pytest.approx(wanted[spw] / own, rel=0.01), (k, spw)
            assert after == pytest.approx(wanted[spw], rel=0.01), (k, spw, after, wanted[spw])
    combined_at = time.monotonic()

    # 4. From scratch: only what combination made goes; a reducer's own file stays.
    (folder / "notes.txt").write_text("mine\n")
    again = copying.combination_copy_request(mous=mous, by=reducer.user, from_scratch=True)
    wait_for(again, lambda c: not c.is_active)
    assert again.status == CalibratedCopy.Status.DONE, again.error
    assert {"calibrated.ms", "scriptForFluxCalibration.py", run.casa_log_name} <= set(again.removed)
    assert not (folder / "calibrated.ms").exists()
    assert (folder / "notes.txt").read_text() == "mine\n"
    for eb in ebs:
        assert (folder / f"{eb.ms_name}.split.cal" / "table.dat").is_file()
        assert not (folder / f"{eb.ms_name}.split.cal.rescaled").exists()

    # 5. Concatenate only: the EBs keep their own flux scale (the amplitudes are the splits').
    only = combination.combination_script_create(mous=mous, mode=combination.CONCAT, by=reducer.user)
    assert "setjy(" not in only.text() and only.number == 2
    plain = wait_for(
        combination.combination_run_create(mous=mous, version=only, by=reducer.user), lambda r: r.is_terminal
    )
    assert plain.status == Run.Status.SUCCEEDED, plain.error
    concatenated = measure(folder / "calibrated.ms")
    assert concatenated["rows"] == sum(s["rows"] for s in splits)
    for k, split in enumerate(splits):
        for spw in means:
            assert concatenated["amp"][f"{k}/{spw}"] == pytest.approx(split["amp"][f"0/{spw}"], rel=1e-4)
    print(
        f"calibrate all {calibrated_at - started:.0f} s, combination {combined_at - calibrated_at:.0f} s, "
        f"total {time.monotonic() - started:.0f} s"
    )
