"""REST API: filters, verbs, 409/412/428 answers, bad input changing nothing, token auth, schema."""

import pytest
from rest_framework.test import APIClient

from assignments.auth import token_issue
from assignments.models import Mous, MousState, StateChange
from tests.factories import MousFactory

pytestmark = pytest.mark.django_db
S = MousState


def _snapshot(mous: Mous) -> tuple:
    mous.refresh_from_db()
    return (
        mous.state,
        mous.version,
        mous.assignee_id,
        mous.notes,
        StateChange.objects.filter(mous=mous).count(),
    )


def test_list_filters_by_state_reducer_band_and_search(world, as_user):
    MousFactory(band=3, sb_name="Orion_KL_a_03_TM1")
    api = as_user(world.drm)

    by_state = api.get("/api/mous/", {"state": "NEW"}).json()
    by_reducer = api.get("/api/mous/", {"reducer": "red1"}).json()
    by_band = api.get("/api/mous/", {"band": 3}).json()
    by_search = api.get("/api/mous/", {"q": "orion_kl"}).json()
    unassigned = api.get("/api/mous/", {"reducer": "none"}).json()

    assert {r["uid"] for r in by_state["results"]} == {world.new.uid, by_band["results"][0]["uid"]}
    assert [r["uid"] for r in by_reducer["results"]] == [world.own.uid]
    assert by_reducer["results"][0]["eb_count"] == 1
    assert by_reducer["results"][0]["next_action"].startswith("Reducer:")
    assert by_band["count"] == 1 and by_search["count"] == 1
    assert unassigned["count"] == 2


def test_list_rejects_bad_filters_with_clear_messages(world, as_user):
    answer = as_user(world.drm).get("/api/mous/", {"band": 12, "state": "DONE", "sort": "colour"})

    assert answer.status_code == 400
    body = answer.json()
    assert body["band"][0]["message"] == "ALMA bands are 1 to 10."
    assert "DONE is not one of the available choices" in body["state"][0]["message"]
    assert "sort" in body


def test_detail_sends_the_version_as_etag(world, as_user):
    answer = as_user(world.reducer).get(f"/api/mous/{world.own.pk}/")

    assert answer.status_code == 200
    assert answer["ETag"] == f'"{world.own.version}"'


def test_illegal_transition_answers_409_with_allowed_moves_and_changes_nothing(world, as_user):
    before = _snapshot(world.own)

    answer = as_user(world.drm).post(
        f"/api/mous/{world.own.pk}/transition/", {"to": "DELIVERED", "version": world.own.version}
    )

    assert answer.status_code == 409
    assert answer.json()["allowed"] == ["BLOCKED", "CALIBRATING", "NEW"]
    assert answer.json()["current"] == "ASSIGNED"
    assert _snapshot(world.own) == before


def test_unknown_state_answers_400(world, as_user):
    answer = as_user(world.drm).post(f"/api/mous/{world.own.pk}/transition/", {"to": "DONE"})

    assert answer.status_code == 400
    assert answer.json() == {"to": ["DONE is no MOUS state."]}


def test_transition_with_stale_if_match_answers_412(world, as_user):
    api = as_user(world.reducer)
    stale = world.own.version
    moved = api.post(
        f"/api/mous/{world.own.pk}/transition/", {"to": "CALIBRATING"}, headers={"If-Match": f'"{stale}"'}
    )
    assert moved.status_code == 200
    before = _snapshot(world.own)

    answer = api.post(
        f"/api/mous/{world.own.pk}/transition/", {"to": "IMAGING"}, headers={"If-Match": f'"{stale}"'}
    )

    assert answer.status_code == 412
    assert answer.json()["version"] == stale + 1
    assert _snapshot(world.own) == before


def test_patch_needs_a_version_and_refuses_a_stale_one(world, as_user):
    api, url = as_user(world.drm), f"/api/mous/{world.own.pk}/"
    version = api.get(url)["ETag"]

    missing = api.patch(url, {"notes": "x"})
    ok = api.patch(url, {"notes": "WVR off for DV04"}, headers={"If-Match": version})
    stale = api.patch(url, {"notes": "lost update"}, headers={"If-Match": version})
    bad = api.patch(url, {"requested_rms_mjy": -2, "version": ok.json()["version"]})

    assert (missing.status_code, ok.status_code, stale.status_code, bad.status_code) == (428, 200, 412, 400)
    assert ok["ETag"] == f'"{ok.json()["version"]}"'
    assert bad.json() == {"requested_rms_mjy": ["The requested rms must be positive."]}
    world.own.refresh_from_db()
    assert world.own.notes == "WVR off for DV04"


def test_assign_refuses_the_pi_with_409_naming_the_rule(world, as_user):
    before = _snapshot(world.new)

    answer = as_user(world.drm).post(f"/api/mous/{world.new.pk}/assign/", {"reducer": "pi1"})

    assert answer.status_code == 409
    assert answer.json()["rule"] == "conflict-of-interest"
    assert "pi1 cannot reduce" in answer.json()["detail"]
    assert _snapshot(world.new) == before


def test_assign_unknown_reducer_answers_400(world, as_user):
    answer = as_user(world.drm).post(f"/api/mous/{world.new.pk}/assign/", {"reducer": "nobody"})

    assert answer.status_code == 400
    assert answer.json() == {"reducer": ["No person with username nobody."]}


def test_assign_then_unassign_through_the_api(world, as_user):
    api = as_user(world.drm)

    assigned = api.post(f"/api/mous/{world.new.pk}/assign/", {"reducer": "red2", "note": "band 6 expert"})
    unassigned = api.post(f"/api/mous/{world.new.pk}/unassign/", {})
    history = api.get("/api/assignments/", {"mous": world.new.pk}).json()["results"]
    audit = api.get(f"/api/mous/{world.new.pk}/history/").json()

    assert (assigned.json()["state"], assigned.json()["assignee"]) == ("ASSIGNED", "red2")
    assert (unassigned.json()["state"], unassigned.json()["assignee"]) == ("NEW", None)
    assert [(h["reducer"], h["ended_by"]) for h in history] == [("red2", "drm1")]
    assert [(a["old_state"], a["new_state"]) for a in audit] == [("ASSIGNED", "NEW"), ("NEW", "ASSIGNED")]


def test_bulk_assign_refuses_everything_when_one_mous_is_missing(world, as_user):
    answer = as_user(world.drm).post(
        "/api/mous/bulk-assign/", {"mous": [world.new.pk, 999999], "reducer": "red1"}, format="json"
    )

    assert answer.status_code == 400
    assert "999999" in str(answer.json())
    world.new.refresh_from_db()
    assert world.new.assignee is None


def test_create_mous_validates_uids_and_registers_ebs(world, as_user):
    api = as_user(world.drm)
    body = {
        "project": "2019.1.01234.S",
        "uid": "uid://A001/X2d20/X1a2",
        "eb_uids": ["uid://A002/Xb1/X1", "uid://A002/Xb1/X2"],
        "sb_name": "NGC253_a_07_TM1",
        "array": "TE",
        "band": 7,
        "requested_rms_mjy": 0.2,
    }

    bad = api.post("/api/mous/", {**body, "uid": "A001/X2d20", "band": 0}, format="json")
    created = api.post("/api/mous/", body, format="json")

    assert bad.status_code == 400
    assert "An ALMA uid looks like uid://A001/X13e/X1fe." in bad.json()["uid"]
    assert "band" in bad.json()
    assert created.status_code == 201
    assert (created.json()["state"], created.json()["eb_count"]) == ("NEW", 2)


def test_token_authentication_works_and_anonymous_gets_401(world):
    token = token_issue(world.drm.user)
    api = APIClient()

    anonymous = api.get("/api/mous/")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with_token = api.get("/api/mous/")

    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == "Token"
    assert with_token.status_code == 200


def test_schema_lists_the_assignments_routes(world, as_user):
    answer = as_user(world.reducer).get("/api/schema/", {"format": "json"})

    paths = answer.json()["paths"]
    for route in ("/api/mous/", "/api/mous/{id}/transition/", "/api/mous/bulk-assign/", "/api/audit/"):
        assert route in paths
