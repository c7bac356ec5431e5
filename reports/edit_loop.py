"""The edit -> re-run loop (Django-free): what an edit should change, whether it did, and what
changed between two runs, finding by finding.

A finding is the dict shape of reports.qa.finding (code, score, metric, value, antenna, spw,
field, topic). Findings of two runs are matched by where they point: (topic, code, antenna,
spw, field).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reports.thresholds import OPEN_SCORE

Key = tuple[str, str, str, int | None, str]

# Edits that remove data (flagdata lines): the finding they answer should be gone afterwards.
# Edits that change a parameter: the finding's metric should move the stated way.
_DIRECTION_BY_CODE = {
    "wvr_bad_antenna": "down",  # phase rms with / without WVR, on that antenna
    "bandpass_chan2chan": "down",
    "bandpass_low_snr_spw": "up",  # SNR per solution channel (or "down" on chan2chan, below)
    "bandpass_solint": "down",
}


def key_of(finding: Mapping) -> Key:
    spw = finding.get("spw")
    return (
        str(finding.get("topic", "")),
        str(finding["code"]),
        str(finding.get("antenna") or ""),
        int(spw) if spw is not None else None,
        str(finding.get("field") or ""),
    )


def where(finding: Mapping) -> str:
    _topic, _code, antenna, spw, field = key_of(finding)
    parts = [p for p in (antenna, f"spw {spw}" if spw is not None else "", field) if p]
    return " ".join(parts) or "the whole EB"


def expectation(finding: Mapping) -> dict:
    """What applying this finding's edit should do, in words and as a checkable rule."""
    edit = finding.get("edit") or {}
    removes_data = "append" in edit
    direction = "gone" if removes_data else _DIRECTION_BY_CODE.get(str(finding["code"]), "gone")
    if finding["code"] == "bandpass_low_snr_spw" and "SNR" not in str(finding.get("metric")):
        direction = "down"  # judged on the channel-to-channel variation when no SNR was read
    metric = str(finding.get("metric") or "")
    place = where(finding)
    if direction == "gone":
        says = f"the {finding['code']} finding on {place} disappears"
    else:
        says = f"{metric or 'the metric'} on {place} goes {direction} from {_fmt(finding.get('value'))}"
        says += f", and the {finding['code']} finding disappears"
    return {
        "topic": str(finding.get("topic", "")),
        "code": str(finding["code"]),
        "antenna": str(finding.get("antenna") or ""),
        "spw": finding.get("spw"),
        "field": str(finding.get("field") or ""),
        "metric": metric,
        "value": finding.get("value"),
        "direction": direction,
        "says": says,
    }


@dataclass(frozen=True)
class Verdict:
    status: str  # worked | partly | did_not | not_assessed
    says: str

    @property
    def ok(self) -> bool:
        return self.status == "worked"


def verdict(expect: Mapping, later: Iterable[Mapping], assessed_topics: Iterable[str]) -> Verdict:
    """Whether a later run shows what the edit promised (`later`: that run's findings)."""
    if expect["topic"] not in set(assessed_topics):
        return Verdict(
            "not_assessed", f"no {expect['topic']} diagnostic in this run: run the step that makes it"
        )
    wanted = key_of(expect)
    same = [f for f in later if key_of(f) == wanted and float(f["score"]) <= OPEN_SCORE]
    if not same:
        return Verdict("worked", f"worked: {expect['says']} — it did")
    now = same[0].get("value")
    before = expect.get("value")
    if expect["direction"] in ("down", "up") and now is not None and before is not None:
        moved = float(now) < float(before) if expect["direction"] == "down" else float(now) > float(before)
        if moved:
            return Verdict(
                "partly",
                f"partly: {expect['metric']} went {expect['direction']} "
                f"({_fmt(before)} → {_fmt(now)}) but the finding is still open",
            )
        return Verdict("did_not", f"did not work: {expect['metric']} went from {_fmt(before)} to {_fmt(now)}")
    return Verdict("did_not", f"did not work: the {expect['code']} finding on {where(expect)} is still open")


@dataclass(frozen=True)
class FindingChange:
    key: Key
    where: str
    code: str
    topic: str
    metric: str
    score_a: float | None
    score_b: float | None
    value_a: float | None
    value_b: float | None
    status: str  # new | gone | better | worse | same | not_compared
    message: str

    @property
    def alarming(self) -> bool:
        """New open findings and regressions: shown in red."""
        return self.status in ("new", "worse")

    @property
    def value_change(self) -> float | None:
        if self.value_a is None or self.value_b is None:
            return None
        return self.value_b - self.value_a

    @property
    def score_change(self) -> float | None:
        if self.score_a is None or self.score_b is None:
            return None
        return self.score_b - self.score_a


def compare_findings(
    a: Iterable[Mapping],
    b: Iterable[Mapping],
    assessed_a: Iterable[str] | None = None,
    assessed_b: Iterable[str] | None = None,
) -> list[FindingChange]:
    """Run a's findings against run b's, one row per place; alarming rows first.

    `assessed_a/b`: the topics each run diagnosed. A finding of a topic the other run did not
    diagnose (it ran only some steps) is "not compared", never "gone" or "new"."""
    first = {key_of(f): f for f in a}
    second = {key_of(f): f for f in b}
    topics_a = set(assessed_a) if assessed_a is not None else {k[0] for k in first}
    topics_b = set(assessed_b) if assessed_b is not None else {k[0] for k in second}
    rows = []
    for key in sorted(set(first) | set(second), key=_sort_key):
        fa, fb = first.get(key), second.get(key)
        sa = float(fa["score"]) if fa else None
        sb = float(fb["score"]) if fb else None
        if key[0] not in topics_a or key[0] not in topics_b:
            status = "not_compared"
        elif fa is None:
            status = "new" if sb is not None and sb <= OPEN_SCORE else "same"
        elif fb is None:
            status = "gone" if sa is not None and sa <= OPEN_SCORE else "same"
        elif sb is not None and sa is not None and sb < sa - 0.005:
            status = "worse"
        elif sb is not None and sa is not None and sb > sa + 0.005:
            status = "better"
        else:
            status = "same"
        ref = fb or fa
        assert ref is not None
        rows.append(
            FindingChange(
                key=key,
                where=where(ref),
                code=key[1],
                topic=key[0],
                metric=str(ref.get("metric") or ""),
                score_a=sa,
                score_b=sb,
                value_a=_float(fa.get("value")) if fa else None,
                value_b=_float(fb.get("value")) if fb else None,
                status=status,
                message=str(ref.get("message") or ""),
            )
        )
    order = {"new": 0, "worse": 1, "gone": 2, "better": 3, "same": 4, "not_compared": 5}
    return sorted(rows, key=lambda r: order[r.status])


def _sort_key(key: Key) -> tuple:
    topic, code, antenna, spw, field = key
    return (topic, code, antenna, -1 if spw is None else spw, field)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3g}"
