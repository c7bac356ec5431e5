"""The shape every QA check returns, shared by reports.qa and the topic modules it calls
(Django-free): the script context an edit needs, a finding dict, the pipeline's linear score."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ScriptContext:
    """What the edits need to know about the script that ran: its steps and the vis names."""

    steps: dict[int, str]  # number -> title
    step: int  # the step that made the diagnostic

    def step_titled(self, *words: str) -> int | None:
        for number, title in sorted(self.steps.items()):
            if all(w.lower() in title.lower() for w in words):
                return number
        return None


def finding(code: str, score: float, message: str, **extra) -> dict:
    return {
        "code": code,
        "score": round(float(score), 3),
        "message": message,
        "metric": "",
        "value": None,
        "antenna": "",
        "spw": None,
        "field": "",
        "split_spw": None,
        "edit": None,
        **extra,
    }


def linear(x: float, x1: float, x2: float, y1: float, y2: float) -> float:
    """The pipeline's linear_score: clip x to [x1, x2] and interpolate."""
    x = min(max(x, min(x1, x2)), max(x1, x2))
    return y1 + (x - x1) * (y2 - y1) / (x2 - x1)
