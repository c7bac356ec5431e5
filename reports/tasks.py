"""Celery tasks of the reports app: ids in, one service call. The qa2 report starts CASA and the
delivery reads and writes whole MOUS trees, so both go to the casa queue
(settings.CELERY_TASK_ROUTES); the deliveries' reaper stays on `default`."""

from celery import shared_task


@shared_task(name="reports.tasks.qa2_report")
def qa2_report(report_id: int) -> str:
    from reports.qa2_report import qa2_report_execute

    return qa2_report_execute(report_id).status


@shared_task(name="reports.tasks.deliver")
def deliver(delivery_id: int) -> str:
    """Package a MOUS for delivery, or move a QA2 fail to qa2fails (routed to the casa queue)."""
    from reports.delivery import delivery_execute

    return delivery_execute(delivery_id).status


@shared_task(name="reports.tasks.reap_stale_deliveries")
def reap_stale_deliveries() -> list[int]:
    """FAIL deliveries whose worker died (default queue; celery beat, every minute)."""
    from reports.delivery import deliveries_reap_stale

    return deliveries_reap_stale()
