"""Combination of a multi-EB MOUS, the flux side: allFluxes, the weighted means, the reducer's
edits, the spectral-index fit and the generated scriptForFluxCalibration.py.

It lives in reports/ because it reads the fluxscale results, which are the flux diagnostics
of each EB's latest successful calibration run (the dict fluxscale returned, stored by the
worker as Diagnostic topic "flux"), never log text. The copy of the data and the refusals are
calibration.combination (one layer down).
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from assignments.models import Mous
from calibration import standard_scripts
from calibration.combination import COMBINED_MS, CombinationRefused, EbInput, require_combinable
from calibration.models import CalibratedCopy, Run, Script, ScriptVersion
from calibration.runs import combination_folder, run_create
from calibration.scripts import script_get_or_create, script_version_create
from reports.models import Diagnostic, FluxEdit, Topic

SCALE = "scale"
CONCAT = "concat"
MODES = {SCALE: "scale and concatenate", CONCAT: "concatenate only"}


# --- pure ----------------------------------------------------------------------------------
def weighted_mean(values: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """(mean, error) of (value, sigma) pairs with 1/sigma^2 weights; error = 1/sqrt(sum w).

    A pair without a usable sigma (0, negative, not finite) is refused: it would take all the
    weight."""
    pairs = list(values)
    if not pairs:
        raise ValueError("no values to average")
    for value, sigma in pairs:
        if not (math.isfinite(value) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"{value} +- {sigma}: a weighted mean needs a finite value and a positive error")
    weights = [1.0 / sigma**2 for _, sigma in pairs]
    total = sum(weights)
    mean = sum(w * v for w, (v, _) in zip(weights, pairs, strict=True)) / total
    return mean, 1.0 / math.sqrt(total)


@dataclass(frozen=True)
class SpectralFit:
    alpha: float
    flux_at_ref: float
    ref_freq_ghz: float

    def flux_at(self, freq_ghz: float) -> float:
        return self.flux_at_ref * (freq_ghz / self.ref_freq_ghz) ** self.alpha


def fit_spectral_index(points: Sequence[tuple[float, float, float]]) -> SpectralFit | None:
    """S = S0 (nu/nu0)^alpha through (freq GHz, flux, error) points: weighted least squares in
    log-log (weights (S/sigma)^2); nu0 the weighted mean log frequency. None below 2 frequencies."""
    usable = [(f, s, e) for f, s, e in points if f > 0 and s > 0 and e > 0]
    if len({round(f, 6) for f, _, _ in usable}) < 2:
        return None
    x = [math.log(f) for f, _, _ in usable]
    y = [math.log(s) for _, s, _ in usable]
    w = [(s / e) ** 2 for _, s, e in usable]
    sw = sum(w)
    x0 = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sw
    y0 = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sw
    sxx = sum(wi * (xi - x0) ** 2 for wi, xi in zip(w, x, strict=True))
    sxy = sum(wi * (xi - x0) * (yi - y0) for wi, xi, yi in zip(w, x, y, strict=True))
    alpha = sxy / sxx if sxx > 0 else 0.0
    return SpectralFit(alpha=alpha, flux_at_ref=math.exp(y0), ref_freq_ghz=math.exp(x0))


def parse_flux(text: str) -> float:
    """A flux the reducer typed: a positive, finite number of Jy (ValidationError otherwise)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValidationError(f"{str(text)[:40]!r} is not a number: give the flux in Jy, e.g. 1.05") from None
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(f"{text} Jy: a flux must be a positive number")
    return value


# --- allFluxes -----------------------------------------------------------------------------
@dataclass
class EbFluxes:
    uid: str
    vis: str
    run_id: int
    refant: str
    # field -> split spw id (str) -> {"flux", "error", "freq_ghz", "bandwidth_mhz"}
    fields: dict[str, dict[str, dict]]
    ms_spw: dict[str, int]


def _phase_calibrators(item: EbInput) -> set[str] | None:
    summary = getattr(item.eb, "data_summary", None)
    if summary is None:
        return None
    names = {f["name"] for f in summary.summary.get("fields", []) if any("PHASE" in i for i in f["intents"])}
    return names or None


def _refant(item: EbInput) -> str:
    summary = getattr(item.eb, "data_summary", None)
    if summary is None:
        return ""
    try:
        return standard_scripts.reference_antenna(summary.summary)[0]
    except (KeyError, ValueError, ZeroDivisionError):
        return ""


def eb_fluxes(item: EbInput) -> EbFluxes:
    """The fluxscale results of the EB's latest successful run (its last flux diagnostic)."""
    diagnostic = (
        Diagnostic.objects.filter(run=item.run, topic=Topic.FLUX, summary__has_key="fields")
        .order_by("-pk")
        .first()
    )
    summary = diagnostic.summary if diagnostic is not None else {}
    wanted = _phase_calibrators(item)
    fields = {
        name: {spw: dict(entry) for spw, entry in spws.items()}
        for name, spws in summary.get("fields", {}).items()
        if spws and (wanted is None or name in wanted)
    }
    return EbFluxes(
        uid=item.eb.uid,
        vis=item.split,
        run_id=item.run.pk,
        refant=_refant(item),
        fields=fields,
        ms_spw={str(k): int(v) for k, v in summary.get("ms_spw", {}).items()},
    )


@dataclass
class AllFluxes:
    ebs: list[EbFluxes]
    # field -> spw -> {"flux", "error", "freq_ghz", "weighted_mean", "edited": FluxEdit | None}
    means: dict[str, dict[str, dict]]
    fits: dict[str, SpectralFit | None]

    def rows(self) -> list[dict]:
        """allFluxes.txt as rows: per calibrator, spw and EB, the EB's flux and the mean."""
        out = []
        for name, spws in self.means.items():
            for spw, mean in spws.items():
                for eb in self.ebs:
                    entry = eb.fields.get(name, {}).get(spw)
                    if entry is not None:
                        out.append({"field": name, "spw": spw, "eb": eb.uid, **entry, "mean": mean})
        return out

    def spws(self) -> set[str]:
        return {spw for spws in self.means.values() for spw in spws}


def _means(ebs: list[EbFluxes], edits: dict[tuple[str, str], FluxEdit]) -> dict[str, dict[str, dict]]:
    means: dict[str, dict[str, dict]] = {}
    names = sorted({name for eb in ebs for name in eb.fields})
    for name in names:
        spws = sorted({spw for eb in ebs for spw in eb.fields.get(name, {})}, key=int)
        for spw in spws:
            entries = [eb.fields[name][spw] for eb in ebs if spw in eb.fields.get(name, {})]
            usable = [(e["flux"], e["error"]) for e in entries if e.get("error") and e["error"] > 0]
            if not usable:
                continue
            mean, error = weighted_mean(usable)
            freqs = [e["freq_ghz"] for e in entries if e.get("freq_ghz")]
            edit = edits.get((name, spw))
            means.setdefault(name, {})[spw] = {
                "flux": edit.flux_jy if edit else mean,
                "error": error,
                "weighted_mean": mean,
                "freq_ghz": sum(freqs) / len(freqs) if freqs else math.nan,
                "edited": edit,
            }
    return means


def current_edits(mous: Mous) -> dict[tuple[str, str], FluxEdit]:
    latest: dict[tuple[str, str], FluxEdit] = {}
    for edit in FluxEdit.objects.filter(mous=mous).order_by("created_at", "pk"):
        latest[(edit.field, edit.spw)] = edit
    return latest


def all_fluxes(mous: Mous, inputs: list[EbInput] | None = None) -> AllFluxes:
    """allFluxes of a combinable MOUS (CombinationRefused otherwise)."""
    inputs = inputs if inputs is not None else require_combinable(mous)
    ebs = [eb_fluxes(item) for item in inputs]
    means = _means(ebs, current_edits(mous))
    fits = {
        name: fit_spectral_index([(m["freq_ghz"], m["flux"], m["error"]) for m in spws.values()])
        for name, spws in means.items()
    }
    return AllFluxes(ebs=ebs, means=means, fits=fits)


# --- edits ---------------------------------------------------------------------------------
@transaction.atomic
def flux_edit(*, mous: Mous, field: str, spw: str, value: str, by, note: str = "") -> FluxEdit:
    """Set the combined flux of `field` in `spw` (ValidationError, nothing changed, when the
    flux is not a positive number or the field/spw is not one of allFluxes)."""
    Mous.objects.select_for_update().get(pk=mous.pk)
    fluxes = all_fluxes(mous)
    if field not in fluxes.means:
        known = ", ".join(sorted(fluxes.means)) or "none"
        raise ValidationError(f"{field[:64]!r} is not a calibrator of allFluxes (known: {known})")
    spws = fluxes.means[field]
    if spw not in spws:
        raise ValidationError(
            f"spw {spw[:8]!r} is not a spw of {field} in allFluxes "
            f"(known: {', '.join(sorted(spws, key=int))})"
        )
    flux = parse_flux(value)
    return FluxEdit.objects.create(
        mous=mous, field=field, spw=spw, flux_jy=flux, previous_jy=spws[spw]["flux"], note=note[:300], by=by
    )


# --- the script ----------------------------------------------------------------------------
def combination_script_create(*, mous: Mous, mode: str, by) -> ScriptVersion:
    """scriptForFluxCalibration.py from allFluxes (with the edits), as an immutable version."""
    if mode not in MODES:
        raise ValidationError(f"{mode[:20]!r} is not a choice: {', '.join(MODES.values())}")
    fluxes = all_fluxes(mous)
    if mode == SCALE and not fluxes.means:
        raise ValidationError(
            "no fluxscale results in the EBs' calibration runs: only 'concatenate only' is possible"
        )
    ebs = [{"vis": eb.vis, "refant": eb.refant, "fields": eb.fields} for eb in fluxes.ebs]
    means = {
        name: {spw: {"flux": m["flux"], "freq_ghz": m["freq_ghz"]} for spw, m in spws.items()}
        for name, spws in fluxes.means.items()
    }
    alphas = {name: fit.alpha for name, fit in fluxes.fits.items() if fit is not None}
    text = standard_scripts.flux_calibration_script(
        ebs, means, alphas, scale=mode == SCALE, combined=COMBINED_MS
    )
    edited = sum(1 for spws in fluxes.means.values() for m in spws.values() if m["edited"])
    script = script_get_or_create(kind=Script.Kind.COMBINATION, mous=mous)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.GENERATED,
        by=by,
        note=f"{MODES[mode]}; {len(ebs)} EBs" + (f"; {edited} edited flux(es)" if edited else ""),
    )


# --- after the run -------------------------------------------------------------------------
def latest_combination_run(mous: Mous) -> Run | None:
    return (
        Run.objects.filter(mous=mous, folder=str(combination_folder(mous)))
        .order_by("-created_at", "-pk")
        .first()
    )


def concat_summary(mous: Mous) -> dict | None:
    """What the concat of the latest combination run made (fields, spws, rows), from its
    diagnostic (read in CASA by the worker after the step)."""
    run = latest_combination_run(mous)
    if run is None:
        return None
    diagnostic = (
        Diagnostic.objects.filter(run=run, topic=Topic.CALIBRATED, summary__has_key="concat")
        .order_by("-pk")
        .first()
    )
    return diagnostic.summary["concat"] if diagnostic is not None else None


def combination_run_create(*, mous: Mous, version: ScriptVersion, by) -> Run:
    """A run of every step of `version`, once the EBs' data is in Combination/calibrated."""
    require_combinable(mous)
    copy = CalibratedCopy.objects.filter(
        mous=mous, destination=CalibratedCopy.Destination.COMBINATION
    ).first()
    if copy is None or copy.status != CalibratedCopy.Status.DONE:
        state = "not started" if copy is None else copy.get_status_display()
        raise CombinationRefused(f"copy the EBs' calibrated data first (the copy is {state})")
    return run_create(version=version, steps=[], by=by)
