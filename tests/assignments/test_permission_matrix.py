"""Permission matrix: every route of the URLconf, as four personas, gets the status it should.

HOW TO REGISTER YOUR ROUTES (calibration, reports, ...)
-------------------------------------------------------
The test walks the whole URLconf (`matrix.url_names()`) and FAILS for any route nobody
classified, and for any classification whose route no longer exists. To classify yours, create
`tests/<app>/permission_table.py` (found automatically, any depth under tests/) with

    from tests.assignments.matrix import api, page, everyone_reads, manager_only, by_pk

    def prepare(world) -> None:          # optional: create your objects on world.own / world.other
        ...

    ROUTES = {
        "run-detail": [everyone_reads(kwargs=lambda mous: {"pk": mous.runs.first().pk})],
        "run-cancel": [api(other=403, own=200, drm=200, method="post", kwargs=...)],
    }

Keys are URL names (with namespace, "ns:name"); a namespace in matrix.WHOLE_NAMESPACES is one
key "ns:*". Each Probe is one request with the status for: anon (nobody signed in; API 401,
pages 302 to the login page), other (a reducer on a MOUS assigned to someone else), own (that
reducer on the MOUS assigned to them), drm (a DRM on the reducer's MOUS) and missing (a DRM on an
object that does not exist: pk 0 -> 404 by default). `kwargs(mous)` gets the target MOUS
(world.other for "other", world.own otherwise); `data(world, mous)` builds the body. Every
request runs in a savepoint that is rolled back, so probes never see each other's writes.
"""

import importlib
from pathlib import Path

import pytest
from django.db import transaction
from django.urls import reverse
from rest_framework.test import APIClient

from tests.assignments.matrix import Probe, url_names

pytestmark = pytest.mark.django_db
TESTS = Path(__file__).resolve().parent.parent


def load_tables() -> tuple[dict[str, list[Probe]], list]:
    routes: dict[str, list[Probe]] = {}
    prepares = []
    for path in sorted(TESTS.rglob("permission_table.py")):
        module = importlib.import_module(".".join(path.relative_to(TESTS.parent).with_suffix("").parts))
        for key, probes in module.ROUTES.items():
            assert key not in routes, f"{key} is classified twice (again in {path})"
            routes[key] = probes
        if hasattr(module, "prepare"):
            prepares.append(module.prepare)
    return routes, prepares


def test_every_route_is_classified_and_every_classification_exists():
    routes, _ = load_tables()
    existing = url_names()

    unclassified = sorted(f"{key}  ({pattern})" for key, pattern in existing.items() if key not in routes)
    stale = sorted(set(routes) - set(existing))

    assert not unclassified, (
        "routes nobody classified; add them to tests/<app>/permission_table.py "
        "(see the docstring of this test):\n  " + "\n  ".join(unclassified)
    )
    assert not stale, f"classified routes that no longer exist: {stale}"


def _request(client: APIClient, url: str, probe: Probe, body: dict | None):
    send = getattr(client, probe.method)
    if body is None:
        return send(url)
    # The API takes JSON; pages take form posts.
    return send(url, body, format="json" if url.startswith("/api/") else "multipart")


def _url(key: str, probe: Probe, mous) -> str:
    name = key.removesuffix("*") + "index" if key.endswith(":*") else key
    return reverse(name, kwargs=probe.kwargs(mous) if probe.kwargs else None)


def test_each_persona_gets_what_it_should(world):
    routes, prepares = load_tables()
    for prepare in prepares:
        prepare(world)
    clients = {"anon": APIClient()}
    for persona, person in (("other", world.reducer), ("own", world.reducer), ("drm", world.drm)):
        clients[persona] = APIClient()
        clients[persona].force_login(person.user)

    failures = []
    for key, probes in sorted(routes.items()):
        for probe in probes:
            for persona in ("anon", "other", "own", "drm", "missing"):
                expected = getattr(probe, persona)
                if expected is None:
                    continue
                if persona == "other" and probe.kwargs is None:
                    # Without an object "other" and "own" are the same request by the same reducer.
                    assert probe.other == probe.own, f"{key}: other and own differ on a route without object"
                    continue
                target = world.other if persona == "other" else world.own
                client = clients["drm" if persona == "missing" else persona]
                # Each request in a savepoint rolled back: no probe sees another's writes.
                with transaction.atomic():
                    if persona == "missing":
                        url = reverse(key, kwargs={name: 0 for name in probe.kwargs(target)})
                    else:
                        url = _url(key, probe, target)
                    body = probe.data(world, target) if probe.data else None
                    answer = _request(client, url, probe, body)
                    transaction.set_rollback(True)
                if answer.status_code != expected:
                    got = answer.status_code
                    failures.append(f"{probe.method.upper()} {url} as {persona}: {got}, expected {expected}")

    assert not failures, "\n".join(failures)
