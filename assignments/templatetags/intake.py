"""{% load intake %}: `user|may_ingest` shows the registration buttons to whom may use them."""

from django import template

from assignments.models import user_may_ingest

register = template.Library()


@register.filter
def may_ingest(user) -> bool:
    return user_may_ingest(user)
