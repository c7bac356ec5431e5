"""The observation part of an EB's qa2 report (runs inside CASA): prints one JSON line.

python -P -m reports.incasa.observation <ms>

Dates and duration; antennas, pads and dish sizes; baselines; spws with frequency, width,
channels and correlations; fields with intents and coordinates; scans; time on source per
field; PWV (the ASDM_CALWVR table, when the MS has it) and elevation ranges per field.
Every part that cannot be read is left out (the report says "not available").
"""

import json
import sys

import casatools
import numpy as np

from calibration.incasa.events import SUMMARY_MARKER

CORRELATIONS = {5: "RR", 6: "RL", 7: "LR", 8: "LL", 9: "XX", 10: "XY", 11: "YX", 12: "YY", 1: "I"}


def _utc(seconds: float) -> str:
    qa = casatools.quanta()
    return str(qa.time(qa.quantity(seconds, "s"), form="ymd")[0]).replace("/", "-", 2).replace("/", " ")


def _sexagesimal(ra_rad: float, dec_rad: float) -> tuple[str, str]:
    qa = casatools.quanta()
    ra = qa.formxxx(qa.quantity(ra_rad, "rad"), format="hms", prec=3)
    dec = qa.formxxx(qa.quantity(dec_rad, "rad"), format="dms", prec=2)
    return str(ra), str(dec)


def observation(ms: str) -> dict:
    out: dict = {"ms": ms}
    msmd = casatools.msmetadata()
    msmd.open(ms)
    try:
        every = np.concatenate([msmd.timesforscan(int(n)) for n in msmd.scannumbers()])
        start, end = float(every.min()), float(every.max())
        out.update(start_utc=_utc(start), end_utc=_utc(end), duration_min=(end - start) / 60)
        names = [str(n) for n in msmd.antennanames()]
        stations = [str(s) for s in msmd.antennastations()]
        diameters = [float(msmd.antennadiameter(i)["value"]) for i in range(len(names))]
        out["antennas"] = [
            {"name": n, "station": s, "diameter_m": d}
            for n, s, d in zip(names, stations, diameters, strict=True)
        ]
        tb = casatools.table()
        tb.open(f"{ms}/ANTENNA")
        xyz = np.asarray(tb.getcol("POSITION"), float).T
        tb.close()
        lengths = [
            float(np.linalg.norm(xyz[i] - xyz[j])) for i in range(len(xyz)) for j in range(i + 1, len(xyz))
        ]
        if lengths:
            out["baselines_m"] = {
                "min": min(lengths),
                "median": float(np.median(lengths)),
                "max": max(lengths),
            }
        tb.open(f"{ms}/POLARIZATION")
        corr_types = [list(tb.getcell("CORR_TYPE", row)) for row in range(tb.nrows())]  # shapes differ
        tb.close()
        tb.open(f"{ms}/DATA_DESCRIPTION")
        spw_of_dd, pol_of_dd = list(tb.getcol("SPECTRAL_WINDOW_ID")), list(tb.getcol("POLARIZATION_ID"))
        tb.close()
        spws = []
        for s in range(msmd.nspw()):
            freqs = np.asarray(msmd.chanfreqs(s), float)
            widths = np.abs(np.asarray(msmd.chanwidths(s), float))
            pol = pol_of_dd[spw_of_dd.index(s)] if s in spw_of_dd else None
            corrs = (
                [CORRELATIONS.get(int(c), str(int(c))) for c in corr_types[pol]] if pol is not None else []
            )
            spws.append(
                {
                    "id": s,
                    "name": str(msmd.namesforspws(s)[0]),
                    "centre_ghz": float(freqs.mean()) / 1e9,
                    "width_mhz": float(np.median(widths)) / 1e6,
                    "bandwidth_mhz": float(widths.sum()) / 1e6,
                    "nchan": len(freqs),
                    "correlations": corrs,
                }
            )
        out["spws"] = spws
        fields = []
        for f in range(msmd.nfields()):
            centre = msmd.phasecenter(f)
            ra, dec = _sexagesimal(float(centre["m0"]["value"]), float(centre["m1"]["value"]))
            fields.append(
                {
                    "id": f,
                    "name": str(msmd.namesforfields(f)[0]),
                    "intents": sorted(msmd.intentsforfield(f)),
                    "ra": ra,
                    "dec": dec,
                }
            )
        out["fields"] = fields
        scans: list[dict] = []
        on_source: dict[str, float] = {}
        for number in msmd.scannumbers():
            scan_times = msmd.timesforscan(int(number))
            field = str(msmd.namesforfields(int(msmd.fieldsforscan(int(number))[0]))[0])
            intents = sorted(msmd.intentsforscan(int(number)))
            duration = float(scan_times.max() - scan_times.min()) if len(scan_times) else 0.0
            scans.append(
                {
                    "number": int(number),
                    "field": field,
                    "intents": intents,
                    "start_utc": _utc(float(scan_times.min())),
                    "duration_s": duration,
                }
            )
            if any("ON_SOURCE" in i or "TARGET" in i for i in intents) and not any(
                "ATMOSPHERE" in i for i in intents
            ):
                on_source[field] = on_source.get(field, 0.0) + duration / 60
        out["scans"] = scans
        out["time_on_source_min"] = on_source
        out["elevation_deg"] = _elevations(msmd, ms)
    finally:
        msmd.close()
    out["pwv_mm"] = _pwv(ms)
    return out


def _elevations(msmd, ms: str) -> dict:
    me = casatools.measures()
    position = msmd.observatoryposition(0)
    me.doframe(position)
    result: dict[str, tuple[float, float]] = {}
    for number in msmd.scannumbers():
        field = int(msmd.fieldsforscan(int(number))[0])
        name = str(msmd.namesforfields(field)[0])
        direction = msmd.phasecenter(field)
        for t in (float(msmd.timesforscan(int(number)).min()), float(msmd.timesforscan(int(number)).max())):
            me.doframe(me.epoch("UTC", f"{t}s"))
            azel = me.measure(direction, "AZEL")
            elevation = float(np.degrees(azel["m1"]["value"]))
            low, high = result.get(name, (elevation, elevation))
            result[name] = (min(low, elevation), max(high, elevation))
    return {name: {"min": low, "max": high} for name, (low, high) in result.items()}


def _pwv(ms: str) -> dict | None:
    tb = casatools.table()
    try:
        tb.open(f"{ms}/ASDM_CALWVR")
    except RuntimeError:
        return None
    try:
        if "water" not in tb.colnames() or tb.nrows() == 0:
            return None
        water = np.asarray(tb.getcol("water"), float) * 1e3  # metres -> mm
    finally:
        tb.close()
    return {"min": float(water.min()), "median": float(np.median(water)), "max": float(water.max())}


def main() -> None:
    print(SUMMARY_MARKER + " " + json.dumps(observation(sys.argv[1])), flush=True)


if __name__ == "__main__":
    main()
