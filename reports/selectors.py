"""Read queries of the diagnostics pages."""

from assignments.models import ExecutionBlock
from calibration.models import Run


def runs_with_diagnostics(eb: ExecutionBlock) -> list[Run]:
    """The EB's runs that have diagnostics, newest first (the first is the one the pages show)."""
    return list(Run.objects.filter(execution_block=eb, diagnostics__isnull=False).distinct().order_by("-pk"))
