"""imaging: the generated scriptForImaging.py on a calibrated one-EB MOUS through the portal vs
the bare runner.

Set up once (not measured): the one-EB MOUS of the imaging end-to-end test, calibrated on the
worker; its split copied into Imaging/; scriptForImagingPrep.py generated and run;
scriptForImaging.py generated from what the prep run read. Then, alternated in the same session:

- portal: a new run of that version, every step (runs.run_create, as the imaging page queues it)
  -> Celery on Redis -> worker -> sandboxed CASA in Imaging/ -> every step, product and the image
  QA recorded -> SUCCEEDED seen in the database. Imaging/ is reused: each step starts with
  os.system('rm -rf <image>.*').
- bare: the same in-CASA runner on the same script text, in a plain folder holding a fresh copy of
  Imaging/ as the prep run left it (copied outside the timing), no database, no broker. The same
  after-step hook runs, so the image QA computed in CASA after each tclean is on both sides.

Ratio = portal / bare (medians).
"""

import json
import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings

from calibration import casa, engine, imaging, runs
from calibration.imaging_names import PREPARED_MS
from calibration.incasa.events import MARKER
from calibration.models import CalibratedCopy, Run, RunStep
from calibration.scriptparse import parse_script
from tests.benchmarks.harness import median, report
from tests.calibration.conftest import reducer  # noqa: F401 - fixture
from tests.reports.test_imaging import calibrated_mous, wait_for

ORDER = ("bare", "portal", "bare", "portal")
TIMEOUT = 1800
SCRIPT_NAME = "scriptForImaging.py"


def prepare(reducer) -> tuple[object, Path]:  # noqa: F811
    """Calibrated MOUS -> copy into Imaging/ -> prep run -> scriptForImaging.py; its version and Imaging/."""
    mous = calibrated_mous(reducer)
    copy = imaging.imaging_copy_request(mous=mous, by=reducer.user)
    copy = wait_for(copy, lambda c: c.status not in CalibratedCopy.ACTIVE, timeout=TIMEOUT)
    assert copy.status == CalibratedCopy.Status.DONE, copy.error
    prep = imaging.prep_script_create(mous=mous, by=reducer.user)
    prep_run = wait_for(runs.run_create(version=prep, steps=[], by=reducer.user), lambda r: r.is_terminal)
    assert prep_run.status == Run.Status.SUCCEEDED, prep_run.error
    version = imaging.imaging_script_create(mous=mous, by=reducer.user)
    folder = imaging.imaging_folder(mous)
    assert (folder / PREPARED_MS / "table.dat").is_file()
    return version, folder


def events_of(stdout: str) -> list[dict]:
    # split("\n"), not splitlines(): the marker's \x1e is a line boundary for splitlines().
    return [json.loads(line.split(MARKER, 1)[1]) for line in stdout.split("\n") if MARKER in line]


def bare_run(script_text: str, prepared: Path, folder: Path) -> dict:
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(prepared, folder, symlinks=True)
    (folder / SCRIPT_NAME).write_text(script_text)
    steps = [[s.number, s.title] for s in parse_script(script_text).steps]
    # The same in-CASA work as a portal run, image QA included: what differs is the portal.
    spec = {
        "script": SCRIPT_NAME,
        "steps": steps,
        "casa_log": "casa.log",
        "diagnostics_dir": "diagnostics",
        "after_step": settings.CASA_AFTER_STEP_HOOK,
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    started = time.perf_counter()
    result = casa.run_casa(engine.RUNNER_MODULE, cwd=folder, timeout=TIMEOUT, args=["--spec", "spec.json"])
    elapsed = time.perf_counter() - started
    assert result.ok and '"runner_end"' in result.stdout, result.stdout[-2000:]
    events = events_of(result.stdout)
    ends = [e for e in events if e["event"] == "step_end"]
    assert len(ends) == len(steps) and all(e["ok"] for e in ends), [e.get("error") for e in ends]
    diagnostics = [i for e in events if e["event"] == "diagnostics" for i in e["items"]]
    images = [i for i in diagnostics if i.get("topic") == "image"]
    assert len(images) >= 2 and not any("cannot_assess" in i["summary"] for i in images), images
    return {"wall": elapsed, "steps": [e["seconds"] for e in ends]}


def portal_run(version, by) -> dict:
    started = time.perf_counter()
    run = runs.run_create(version=version, steps=[], by=by)
    while not run.is_terminal:
        time.sleep(0.1)
        run.refresh_from_db(fields=["status"])
        assert time.perf_counter() - started < TIMEOUT, f"run {run.pk} not done after {TIMEOUT} s"
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error[-2000:]
    steps = list(run.steps.order_by("pk"))
    assert all(s.status == RunStep.Status.SUCCEEDED for s in steps), [(s.number, s.status) for s in steps]
    queued = run.created_at
    return {
        "wall": elapsed,
        "steps": [s.duration_seconds for s in steps],
        # where the rest of the wall time went (database times, to the ms)
        "queued_to_claimed": (run.started_at - queued).total_seconds(),
        "claimed_to_first_step": (steps[0].started_at - run.started_at).total_seconds(),
        "last_step_to_finished": (run.finished_at - steps[-1].finished_at).total_seconds(),
        "run": run.pk,
    }


def wait_all_terminal(timeout: float = TIMEOUT) -> None:
    """A run left queued or running while the test database is flushed deadlocks the flush."""
    deadline = time.monotonic() + timeout
    while Run.objects.exclude(status__in=Run.TERMINAL).exists() and time.monotonic() < deadline:
        time.sleep(1)


@pytest.mark.casa
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_imaging(celery_worker_process, reducer, calibrator_catalogue, tmp_path):  # noqa: F811
    try:
        version, folder = prepare(reducer)
        text = version.text()
        prepared = tmp_path / "prepared"
        shutil.copytree(folder, prepared, symlinks=True)  # Imaging/ as the prep run left it

        measured: dict[str, list[dict]] = {"bare": [], "portal": []}
        for index, side in enumerate(ORDER):
            if side == "bare":
                result = bare_run(text, prepared, tmp_path / f"bare{index}")
            else:
                result = portal_run(version, reducer.user)
            measured[side].append(result)
            extra = {k: v for k, v in result.items() if k != "wall"}
            print(side, f"{result['wall']:.1f}s", extra, flush=True)
    finally:
        wait_all_terminal()

    bare = [r["wall"] for r in measured["bare"]]
    portal = [r["wall"] for r in measured["portal"]]
    ratio = median(portal) / median(bare)

    def per_step(side: str) -> str:
        return "/".join(f"{median(t):.1f}" for t in zip(*[r["steps"] for r in measured[side]], strict=True))

    def overhead(key: str) -> float:
        return median([r[key] for r in measured["portal"]])

    print(
        f"medians: portal {median(portal):.1f}s bare {median(bare):.1f}s; "
        f"portal samples {[round(s, 1) for s in portal]} bare samples {[round(s, 1) for s in bare]}; "
        f"steps portal {per_step('portal')}s bare {per_step('bare')}s; "
        f"portal queued->claimed {overhead('queued_to_claimed'):.2f}s "
        f"claimed->first step {overhead('claimed_to_first_step'):.2f}s "
        f"last step->finished {overhead('last_step_to_finished'):.2f}s",
        flush=True,
    )
    payload_mb = largest_page_payload_mb(tmp_path)
    report(
        "imaging",
        ratio,
        goal="<= 1.05",
        details=(
            f"payload_1000x1000={payload_mb:.2f}MB (goal <= 5) "
            f"portal={median(portal):.1f}s bare={median(bare):.1f}s "
            f"steps_portal={per_step('portal')}s steps_bare={per_step('bare')}s "
            f"order={','.join(s[:4] for s in ORDER)} n={len(bare)}"
        ),
        payload_1000x1000_mb=payload_mb,
        portal_seconds=portal,
        bare_seconds=bare,
        portal=measured["portal"],
        bare=measured["bare"],
        order=list(ORDER),
        steps=len(measured["bare"][0]["steps"]),
        preset="small",
    )


def largest_page_payload_mb(tmp_path) -> float:
    """The image page's plane JSON for a 1000 x 1000 image with its contours' signal-to-noise
    plane (the largest page payload)."""
    import json
    import uuid

    import numpy as np
    from astropy.io import fits
    from django.conf import settings

    from reports import fits_images

    folder = Path(settings.DATA_ROOT) / f"bench-payload-{uuid.uuid4().hex[:8]}"  # pages read below DATA_ROOT
    folder.mkdir(parents=True)
    header = fits.Header()
    for key, value in {
        "CTYPE1": "RA---SIN", "CRVAL1": 269.0887, "CDELT1": -5e-5, "CRPIX1": 500.0, "CUNIT1": "deg",
        "CTYPE2": "DEC--SIN", "CRVAL2": -21.956, "CDELT2": 5e-5, "CRPIX2": 500.0, "CUNIT2": "deg",
        "CTYPE3": "FREQ", "CRVAL3": 2.3e11, "CDELT3": 2e9, "CRPIX3": 1.0,
        "CTYPE4": "STOKES", "CRVAL4": 1.0, "CDELT4": 1.0, "CRPIX4": 1.0,
        "BMAJ": 4e-4, "BMIN": 3.5e-4, "BPA": 10.0, "BUNIT": "Jy/beam",
    }.items():  # fmt: skip
        header[key] = value
    data = np.random.default_rng(1).normal(size=(1, 1, 1000, 1000)).astype(np.float32)
    fits.PrimaryHDU(data, header).writeto(folder / "big.pbcor.fits")
    fits.PrimaryHDU(np.ones_like(data), header).writeto(folder / "big.flux.fits")
    payload = fits_images.plane_payload(folder, "big.pbcor.fits", 0, pb_name="big.flux.fits", rms=1.0)
    assert payload["snr"], "the contours' signal-to-noise plane is part of the page"
    return len(json.dumps(payload).encode()) / 1e6
