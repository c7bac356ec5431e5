"""MS subtables the simulator does not write the ALMA way (runs inside CASA).

SYSCAL (Tsys spectra for gencal), WEATHER (plotbandpass showatm needs it), ASDM_CALWVR
(pwv='auto'), POINTING in AZELGEO (wvrgcal reads the elevation from it), the WVR#NOMINAL
spw layout with one correlation, BBC_NO.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from calibration.simulate.atmosphere import WVR_BW_HZ, WVR_CHAN_FREQ_HZ, WVR_LINE_GHZ


def column(value_type: str, comment: str, **extra: Any) -> dict[str, Any]:
    desc = {
        "valueType": value_type,
        "dataManagerType": "StandardStMan",
        "dataManagerGroup": "StandardStMan",
        "option": 0,
        "maxlen": 0,
        "comment": comment,
    }
    desc.update(extra)
    return desc


def epoch_column(comment: str) -> dict[str, Any]:
    return column(
        "double", comment, keywords={"QuantumUnits": ["s"], "MEASINFO": {"type": "epoch", "Ref": "UTC"}}
    )


def _attach(tb, ms: str, name: str) -> None:
    tb.open(ms, nomodify=False)
    tb.putkeyword(name, "Table: " + os.path.join(os.path.abspath(ms), name))  # subtable keyword
    tb.close()


def fix_spectral_setup(tb, ms: str) -> list[np.ndarray]:
    """WVR spw 0 gets ALMA's WVR#NOMINAL frequencies and one correlation (I), every spw a
    BBC_NO; returns the channel frequencies of all spws."""
    tb.open(ms + "/SPECTRAL_WINDOW", nomodify=False)
    for col, value in (("CHAN_FREQ", WVR_CHAN_FREQ_HZ), ("CHAN_WIDTH", WVR_BW_HZ)):
        tb.putcell(col, 0, value)
    tb.putcell("EFFECTIVE_BW", 0, WVR_BW_HZ)
    tb.putcell("RESOLUTION", 0, WVR_BW_HZ)
    tb.putcell("REF_FREQUENCY", 0, WVR_LINE_GHZ * 1e9)
    tb.putcell("TOTAL_BANDWIDTH", 0, float(WVR_BW_HZ.sum()))
    freqs = [np.asarray(tb.getcell("CHAN_FREQ", i)) for i in range(tb.nrows())]
    tb.addcols({"BBC_NO": column("int", "Baseband converter number")})
    tb.putcol("BBC_NO", np.arange(tb.nrows(), dtype=np.int32))
    tb.close()
    tb.open(ms + "/DATA_DESCRIPTION")
    wvr_pol = int(tb.getcol("POLARIZATION_ID")[0])
    tb.close()
    tb.open(ms + "/POLARIZATION", nomodify=False)
    tb.putcell("CORR_TYPE", wvr_pol, np.array([1], dtype=np.int32))  # Stokes I, as ALMA writes it
    tb.close()
    merge_polarizations(tb, ms)
    return freqs


def merge_polarizations(tb, ms: str) -> None:
    """The simulator writes one POLARIZATION row per spw; ALMA (and exportasdm, which fails
    on the duplicates) has one row per correlation setup. Keep the first of identical rows."""
    tb.open(ms + "/POLARIZATION", nomodify=False)
    corr = [tuple(tb.getcell("CORR_TYPE", i)) for i in range(tb.nrows())]
    keep = [i for i, c in enumerate(corr) if corr.index(c) == i]
    new_id = {i: keep.index(corr.index(c)) for i, c in enumerate(corr)}
    tb.removerows([i for i in range(len(corr)) if i not in keep])
    tb.close()
    tb.open(ms + "/DATA_DESCRIPTION", nomodify=False)
    tb.putcol("POLARIZATION_ID", np.array([new_id[int(p)] for p in tb.getcol("POLARIZATION_ID")], np.int32))
    tb.close()


def set_observation(tb, ms: str, project: str, schedule_uid: str) -> None:
    tb.open(ms + "/OBSERVATION", nomodify=False)
    tb.putcell("OBSERVER", 0, "simulator")
    tb.putcell("PROJECT", 0, project)
    tb.putcell("SCHEDULE_TYPE", 0, "ALMA")
    tb.putcell("SCHEDULE", 0, np.array([f"SchedulingBlock {schedule_uid}", f"ExecBlock {schedule_uid}"]))
    tb.close()


def pointing_to_azel(tb, ms: str, utimes: np.ndarray, az: np.ndarray, el: np.ndarray) -> None:
    """Real ALMA POINTING is AZELGEO; the simulator writes J2000, which wvrgcal would read as
    (az, el) and then fail."""
    tb.open(ms + "/POINTING", nomodify=False)
    if tb.nrows():
        pt = tb.getcol("TIME")
        direction = tb.getcol("DIRECTION")
        idx = np.clip(np.searchsorted(utimes, pt), 0, len(utimes) - 1)
        direction[0, 0, :] = az[idx]
        direction[1, 0, :] = el[idx]
        tb.putcol("DIRECTION", direction)
        kw = tb.getcolkeywords("DIRECTION")
        kw["MEASINFO"]["Ref"] = "AZELGEO"
        tb.putcolkeywords("DIRECTION", kw)
    tb.close()


def write_syscal(
    tb, ms: str, rows: Sequence[tuple[int, int, float, float, np.ndarray, np.ndarray, np.ndarray]]
) -> None:
    """rows: (antenna, spw, time, interval, tsys[2,nchan], trx[2,nchan], tsky[nchan])."""
    path = os.path.join(os.path.abspath(ms), "SYSCAL")
    desc = {
        "ANTENNA_ID": column("int", "ID of antenna in this array"),
        "FEED_ID": column("int", "Feed ID"),
        "SPECTRAL_WINDOW_ID": column("int", "ID for this spectral window setup"),
        "TIME": epoch_column("Midpoint of time for which this set of parameters is accurate"),
        "INTERVAL": column("double", "Interval", keywords={"QuantumUnits": ["s"]}),
    }
    for name, comment in (
        ("TCAL", "Calibration temp"),
        ("TRX", "Receiver temperature"),
        ("TSKY", "Sky temperature"),
        ("TSYS", "System temperature"),
    ):
        desc[name + "_SPECTRUM"] = column(
            "float", comment + " spectrum", ndim=2, keywords={"QuantumUnits": ["K"]}
        )
        desc[name + "_FLAG"] = column("boolean", "Flag for " + comment)
    tb.create(path, desc)
    tb.addrows(len(rows))
    tb.putcol("ANTENNA_ID", np.array([r[0] for r in rows], np.int32))
    tb.putcol("FEED_ID", np.zeros(len(rows), np.int32))
    tb.putcol("SPECTRAL_WINDOW_ID", np.array([r[1] for r in rows], np.int32))
    tb.putcol("TIME", np.array([r[2] for r in rows]))
    tb.putcol("INTERVAL", np.array([r[3] for r in rows]))
    for i, (_, _, _, _, tsys, trx, tsky) in enumerate(rows):
        tb.putcell("TSYS_SPECTRUM", i, tsys.astype(np.float32))
        tb.putcell("TRX_SPECTRUM", i, trx.astype(np.float32))
        tb.putcell("TSKY_SPECTRUM", i, np.vstack([tsky, tsky]).astype(np.float32))
        tb.putcell("TCAL_SPECTRUM", i, np.full(tsys.shape, 270.0, np.float32))
    for name in ("TCAL_FLAG", "TRX_FLAG", "TSKY_FLAG", "TSYS_FLAG"):
        tb.putcol(name, np.zeros(len(rows), bool))
    tb.close()
    _attach(tb, ms, "SYSCAL")


def write_weather(tb, ms: str, t0: float, t1: float, rng: np.random.Generator) -> None:
    path = os.path.join(os.path.abspath(ms), "WEATHER")
    desc = {
        "ANTENNA_ID": column("int", "Antenna number"),
        "TIME": epoch_column("Midpoint of the time for which data is relevant"),
        "INTERVAL": column("double", "Interval", keywords={"QuantumUnits": ["s"]}),
    }
    values = {
        "PRESSURE": (555.0, "hPa"),
        "REL_HUMIDITY": (20.0, "%"),
        "TEMPERATURE": (270.0, "K"),
        "DEW_POINT": (250.0, "K"),
        "WIND_DIRECTION": (0.52, "rad"),
        "WIND_SPEED": (8.0, "m/s"),
    }
    for name, (_, unit) in values.items():
        desc[name] = column("float", name, keywords={"QuantumUnits": [unit]})
        desc[name + "_FLAG"] = column("boolean", "Flag for " + name)
    tb.create(path, desc)
    times = np.arange(t0, t1 + 60.0, 60.0)
    tb.addrows(len(times))
    tb.putcol("ANTENNA_ID", np.zeros(len(times), np.int32))
    tb.putcol("TIME", times)
    tb.putcol("INTERVAL", np.full(len(times), 60.0))
    for name, (value, _) in values.items():
        tb.putcol(name, (value + rng.normal(scale=0.01 * abs(value), size=len(times))).astype(np.float32))
        tb.putcol(name + "_FLAG", np.zeros(len(times), bool))
    tb.close()
    _attach(tb, ms, "WEATHER")


def write_calwvr(tb, ms: str, rows: Sequence[tuple[str, float, float, float, float]]) -> None:
    """rows: (antenna name, start, end, water [m], wet path [m])."""
    path = os.path.join(os.path.abspath(ms), "ASDM_CALWVR")
    names = ("antennaName", "startValidTime", "endValidTime", "water", "wetPath")
    desc = {
        "antennaName": column("string", "antenna name"),
        "startValidTime": column("double", "MJD seconds"),
        "endValidTime": column("double", "MJD seconds"),
        "water": column("double", "PWV [m]"),
        "wetPath": column("double", "wet path [m]"),
    }
    tb.create(path, desc)
    tb.addrows(len(rows))
    for j, name in enumerate(names):
        tb.putcol(name, np.array([r[j] for r in rows]))
    tb.close()
    _attach(tb, ms, "ASDM_CALWVR")
