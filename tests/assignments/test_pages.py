"""HTML pages: whiteboard filters and counts, My work, MOUS page forms and their refusals."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assignments.models import MousState
from tests.factories import ExecutionBlockFactory, MousFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_home_sends_drms_to_the_whiteboard_and_reducers_to_my_work(world, client):
    client.force_login(world.drm.user)
    assert client.get("/")["Location"] == "/whiteboard/"
    client.force_login(world.reducer.user)
    assert client.get("/")["Location"] == "/my-work/"


def test_whiteboard_shows_counts_and_filters(world, client):
    client.force_login(world.drm.user)

    page = client.get("/whiteboard/", {"reducer": "red1"}).content.decode()

    assert world.own.uid in page and world.other.uid not in page
    assert 'data-count-state="ASSIGNED">Assigned <b>2</b>' in page
    assert 'data-workload="red1">RA · red1 <b>1</b>' in page


def test_whiteboard_reports_a_bad_filter_and_ignores_it(world, client):
    client.force_login(world.drm.user)

    page = client.get("/whiteboard/", {"band": "99"}).content.decode()

    assert "band: ALMA bands are 1 to 10." in page
    assert world.own.uid in page


@pytest.mark.parametrize(
    ("cycle", "found"),
    [("7", True), ("2019", True), ("2019.1", True), ("6", False), ("2018", False), ("2019.A", False)],
)
def test_whiteboard_cycle_filter_takes_a_cycle_number_or_a_proposal_year(world, client, cycle, found):
    older = MousFactory(project=ProjectFactory(code="2018.1.00042.S", cycle=6))
    client.force_login(world.drm.user)

    page = client.get("/whiteboard/", {"cycle": cycle}).content.decode()

    assert "errorlist" not in page
    assert (world.own.uid in page) is found
    assert (older.uid in page) is (cycle in ("6", "2018"))


def test_whiteboard_cycle_filter_refuses_what_it_cannot_read(world, client, as_user):
    client.force_login(world.drm.user)

    page = client.get("/whiteboard/", {"cycle": "2019.1.01234"}).content.decode()

    assert "cycle: &#x27;2019.1.01234&#x27; is neither a cycle number (e.g. 7) nor a proposal year" in page
    assert world.own.uid in page  # not applied
    answer = as_user(world.drm).get("/api/mous/", {"cycle": "19xx"})
    assert answer.status_code == 400
    assert "neither a cycle number" in answer.json()["cycle"][0]["message"]


def test_whiteboard_query_count_does_not_depend_on_page_size(world, client):
    for _ in range(30):
        ExecutionBlockFactory(mous=MousFactory(project=world.project))
    client.force_login(world.drm.user)

    counts = {}
    for per_page in (25, 100):
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/whiteboard/", {"per_page": per_page}).status_code == 200
        counts[per_page] = len(queries)

    assert counts[25] == counts[100]
    assert counts[25] <= 8


def test_my_work_lists_own_mous_with_what_it_needs_next(world, client):
    client.force_login(world.reducer.user)

    page = client.get("/my-work/").content.decode()

    assert world.own.uid in page and world.other.uid not in page
    eb = world.own.execution_blocks.get()
    # The next action is a button to the page where it is done: the only EB's scripts page.
    assert (
        f'<a href="/calibration/eb/{eb.pk}/" class="button next-action-link">'
        "Generate or upload the calibration scripts and start calibrating</a>"
    ) in page


def test_page_transition_refusal_shows_the_reason_with_409(world, client):
    client.force_login(world.drm.user)

    answer = client.post(
        f"/mous/{world.own.pk}/transition/", {"to": "QA2_PASS", "version": world.own.version}
    )

    assert answer.status_code == 409
    assert "cannot go from ASSIGNED to QA2_PASS" in answer.content.decode()
    world.own.refresh_from_db()
    assert world.own.state == MousState.ASSIGNED


def test_page_assign_of_the_pi_is_refused(world, client):
    client.force_login(world.drm.user)

    answer = client.post(
        f"/mous/{world.new.pk}/assign/", {"reducer": world.pi.pk, "version": world.new.version}
    )

    assert answer.status_code == 409
    assert "conflict-of-interest rule" in answer.content.decode()


def test_page_edit_with_an_old_version_is_refused(world, client):
    client.force_login(world.drm.user)
    url = f"/mous/{world.own.pk}/edit/"
    form = {
        "sb_name": world.own.sb_name,
        "array": "TE",
        "band": 6,
        "goal": "continuum",
        "notes": "first",
        "version": world.own.version,
    }

    first = client.post(url, form)
    second = client.post(url, {**form, "notes": "second"})

    assert (first.status_code, second.status_code) == (302, 412)
    assert "changed meanwhile" in second.content.decode()
    world.own.refresh_from_db()
    assert world.own.notes == "first"


def test_bulk_assign_from_the_whiteboard(world, client):
    extra = MousFactory()
    client.force_login(world.drm.user)

    answer = client.post(
        "/whiteboard/bulk-assign/",
        {"mous": [world.new.pk, extra.pk], "reducer": world.reducer.pk},
        follow=True,
    )

    assert "2 MOUS assigned to red1." in answer.content.decode()
    extra.refresh_from_db()
    assert extra.assignee == world.reducer


def test_move_buttons_and_timeline_show_state_labels_not_codes(world, client):
    client.force_login(world.drm.user)

    page = client.get(f"/mous/{world.own.pk}/").content.decode()

    assert 'data-move="CALIBRATING">→ Calibrating</button>' in page
    assert 'data-move="BLOCKED">→ Blocked</button>' in page
    assert "→ CALIBRATING" not in page and "→ ASSIGNED" not in page
    assert "<b>New → Assigned</b>" in page  # the timeline row of the assignment


def test_admin_link_only_for_users_who_can_use_the_admin(world, client):
    from django.contrib.auth.models import Permission

    drm_user = world.drm.user
    drm_user.is_staff = True  # as the demo DRM: staff, but no admin permission
    drm_user.save()
    client.force_login(drm_user)
    assert 'id="admin-link"' not in client.get("/whiteboard/").content.decode()

    drm_user.user_permissions.add(Permission.objects.get(codename="view_mous"))
    client.force_login(drm_user)
    assert 'id="admin-link"' in client.get("/whiteboard/").content.decode()

    client.force_login(world.reducer.user)  # not staff at all
    assert 'id="admin-link"' not in client.get("/my-work/").content.decode()


def test_mous_page_links_each_eb_to_its_scripts_runs_products_and_diagnostics(world, client):
    from calibration.models import Run

    eb = world.own.execution_blocks.get()
    run = Run.objects.create(mous=world.own, execution_block=eb, folder="/nowhere", status="SUCCEEDED")
    client.force_login(world.reducer.user)

    page = client.get(f"/mous/{world.own.pk}/").content.decode()

    assert f'<a href="/calibration/eb/{eb.pk}/">{eb.uid}</a>' in page
    assert f'<a href="/calibration/eb/{eb.pk}/products/" data-link="products">' in page
    assert f'<a href="/reports/eb/{eb.pk}/" data-link="diagnostics">' in page
    assert f'<a href="/calibration/runs/{run.pk}/">#{run.pk}</a> Succeeded' in page  # EB's latest run
    assert f'<a href="/reports/eb/{eb.pk}/?run={run.pk}">diagnostics</a>' in page  # runs table
    assert f'href="/calibration/mous/{world.own.pk}/" id="mous-scripts"' in page
    assert f'href="/reports/mous/{world.own.pk}/" id="mous-diagnostics"' in page
    for url in (f"/calibration/eb/{eb.pk}/", f"/calibration/eb/{eb.pk}/products/", f"/reports/eb/{eb.pk}/"):
        assert client.get(url).status_code == 200


def test_needs_next_is_a_button_only_for_who_may_do_it(world, client):
    client.force_login(world.drm.user)
    page = client.get(f"/mous/{world.new.pk}/").content.decode()
    assert '<a href="#assign-form" class="button next-action-link">Assign a reducer</a>' in page

    second = ExecutionBlockFactory(mous=world.own)  # two EBs: the MOUS-level scripts page
    client.force_login(world.reducer.user)
    page = client.get(f"/mous/{world.own.pk}/").content.decode()
    assert f'<a href="/calibration/mous/{world.own.pk}/" class="button next-action-link">' in page
    assert client.get(f"/calibration/mous/{world.own.pk}/").content.decode().count(second.folder_name) == 1

    # A DRM's step is plain text for the reducer (the form is not theirs), a button for the DRM.
    world.own.transition(MousState.CALIBRATING, by=world.reducer.user)
    world.own.transition(MousState.READY_FOR_REVIEW, by=world.drm.user, override_reason="page test: no data")
    page = client.get(f"/mous/{world.own.pk}/").content.decode()
    assert '<span class="muted">DRM:</span> start the QA2 review</p>' in page
    client.force_login(world.drm.user)
    page = client.get(f"/mous/{world.own.pk}/").content.decode()
    assert '<a href="#transition-form" class="button next-action-link">Start the QA2 review</a>' in page
    assert 'id="transition-form"' in page


def test_whiteboard_and_my_work_show_the_latest_run_status_as_a_label(world, client):
    from calibration.models import Run

    eb = world.own.execution_blocks.get()
    Run.objects.create(mous=world.own, execution_block=eb, folder="/nowhere", status="TIMED_OUT")

    for user, url in ((world.drm.user, "/whiteboard/"), (world.reducer.user, "/my-work/")):
        client.force_login(user)
        page = client.get(url).content.decode()
        assert "<td>Timed out</td>" in page and "TIMED_OUT" not in page
