"""The safety net run by celery beat: nothing is lost when a task or the broker was."""

from datetime import timedelta

from django.utils import timezone

from assignments.jira.inbound import delivery_process
from assignments.jira.models import WebhookDelivery
from assignments.jira.outbox import outbox_sweep

# A delivery still ACCEPTED this long after arrival lost its task (broker outage, worker crash).
STALE_DELIVERY = timedelta(minutes=2)


def jira_sweep(*, limit: int = 100) -> dict:
    """Process deliveries whose task was lost, then send every due outbox comment."""
    stale = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.ACCEPTED, received_at__lt=timezone.now() - STALE_DELIVERY
    ).values_list("pk", flat=True)[:limit]
    processed = sum(delivery_process(delivery_id=pk) is not None for pk in list(stale))
    return {"deliveries": processed, "comments": outbox_sweep(limit=limit)}
