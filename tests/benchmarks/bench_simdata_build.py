"""simdata_build: build time and MS size of each simulated-EB preset, as ratios to `small`.

Builds into a temporary folder (not the cache) so every run measures a real build; the big
presets are deleted right after measuring.
"""

import shutil

import pytest

from calibration.simulate import layout, presets
from calibration.simulate.build import build_eb
from tests.benchmarks.harness import report


@pytest.mark.casa
def test_simdata_build(tmp_path):
    measured = {}
    for name in presets.PRESETS:
        spec = presets.preset(name)
        folder = tmp_path / name
        build = build_eb(spec, folder, timeout=3 * 3600)
        measured[name] = {
            "seconds": build.seconds,
            "size_mb": build.size_mb,
            "antennas": len(spec.antennas),
            "channels": [s.nchan for s in spec.spws],
            "minutes": round(layout.duration_s(spec) / 60, 1),
            "timings": build.truth["build"]["timings"],
        }
        print(name, measured[name], flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    small = measured["small"]
    ratios = {n: m["seconds"] / small["seconds"] for n, m in measured.items()}
    details = " ".join(
        f"{n}={m['seconds']:.1f}s/{m['size_mb']:.0f}MB(x{ratios[n]:.1f})" for n, m in measured.items()
    )
    report(
        "simdata_build",
        ratios["alma-typical"],
        goal="informational (build cost of the presets; ratio = alma-typical seconds / small seconds)",
        details=details,
        presets=measured,
    )
