"""casa_startup: importing casatools + casatasks in a fresh CASA subprocess vs a bare interpreter."""

import pytest

from calibration import casa
from tests.benchmarks.harness import median, report, timed

REPEAT = 5
PROBE = "tests.calibration.casa_probe"


@pytest.mark.casa
def test_casa_startup(tmp_path):
    def bare() -> None:
        assert casa.run_casa(PROBE, cwd=tmp_path, timeout=60, args=["nothing"]).ok

    def with_casa() -> None:
        result = casa.run_casa(PROBE, cwd=tmp_path, timeout=120, args=["import-casa"])
        assert result.ok, result.stderr

    with_casa()  # warm the page cache so both sides are measured warm
    bare_s = timed(bare, REPEAT)
    casa_s = timed(with_casa, REPEAT)
    ratio = median(casa_s) / median(bare_s)
    report(
        "casa_startup",
        ratio,
        goal="informational (CASA import cost per step subprocess)",
        details=f"casa={median(casa_s):.2f}s bare={median(bare_s):.3f}s n={REPEAT}",
        casa_seconds=casa_s,
        bare_seconds=bare_s,
        casa_median=median(casa_s),
        bare_median=median(bare_s),
    )
