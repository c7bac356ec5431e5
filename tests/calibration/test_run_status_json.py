"""The run page's poll (/calibration/runs/<pk>/status/): the keys static/js/run.js reads, built
on the API's RunSerializer, so the page and /api/runs/<pk>/ agree on every field they share."""

import pytest

from assignments.datafiles import eb_folder
from assignments.models import MousState
from assignments.staging import mous_stage
from calibration.models import Run, RunStep
from tests.calibration.conftest import script_version
from tests.factories import ExecutionBlockFactory, MousFactory

pytestmark = pytest.mark.django_db


def test_the_status_json_has_what_the_run_page_reads(client, reducer):
    mous = MousFactory(state=MousState.CALIBRATING, assignee=reducer)
    eb = ExecutionBlockFactory(mous=mous)
    mous_stage(mous)
    run = Run.objects.create(
        script_version=script_version(eb, "print('hello')\n"),
        mous=mous,
        execution_block=eb,
        folder=str(eb_folder(eb)),
        status=Run.Status.RUNNING,
        created_by=reducer.user,
    )
    long_output = "x" * 5000 + "the end\n"
    RunStep.objects.create(
        run=run,
        number=0,
        title="import",
        status=RunStep.Status.SUCCEEDED,
        output_tail=long_output,
        casa_tasks=["importasdm"],
        severe_messages=["SEVERE: one"],
    )
    RunStep.objects.create(run=run, number=1, title="flag", status=RunStep.Status.PENDING)
    client.force_login(reducer.user)

    page = client.get(f"/calibration/runs/{run.pk}/status/").json()

    assert page["id"] == run.pk and page["status"] == "RUNNING" and page["terminal"] is False
    assert (page["steps_done"], page["steps_total"]) == (1, 2)
    assert page["error"] == "" and page["cancel_requested"] is False and page["attempts"] == 0
    assert page["log_tail"] == ""  # no output log yet
    first, second = page["steps"]
    assert (first["number"], first["status"], second["status"]) == (0, "SUCCEEDED", "PENDING")
    assert first["severe"] == ["SEVERE: one"] and first["casa_tasks"] == ["importasdm"]
    assert first["skipped_helpers"] == [] and first["error"] == ""
    assert first["output_tail"] == long_output[-4000:]  # the page shows the end only
    assert "duration_seconds" in first and "duration_seconds" in page

    api = client.get(f"/api/runs/{run.pk}/").json()
    shared = set(api) - {"steps"}
    assert {key: page[key] for key in shared} == {key: api[key] for key in shared}
