"""The calibrator flux catalogue (CalibratorFlux): loading its file, and looking sources up for
the script generator (setjy) and for the diagnostics' flux check."""

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from calibration.calibrators import CatalogueFlux, nearest, parse_csv
from calibration.models import CalibratorFlux

CATALOGUE_FILE = Path(__file__).resolve().parent / "data" / "calibrator_fluxes.csv"


@dataclass(frozen=True)
class LoadResult:
    created: list[str]
    updated: list[str]
    kept: list[str]  # differ from the file, left as they are (edited in the portal)
    unchanged: int

    def __str__(self) -> str:
        parts = [f"{len(self.created)} added", f"{len(self.updated)} updated", f"{self.unchanged} unchanged"]
        if self.kept:
            parts.append(f"{len(self.kept)} kept as edited in the portal ({', '.join(self.kept)})")
        return ", ".join(parts)


def _row_values(entry: CatalogueFlux) -> dict:
    return {
        "flux_jy": entry.flux_jy,
        "spectral_index": entry.spectral_index,
        "measured_on": dt.date.fromisoformat(entry.measured) if entry.measured else None,
        "provenance": entry.provenance,
    }


@transaction.atomic
def load_file(path: Path = CATALOGUE_FILE, *, replace: bool = False, model=CalibratorFlux) -> LoadResult:
    """Put the file's entries into the table (idempotent). An entry that differs from the file
    is left alone (a DRM edited it) unless `replace`. `model` lets a migration pass its
    historical model. Raises ValueError on a bad file, before anything is written."""
    entries = parse_csv(path.read_text(encoding="utf-8"))
    created, updated, kept, unchanged = [], [], [], 0
    for entry in entries:
        label = f"{entry.source} at {entry.freq_ghz:g} GHz"
        values = _row_values(entry)
        row = model.objects.filter(source=entry.source, freq_ghz=entry.freq_ghz).first()
        if row is None:
            model.objects.create(source=entry.source, freq_ghz=entry.freq_ghz, **values)
            created.append(label)
        elif all(getattr(row, k) == v for k, v in values.items()):
            unchanged += 1
        elif replace:
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_by = None
            row.save()
            updated.append(label)
        else:
            kept.append(label)
    return LoadResult(created, updated, kept, unchanged)


def entries_near(names: Iterable[str], freq_ghz: float | None) -> dict[str, CatalogueFlux]:
    """Per source of `names` in the catalogue, its entry nearest `freq_ghz`."""
    rows = CalibratorFlux.objects.filter(source__in=set(names))
    return nearest((row.entry() for row in rows), freq_ghz)


def _mean(values: Iterable[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return sum(finite) / len(finite) if finite else None


def for_data(summary: dict) -> dict[str, CatalogueFlux]:
    """The entries for the fields of an MS summary (calibration.incasa.inspect_ms), nearest the
    mean frequency of its science spws: what the generated script's setjy uses."""
    spws = summary.get("spws", [])
    freq = _mean(spws[s]["ref_freq_ghz"] for s in summary.get("science_spws", []) if s < len(spws))
    return entries_near((f["name"] for f in summary.get("fields", [])), freq)


def for_flux_check(flux_summary: dict) -> dict[str, dict | None]:
    """Per field of a fluxscale summary (reports.incasa.extract.flux), its catalogue entry as a
    dict, or None when the source is not in the catalogue (the flux check then says so)."""
    fields = flux_summary.get("fields", {})
    freq = _mean(v.get("freq_ghz") for spws in fields.values() for v in spws.values())
    found = entries_near(fields, freq)
    return {name: (found[name].as_dict() if name in found else None) for name in fields}
