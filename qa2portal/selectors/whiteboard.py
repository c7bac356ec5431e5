"""The whiteboard row: one MOUS with the columns every app contributes, in one query.

It lives here, above the apps, because a row needs all three of them: the EB count
(assignments), the newest run's status (calibration) and the open QA findings (reports).
Importing Run and Finding from assignments would point up the layers; from here every
import points down. The pages and the API that show the rows live in assignments, so
qa2portal's AppConfig.ready installs whiteboard_rows into assignments/selectors.py, which
they call.
"""

from django.db import models
from django.db.models.functions import Coalesce

from assignments.models import ExecutionBlock, Mous
from assignments.selectors import WhiteboardRow
from calibration.models import Run
from reports.models import Finding


def whiteboard_rows(queryset: models.QuerySet[Mous]) -> models.QuerySet[WhiteboardRow]:
    """Every column of the whiteboard in one query: counts and latest run as subqueries.

    Correlated subqueries (not JOIN + GROUP BY) so PostgreSQL evaluates them only for the
    rows of the page it returns, whatever the number of EBs and runs.
    """
    eb_count = (
        ExecutionBlock.objects.filter(mous=models.OuterRef("pk"))
        .order_by()
        .values("mous")
        .annotate(n=models.Count("pk"))
        .values("n")
    )
    return queryset.select_related("project", "assignee__user").annotate(
        eb_count=Coalesce(models.Subquery(eb_count), 0),
        latest_run_status=latest_run_status_subquery(),
        open_findings=open_findings_subquery(),
    )


def latest_run_status_subquery() -> models.Subquery:
    """Status of the MOUS's newest calibration run, or NULL when it has none."""
    latest = Run.objects.filter(mous=models.OuterRef("pk")).order_by("-created_at", "-pk")
    return models.Subquery(latest.values("status")[:1])


def open_findings_subquery() -> models.Subquery:
    """QA findings scoring <= 0.9 on the MOUS's newest run that has diagnostics (NULL: none yet)."""
    latest = (
        Run.objects.filter(mous=models.OuterRef(models.OuterRef("pk")), findings__isnull=False)
        .order_by("-pk")
        .values("pk")[:1]
    )
    counted = (
        Finding.objects.filter(run=models.Subquery(latest), score__lte=0.9)
        .order_by()
        .values("run")
        .annotate(n=models.Count("pk"))
        .values("n")
    )
    return models.Subquery(counted, output_field=models.IntegerField())
