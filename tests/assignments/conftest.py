"""Personas and MOUS shared by the assignments tests."""

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from assignments.models import Mous, Person, Project
from assignments.services import mous_assign
from tests.factories import (
    DrmFactory,
    ExecutionBlockFactory,
    InvestigatorFactory,
    MousFactory,
    PersonFactory,
    ProjectFactory,
    UserFactory,
)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings) -> None:
    # PBKDF2 costs ~0.4 s per user on this box; these tests create several users each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    drm: Person
    reducer: Person  # works on `own`
    other_reducer: Person  # works on `other`
    pi: Person  # a reducer who is PI of `project`: may never reduce its MOUS
    project: Project
    own: Mous
    other: Mous
    new: Mous  # unassigned, in NEW


@pytest.fixture
def world(db) -> World:
    drm = DrmFactory(user=UserFactory(username="drm1"), initials="DM")
    reducer = PersonFactory(user=UserFactory(username="red1"), initials="RA")
    other_reducer = PersonFactory(user=UserFactory(username="red2"), initials="RB")
    pi = PersonFactory(user=UserFactory(username="pi1"), initials="PI")
    project = ProjectFactory(code="2019.1.01234.S")
    InvestigatorFactory(project=project, name="Pat Investigator", user=pi.user, role="pi")
    own, other, new = (MousFactory(project=project) for _ in range(3))
    for mous in (own, other, new):
        ExecutionBlockFactory(mous=mous)
    mous_assign(mous=own, reducer=reducer, by=drm.user)
    mous_assign(mous=other, reducer=other_reducer, by=drm.user)
    for mous in (own, other):
        mous.refresh_from_db()
    return World(drm, reducer, other_reducer, pi, project, own, other, new)


@pytest.fixture
def as_user():
    """An APIClient logged in (session) as the given Person, or anonymous for None."""

    def make(person: Person | None) -> APIClient:
        client = APIClient()
        if person is not None:
            client.force_login(person.user)
        return client

    return make
