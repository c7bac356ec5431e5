"""System checks that turn bad configuration into one clear sentence."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import connections


@register(Tags.database)
def database_reachable(app_configs, databases=None, **kwargs) -> list[Error]:
    """Runs with `check --database` and before `migrate`: an unreachable DATABASE_URL is named."""
    errors = []
    for alias in databases or []:
        try:
            connections[alias].ensure_connection()
        except Exception as exc:
            from qa2portal.health import redact

            errors.append(
                Error(
                    f"database {alias!r} is unreachable: {str(exc).strip()}",
                    hint=f"DATABASE_URL={redact(settings.DATABASE_URL)}; start the server or fix the URL.",
                    id="qa2portal.E001",
                )
            )
    return errors
