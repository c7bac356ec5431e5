"""Celery tasks of the assignments app: thin (ids in, one service call)."""

from celery import shared_task

# Celery's own retries cover a short JIRA outage; past them the periodic sweep keeps trying,
# so the count only bounds how long a task lingers in the broker.
OUTBOX_TASK_RETRIES = 8


@shared_task(bind=True, max_retries=OUTBOX_TASK_RETRIES, acks_late=True)
def jira_outbox_send(self, outbox_id: int) -> None:
    # Imported here: the outbox module imports this one to enqueue.
    from assignments.jira.outbox import outbox_send

    retry_in = outbox_send(outbox_id=outbox_id)
    if retry_in is not None and self.request.retries < OUTBOX_TASK_RETRIES:
        raise self.retry(countdown=max(1.0, retry_in))


@shared_task(acks_late=True)
def jira_delivery_process(delivery_id: int) -> None:
    from assignments.jira.inbound import delivery_process

    delivery_process(delivery_id=delivery_id)


@shared_task
def jira_sweep() -> dict:
    from assignments.jira.sweep import jira_sweep as sweep

    return sweep()
