"""Calibrate all EBs: the runs go to the casa queue at once and a worker with two slots runs
the two EBs at the same time (prefetch multiplier 1, acks late: one run per slot)."""

import os
import subprocess
import time
import uuid

import pytest
from django.conf import settings as django_settings

from assignments.models import ExecutionBlock, MousState
from assignments.staging import mous_stage
from calibration import runs
from calibration.casa import die_with_parent
from calibration.models import Run
from qa2portal.management.commands.run_embedded import worker_command
from tests.calibration.conftest import alma_steps, script_version
from tests.conftest import REPO, _wait_for_worker, stop_worker
from tests.factories import ExecutionBlockFactory, MousFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_ebs_run_in_parallel_one_per_worker_slot(
    dedicated_worker, worker_environment, settings, tmp_path, reducer
):
    # dedicated_worker: DATA_ROOT is the folder workers share; the worker is started here with
    # two slots (the fixture's have one), on a queue of its own.
    assert django_settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1 and django_settings.CELERY_TASK_ACKS_LATE
    settings.CASA_QUEUE = queue = f"calall-{uuid.uuid4().hex[:8]}"  # this test's worker only
    name = f"two-slots-{uuid.uuid4().hex[:8]}@localhost"
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        worker_command(name=name, concurrency=2, queues=[queue]),
        cwd=REPO,
        env={**os.environ, **worker_environment},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        _wait_for_worker(name, proc, log)
        mous = MousFactory(state=MousState.ASSIGNED, assignee=reducer)
        ebs = [
            ExecutionBlockFactory(mous=mous, data_status=ExecutionBlock.DataStatus.PRESENT) for _ in range(2)
        ]
        mous_stage(mous)
        for eb in ebs:
            script_version(eb, alma_steps("import time\ntime.sleep(8)", "print('done')"))
        started = runs.runs_calibrate_all(mous=mous, by=reducer.user)
        assert [r.status for r in started] == [Run.Status.QUEUED, Run.Status.QUEUED]
        deadline = time.monotonic() + 180
        for run in started:
            while not run.is_terminal:
                assert time.monotonic() < deadline, f"{run} did not end:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
                run.refresh_from_db()
            assert run.status == Run.Status.SUCCEEDED, run.error
            assert run.selected_steps == [] and run.steps.count() == 2  # every step
        first, second = started
        # Both were running at once: each started before the other finished.
        assert first.started_at < second.finished_at and second.started_at < first.finished_at
    finally:
        stop_worker(proc)
