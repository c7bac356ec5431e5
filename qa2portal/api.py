"""Small helpers shared by the apps' REST APIs."""

from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from qa2portal.ids import MAX_ID, parse_id


def id_param(request: Request, name: str) -> int | None:
    """A numeric id from the query string, None when absent; 400 with a clear message otherwise."""
    raw = request.query_params.get(name)
    if not raw:  # absent or empty
        return None
    value = parse_id(raw)
    if value is None:
        raise ValidationError({name: f"{name} must be a numeric id (1 to {MAX_ID}), got {raw[:40]!r}."})
    return value


class IdField(serializers.IntegerField):
    """An id in a request body: 1 .. MAX_ID, so a huge number is a 400, never a database error."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
