"""whiteboard: server time of the whiteboard page and GET /api/mous/ over 10,000 MOUS, 30,000 EBs
and 100,000 runs in PostgreSQL, against a bare SELECT of the same page of rows in the same run."""

import random
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.template.base import Template
from django.test import Client
from django.test import utils as test_utils
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assignments.models import ExecutionBlock, Mous, MousState, Person, Project
from tests.benchmarks.harness import median, p95, report, timed
from tests.factories import DrmFactory, PersonFactory, UserFactory

N_MOUS, EBS_PER_MOUS, N_RUNS = 10_000, 3, 100_000
REPEAT = 40
PAGE = 50


def _seed() -> str:
    """Bulk-insert the board; returns what was seeded for runs (calibration may not exist yet)."""
    rng = random.Random(5)
    now = timezone.now()
    reducers = [
        PersonFactory(user=UserFactory(username=f"bench{i}"), initials=f"B{chr(65 + i)}") for i in range(20)
    ]
    projects = Project.objects.bulk_create(
        Project(code=f"{2015 + i % 10}.1.{i:05d}.S", cycle=3 + i % 10) for i in range(1_000)
    )
    states = MousState.values
    Mous.objects.bulk_create(
        (
            Mous(
                project=projects[i % len(projects)],
                uid=f"uid://A001/X{i:x}/X{i % 97:x}",
                sb_name=f"Field{i}_a_{i % 10 + 1:02d}_TE",
                array=rng.choice(Mous.Array.values),
                band=rng.randint(3, 10),
                state=(state := rng.choice(states)),
                state_changed_at=now - timedelta(hours=rng.randint(0, 2000)),
                assignee=None if state == MousState.NEW else rng.choice(reducers),
                due_date=(now + timedelta(days=rng.randint(-30, 90))).date(),
                jira_key=f"SCOPS-{i}",
            )
            for i in range(N_MOUS)
        ),
        batch_size=2_000,
    )
    mous_ids = list(Mous.objects.values_list("pk", flat=True))
    ExecutionBlock.objects.bulk_create(
        (
            ExecutionBlock(mous_id=mous_id, uid=f"uid://A002/X{mous_id:x}/X{k + 1:x}")
            for mous_id in mous_ids
            for k in range(EBS_PER_MOUS)
        ),
        batch_size=5_000,
    )
    try:
        run_model = apps.get_model("calibration", "Run")
        script_model = apps.get_model("calibration", "Script")
        version_model = apps.get_model("calibration", "ScriptVersion")
    except LookupError:
        return "runs not seeded (no calibration.Run model)"
    # One shared script version: the whiteboard reads only the run's MOUS, status and time.
    script = script_model.objects.create(kind="imaging", mous_id=mous_ids[0])
    version = version_model.objects.create(
        script=script, number=1, sha256="0" * 64, size=1, source="uploaded"
    )
    ebs = list(ExecutionBlock.objects.values_list("pk", "mous_id"))
    statuses = run_model.Status.values
    run_model.objects.bulk_create(
        (
            run_model(
                script_version=version,
                mous_id=(eb := ebs[i % len(ebs)])[1],
                execution_block_id=eb[0],
                folder="/bench",
                status=rng.choice(statuses),
                created_at=now - timedelta(minutes=rng.randint(0, 100_000)),
            )
            for i in range(N_RUNS)
        ),
        batch_size=5_000,
    )
    return f"{run_model.objects.count()} runs"


def _queries(client: Client, url: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_whiteboard(monkeypatch):
    # pytest-django instruments every template render for the test client (a signal and a copy
    # of the context per render); production has none of that, so time the plain renderer.
    monkeypatch.setattr(Template, "_render", test_utils._TestState.saved_data.template_render)
    runs = _seed()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    drm = DrmFactory(user=UserFactory(username="benchdrm"))
    client = Client()
    client.force_login(drm.user)
    assert Person.objects.count() == 21

    def bare() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM assignments_mous ORDER BY state_changed_at, id LIMIT %s", [PAGE])
            cursor.fetchall()

    def get(url: str, params: dict):
        def request() -> None:
            assert client.get(url, params).status_code == 200

        return request

    cases = {
        "page": get("/whiteboard/", {"per_page": PAGE}),
        "page_filtered": get("/whiteboard/", {"per_page": PAGE, "state": "CALIBRATING", "band": 6, "q": "1"}),
        "api": get("/api/mous/", {"per_page": PAGE}),
    }
    for fn in (bare, *cases.values()):
        fn()  # warm caches and connections
    bare_s = timed(bare, REPEAT)
    samples = {name: timed(fn, REPEAT) for name, fn in cases.items()}
    queries = {
        name: (_queries(client, url, {"per_page": 25}), _queries(client, url, {"per_page": 100}))
        for name, url in (("page", "/whiteboard/"), ("api", "/api/mous/"))
    }

    ms = {name: (median(s) * 1000, p95(s) * 1000) for name, s in samples.items()}
    worst_p95 = max(p for _, p in ms.values())
    ratio = median(samples["page"]) / median(bare_s)
    details = " ".join(f"{name}={med:.1f}/{p:.1f}ms" for name, (med, p) in ms.items())
    report(
        "whiteboard",
        ratio,
        goal="p95 <= 100 ms; query count independent of page size",
        details=(
            f"{details} (median/p95) bare={median(bare_s) * 1000:.2f}ms "
            f"queries page={queries['page'][0]}/{queries['page'][1]} "
            f"api={queries['api'][0]}/{queries['api'][1]} "
            f"(per_page 25/100) worst_p95={worst_p95:.1f}ms "
            f"seed={N_MOUS} MOUS, {N_MOUS * EBS_PER_MOUS} EBs, {runs} n={REPEAT}"
        ),
        milliseconds={name: {"median": med, "p95": p} for name, (med, p) in ms.items()},
        bare_median_ms=median(bare_s) * 1000,
        queries=queries,
        runs=runs,
    )
