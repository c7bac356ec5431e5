"""Celery tasks of the reports app: ids in, one service call. The qa2 report starts CASA, so it
goes to the casa queue (settings.CELERY_TASK_ROUTES)."""

from celery import shared_task


@shared_task(name="reports.tasks.qa2_report")
def qa2_report(report_id: int) -> str:
    from reports.qa2_report import qa2_report_execute

    return qa2_report_execute(report_id).status
