"""Integers out of range, or not plain digits, are bad input (400 / a form error), never a 500.

On SQLite (the embedded mode) an id above 2**63-1 in a foreign-key or IN lookup is an
OverflowError; PostgreSQL happens to answer such a query. So the check must sit where the
number is parsed, and these tests hold on either database (test_embedded_sqlite.py repeats
the API part against a real server on SQLite).
"""

import pytest
from rest_framework.test import APIClient

from assignments.models import Mous, Person
from calibration import scripts
from calibration.models import Script, ScriptVersion
from qa2portal.ids import MAX_ID, parse_id
from tests.factories import DrmFactory, ExecutionBlockFactory, MousFactory, PersonFactory, UserFactory

pytestmark = pytest.mark.django_db

BIG = "99999999999999999999"  # > 2**63-1
NOT_ASCII = "²"  # str.isdigit() says yes, int() says no


@pytest.fixture
def drm(db) -> Person:
    return DrmFactory(user=UserFactory(username="rangedrm"), initials="RD")


@pytest.fixture
def api(drm) -> APIClient:
    client = APIClient()
    client.force_login(drm.user)
    return client


def test_parse_id_accepts_only_ascii_ids_in_the_bigint_range():
    assert parse_id("1") == 1 and parse_id(" 42 ") == 42 and parse_id(MAX_ID) == MAX_ID
    for bad in ("0", str(MAX_ID + 1), BIG, "9" * 5000, NOT_ASCII, "٣", "-1", "1.0", "", "x"):
        assert parse_id(bad) is None, bad


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/execution-blocks/", "mous"),
        ("/api/assignments/", "mous"),
        ("/api/audit/", "mous"),
        ("/api/script-versions/", "execution_block"),
        ("/api/script-versions/", "mous"),
        ("/api/runs/", "execution_block"),
        ("/api/runs/", "mous"),
        ("/api/products/", "execution_block"),
    ],
)
@pytest.mark.parametrize("value", [BIG, "9" * 5000, NOT_ASCII, "0"])
def test_id_filters_out_of_range_answer_400_naming_the_parameter(api, path, param, value):
    answer = api.get(path, {param: value})

    assert answer.status_code == 400, answer.content[:300]
    assert answer["Content-Type"] == "application/json"
    assert "must be a numeric id" in answer.json()[param]


def test_whiteboard_filters_out_of_range_answer_400(api):
    for param in ("cycle", "band", "per_page"):
        answer = api.get("/api/mous/", {param: BIG})
        assert answer.status_code == 400, (param, answer.content[:300])
        assert param in answer.json()


def test_path_ids_out_of_range_answer_404_json(api):
    for path in ("/api/mous/", "/api/execution-blocks/", "/api/runs/", "/api/products/", "/api/projects/"):
        answer = api.get(f"{path}{BIG}/")
        assert answer.status_code == 404, (path, answer.content[:300])
        assert answer["Content-Type"] == "application/json"


def test_ids_in_json_bodies_out_of_range_answer_400_and_change_nothing(api, drm):
    reducer = PersonFactory(user=UserFactory(username="rangereducer"))
    mous = MousFactory()
    before = Mous.objects.count(), ScriptVersion.objects.count()

    bulk = api.post("/api/mous/bulk-assign/", {"mous": [int(BIG)], "reducer": "rangereducer"}, format="json")
    run = api.post("/api/runs/", {"script_version": int(BIG)}, format="json")
    generate = api.post("/api/script-versions/generate/", {"execution_block": int(BIG)}, format="json")
    eb = api.post("/api/execution-blocks/", {"mous": int(BIG), "uid": "uid://A002/X1/X1"}, format="json")
    edit = api.patch(f"/api/mous/{mous.pk}/", {"band": int(BIG), "version": mous.version}, format="json")
    if_match = api.patch(f"/api/mous/{mous.pk}/", {"band": 7}, format="json", HTTP_IF_MATCH=f'"{BIG}"')
    if_match_odd = api.patch(f"/api/mous/{mous.pk}/", {"band": 7}, format="json", HTTP_IF_MATCH='"²"')

    assert bulk.status_code == 400 and "mous" in bulk.json(), bulk.content[:300]
    assert run.status_code == 400 and "script_version" in run.json(), run.content[:300]
    assert generate.status_code == 400 and "execution_block" in generate.json(), generate.content[:300]
    assert eb.status_code == 400 and "mous" in eb.json(), eb.content[:300]
    assert edit.status_code == 400 and "band" in edit.json(), edit.content[:300]
    # A version that no MOUS can have is stale (412), a version that is no number is a 400.
    assert if_match.status_code in (400, 412), if_match.content[:300]
    assert if_match_odd.status_code == 400 and "If-Match" in if_match_odd.json()
    mous.refresh_from_db()
    assert mous.band == 6 and mous.assignee_id is None and reducer.assignments.count() == 0
    assert (Mous.objects.count(), ScriptVersion.objects.count()) == before


def test_upload_with_an_out_of_range_eb_answers_400(api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("scriptForCalibration.py", b"print('hi')\n")
    answer = api.post(
        "/api/script-versions/upload/", {"file": upload, "execution_block": BIG}, format="multipart"
    )

    assert answer.status_code == 400 and "execution_block" in answer.json(), answer.content[:300]


def test_html_pages_treat_out_of_range_ids_as_bad_input(client, drm):
    client.force_login(drm.user)
    mous = MousFactory()
    eb = ExecutionBlockFactory(mous=mous)
    script = scripts.script_get_or_create(kind=Script.Kind.CALIBRATION, mous=mous, eb=eb)
    version = scripts.script_version_create(
        script=script, text="print(1)\n", source=ScriptVersion.Source.UPLOADED, by=drm.user
    )

    for path in ("/mous/", "/calibration/eb/", "/calibration/runs/", "/reports/eb/"):
        assert client.get(f"{path}{BIG}/").status_code == 404, path
    for against in (BIG, NOT_ASCII):
        answer = client.get(f"/calibration/versions/{version.pk}/diff/", {"against": against})
        assert answer.status_code == 404, against
    for params in ({"run": NOT_ASCII}, {"run": BIG}):
        assert client.get(f"/reports/eb/{eb.pk}/", params).status_code == 200, params
    assert client.get(f"/reports/eb/{eb.pk}/compare/", {"a": NOT_ASCII, "b": BIG}).status_code == 200
    whiteboard = client.get("/whiteboard/", {"band": BIG, "page": BIG})
    assert whiteboard.status_code == 200

    for bad in (BIG, NOT_ASCII):
        form = {"mous": [mous.pk, bad], "reducer": drm.pk}
        bulk = client.post("/whiteboard/bulk-assign/", form, follow=True)
        assert bulk.status_code == 200
        assert "Nothing assigned." in bulk.content.decode()
    mous.refresh_from_db()
    assert mous.assignee_id is None
