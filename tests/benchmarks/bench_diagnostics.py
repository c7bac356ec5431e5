"""diagnostics: our extraction + figure JSON vs plotbandpass PNGs for the same ALMA-sized tables.

alma-wide preset: 43 antennas x 4 spws x 3840 channels (Tsys and bandpass tables of that shape,
a per-integration gain table). "Equivalent" = the same data on screen: plotbandpass's PNG pages
(4 antennas each) against our pages per spw (Tsys, bandpass, gains; every antenna a trace that
the legend and the antenna picker isolate). Ratio = plotbandpass seconds / ours (goal >= 20).
"""

import json
import time
from pathlib import Path

import numpy as np
import plotly.io as pio
import pytest

from calibration import casa
from calibration.simulate import presets
from calibration.simulate.build import cached_eb
from reports import figures
from tests.benchmarks.diagnostics_casa import MARKER
from tests.benchmarks.harness import report

pio.json.config.default_engine = "orjson"


def figure_views(work: Path) -> tuple[float, int, float]:
    """Seconds to build the figure JSON of every page that shows these tables (per spw: the Tsys,
    bandpass and gains pages, every antenna a trace), the number of figures, the largest page (MB)."""
    tsys = np.load(next(work.glob("artifacts/*.tsys.npz")))
    bp = np.load(next(work.glob("artifacts/*.bandpass.npz")))
    gains = np.load(next(work.glob("artifacts/*.gains.npz")))
    tsys_summary = json.loads((work / "tsys.summary.json").read_text())
    antennas = tsys_summary["antennas"]
    started, count, largest = time.perf_counter(), 0, 0
    for spw in tsys_summary["spws"]:
        medians = [tsys_summary["per_antenna"][a].get(str(spw), {}).get("median") for a in antennas]
        pages = [
            [
                figures.tsys_spectra(
                    tsys[f"freq_ghz_{spw}"],
                    tsys[f"tsys_{spw}"],
                    antennas,
                    spw=spw,
                    atm=tsys.get(f"atm_{spw}"),
                ),
                figures.tsys_medians(antennas, medians, tsys_summary["array_median"][str(spw)], spw=spw),
            ],
            [
                figures.bandpass_overlay(
                    bp[f"freq_ghz_{spw}"], bp[f"amp_{spw}"], antennas, spw=spw, kind="amp"
                ),
                figures.bandpass_overlay(
                    bp[f"freq_ghz_{spw}"], bp[f"phase_{spw}"], antennas, spw=spw, kind="phase"
                ),
                figures.bandpass_pair(
                    bp[f"freq_ghz_{spw}"],
                    bp[f"amp_{spw}"],
                    bp[f"phase_{spw}"],
                    antennas,
                    worst=antennas[0],
                    typical=antennas[1],
                    spw=spw,
                ),
            ],
            [
                figures.gains_vs_time(
                    gains[f"time_{spw}"], gains[f"phase_{spw}"], antennas, title="g", ylabel="phase"
                ),
                figures.gains_vs_time(
                    gains[f"time_{spw}"], gains[f"amp_{spw}"], antennas, title="g", ylabel="amp"
                ),
            ],
        ]
        for page in pages:
            largest = max(largest, sum(len(pio.to_json(fig)) for fig in page))
            count += len(page)
    return time.perf_counter() - started, count, largest / 1e6


@pytest.mark.casa
def test_diagnostics(tmp_path):
    build = cached_eb(presets.alma_wide())
    work = tmp_path / "diag"
    casa_side, _ = casa.run_casa_json(
        "tests.benchmarks.diagnostics_casa",
        MARKER,
        cwd=tmp_path,
        timeout=3600,
        args=[str(build.ms), str(work)],
    )
    figure_s, views, largest_mb = figure_views(work)
    ours = sum(casa_side["extract_s"].values()) + figure_s
    theirs = sum(p["seconds"] for p in casa_side["plotbandpass"].values())
    pngs = sum(p["pngs"] for p in casa_side["plotbandpass"].values())
    report(
        "diagnostics",
        theirs / ours,
        goal=">= 20 (plotbandpass seconds / extraction + figure JSON seconds); largest page <= 5 MB",
        details=f"ours={ours:.1f}s (extract {sum(casa_side['extract_s'].values()):.1f}s + {views} figures "
        f"{figure_s:.1f}s) plotbandpass={theirs:.1f}s ({pngs} PNGs) largest_page={largest_mb:.2f}MB",
        extract_seconds=casa_side["extract_s"],
        figure_seconds=figure_s,
        views=views,
        plotbandpass=casa_side["plotbandpass"],
        artifact_bytes=casa_side["artifact_bytes"],
        largest_page_mb=largest_mb,
        make_tables_seconds=casa_side["make_tables_s"],
        preset="alma-wide",
    )
