"""Read models the assignments pages and API show whose columns come from apps above this one.

A whiteboard row carries the newest run's status (calibration) and the open QA findings
(reports). This app may not import those, so the query lives in qa2portal/selectors/whiteboard.py
and qa2portal's AppConfig.ready installs it here; the whiteboard, My work, the MOUS page and
/api/mous/ call whiteboard_rows().
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from assignments.models import Mous

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs-ext is a development requirement


class WhiteboardColumns(TypedDict):
    """What whiteboard_rows() annotates on each MOUS."""

    eb_count: int
    latest_run_status: str | None  # None: no run yet
    open_findings: int | None  # None: no run with diagnostics yet


WhiteboardRow: TypeAlias = "WithAnnotations[Mous, WhiteboardColumns]"
WhiteboardSelector: TypeAlias = "Callable[[QuerySet[Mous]], QuerySet[WhiteboardRow]]"

_whiteboard: WhiteboardSelector | None = None


def install_whiteboard(selector: WhiteboardSelector) -> None:
    """Called once by qa2portal's AppConfig.ready."""
    global _whiteboard
    _whiteboard = selector


def whiteboard_rows(queryset: QuerySet[Mous] | None = None) -> QuerySet[WhiteboardRow]:
    """`queryset` (default: every MOUS) with every whiteboard column annotated, in one query."""
    if _whiteboard is None:
        raise ImproperlyConfigured(
            "the whiteboard selector is installed by qa2portal: add it to INSTALLED_APPS"
        )
    return _whiteboard(Mous.objects.all() if queryset is None else queryset)
