"""{% load labels %}: `code|run_status` shows a run status code as its label ("TIMED_OUT" -> "Timed out").

The whiteboard carries the newest run's status as a bare code (a subquery); the Run model lives
in calibration, above this app, so it is looked up when the filter runs, not imported.
"""

from django import template
from django.apps import apps

register = template.Library()


@register.filter
def run_status(code: str | None) -> str:
    if not code:
        return "—"
    labels = dict(apps.get_model("calibration", "Run").Status.choices)
    return str(labels.get(code, code))
