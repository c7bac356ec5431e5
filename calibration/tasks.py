"""Celery tasks: ids in, one service call.

The CASA jobs (run_execute, script_generate, ingest_execute) are routed to the `casa` queue;
the reapers to `default` (settings.CELERY_TASK_ROUTES), so they run when every casa slot is busy.
"""

from celery import shared_task
from celery.signals import worker_ready

from calibration import task_names


@shared_task(name=task_names.RUN_EXECUTE)
def run_execute(run_id: int) -> None:
    from calibration import runs

    runs.run_execute(run_id)


@shared_task(name="calibration.tasks.reap_stale_runs")
def reap_stale_runs() -> list[int]:
    from calibration import runs

    return runs.reap_stale_runs()


@shared_task(name=task_names.SCRIPT_GENERATE)
def script_generate(generation_id: int) -> str:
    from calibration.script_generation import script_generate as script_generate_service

    return script_generate_service(generation_id=generation_id).status


@shared_task(name="calibration.tasks.reap_stale_generations")
def reap_stale_generations() -> list[int]:
    from calibration.script_generation import generations_reap_stale

    return generations_reap_stale()


@worker_ready.connect
def decide_sandbox(**kwargs) -> None:
    """The worker decides its CASA sandbox once, at start, and records it for /health/."""
    from calibration.casa import sandbox_decide

    sandbox_decide()


@shared_task(name="calibration.tasks.ingest_execute")
def ingest_execute(ingest_id: int) -> str:
    from calibration.ingest import ingest_execute as ingest_execute_service

    ingest = ingest_execute_service(ingest_id)
    return ingest.status if ingest is not None else "GONE"


@shared_task(name="calibration.tasks.reap_stale_ingests")
def reap_stale_ingests() -> list[int]:
    from calibration.ingest import ingests_reap_stale

    return ingests_reap_stale()


@shared_task(name=task_names.CALIBRATED_COPY)
def calibrated_copy(copy_id: int) -> str:
    from calibration.calibrated_copy import calibrated_copy_execute

    return calibrated_copy_execute(copy_id).status


@shared_task(name="calibration.tasks.reap_stale_calibrated_copies")
def reap_stale_calibrated_copies() -> list[int]:
    from calibration.calibrated_copy import copies_reap_stale

    return copies_reap_stale()
