"""{% load labels %}: `code|run_status` shows a run status code as its label ("TIMED_OUT" -> "Timed out").

The whiteboard carries the newest run's status as a bare code (qa2portal/selectors/whiteboard.py);
the labels are calibration's, so the filter lives here, above the apps, beside that selector.
"""

from django import template

from calibration.models import Run

register = template.Library()
LABELS = dict(Run.Status.choices)


@register.filter
def run_status(code: str | None) -> str:
    if not code:
        return "—"
    return str(LABELS.get(code, code))
