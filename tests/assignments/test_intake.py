"""Intake services: projects with investigators linked to accounts, MOUS, EBs; bad input changes nothing."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from assignments.datafiles import eb_folder
from assignments.intake import eb_create, investigator_add, mous_create, project_create
from assignments.models import ExecutionBlock, Investigator, Mous, Project, cycle_from_code
from assignments.services import ConflictOfInterest, conflict_of_interest, mous_assign
from tests.factories import ExecutionBlockFactory, MousFactory, PersonFactory, UserFactory

pytestmark = pytest.mark.django_db

MOUS_FIELDS = {
    "uid": "uid://A001/X2d1/X10",
    "sb_name": "TW_Hya_a_07_TM1",
    "science_goal": "Disc continuum",
    "array": "TE",
    "band": 7,
    "representative_frequency_ghz": 345.8,
    "requested_rms_mjy": 0.05,
    "rms_bandwidth_mhz": 7500.0,
    "resolution_min_arcsec": 0.03,
    "resolution_max_arcsec": 0.05,
    "goal": "continuum",
}


def _counts() -> tuple[int, int, int, int]:
    return (
        Project.objects.count(),
        Investigator.objects.count(),
        Mous.objects.count(),
        ExecutionBlock.objects.count(),
    )


def _refused(call, **kwargs) -> dict[str, list[str]]:
    """Run a service that must refuse; returns its messages and checks nothing was written."""
    before = _counts()
    with pytest.raises(ValidationError) as refused:
        call(**kwargs)
    assert _counts() == before
    return refused.value.message_dict


@pytest.mark.parametrize(
    ("code", "cycle"),
    [
        ("2011.0.00001.S", 0),
        ("2012.1.00001.S", 1),
        ("2013.1.00661.S", 2),
        ("2015.1.00001.S", 3),
        ("2018.1.00001.S", 6),
        ("2019.1.00001.S", 7),
        ("2019.A.00012.S", 7),
        ("2021.1.00001.S", 8),
        ("2024.1.00001.S", 11),
    ],
)
def test_cycle_follows_the_alma_calls(code, cycle):
    assert cycle_from_code(code) == cycle


def test_project_create_links_the_pi_to_the_account_with_that_email(world):
    reducer = PersonFactory(user=UserFactory(username="hana", email="Hana.Sato@Uni.example.org"))

    project = project_create(
        code="2021.1.00042.S",
        title="Dust traps",
        pi_name="Hana Sato",
        pi_email="hana.sato@uni.example.org",
        cois=[("Carl Co", "carl@elsewhere.example.org")],
        by=world.drm.user,
    )

    assert (project.cycle, project.created_by) == (8, world.drm.user)
    pi, coi = project.investigators.get(role="pi"), project.investigators.get(role="coi")
    assert (pi.name, pi.user) == ("Hana Sato", reducer.user)
    assert (coi.email, coi.user) == ("carl@elsewhere.example.org", None)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"code": "2021.1.42.S"}, "code", "is not an ALMA project code"),
        ({"code": "../2021.1.00042.S"}, "code", "is not an ALMA project code"),
        ({"code": "2019.1.01234.S"}, "code", "Project 2019.1.01234.S already exists."),
        ({"pi_email": "not-an-address"}, "pi_email", "PI: 'not-an-address' is not an e-mail address."),
        ({"pi_name": ""}, "pi_name", "PI: the name is missing."),
        ({"pi_email": ""}, "pi_email", "PI: the e-mail address is missing"),
        ({"cois": [("", "c@example.org")]}, "cois", "co-I 1: the name is missing."),
        ({"cois": [("Twice", "PI@example.org")]}, "cois", "PI@example.org is listed twice"),
        ({"title": "x" * 301}, "title", "longer than 300"),
    ],
)
def test_project_create_refuses_bad_input_and_writes_nothing(world, kwargs, field, message):
    good = {"code": "2021.1.00042.S", "title": "t", "pi_name": "P. I.", "pi_email": "pi@example.org"}

    errors = _refused(project_create, **{**good, **kwargs, "by": world.drm.user})

    assert any(message in text for text in errors[field]), errors


def test_an_account_created_later_or_changing_its_email_gets_linked(world):
    project = project_create(
        code="2022.1.00007.S",
        pi_name="Late Comer",
        pi_email="late@example.org",
        cois=[("Mover", "mover@new.example.org")],
        by=world.drm.user,
    )
    late = PersonFactory(user=UserFactory(username="late", email="LATE@example.org"))
    mover = PersonFactory(user=UserFactory(username="mover", email="mover@old.example.org"))
    assert project.investigators.get(role="coi").user is None

    mover.user.email = "mover@new.example.org"
    mover.user.save()

    assert project.investigators.get(role="pi").user == late.user
    assert project.investigators.get(role="coi").user == mover.user
    mous = MousFactory(project=project)
    for person in (late, mover):
        with pytest.raises(ConflictOfInterest, match="conflict-of-interest rule"):
            mous_assign(mous=mous, reducer=person, by=world.drm.user)


def test_two_accounts_with_one_email_are_not_linked_but_both_are_refused(world):
    one = PersonFactory(user=UserFactory(username="twin1", email="twin@example.org"))
    two = PersonFactory(user=UserFactory(username="twin2", email="twin@example.org"))
    project = project_create(code="2022.1.00008.S", pi_name="Twin", pi_email="twin@example.org", by=None)
    mous = MousFactory(project=project)

    assert project.investigators.get().user is None
    assert conflict_of_interest(mous, one) is not None
    assert conflict_of_interest(mous, two) is not None


def test_investigator_add_links_and_refuses_a_second_pi_or_the_same_person(world):
    project = project_create(code="2022.1.00009.S", by=None)  # as JIRA creates one: no investigators
    investigator_add(project=project, name="P. I.", email="pi1@example.org", role="pi", by=world.drm.user)

    assert project.investigators.get().user == world.pi.user  # pi1@example.org is the pi1 account
    errors = _refused(
        investigator_add, project=project, name="Other", email="o@example.org", role="pi", by=None
    )
    assert errors["role"] == ["Project 2022.1.00009.S already has a PI."]
    errors = _refused(
        investigator_add, project=project, name="Again", email="PI1@example.org", role="coi", by=None
    )
    assert errors["email"] == ["PI1@example.org is already an investigator of 2022.1.00009.S."]


def test_the_database_keeps_one_pi_per_project():
    project = project_create(code="2022.1.00010.S", pi_name="P", pi_email="p@example.org", by=None)

    with pytest.raises(IntegrityError), transaction.atomic():
        Investigator.objects.create(project=project, name="Q", email="q@example.org", role="pi")


def test_mous_create_registers_the_request_and_its_ebs(world):
    mous = mous_create(
        project=world.project,
        eb_uids=["uid://A002/X2d1/X1", " uid://A002/X2d1/X2 "],
        by=world.drm.user,
        due_date=dt.date(2030, 1, 1),
        **MOUS_FIELDS,
    )

    assert (mous.state, mous.band, mous.created_by) == ("NEW", 7, world.drm.user)
    ebs = list(mous.execution_blocks.order_by("uid"))
    assert [eb.uid for eb in ebs] == ["uid://A002/X2d1/X1", "uid://A002/X2d1/X2"]
    assert all(eb.data_status == "expected" and eb.data_name == "" for eb in ebs)
    assert all(eb.created_by == world.drm.user for eb in ebs)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"uid": "uid://A001/X2d1"}, "uid", "is not a MOUS uid"),
        ({"uid": "A001/X2d1/X10"}, "uid", "is not a MOUS uid"),
        ({"band": 11}, "band", "ALMA bands are 1 to 10."),
        ({"band": 0}, "band", "ALMA bands are 1 to 10."),
        ({"requested_rms_mjy": -1.0}, "requested_rms_mjy", "The requested rms must be positive."),
        ({"rms_bandwidth_mhz": 0.0}, "rms_bandwidth_mhz", "The rms bandwidth must be positive."),
        ({"representative_frequency_ghz": -3.0}, "representative_frequency_ghz", "must be positive"),
        ({"resolution_min_arcsec": 0.5}, "resolution_min_arcsec", "larger than the maximum"),
        ({"array": "XX"}, "array", "is not a valid choice"),
        ({"sb_name": ""}, "sb_name", "cannot be blank"),
        ({"state": "DELIVERED"}, "state", "cannot be set on a new MOUS"),
    ],
)
def test_mous_create_refuses_bad_input_and_writes_nothing(world, changes, field, message):
    errors = _refused(
        mous_create,
        project=world.project,
        eb_uids=["uid://A002/X2d1/X1"],
        by=world.drm.user,
        **{**MOUS_FIELDS, **changes},
    )

    assert any(message in text for text in errors[field]), errors


@pytest.mark.parametrize(
    ("eb_uids", "message"),
    [
        (["uid://A002/X2d1/X1", "uid://A002/X2d1/X1"], "EB uid://A002/X2d1/X1 is listed twice."),
        (["uid://A001/X2d1/X10"], "the MOUS's own uid"),
        (["uid://A002/X2d1/X1", "not-a-uid"], "'not-a-uid' is not an EB uid"),
    ],
)
def test_mous_create_refuses_bad_eb_uids_and_writes_nothing(world, eb_uids, message):
    errors = _refused(mous_create, project=world.project, eb_uids=eb_uids, by=None, **MOUS_FIELDS)

    assert any(message in text for text in errors["eb_uids"]), errors


def test_mous_create_refuses_uids_already_registered(world):
    existing_eb = world.own.execution_blocks.get()

    errors = _refused(
        mous_create,
        project=world.project,
        eb_uids=[existing_eb.uid],
        by=None,
        **{**MOUS_FIELDS, "uid": world.own.uid},
    )

    assert errors["uid"] == [f"MOUS {world.own.uid} already exists (project {world.project.code})."]
    assert errors["eb_uids"] == [f"EB {existing_eb.uid} already exists (in MOUS {world.own.uid})."]
    errors = _refused(mous_create, project=world.project, by=None, **{**MOUS_FIELDS, "uid": existing_eb.uid})
    assert errors["uid"] == [f"{existing_eb.uid} is an EB uid, not a MOUS uid."]


def test_eb_create_adds_an_expected_eb_and_refuses_duplicates_and_bad_times(world):
    observed = dt.datetime(2024, 5, 1, 3, 0, tzinfo=dt.UTC)

    eb = eb_create(mous=world.new, uid="uid://A002/X77/X1", observed_at=observed, by=world.drm.user)

    assert (eb.mous, eb.observed_at, eb.data_status, eb.created_by) == (
        world.new,
        observed,
        "expected",
        world.drm.user,
    )
    assert _refused(eb_create, mous=world.own, uid=eb.uid, by=None)["uid"] == [
        f"EB {eb.uid} already exists (in MOUS {world.new.uid})."
    ]
    assert "is not an EB uid" in _refused(eb_create, mous=world.own, uid="uid://A002/X77", by=None)["uid"][0]
    future = timezone.now() + dt.timedelta(days=2)
    assert _refused(eb_create, mous=world.own, uid="uid://A002/X77/X2", observed_at=future, by=None) == {
        "observed_at": ["The observation time is in the future."]
    }
    naive = dt.datetime(2024, 5, 1, 3, 0)
    assert (
        "time zone"
        in _refused(eb_create, mous=world.own, uid="uid://A002/X77/X2", observed_at=naive, by=None)[
            "observed_at"
        ][0]
    )


def test_an_eb_added_to_an_assigned_mous_gets_its_folder(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        eb = eb_create(mous=world.own, uid="uid://A002/X78/X1", by=world.drm.user)

    assert eb_folder(eb).is_dir()
    assert (eb_folder(eb).parent / "Combination" / "calibrated").is_dir()  # now two EBs


def test_a_data_name_outside_the_eb_folder_cannot_be_stored(world):
    eb = ExecutionBlockFactory(mous=world.new)

    for bad in ("../../../../etc/passwd", "/etc/passwd", "raw/../../x", ".."):
        eb.data_name = bad
        with pytest.raises(ValidationError, match="not a path inside the EB folder"):
            eb.full_clean()
        with pytest.raises(IntegrityError), transaction.atomic():
            ExecutionBlock.objects.filter(pk=eb.pk).update(data_name=bad)
    ExecutionBlock.objects.filter(pk=eb.pk).update(data_name="raw/uid___A002_X1_X2.ms")
