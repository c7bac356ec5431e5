"""{% load ingest_tags %}: whether the user may bring data in, the EB's latest ingest."""

from django import template

from calibration import ingest
from calibration.models import DataIngest

register = template.Library()


@register.filter
def may_ingest(user) -> bool:
    return ingest.may_ingest(user)


@register.simple_tag
def latest_ingest(eb) -> DataIngest | None:
    return eb.data_ingests.first()
