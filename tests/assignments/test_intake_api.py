"""Intake through the API: projects, MOUS and EBs; data_status/data_name are not a client's to set."""

import pytest

from assignments.models import ExecutionBlock, Investigator, Mous, Person, Project
from tests.factories import PersonFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(db) -> Person:
    return PersonFactory(user=UserFactory(username="da1"), role=Person.Role.DATA_ANALYST, initials="DA")


def _counts() -> tuple[int, int, int, int]:
    return (
        Project.objects.count(),
        Investigator.objects.count(),
        Mous.objects.count(),
        ExecutionBlock.objects.count(),
    )


def test_drm_registers_a_project_whose_pi_is_linked_to_an_account(world, as_user):
    body = {
        "code": "2021.1.00100.S",
        "title": "Rings",
        "pi_name": "Reducer Two",
        "pi_email": "RED2@example.org",  # world.other_reducer's address, other case
        "co_investigators": [{"name": "Nobody Here", "email": "nobody@example.org"}],
        "cycle": 99,  # derived from the code, whatever a client sends
    }

    answer = as_user(world.drm).post("/api/projects/", body, format="json")

    assert answer.status_code == 201, answer.json()
    created = answer.json()
    assert (created["code"], created["cycle"]) == ("2021.1.00100.S", 8)
    accounts = {i["role"]: i["account"] for i in created["investigators"]}
    assert accounts == {"pi": "red2", "coi": None}
    assert Project.objects.get(code="2021.1.00100.S").created_by == world.drm.user
    # The conflict of interest now holds through the API too.
    mous = as_user(world.drm).post(
        "/api/mous/",
        {
            "project": "2021.1.00100.S",
            "uid": "uid://A001/X100/X1",
            "sb_name": "R_a_06_TE",
            "array": "TE",
            "band": 6,
        },
        format="json",
    )
    assert mous.status_code == 201
    refused = as_user(world.drm).post(
        f"/api/mous/{mous.json()['id']}/assign/", {"reducer": "red2"}, format="json"
    )
    assert refused.status_code == 409
    assert refused.json()["rule"] == "conflict-of-interest"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"code": "2021.1.1.S"}, "code", "is not an ALMA project code"),
        ({"code": "2019.1.01234.S"}, "code", "Project 2019.1.01234.S already exists."),
        ({"pi_email": "nope"}, "pi_email", "Enter a valid email address."),
        ({"pi_name": ""}, "pi_name", "This field may not be blank."),
        (
            {"co_investigators": [{"name": "Same", "email": "pi@example.org"}]},
            "cois",
            "pi@example.org is listed twice",
        ),
    ],
)
def test_bad_project_answers_400_json_and_creates_nothing(world, as_user, body, field, message):
    before = _counts()
    good = {"code": "2021.1.00101.S", "pi_name": "P. I.", "pi_email": "pi@example.org"}

    answer = as_user(world.drm).post("/api/projects/", {**good, **body}, format="json")

    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/json"
    assert any(message in text for text in answer.json()[field]), answer.json()
    assert _counts() == before


def test_bad_mous_answers_400_with_every_problem_and_creates_nothing(world, as_user):
    before = _counts()
    body = {
        "project": world.project.code,
        "uid": world.own.uid,
        "sb_name": "S_a_06_TE",
        "array": "TE",
        "band": 6,
        "requested_rms_mjy": 0.1,
        "resolution_min_arcsec": 2.0,
        "resolution_max_arcsec": 1.0,
        "eb_uids": ["uid://A002/X5/X1", "uid://A002/X5/X1"],
    }

    answer = as_user(world.drm).post("/api/mous/", body, format="json")

    assert answer.status_code == 400
    errors = answer.json()
    assert errors["uid"] == [f"MOUS {world.own.uid} already exists (project {world.project.code})."]
    assert errors["eb_uids"] == ["EB uid://A002/X5/X1 is listed twice."]
    assert errors["resolution_min_arcsec"] == ["The minimum resolution is larger than the maximum."]
    assert _counts() == before


def test_eb_is_created_with_its_data_expected(world, as_user):
    body = {"mous": world.new.pk, "uid": "uid://A002/X6/X1", "observed_at": "2024-06-01T05:00:00Z"}

    answer = as_user(world.drm).post("/api/execution-blocks/", body, format="json")

    assert answer.status_code == 201, answer.json()
    assert answer.json()["data_status"] == "expected" and answer.json()["data_name"] == ""
    eb = ExecutionBlock.objects.get(uid="uid://A002/X6/X1")
    assert (eb.mous, eb.created_by) == (world.new, world.drm.user)


@pytest.mark.parametrize(
    "extra",
    [
        {"data_status": "present"},
        {"data_name": "../../../../etc/passwd"},
        {"data_name": "raw/uid___A002_X6_X1.ms"},
        {"data_status": "present", "data_name": "/etc/passwd"},
    ],
)
def test_a_client_cannot_set_data_status_or_data_name(world, as_user, extra):
    before = _counts()
    body = {"mous": world.new.pk, "uid": "uid://A002/X6/X2", **extra}

    answer = as_user(world.drm).post("/api/execution-blocks/", body, format="json")

    assert answer.status_code == 400
    for name in extra:
        assert answer.json()[name] == ["Set by the data ingest only (it copies and checks the data first)."]
    assert _counts() == before


def test_duplicate_or_malformed_eb_uid_answers_400(world, as_user):
    existing = world.own.execution_blocks.get()
    api = as_user(world.drm)

    duplicate = api.post("/api/execution-blocks/", {"mous": world.new.pk, "uid": existing.uid}, format="json")
    malformed = api.post("/api/execution-blocks/", {"mous": world.new.pk, "uid": "uid://A002"}, format="json")

    assert duplicate.status_code == 400
    assert duplicate.json()["uid"] == [f"EB {existing.uid} already exists (in MOUS {world.own.uid})."]
    assert malformed.status_code == 400 and "is not an EB uid" in malformed.json()["uid"][0]


def test_reducers_get_403_and_a_data_analyst_may_register(world, as_user, analyst):
    project = {"code": "2022.1.00200.S", "pi_name": "P", "pi_email": "p200@example.org"}
    mous = {
        "project": world.project.code,
        "uid": "uid://A001/X200/X1",
        "sb_name": "S",
        "array": "TE",
        "band": 3,
    }
    eb = {"mous": world.new.pk, "uid": "uid://A002/X200/X1"}
    before = _counts()

    for path, body in (("/api/projects/", project), ("/api/mous/", mous), ("/api/execution-blocks/", eb)):
        refused = as_user(world.reducer).post(path, body, format="json")
        assert refused.status_code == 403, path
        assert "data analyst may register" in refused.json()["detail"]
    assert _counts() == before

    for path, body in (("/api/projects/", project), ("/api/mous/", mous), ("/api/execution-blocks/", eb)):
        assert as_user(analyst).post(path, body, format="json").status_code == 201, path
    # Registering is not deciding: the analyst still may not assign.
    new = Mous.objects.get(uid="uid://A001/X200/X1")
    answer = as_user(analyst).post(f"/api/mous/{new.pk}/assign/", {"reducer": "red1"}, format="json")
    assert answer.status_code == 403
