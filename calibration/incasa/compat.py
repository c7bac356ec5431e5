"""What ALMA scripts expect from monolithic CASA at ALMA, provided for modular CASA 6.

- `aU` / `es` (analysisUtils, not public): every call is a reported no-op, except where a
  real equivalent ships with casarecipes (es.fixSyscalTimes -> almahelpers.fixsyscaltimes).
- `recipes.almahelpers` (CASA 5 spelling) is the real `casarecipes.almahelpers`.
- `casadef` / `casalith` / `cu` answer version questions with the installed CASA.
"""

import sys
import types
from collections.abc import Callable

import casarecipes
import casarecipes.almahelpers as almahelpers
import casatools
from casatasks import casalog

from calibration.incasa.events import emit

# Helpers with a real implementation in casarecipes: run it instead of skipping.
REAL_EQUIVALENTS: dict[str, Callable] = {
    "es.fixSyscalTimes": almahelpers.fixsyscaltimes,
}


class SkippedHelpers:
    """Collects the ALMA-only helper calls of the current step."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def record(self, name: str, args: tuple, kwargs: dict) -> None:
        shown = ", ".join([_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()])
        call = f"{name}({shown})"
        self.calls.append(call)
        message = f"qa2portal: skipped ALMA-only helper {call} (analysisUtils is not available)"
        print(message, flush=True)
        casalog.post(message, "WARN")
        emit("skipped_helper", call=call)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class AlmaHelper:
    """Stands in for aU / es: any attribute is a callable that records itself."""

    def __init__(self, name: str, skipped: SkippedHelpers) -> None:
        self._name, self._skipped = name, skipped

    def __getattr__(self, attribute: str) -> Callable:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        full = f"{self._name}.{attribute}"

        def helper(*args, **kwargs):
            if full == "aU.stuffForScienceDataReduction":
                return AlmaHelper("es", self._skipped)
            real = REAL_EQUIVALENTS.get(full)
            if real is not None:
                print(f"qa2portal: {full} -> casarecipes {real.__name__}", flush=True)
                return real(*args, **kwargs)
            self._skipped.record(full, args, kwargs)
            return None

        return helper


class CasaUtils:
    """`cu` of monolithic CASA: only the version questions scripts ask."""

    @staticmethod
    def version_string() -> str:
        return casatools.version_string()

    @staticmethod
    def version() -> list[int]:
        return list(casatools.version())


def install_modules() -> None:
    """Make the import lines of ALMA scripts resolve (CASA 5 and CASA 6 spellings)."""
    sys.modules.setdefault("recipes", casarecipes)
    sys.modules.setdefault("recipes.almahelpers", almahelpers)
    version = ".".join(str(v) for v in casatools.version()[:3])
    # Module attributes set through the namespace: typeshed's ModuleType declares no such names.
    casalith = types.ModuleType("casalith")
    vars(casalith).update(version_string=casatools.version_string, version=casatools.version)
    sys.modules.setdefault("casalith", casalith)
    casadef = types.ModuleType("casadef")
    vars(casadef).update(casa_version=version, subversion_revision=str(casatools.version()[3]))
    sys.modules.setdefault("casadef", casadef)


def casatasks_names() -> list[str]:
    import casatasks

    return [name for name in casatasks.__all__ if name not in {"casalog", "version", "version_string"}]


def namespace(skipped: SkippedHelpers) -> dict[str, object]:
    """The names an ALMA script finds at the CASA prompt."""
    import os

    import casatasks

    install_modules()
    ns: dict[str, object] = {"__name__": "__main__", "__builtins__": __builtins__}
    ns.update({name: getattr(casatasks, name) for name in casatasks.__all__})
    ns.update(
        tb=casatools.table(),
        ms=casatools.ms(),
        msmd=casatools.msmetadata(),
        me=casatools.measures(),
        qa=casatools.quanta(),
        cb=casatools.calibrater(),
        ia=casatools.image(),
        sm=casatools.simulator(),
        at=casatools.atmosphere(),
        tbtool=casatools.table,
        mstool=casatools.ms,
        msmdtool=casatools.msmetadata,
        iatool=casatools.image,
        casalog=casalog,
        aU=AlmaHelper("aU", skipped),
        es=AlmaHelper("es", skipped),
        cu=CasaUtils(),
        casadef=sys.modules["casadef"],
        os=os,
        sys=sys,
        # Not applyonly=True: plotbandpass & co. work headless here and make the QA2 plots;
        # only the helpers that really are missing are skipped, and each skip is reported.
        applyonly=False,
    )
    return ns
