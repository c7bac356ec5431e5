"""Which antenna a diagnostic measures the others against (Django-free, CASA and web side).

A reference must be healthy: alive on the calibrators, not flagged in wvrgcal's report, and with
its own WVR within the pipeline's limits. Otherwise every other antenna inherits its fault: an
antenna interpolated by wvrflag has the smallest Disc of all (it is a mean of its neighbours),
and choosing it made three healthy antennas look "worse with their own WVR".
"""

from collections.abc import Iterable, Mapping, Sequence

from reports.thresholds import WVR_DISC_MAX_UM


def wvr_unfit(report: Mapping[str, Sequence] | None) -> set[str]:
    """Antennas whose WVR cannot be trusted: flagged (wvrflag), missing, or beyond Disc/RMS limits."""
    if not report or "Name" not in report:
        return set()
    names = list(report["Name"])
    out = set()
    for i, name in enumerate(names):
        flagged = _at(report.get("Flag"), i, False)
        has_wvr = _at(report.get("WVR"), i, True)
        disc = _at(report.get("Disc_um"), i, None)
        rms = _at(report.get("RMS_um"), i, None)
        beyond = any(v is not None and v > WVR_DISC_MAX_UM for v in (disc, rms))
        if flagged or not has_wvr or beyond:
            out.add(str(name))
    return out


def wvr_reference(names: Sequence[str], live: Iterable[str], report: Mapping[str, Sequence] | None) -> str:
    """A live antenna with a trustworthy WVR, the one with the smallest Disc among those."""
    alive = [n for n in names if n in set(live)] or list(names)
    unfit = wvr_unfit(report)
    healthy = [n for n in alive if n not in unfit] or alive
    if report and report.get("Disc_um") is not None and "Name" in report:
        disc = {str(n): d for n, d in zip(report["Name"], report["Disc_um"], strict=False) if d is not None}
        ranked = [n for n in healthy if n in disc]
        if ranked:
            return min(ranked, key=lambda n: disc[n])
    return healthy[0]


def _at(values: Sequence | None, index: int, default):
    if values is None or index >= len(values):
        return default
    return values[index]
