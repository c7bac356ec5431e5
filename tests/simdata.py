"""Session fixtures for CASA test data: simulated ALMA EBs and NGC5921.

Each build is cached on disk under var/simcache/<spec hash>/ (shared by every session, the
demo and the benchmarks; QA2_SIMCACHE overrides), built at most once and never modified:
a test that changes an MS works on `copy_ms(eb.ms, tmp_path)`. Two pytest processes
racing for the same build each build into a temporary folder; the first rename wins.

    small_eb      EbBuild of the `small` preset: .ms (Path), .truth (dict), .folder, .truth_path
    small_eb_copy a private writable copy of the small MS (Path) in tmp_path
    ngc5921_eb    EbBuild of importuvfits(NGC5921.fits); ngc5921_ms is its MS (Path)
"""

from pathlib import Path

import pytest

from calibration.simulate import presets
from calibration.simulate.build import EbBuild, cached_eb, cached_ngc5921, copy_ms

__all__ = ["copy_ms"]


@pytest.fixture(scope="session")
def small_eb() -> EbBuild:
    return cached_eb(presets.small())


@pytest.fixture
def small_eb_copy(small_eb: EbBuild, tmp_path: Path) -> Path:
    return copy_ms(small_eb.ms, tmp_path)


@pytest.fixture(scope="session")
def ngc5921_eb() -> EbBuild:
    return cached_ngc5921()


@pytest.fixture(scope="session")
def ngc5921_ms(ngc5921_eb: EbBuild) -> Path:
    return ngc5921_eb.ms
