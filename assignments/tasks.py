"""Celery tasks of the assignments app: thin (ids in, one service call).

The JIRA modules enqueue these by name (SEND_TASK, PROCESS_TASK) rather than importing this
module, so the dependency runs one way: tasks -> services.
"""

from celery import shared_task

from assignments.jira.inbound import PROCESS_TASK, delivery_process
from assignments.jira.outbox import SEND_TASK, outbox_send
from assignments.jira.sweep import jira_sweep as sweep

# Celery's own retries cover a short JIRA outage; past them the periodic sweep keeps trying,
# so the count only bounds how long a task lingers in the broker.
OUTBOX_TASK_RETRIES = 8


@shared_task(name=SEND_TASK, bind=True, max_retries=OUTBOX_TASK_RETRIES, acks_late=True)
def jira_outbox_send(self, outbox_id: int) -> None:
    retry_in = outbox_send(outbox_id=outbox_id)
    if retry_in is not None and self.request.retries < OUTBOX_TASK_RETRIES:
        raise self.retry(countdown=max(1.0, retry_in))


@shared_task(name=PROCESS_TASK, acks_late=True)
def jira_delivery_process(delivery_id: int) -> None:
    delivery_process(delivery_id=delivery_id)


@shared_task
def jira_sweep() -> dict:
    return sweep()
