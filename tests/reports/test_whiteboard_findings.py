import pytest

from assignments.selectors import whiteboard_rows
from calibration.models import Run
from reports.models import Diagnostic, Finding
from tests.factories import ExecutionBlockFactory, MousFactory

pytestmark = pytest.mark.django_db


def _run_with_findings(mous, scores) -> Run:
    eb = ExecutionBlockFactory(mous=mous)
    run = Run.objects.create(mous=mous, execution_block=eb, folder="/nowhere")
    diagnostic = Diagnostic.objects.create(run=run, mous=mous, topic="tsys", name="t", summary={})
    for score in scores:
        Finding.objects.create(
            diagnostic=diagnostic, run=run, topic="tsys", code="c", score=score, message="m"
        )
    return run


def test_whiteboard_counts_open_findings_of_the_newest_diagnosed_run():
    mous, quiet = MousFactory(), MousFactory()
    _run_with_findings(mous, [0.2, 0.5, 1.0])
    _run_with_findings(mous, [0.4, 0.95])  # newer: only this run counts

    rows = {m.pk: m for m in whiteboard_rows()}

    assert rows[mous.pk].open_findings == 1
    assert rows[quiet.pk].open_findings is None


def test_findings_cell_opens_the_diagnostics_of_the_eb_with_findings(client):
    from tests.factories import DrmFactory

    mous = MousFactory()
    ExecutionBlockFactory(mous=mous)  # no runs: not a choice
    run = _run_with_findings(mous, [0.2, 0.5, 1.0])
    client.force_login(DrmFactory().user)

    board = client.get("/whiteboard/").content.decode()
    assert f'<a href="/reports/mous/{mous.pk}/" class="badge warn"' in board

    answer = client.get(f"/reports/mous/{mous.pk}/")
    assert answer.status_code == 302 and answer["Location"] == f"/reports/eb/{run.execution_block_id}/"
    overview = client.get(answer["Location"]).content.decode()
    assert "2 open of 3 checks" in overview


def test_findings_cell_of_a_mous_with_several_diagnosed_ebs_offers_a_choice(client):
    from tests.factories import DrmFactory

    mous = MousFactory()
    first = _run_with_findings(mous, [0.2, 0.5, 1.0])
    second = _run_with_findings(mous, [0.4])
    client.force_login(DrmFactory().user)

    page = client.get(f"/reports/mous/{mous.pk}/")

    assert page.status_code == 200
    html = page.content.decode()
    for run, open_count in ((first, 2), (second, 1)):
        eb = run.execution_block
        assert f'<a href="/reports/eb/{eb.pk}/" class="badge warn">{open_count}</a>' in html
        assert f'<a href="/reports/eb/{eb.pk}/">{eb.folder_name}</a>' in html


def test_mous_diagnostics_without_any_say_so(client):
    from tests.factories import DrmFactory

    mous = MousFactory()
    eb = ExecutionBlockFactory(mous=mous)
    client.force_login(DrmFactory().user)

    html = client.get(f"/reports/mous/{mous.pk}/").content.decode()

    assert "No diagnostics yet" in html
    assert f'<a href="/calibration/eb/{eb.pk}/">{eb.folder_name}</a>' in html
