from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from calibration.signals import step_diagnostics
        from reports.services import diagnostics_record

        def record(sender, *, run, step, items, **kwargs) -> None:
            diagnostics_record(run=run, step=step, items=items)

        step_diagnostics.connect(record, dispatch_uid="reports.diagnostics_record", weak=False)

        from assignments import preconditions
        from assignments.models import MousState
        from reports import checklist

        # The final checklist must be complete before review (a DRM may override it).
        preconditions.register(MousState.READY_FOR_REVIEW, checklist.missing)

        from assignments.jira.outbox import register_comment_extra
        from reports import review

        # The ticket hears the QA2 summary with the scripts attached, and the imaging script on a fail.
        register_comment_extra(MousState.READY_FOR_REVIEW, review.ready_for_review_comment)
        register_comment_extra(MousState.QA2_FAIL, review.qa2_fail_comment)
