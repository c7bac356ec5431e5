"""Read models the assignments pages and API show whose columns come from apps above this one.

A whiteboard row carries the newest run's status (calibration) and the open QA findings
(reports). This app may not import those, so the query lives in qa2portal/selectors/whiteboard.py
and qa2portal's AppConfig.ready installs it here; the whiteboard, My work, the MOUS page and
/api/mous/ call whiteboard_rows().
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from assignments.models import Mous

WhiteboardSelector = Callable[[QuerySet[Mous]], QuerySet[Mous]]

_whiteboard: WhiteboardSelector | None = None


def install_whiteboard(selector: WhiteboardSelector) -> None:
    """Called once by qa2portal's AppConfig.ready."""
    global _whiteboard
    _whiteboard = selector


def whiteboard_rows(queryset: QuerySet[Mous] | None = None) -> QuerySet[Mous]:
    """`queryset` (default: every MOUS) with every whiteboard column annotated, in one query."""
    if _whiteboard is None:
        raise ImproperlyConfigured(
            "the whiteboard selector is installed by qa2portal: add it to INSTALLED_APPS"
        )
    return _whiteboard(Mous.objects.all() if queryset is None else queryset)
