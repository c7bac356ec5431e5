"""A move needs the version it was decided on; a PATCH of a read-only field is a 400."""

import pytest

from assignments.models import Mous, StateChange

pytestmark = pytest.mark.django_db


def _snapshot(mous: Mous) -> tuple:
    mous.refresh_from_db()
    return mous.state, mous.version, mous.notes, StateChange.objects.filter(mous=mous).count()


def test_a_transition_without_a_version_answers_428_and_changes_nothing(world, as_user):
    before = _snapshot(world.own)

    answer = as_user(world.reducer).post(f"/api/mous/{world.own.pk}/transition/", {"to": "CALIBRATING"})

    assert answer.status_code == 428
    assert "If-Match" in answer.json()["detail"]
    assert _snapshot(world.own) == before


@pytest.mark.parametrize("how", ["body", "if-match", "weak-etag"])
def test_a_transition_with_the_current_version_moves(world, as_user, how):
    api, url, version = as_user(world.reducer), f"/api/mous/{world.own.pk}/transition/", world.own.version
    if how == "body":
        answer = api.post(url, {"to": "CALIBRATING", "version": version}, format="json")
    else:
        etag = f'"{version}"' if how == "if-match" else f'W/"{version}"'
        answer = api.post(url, {"to": "CALIBRATING"}, headers={"If-Match": etag})

    assert answer.status_code == 200, answer.content
    assert (answer.json()["state"], answer.json()["version"]) == ("CALIBRATING", version + 1)
    assert answer["ETag"] == f'"{version + 1}"'


def test_a_transition_with_a_stale_version_answers_412(world, as_user):
    api, url = as_user(world.reducer), f"/api/mous/{world.own.pk}/transition/"
    stale = world.own.version
    api.post(url, {"to": "CALIBRATING", "version": stale})
    before = _snapshot(world.own)

    answer = api.post(url, {"to": "IMAGING", "version": stale})

    assert answer.status_code == 412 and answer.json()["version"] == stale + 1
    assert _snapshot(world.own) == before


@pytest.mark.parametrize(
    "body",
    [
        {"state": "QA2_PASS"},
        {"id": 999},
        {"notes": "fine", "state": "DELIVERED"},
        {"notes": "fine", "assignee": "red2"},
        {"notes": "fine", "blocked_reason": "x"},
    ],
)
def test_a_patch_of_a_read_only_field_answers_400_and_does_not_bump_the_version(world, as_user, body):
    api, url = as_user(world.drm), f"/api/mous/{world.own.pk}/"
    before = _snapshot(world.own)

    answer = api.patch(url, {**body, "version": world.own.version}, format="json")

    assert answer.status_code == 400
    refused = set(body) - {"notes"}
    assert set(answer.json()) == refused
    assert all("cannot be edited here" in answer.json()[name][0] for name in refused)
    assert _snapshot(world.own) == before


def test_a_patch_with_nothing_to_edit_answers_400_and_does_not_bump_the_version(world, as_user):
    before = _snapshot(world.own)

    answer = as_user(world.drm).patch(f"/api/mous/{world.own.pk}/", {"version": world.own.version})

    assert answer.status_code == 400
    assert "Send at least one field to edit" in answer.json()["non_field_errors"][0]
    assert _snapshot(world.own) == before
