import pytest

from assignments.models import Mous
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

    rows = {m.pk: m for m in Mous.objects.for_whiteboard()}

    assert rows[mous.pk].open_findings == 1
    assert rows[quiet.pk].open_findings is None
