"""run_overhead: the generated script on the small EB through the portal vs the bare runner.

Portal: the run page's POST (as the button click) -> Celery on Redis -> worker -> CASA ->
every step recorded -> SUCCEEDED seen in the database. Bare: the same in-CASA runner on the
same script and data in a plain folder, no database, no broker. Alternated, same session.
"""

import json
import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from calibration import casa, engine, script_generation
from calibration.models import Run
from calibration.scriptparse import parse_script
from tests.benchmarks.harness import median, report
from tests.calibration.conftest import drm_person, make_eb, reducer  # noqa: F401 - fixtures

REPEAT = 2
TIMEOUT = 900


def bare_run(script_text: str, source_ms: Path, folder: Path) -> float:
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "raw").mkdir(parents=True)
    shutil.copytree(source_ms, folder / "raw" / source_ms.name)
    name = "bare.scriptForCalibration.py"
    (folder / name).write_text(script_text)
    steps = [[s.number, s.title] for s in parse_script(script_text).steps]
    # The same in-CASA work as a portal run, diagnostics included: what differs is the portal.
    spec = {
        "script": name,
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
    return elapsed


def portal_run(client: Client, eb, version) -> tuple[float, Run]:
    started = time.perf_counter()
    response = client.post(f"/calibration/eb/{eb.pk}/run/", {"version": version.pk, "action": "all"})
    assert response.status_code == 302, response.content[:500]
    run = Run.objects.filter(execution_block=eb).latest("pk")
    while not run.is_terminal:
        time.sleep(0.1)
        run.refresh_from_db(fields=["status"])
        assert time.perf_counter() - started < TIMEOUT
    elapsed = time.perf_counter() - started
    assert run.status == Run.Status.SUCCEEDED, Run.objects.get(pk=run.pk).error
    return elapsed, run


@pytest.mark.casa
@pytest.mark.django_db(transaction=True)
def test_run_overhead(celery_worker_process, make_eb, small_eb, reducer, tmp_path, calibrator_catalogue):  # noqa: F811
    eb = make_eb(small_eb.ms)
    summary = script_generation.data_summary_refresh(eb)
    version = script_generation.calibration_script_create(eb=eb, summary=summary, by=reducer.user)
    text = version.text()
    client = Client()
    client.force_login(reducer.user)

    bare_s, portal_s = [], []
    for attempt in range(REPEAT):
        bare_s.append(bare_run(text, small_eb.ms, tmp_path / f"bare{attempt}"))
        elapsed, run = portal_run(client, eb, version)
        portal_s.append(elapsed)
    ratio = median(portal_s) / median(bare_s)
    steps = run.steps.count()
    report(
        "run_overhead",
        ratio,
        goal="<= 1.05",
        details=f"portal={median(portal_s):.1f}s bare={median(bare_s):.1f}s steps={steps} n={REPEAT}",
        portal_seconds=portal_s,
        bare_seconds=bare_s,
        steps=steps,
        preset="small",
    )
