"""CASA side of bench_diagnostics (runs in a CASA subprocess): make ALMA-sized caltables from
the alma-wide EB, then time our extraction and plotbandpass on the same tables.

    python -P -m tests.benchmarks.diagnostics_casa <ms> <workdir>
"""

import json
import shutil
import sys
import time
from pathlib import Path

MARKER = "BENCHDIAG"


def main() -> None:
    from casatasks import bandpass, casalog, gaincal, gencal, plotbandpass

    from reports.incasa import extract

    ms, work = Path(sys.argv[1]), Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    casalog.setlogfile(str(work / "bench.casa.log"))
    tables = {
        "tsys": str(work / "bench.tsys"),
        "bandpass": str(work / "bench.bcal"),
        "gains": str(work / "bench.g"),
    }
    for table in tables.values():
        shutil.rmtree(table, ignore_errors=True)
    started = time.perf_counter()
    gencal(vis=str(ms), caltable=tables["tsys"], caltype="tsys")
    bandpass(
        vis=str(ms),
        caltable=tables["bandpass"],
        field="0",
        spw="1~4",
        solint="inf",
        combine="scan",
        refant="DA41",
        solnorm=True,
    )
    gaincal(
        vis=str(ms),
        caltable=tables["gains"],
        field="0,1",
        spw="1~4",
        solint="int",
        calmode="p",
        refant="DA41",
    )
    make_s = time.perf_counter() - started

    timings, arrays_bytes = {}, {}
    for topic, function in (("tsys", extract.tsys), ("bandpass", extract.bandpass), ("gains", extract.gains)):
        t0 = time.perf_counter()
        summary, arrays = function(tables[topic], str(ms)) if topic == "tsys" else function(tables[topic])
        table_of = {"vis": str(ms), "ms_spw": {}}
        item = extract._item(work, "artifacts", topic, Path(tables[topic]).name, summary, arrays, table_of)
        timings[topic] = time.perf_counter() - t0
        arrays_bytes[topic] = (work / item["artifact"]).stat().st_size
        (work / f"{topic}.summary.json").write_text(json.dumps(summary))
    # The checks plotbandpass has no counterpart for are counted on our side all the same.
    t0 = time.perf_counter()
    extract.quack_profile(str(ms))
    timings["quack"] = time.perf_counter() - t0

    plots = {}
    for topic, kwargs in (
        ("tsys", dict(overlay="time", xaxis="freq", yaxis="amp", showatm=False)),
        ("bandpass", dict(xaxis="freq", yaxis="both")),
    ):
        folder = work / f"{topic}.plots"
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        plotbandpass(
            caltable=tables[topic],
            subplot=22,
            interactive=False,
            buildpdf=False,
            figfile=str(folder / topic),
            **kwargs,
        )
        plots[topic] = {"seconds": time.perf_counter() - t0, "pngs": len(list(folder.glob("*.png")))}
    print(
        MARKER
        + " "
        + json.dumps(
            {
                "make_tables_s": make_s,
                "extract_s": timings,
                "artifact_bytes": arrays_bytes,
                "plotbandpass": plots,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
