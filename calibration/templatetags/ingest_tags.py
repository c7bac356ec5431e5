"""{% load ingest_tags %}: the EB's latest ingest. (Whether the user may bring data in is the
intake rule's filter: {% load intake %}, `user|may_ingest`.)"""

from django import template

from calibration.models import DataIngest

register = template.Library()


@register.simple_tag
def latest_ingest(eb) -> DataIngest | None:
    return eb.data_ingests.first()
