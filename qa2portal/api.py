"""Small helpers shared by the apps' REST APIs."""

from rest_framework.exceptions import ValidationError
from rest_framework.request import Request


def id_param(request: Request, name: str) -> int | None:
    """A numeric id from the query string, None when absent; 400 with a clear message otherwise."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit():
        raise ValidationError({name: f"{name} must be a numeric id, got {raw!r}."})
    return int(raw)
