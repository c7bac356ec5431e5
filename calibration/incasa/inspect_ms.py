"""Summarise an MS for the script generators (runs inside CASA): prints one JSON line.

python -P -m calibration.incasa.inspect_ms <ms>
"""

import json
import sys

import casatools
import numpy as np

from calibration.incasa.events import SUMMARY_MARKER

AMPLITUDE_SAMPLE_ROWS = 20000


def antenna_amplitudes(ms_path: str, ddid: int, field: int, n_ant: int) -> list[float | None]:
    """Median |visibility| per antenna on one field and spw (a dead antenna shows ~0)."""
    tb = casatools.table()
    tb.open(ms_path)
    try:
        q = tb.query(f"DATA_DESC_ID=={ddid} AND FIELD_ID=={field} AND ANTENNA1!=ANTENNA2")
        n = min(q.nrows(), AMPLITUDE_SAMPLE_ROWS)
        if n == 0:
            q.close()
            return [None] * n_ant
        data = q.getcol("DATA", 0, n)
        flag = q.getcol("FLAG", 0, n)
        a1, a2 = q.getcol("ANTENNA1", 0, n), q.getcol("ANTENNA2", 0, n)
        q.close()
    finally:
        tb.close()
    amp = np.ma.masked_array(np.abs(data), flag).mean(axis=(0, 1))  # per row
    result: list[float | None] = []
    for ant in range(n_ant):
        rows = (a1 == ant) | (a2 == ant)
        values = amp[rows].compressed() if np.ma.isMaskedArray(amp) else amp[rows]
        result.append(float(np.median(values)) if len(values) else None)
    return result


def summarise(ms_path: str) -> dict:
    msmd = casatools.msmetadata()
    msmd.open(ms_path)
    try:
        names = list(msmd.antennanames())
        stations = list(msmd.antennastations())
        offsets = np.array([msmd.antennaoffset(i)["longitude offset"]["value"] for i in range(len(names))])
        north = np.array([msmd.antennaoffset(i)["latitude offset"]["value"] for i in range(len(names))])
        fields = [
            {"id": i, "name": msmd.namesforfields(i)[0], "intents": sorted(msmd.intentsforfield(i))}
            for i in range(msmd.nfields())
        ]
        wvr = [int(s) for s in msmd.almaspws(wvr=True)] if "ALMA" in _observatory(msmd) else []
        spws = []
        for spw in range(msmd.nspw()):
            freqs = msmd.chanfreqs(spw)
            spws.append(
                {
                    "id": spw,
                    "name": msmd.namesforspws(spw)[0],
                    "nchan": int(msmd.nchan(spw)),
                    "ref_freq_ghz": float(msmd.reffreq(spw)["m0"]["value"]) / 1e9,
                    "min_freq_ghz": float(freqs.min()) / 1e9,
                    "max_freq_ghz": float(freqs.max()) / 1e9,
                    "chan_width_mhz": float(abs(msmd.chanwidths(spw)[0])) / 1e6,
                    "bandwidth_mhz": float(msmd.bandwidths(spw)) / 1e6,
                    "wvr": spw in wvr,
                }
            )
        target_spws = (
            sorted({int(s) for s in msmd.spwsforintent("OBSERVE_TARGET*")})
            if _has(msmd, "OBSERVE_TARGET")
            else sorted({s["id"] for s in spws if not s["wvr"]})
        )
        science = [s for s in target_spws if spws[s]["nchan"] > 4 and not spws[s]["wvr"]]
        scans = []
        for scan in msmd.scannumbers():
            scans.append(
                {
                    "scan": int(scan),
                    "fields": [int(f) for f in msmd.fieldsforscan(scan)],
                    "intents": sorted(msmd.intentsforscan(scan)),
                }
            )
        observatory = _observatory(msmd)
        exposure = float(msmd.exposuretime(scan=int(msmd.scannumbers()[0]))["value"])
    finally:
        msmd.close()
    tb = casatools.table()
    tb.open(ms_path)
    keywords = tb.getkeywords()
    tb.close()
    tb.open(ms_path + "/POLARIZATION")
    corr_types = [int(c) for c in tb.getcell("CORR_TYPE", 0)]
    tb.close()
    tb.open(ms_path + "/DATA_DESCRIPTION")
    ddid_of_spw = {int(s): i for i, s in enumerate(tb.getcol("SPECTRAL_WINDOW_ID"))}
    tb.close()
    bandpass_fields = [f["id"] for f in fields if any("BANDPASS" in i for i in f["intents"])]
    amp_field = bandpass_fields[0] if bandpass_fields else 0
    amplitudes = (
        antenna_amplitudes(ms_path, ddid_of_spw[science[0]], amp_field, len(names)) if science else []
    )
    flagger = casatools.agentflagger()
    flagged: dict[str, float] = {}
    try:
        flagger.open(ms_path)
        flagger.selectdata(spw=",".join(str(s) for s in science))
        flagger.parseagentparameters({"mode": "summary"})
        flagger.init()
        summary = flagger.run(writeflags=False)["report0"]["antenna"]
        flagged = {k: v["flagged"] / v["total"] for k, v in summary.items() if v["total"]}
    except Exception as exc:  # the summary is a hint for the refant choice, not essential
        print(f"flag summary failed: {exc}", file=sys.stderr)
    finally:
        flagger.done()
    return {
        "ms": ms_path,
        "observatory": observatory,
        "antennas": [
            {
                "name": n,
                "station": st,
                "east_m": float(e),
                "north_m": float(no),
                "flagged_fraction": flagged.get(n),
                "median_amplitude": amplitudes[i] if amplitudes else None,
            }
            for i, (n, st, e, no) in enumerate(zip(names, stations, offsets, north, strict=True))
        ],
        "fields": fields,
        "spws": spws,
        "science_spws": science,
        "wvr_spws": wvr,
        "scans": scans,
        "corr_types": corr_types,
        "has_syscal": "SYSCAL" in keywords,
        "has_weather": "WEATHER" in keywords,
        "has_calwvr": "ASDM_CALWVR" in keywords,
        "integration_s": exposure,
    }


def _observatory(msmd) -> str:
    names = msmd.observatorynames()
    return str(names[0]) if len(names) else ""


def _has(msmd, intent: str) -> bool:
    return any(intent in i for i in msmd.intents())


def main() -> None:
    print(SUMMARY_MARKER + " " + json.dumps(summarise(sys.argv[1])), flush=True)


if __name__ == "__main__":
    main()
