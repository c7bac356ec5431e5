"""Check an EB's raw data before it is marked present (runs inside CASA): prints one JSON line.

python -P -m calibration.incasa.check_data KIND PATH SCRATCH_MS
python -P -m calibration.incasa.check_data --wait GO_FILE

KIND is ms, asdm or uvfits. An ASDM is imported with importasdm (a UVFITS file with
importuvfits) into SCRATCH_MS, a temporary MS in the ingest's staging folder: the raw data
itself stays as it is. What msmetadata reads (antennas, spws including the WVR spw, fields
and their intents, scans, time range) and the EB uids the OBSERVATION table names are
printed as `INGEST_CHECK {...}`; when CASA cannot read the data, `INGEST_CHECK {"error": ...}`.
"""

import datetime as dt
import json
import os
import sys
import time

import casatools

from calibration.incasa.inspect_ms import _has, _observatory, summarise

MARKER = "INGEST_CHECK"
MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)


def _iso(epoch: dict) -> str:
    days = float(casatools.quanta().convert(epoch["m0"], "d")["value"])
    return (MJD_EPOCH + dt.timedelta(days=days)).isoformat(timespec="seconds")


def execblock_uids(ms: str) -> list[str]:
    """The EB uids the OBSERVATION table names ("ExecBlock uid://..." in SCHEDULE, as ALMA
    writes it; the simulator writes the same). Empty when the data does not say (VLA, UVFITS)."""
    tb = casatools.table()
    tb.open(ms + "/OBSERVATION")
    uids: list[str] = []
    try:
        for row in range(tb.nrows()):
            if not tb.iscelldefined("SCHEDULE", row):
                continue
            for entry in tb.getcell("SCHEDULE", row):
                words = str(entry).split()
                if len(words) == 2 and words[0] == "ExecBlock" and words[1].startswith("uid://"):
                    uids.append(words[1])
    finally:
        tb.close()
    return sorted(set(uids))


def describe(ms: str) -> dict:
    msmd = casatools.msmetadata()
    msmd.open(ms)
    try:
        observatory = _observatory(msmd)
        wvr = sorted(int(s) for s in msmd.almaspws(wvr=True)) if "ALMA" in observatory else []
        spws = [
            {
                "id": spw,
                "name": msmd.namesforspws(spw)[0],
                "nchan": int(msmd.nchan(spw)),
                "ref_freq_ghz": float(msmd.reffreq(spw)["m0"]["value"]) / 1e9,
                "bandwidth_mhz": float(msmd.bandwidths(spw)) / 1e6,
                "wvr": spw in wvr,
            }
            for spw in range(msmd.nspw())
        ]
        fields = [
            {"id": i, "name": msmd.namesforfields(i)[0], "intents": sorted(msmd.intentsforfield(i))}
            for i in range(msmd.nfields())
        ]
        scans = [
            {
                "scan": int(scan),
                "fields": [int(f) for f in msmd.fieldsforscan(scan)],
                "intents": sorted(msmd.intentsforscan(scan)),
            }
            for scan in msmd.scannumbers()
        ]
        ranges = [msmd.timerangeforobs(obs) for obs in range(msmd.nobservations())]
        summary = {
            "observatory": observatory,
            "rows": int(msmd.nrows()),
            "antennas": [
                {"name": name, "station": station}
                for name, station in zip(msmd.antennanames(), msmd.antennastations(), strict=True)
            ],
            "spws": spws,
            "wvr_spws": wvr,
            "fields": fields,
            "scans": scans,
            "has_target": _has(msmd, "OBSERVE_TARGET"),
            "time_begin": min(_iso(r["begin"]) for r in ranges) if ranges else None,
            "time_end": max(_iso(r["end"]) for r in ranges) if ranges else None,
        }
    finally:
        msmd.close()
    summary["execblock_uids"] = execblock_uids(ms)
    return summary


def check(kind: str, path: str, scratch: str) -> dict:
    ms = path
    if kind == "asdm":
        from casatasks import casalog, importasdm

        casalog.setlogfile(scratch + ".log")  # beside the scratch MS, removed with it
        importasdm(asdm=path, vis=scratch)
        ms = _imported(scratch, "importasdm")
    elif kind == "uvfits":
        from casatasks import casalog, importuvfits

        casalog.setlogfile(scratch + ".log")
        importuvfits(fitsfile=path, vis=scratch)
        ms = _imported(scratch, "importuvfits")
    elif kind != "ms":
        raise ValueError(f"unknown kind {kind!r}")
    summary = describe(ms)
    if ms != path:
        # No MS for the script generator to read until step 0 has run: give it this one's now.
        summary["generator_summary"] = summarise(ms)
    return summary


def _imported(scratch: str, task: str) -> str:
    """Some tasks log SEVERE and return instead of raising: say so with their own words."""
    if os.path.isdir(scratch):
        return scratch
    severe = [ln.split("SEVERE", 1)[1].strip() for ln in _log_lines(scratch) if "SEVERE" in ln]
    raise RuntimeError(f"{task} made no MS: {severe[-1] if severe else 'see the CASA log'}")


def _log_lines(scratch: str) -> list[str]:
    try:
        with open(scratch + ".log", encoding="utf-8", errors="replace") as log:
            return log.read().splitlines()
    except OSError:
        return []


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def wait_for_go(go_file: str, poll: float = 0.05) -> dict:
    """Started while the worker still copies (importing CASA overlaps the copy): wait for the
    worker to say what to check, or to stop."""
    while True:
        try:
            with open(go_file, encoding="utf-8") as handle:
                text = handle.read()
            if text.endswith("\n"):  # written whole (the worker writes then renames)
                return json.loads(text)
        except FileNotFoundError:
            pass
        time.sleep(poll)


def main() -> None:
    """argv: KIND PATH SCRATCH_MS, or --wait GO_FILE (the go file holds {"kind", "path", "scratch"}
    or {"stop": true})."""
    if sys.argv[1] == "--wait":
        order = wait_for_go(sys.argv[2])
        if order.get("stop"):
            print(MARKER + " " + json.dumps({"stopped": True}), flush=True)
            return
        kind, path, scratch = order["kind"], order["path"], order["scratch"]
    else:
        kind, path, scratch = sys.argv[1:4]
    try:
        answer = {"kind": kind, **check(kind, path, scratch)}
    except Exception as exc:  # CASA says "cannot open" in many ways: report its first line
        answer = {"error": _first_line(exc)}
    print(MARKER + " " + json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
