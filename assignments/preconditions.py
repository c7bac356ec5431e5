"""What must be true before a MOUS may enter a state: the final checklist before review.

The apps above assignments register their checks (reports registers the QA2 checklist in its
AppConfig.ready); assignments knows none of them, so the dependencies still point one way.
Mous.transition asks every registered check; anything missing refuses the move (409) with the
items listed, unless a DRM overrides it with a reason, which the state change keeps.
"""

from collections import defaultdict
from collections.abc import Callable

from qa2portal.errors import Conflict

# A check answers what is missing before `mous` may enter the state, in words ([] = nothing).
Check = Callable[[object], list[str]]
_checks: dict[str, list[Check]] = defaultdict(list)


def register(state: str, check: Check) -> None:
    if check not in _checks[state]:
        _checks[state].append(check)


def missing(mous, state: str) -> list[str]:
    return [item for check in _checks.get(state, []) for item in check(mous)]


class ChecklistIncomplete(Conflict):
    """The move needs what the checklist lists (409); a DRM may override it with a reason."""

    def __init__(self, state: str, items: list[str]) -> None:
        self.state, self.items = state, items
        super().__init__(
            f"not ready for {state}: {len(items)} checklist item(s) missing: " + "; ".join(items)
        )

    def details(self) -> dict:
        return {"missing": self.items}
