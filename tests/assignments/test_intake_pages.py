"""Intake pages: new project, project page, new MOUS with EBs, add an EB; refusals change nothing."""

import pytest

from assignments.models import ExecutionBlock, Investigator, Mous, Person, Project
from tests.factories import PersonFactory, UserFactory

pytestmark = pytest.mark.django_db

PROJECT = {
    "code": "2023.1.00321.S",
    "title": "Jets",
    "pi_name": "Reducer One",
    "pi_email": "red1@example.org",  # world.reducer's account
    "cois": "Carla Co <carla@example.org>\n\n  Dan Di <RED2@example.org>  ",
}
MOUS = {
    "project": "2019.1.01234.S",
    "uid": "uid://A001/X321/X1",
    "sb_name": "Jet_a_03_TM1",
    "science_goal": "Jet knots",
    "band": "3",
    "array": "TE",
    "representative_frequency_ghz": "97.98",
    "requested_rms_mjy": "0.08",
    "rms_bandwidth_mhz": "1875",
    "resolution_min_arcsec": "0.5",
    "resolution_max_arcsec": "1.0",
    "goal": "line",
    "due_date": "2030-03-01",
    "eb_uids": "uid://A002/X321/X1\nuid://A002/X321/X2",
}


def _counts() -> tuple[int, int, int, int]:
    return (
        Project.objects.count(),
        Investigator.objects.count(),
        Mous.objects.count(),
        ExecutionBlock.objects.count(),
    )


def test_drm_registers_a_project_and_sees_the_linked_accounts(world, client):
    client.force_login(world.drm.user)

    answer = client.post("/projects/new/", PROJECT, follow=True)

    project = Project.objects.get(code="2023.1.00321.S")
    assert answer.redirect_chain == [(f"/projects/{project.pk}/", 302)]
    page = answer.content.decode()
    assert "Project 2023.1.00321.S registered (cycle 10)." in page
    assert "Linked to accounts: Reducer One → red1, Dan Di → red2." in page
    linked = {i.email: i.user for i in project.investigators.all()}
    assert linked == {
        "red1@example.org": world.reducer.user,
        "carla@example.org": None,
        "RED2@example.org": world.other_reducer.user,
    }
    carla = '<td>Carla Co</td><td>carla@example.org</td><td class="account"><span class="muted">none</span>'
    assert carla in page
    assert '<td class="account">red1 (Data reducer (staff))</td>' in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cois": "Carla Co carla@example.org"}, "line 1: write one co-I as &#x27;Name &lt;e-mail&gt;&#x27;"),
        ({"code": "2019.1.01234.S"}, "Project 2019.1.01234.S already exists."),
        ({"code": "2023.1.321.S"}, "is not an ALMA project code"),
        ({"cois": "Again <red1@example.org>"}, "red1@example.org is listed twice"),
        ({"pi_email": ""}, "This field is required."),
    ],
)
def test_bad_project_form_shows_the_reason_and_saves_nothing(world, client, changes, message):
    client.force_login(world.drm.user)
    before = _counts()

    answer = client.post("/projects/new/", {**PROJECT, **changes})

    assert answer.status_code == 400
    page = answer.content.decode()
    assert "Nothing was saved" in page and message in page
    assert _counts() == before


def test_new_mous_with_ebs_then_add_an_eb_from_the_mous_page(world, client):
    client.force_login(world.drm.user)
    form = client.get("/mous/new/", {"project": "2019.1.01234.S"}).content.decode()
    assert 'name="project" value="2019.1.01234.S"' in form

    answer = client.post("/mous/new/", MOUS, follow=True)

    mous = Mous.objects.get(uid="uid://A001/X321/X1")
    assert answer.redirect_chain == [(f"/mous/{mous.pk}/", 302)]
    page = answer.content.decode()
    assert "MOUS uid://A001/X321/X1 registered with 2 EBs." in page
    assert (mous.band, mous.goal, str(mous.due_date), mous.created_by) == (
        3,
        "line",
        "2030-03-01",
        world.drm.user,
    )
    assert f'href="/mous/{mous.pk}/ebs/new/" id="add-eb"' in page
    assert "Pat Investigator (PI, account <b>pi1</b>)" in page
    assert f"by {world.drm.user.username}" in page

    added = client.post(
        f"/mous/{mous.pk}/ebs/new/", {"uid": "uid://A002/X321/X3", "observed_at": "2024-01-02T03:04"}
    )
    assert added.status_code == 302
    eb = mous.execution_blocks.get(uid="uid://A002/X321/X3")
    assert eb.observed_at.isoformat() == "2024-01-02T03:04:00+00:00"
    again = client.post(f"/mous/{mous.pk}/ebs/new/", {"uid": "uid://A002/X321/X3"})
    assert again.status_code == 400
    assert f"EB uid://A002/X321/X3 already exists (in MOUS {mous.uid})." in again.content.decode()
    assert mous.execution_blocks.count() == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"band": "12"}, "ALMA bands are 1 to 10."),
        ({"resolution_min_arcsec": "2"}, "The minimum resolution is larger than the maximum."),
        ({"requested_rms_mjy": "-1"}, "The requested rms must be positive."),
        ({"project": "2030.1.00001.S"}, "No project 2030.1.00001.S: register the project first."),
        ({"uid": "uid://A001/X321"}, "is not a MOUS uid"),
        ({"eb_uids": "uid://A002/X321/X1\nuid://A002/X321"}, "is not an EB uid"),
    ],
)
def test_bad_mous_form_shows_the_reason_and_saves_nothing(world, client, changes, message):
    client.force_login(world.drm.user)
    before = _counts()

    answer = client.post("/mous/new/", {**MOUS, **changes})

    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert _counts() == before


def test_add_an_investigator_on_the_project_page(world, client):
    client.force_login(world.drm.user)
    url = f"/projects/{world.project.pk}/investigators/"

    added = client.post(url, {"name": "Rita Red", "email": "red2@example.org", "role": "coi"}, follow=True)
    second_pi = client.post(url, {"name": "Second", "email": "second@example.org", "role": "pi"})

    assert "Rita Red added as co-I (account red2)." in added.content.decode()
    assert second_pi.status_code == 400
    assert "Project 2019.1.01234.S already has a PI." in second_pi.content.decode()
    assert world.project.investigators.count() == 2


def test_intake_pages_are_for_drms_and_data_analysts(world, client):
    analyst = PersonFactory(user=UserFactory(username="da1"), role=Person.Role.DATA_ANALYST, initials="DA")
    urls = ["/projects/new/", "/mous/new/", f"/mous/{world.new.pk}/ebs/new/"]

    client.force_login(world.reducer.user)
    assert [client.get(url).status_code for url in urls] == [403, 403, 403]
    before = _counts()
    assert client.post("/projects/new/", PROJECT).status_code == 403
    assert client.post("/mous/new/", MOUS).status_code == 403
    assert _counts() == before
    assert client.get(f"/projects/{world.project.pk}/").status_code == 200  # reading is for everyone
    assert 'id="new-project"' not in client.get("/whiteboard/").content.decode()
    assert 'id="add-eb"' not in client.get(f"/mous/{world.own.pk}/").content.decode()

    client.force_login(analyst.user)
    assert [client.get(url).status_code for url in urls] == [200, 200, 200]
    assert 'id="new-project"' in client.get("/whiteboard/").content.decode()
    assert client.post("/projects/new/", PROJECT).status_code == 302


def test_assigning_the_mous_to_the_pi_account_is_refused_on_both_pages(world, client):
    client.force_login(world.drm.user)
    client.post("/projects/new/", PROJECT)
    client.post("/mous/new/", {**MOUS, "project": PROJECT["code"]})
    mous = Mous.objects.get(uid=MOUS["uid"])

    page = client.post(f"/mous/{mous.pk}/assign/", {"reducer": world.reducer.pk, "version": mous.version})
    board = client.post(
        "/whiteboard/bulk-assign/", {"mous": [mous.pk], "reducer": world.other_reducer.pk}, follow=True
    )

    assert page.status_code == 409
    assert (
        "red1 cannot reduce uid://A001/X321/X1: they are PI of project 2023.1.00321.S"
        in page.content.decode()
    )
    assert "Nothing assigned. red2 cannot reduce uid://A001/X321/X1: they are co-I" in board.content.decode()
    mous.refresh_from_db()
    assert mous.assignee is None
