"""The QA2 state machine, assignments with their history, conflict of interest and staging."""

import pytest
from django.core.exceptions import ValidationError

from assignments.datafiles import PathOutsideDataRoot
from assignments.models import (
    InvalidTransition,
    Mous,
    MousState,
    StaleVersion,
    StateChange,
    TransitionForbidden,
)
from assignments.preconditions import ChecklistIncomplete
from assignments.services import ConflictOfInterest, mous_assign, mous_bulk_assign, mous_edit, mous_unassign
from assignments.staging import mous_stage
from tests.factories import (
    ExecutionBlockFactory,
    InvestigatorFactory,
    MousFactory,
    PersonFactory,
    UserFactory,
)

S = MousState
pytestmark = pytest.mark.django_db
# These tests walk the state machine without data: a DRM overrides the review checklist.
NO_DATA = "state-machine test: no data"


def test_full_lifecycle_writes_one_audit_row_per_move(world):
    mous, drm = world.own, world.drm.user
    path = [S.CALIBRATING, S.IMAGING, S.READY_FOR_REVIEW, S.REVIEWING, S.QA2_PASS, S.DELIVERING, S.DELIVERED]

    for state in path:
        mous.transition(state, by=drm, note=f"to {state}", override_reason=NO_DATA)

    mous.refresh_from_db()
    assert mous.state == S.DELIVERED
    changes = list(StateChange.objects.filter(mous=mous).order_by("created_at", "pk"))
    assert [c.new_state for c in changes] == [S.ASSIGNED, *path]
    assert all(c.changed_by == drm for c in changes)
    # The checklist was overridden once, for review, and the move says so with what was missing.
    overridden = [c for c in changes if c.checklist_override]
    assert [c.new_state for c in overridden] == [S.READY_FOR_REVIEW]
    assert (
        overridden[0].checklist_override.startswith(NO_DATA)
        and "no run of" in overridden[0].checklist_override
    )


def test_illegal_move_is_refused_with_the_allowed_moves_and_changes_nothing(world):
    mous = world.own
    before = (mous.state, mous.version, StateChange.objects.count())

    with pytest.raises(InvalidTransition) as refused:
        mous.transition(S.QA2_PASS, by=world.drm.user)

    assert refused.value.allowed == sorted([S.CALIBRATING, S.NEW, S.BLOCKED])
    assert "allowed from ASSIGNED" in str(refused.value)
    mous.refresh_from_db()
    assert (mous.state, mous.version, StateChange.objects.count()) == before


def test_qa2_fail_goes_back_to_assigned_or_to_the_archive(world):
    mous = world.own
    for state in (S.CALIBRATING, S.READY_FOR_REVIEW, S.REVIEWING, S.QA2_FAIL):
        mous.transition(state, by=world.drm.user, override_reason=NO_DATA)

    assert set(mous.allowed_transitions()) == {S.ASSIGNED, S.FAILED_ARCHIVED}
    mous.transition(S.ASSIGNED, by=world.drm.user, note="reprocess with a new flux model")
    assert mous.state == S.ASSIGNED


def test_blocking_needs_a_reason_and_unblocking_returns_to_the_previous_state(world):
    mous = world.own
    mous.transition(S.CALIBRATING, by=world.reducer.user)

    with pytest.raises(ValidationError, match="reason"):
        mous.transition(S.BLOCKED, by=world.reducer.user, note="  ")
    mous.transition(S.BLOCKED, by=world.reducer.user, note="EB data missing on lustre")

    assert (mous.blocked_from, mous.blocked_reason) == (S.CALIBRATING, "EB data missing on lustre")
    assert mous.allowed_transitions() == {S.CALIBRATING}
    with pytest.raises(InvalidTransition):
        mous.transition(S.IMAGING, by=world.drm.user)
    mous.transition(S.CALIBRATING, by=world.reducer.user)
    assert (mous.state, mous.blocked_from, mous.blocked_reason) == (S.CALIBRATING, "", "")


def test_stale_version_is_refused(world):
    mous = world.own
    seen = mous.version
    mous.transition(S.CALIBRATING, by=world.drm.user)

    with pytest.raises(StaleVersion, match="changed meanwhile"):
        mous.transition(S.IMAGING, by=world.drm.user, expected_version=seen)


def test_a_mous_with_no_run_cannot_go_to_review_and_only_a_drm_overrides_with_a_reason(world):
    """The checklist is the precondition of review: with nothing calibrated or imaged the move is
    refused with every missing item (nothing changes); the reducer cannot override; a DRM can,
    and the reason and the missing items are kept on the move."""
    mous, reducer = world.own, world.reducer.user
    for state in (S.CALIBRATING, S.IMAGING):
        mous.transition(state, by=reducer, check_role=True)
    before = (mous.state, mous.version, StateChange.objects.count())

    with pytest.raises(ChecklistIncomplete) as refused:
        mous.transition(S.READY_FOR_REVIEW, by=reducer, check_role=True)
    eb = mous.execution_blocks.get()
    assert any(
        item.startswith(f"EB {eb.uid}: ") and "no run of the calibration script" in item
        for item in refused.value.items
    )
    assert any(item.startswith("MOUS: README") for item in refused.value.items)
    assert refused.value.details()["missing"] == refused.value.items
    with pytest.raises(TransitionForbidden, match="only a DRM may override"):
        mous.transition(S.READY_FOR_REVIEW, by=reducer, check_role=True, override_reason="trust me")
    mous.refresh_from_db()
    assert (mous.state, mous.version, StateChange.objects.count()) == before

    mous.transition(S.READY_FOR_REVIEW, by=world.drm.user, check_role=True, override_reason=NO_DATA)
    change = StateChange.objects.get(mous=mous, new_state=S.READY_FOR_REVIEW)
    assert change.checklist_override.startswith(NO_DATA) and "README" in change.checklist_override


def test_reducer_may_work_and_ask_for_review_but_not_decide_qa2(world):
    mous, reducer = world.own, world.reducer.user
    for state in (S.CALIBRATING, S.IMAGING):
        mous.transition(state, by=reducer, check_role=True)
    mous.transition(S.READY_FOR_REVIEW, by=world.drm.user, override_reason=NO_DATA)

    with pytest.raises(TransitionForbidden, match="only a DRM"):
        mous.transition(S.REVIEWING, by=reducer, check_role=True)
    assert mous.moves_for(reducer) == [S.CALIBRATING, S.BLOCKED]
    assert mous.moves_for(world.drm.user) == [S.CALIBRATING, S.REVIEWING, S.BLOCKED]


def test_reducer_may_not_move_someone_elses_mous(world):
    with pytest.raises(TransitionForbidden, match="not assigned to you"):
        world.other.transition(S.CALIBRATING, by=world.reducer.user, check_role=True)
    assert world.other.moves_for(world.reducer.user) == []


def test_assign_refuses_the_pi_and_names_the_rule(world):
    with pytest.raises(ConflictOfInterest, match=r"PI of project 2019\.1\.01234\.S .*conflict-of-interest"):
        mous_assign(mous=world.new, reducer=world.pi, by=world.drm.user)

    world.new.refresh_from_db()
    assert (world.new.state, world.new.assignee, world.new.assignments.count()) == (S.NEW, None, 0)


def test_assign_refuses_a_coi_matched_by_email(world):
    coi = PersonFactory(user=UserFactory(username="coi1", email="Co.I@Example.org"))
    InvestigatorFactory(project=world.project, role="coi", email="co.i@example.org", user=None)

    with pytest.raises(ConflictOfInterest, match="co-I"):
        mous_assign(mous=world.new, reducer=coi, by=world.drm.user)


def test_reassign_and_unassign_keep_the_history(world):
    mous, drm = world.new, world.drm.user
    mous_assign(mous=mous, reducer=world.reducer, by=drm, note="first")
    mous_assign(mous=mous, reducer=world.other_reducer, by=drm, note="rebalance")
    mous_unassign(mous=mous, by=drm, note="on leave")

    history = list(mous.assignments.order_by("assigned_at", "pk"))
    assert [(a.reducer, a.ended_at is not None, a.ended_by) for a in history] == [
        (world.reducer, True, drm),
        (world.other_reducer, True, drm),
    ]
    mous.refresh_from_db()
    assert (mous.state, mous.assignee) == (S.NEW, None)
    assert [c.new_state for c in mous.state_changes.order_by("created_at", "pk")] == [S.ASSIGNED, S.NEW]


def test_assigning_the_current_reducer_again_is_refused(world):
    with pytest.raises(ValidationError, match="already assigned to red1"):
        mous_assign(mous=world.own, reducer=world.reducer, by=world.drm.user)


def test_bulk_assign_is_all_or_nothing(world):
    a, b = MousFactory(project=world.project), MousFactory()

    with pytest.raises(ConflictOfInterest):
        mous_bulk_assign(mous_ids=[b.pk, a.pk], reducer=world.pi, by=world.drm.user)

    assert Mous.objects.filter(pk__in=[a.pk, b.pk], assignee__isnull=False).count() == 0
    done = mous_bulk_assign(mous_ids=[a.pk, b.pk], reducer=world.reducer, by=world.drm.user)
    assert len(done) == 2


def test_staging_builds_the_seeds_tree_idempotently(world, data_root):
    one_eb = world.new
    two_ebs = MousFactory(uid="uid://A001/X13e/X1fe", project=world.project)
    ExecutionBlockFactory(mous=two_ebs, uid="uid://A002/Xa1/X2b")
    ExecutionBlockFactory(mous=two_ebs, uid="uid://A002/Xa1/X3c")

    root = mous_stage(two_ebs)
    mous_stage(two_ebs)
    single = mous_stage(one_eb)

    assert root == data_root / "2019.1.01234.S_uid___A001_X13e_X1fe"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "Calibration_X2b",
        "Calibration_X3c",
        "Combination",
        "Combination/calibrated",
        "Imaging",
    ]
    assert not (single / "Combination").exists()


def test_staging_refuses_a_path_outside_data_root(world, settings, tmp_path):
    mous = world.new
    mous.project.code = "../../escape"  # never valid; a corrupt row must still not escape

    with pytest.raises(PathOutsideDataRoot):
        mous_stage(mous)


def test_edit_checks_the_version_and_validates(world):
    mous = world.own
    v = mous.version

    mous_edit(mous=mous, by=world.drm.user, expected_version=v, changes={"notes": "Tsys spike on DA41"})
    with pytest.raises(StaleVersion):
        mous_edit(mous=mous, by=world.drm.user, expected_version=v, changes={"notes": "lost update"})
    with pytest.raises(ValidationError, match="requested rms must be positive"):
        mous_edit(
            mous=mous, by=world.drm.user, expected_version=mous.version, changes={"requested_rms_mjy": -1}
        )

    mous.refresh_from_db()
    assert (mous.notes, mous.requested_rms_mjy, mous.version) == ("Tsys spike on DA41", 0.5, v + 1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uid", "uid:/A001/X1/X2", "An ALMA uid looks like"),
        ("band", 11, "ALMA bands are 1 to 10"),
        ("requested_rms_mjy", -0.1, "requested rms must be positive"),
    ],
    ids=["uid", "band", "rms"],  # ids become folder names (data_root): no '/' in them
)
def test_mous_validation_messages(world, field, value, message):
    mous = MousFactory.build(project=world.project, **{field: value})

    with pytest.raises(ValidationError, match=message):
        mous.full_clean()


def test_project_code_validation_message(db):
    from assignments.models import Project

    with pytest.raises(ValidationError, match=r"A project code looks like 2019\.1\.01234\.S"):
        Project(code="2019.01234.S", cycle=7).full_clean()
