"""Two DRMs acting on one MOUS at the same moment, on real PostgreSQL row locks.

Thread A makes its change inside a transaction and holds it open; thread B sends the competing
request through the API. The test waits until PostgreSQL reports B blocked on A's row lock
(pg_stat_activity), then lets A commit: B must then see A's result and be refused.
"""

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from assignments.models import Mous, MousState, StateChange
from assignments.services import mous_edit
from tests.factories import DrmFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _backends_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _race(hold: Callable[[], None], compete: Callable[[], object]) -> tuple[object, bool]:
    """Run `hold` in a transaction kept open until `compete` (other thread) waits on the lock."""
    holding, release = threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def a() -> None:
        try:
            with transaction.atomic():
                hold()
                holding.set()
                release.wait(20)
        finally:
            connections.close_all()

    def b() -> None:
        try:
            result["answer"] = compete()
        finally:
            connections.close_all()

    thread_a, thread_b = threading.Thread(target=a), threading.Thread(target=b)
    thread_a.start()
    assert holding.wait(20), "thread A never took the lock"
    thread_b.start()
    deadline, blocked = time.monotonic() + 10, False
    while time.monotonic() < deadline and not blocked:
        blocked = _backends_waiting_on_a_lock() > 0
        time.sleep(0.02)
    release.set()
    thread_a.join(20)
    thread_b.join(20)
    return result["answer"], blocked


def _reviewing_mous(world) -> Mous:
    mous = world.own
    for state in (MousState.CALIBRATING, MousState.READY_FOR_REVIEW, MousState.REVIEWING):
        mous.transition(state, by=world.drm.user, override_reason="concurrency test: no data")
    return mous


def test_two_simultaneous_qa2_decisions_exactly_one_wins(world):
    mous = _reviewing_mous(world)
    seen = mous.version
    second_drm = DrmFactory()
    api = APIClient()
    api.force_login(second_drm.user)

    answer, blocked = _race(
        hold=lambda: Mous.objects.get(pk=mous.pk).transition(MousState.QA2_PASS, by=world.drm.user),
        compete=lambda: api.post(
            f"/api/mous/{mous.pk}/transition/", {"to": "QA2_FAIL", "version": seen}, format="json"
        ),
    )

    assert blocked, "the second decision did not wait for the first one's row lock"
    # Both DRMs decided on the same version; the second finds it changed under the lock.
    assert answer.status_code == 412
    assert answer.json()["version"] == seen + 1
    mous.refresh_from_db()
    assert mous.state == MousState.QA2_PASS
    decisions = StateChange.objects.filter(mous=mous, old_state=MousState.REVIEWING)
    assert list(decisions.values_list("new_state", flat=True)) == [MousState.QA2_PASS]


def test_two_simultaneous_edits_of_the_same_version_the_second_gets_412(world):
    mous = world.own
    version = mous.version
    second_drm = DrmFactory()
    api = APIClient()
    api.force_login(second_drm.user)

    answer, blocked = _race(
        hold=lambda: mous_edit(
            mous=Mous.objects.get(pk=mous.pk),
            by=world.drm.user,
            expected_version=version,
            changes={"notes": "first DRM: reduce with the 2nd flux model"},
        ),
        compete=lambda: api.patch(
            f"/api/mous/{mous.pk}/",
            {"notes": "second DRM"},
            format="json",
            headers={"If-Match": f'"{version}"'},
        ),
    )

    assert blocked, "the second edit did not wait for the first one's row lock"
    assert answer.status_code == 412
    mous.refresh_from_db()
    assert (mous.notes, mous.version) == ("first DRM: reduce with the 2nd flux model", version + 1)
