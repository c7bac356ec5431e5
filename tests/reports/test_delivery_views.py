"""The delivery page, its start form and its status JSON (reports.delivery_views), through the
Django test client."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from assignments.models import MousState, Person
from reports.delivery import delivery_execute
from reports.models import Delivery
from tests.factories import PersonFactory
from tests.reports.test_delivery import delivery_roots, ready_mous  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db


def person(role: str, name: str) -> Person:
    return PersonFactory(user__username=name, user__password="pw-for-tests-123", role=role, initials="XY")


@pytest.fixture
def analyst_client(client):
    client.force_login(person(Person.Role.DATA_ANALYST, "analyst").user)
    return client


def test_the_page_offers_packaging_to_a_data_analyst_and_not_to_a_reducer(client):
    mous = ready_mous(ebs=1)
    url = reverse("reports-delivery", args=[mous.pk])
    assert client.get(url).status_code == 302  # the login page

    client.force_login(person(Person.Role.REDUCER, "reducer").user)
    page = client.get(url).content.decode()
    assert 'id="start-package"' not in page and 'id="delivery-who"' in page

    client.force_login(person(Person.Role.DATA_ANALYST, "analyst").user)
    page = client.get(url).content.decode()
    assert 'id="start-package"' in page and "Package for delivery" in page
    assert f"member.{mous.uid.replace(':', '_').replace('/', '_')}" in page


def test_a_data_analyst_starts_packaging_and_follows_it_to_the_manifest(analyst_client):
    mous = ready_mous(ebs=1)
    status_url = reverse("reports-delivery-status", args=[mous.pk])
    assert analyst_client.get(status_url).json() == {
        "delivery": None,
        "mous_state": MousState.QA2_PASS,
        "mous_state_display": "QA2 pass",
    }

    answer = analyst_client.post(reverse("reports-delivery-start", args=[mous.pk]), {"kind": "package"})

    assert answer.status_code == 302 and answer.url == reverse("reports-delivery", args=[mous.pk])
    queued = Delivery.objects.get(mous=mous)
    assert any("queued" in str(m) for m in get_messages(answer.wsgi_request))
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERING
    status = analyst_client.get(status_url).json()
    assert (status["delivery"], status["status"], status["active"]) == (queued.pk, "QUEUED", True)

    done = delivery_execute(queued.pk)
    assert done.status == Delivery.Status.DONE, done.error
    status = analyst_client.get(status_url).json()
    assert (status["status"], status["percent"], status["active"]) == ("DONE", 100, False)
    assert status["mous_state"] == MousState.DELIVERED and status["target"] == done.target
    page = analyst_client.get(reverse("reports-delivery", args=[mous.pk])).content.decode()
    assert page.count("<tr data-path=") == len(done.manifest["files"])
    for entry in done.manifest["files"]:
        assert entry["sha256"] in page and entry["path"] in page
    assert 'id="start-package"' not in page  # delivered: nothing more to start


def test_a_reducer_may_not_start_a_delivery(client):
    mous = ready_mous(ebs=1)
    client.force_login(person(Person.Role.REDUCER, "reducer").user)
    answer = client.post(reverse("reports-delivery-start", args=[mous.pk]), {"kind": "package"})
    assert answer.status_code == 403
    assert not Delivery.objects.exists()
    mous.refresh_from_db()
    assert mous.state == MousState.QA2_PASS


def test_a_refused_start_says_why_and_changes_nothing(analyst_client):
    mous = ready_mous(ebs=1, state=MousState.REVIEWING)
    answer = analyst_client.post(reverse("reports-delivery-start", args=[mous.pk]), {"kind": "package"})
    assert answer.status_code == 302
    texts = [str(m) for m in get_messages(answer.wsgi_request)]
    assert any(t.startswith("Delivery refused: ") and "Reviewing" in t for t in texts), texts
    assert not Delivery.objects.exists()


def test_a_qa2_fail_offers_the_move_to_qa2fails(analyst_client):
    mous = ready_mous(ebs=1, state=MousState.QA2_FAIL)
    page = analyst_client.get(reverse("reports-delivery", args=[mous.pk])).content.decode()
    assert 'id="start-qa2fail"' in page and 'id="start-package"' not in page
    answer = analyst_client.post(reverse("reports-delivery-start", args=[mous.pk]), {"kind": "qa2fail"})
    assert answer.status_code == 302
    assert Delivery.objects.get(mous=mous).kind == Delivery.Kind.QA2_FAIL
