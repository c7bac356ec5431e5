"""Flux models for the flux calibrator, as the generated script's setjy needs them.

Pure (no Django): the catalogue entries come in from the caller (calibration.catalogue reads
the CalibratorFlux table, which calibration/data/calibrator_fluxes.csv seeds and DRMs edit).
At ALMA `es.getALMAFluxForMS` asks the observatory's calibrator catalogue; we have no access
to it, so a source is known only when someone put a number with its provenance in our table.
Standard VLA calibrators and Solar System objects use setjy's own models. Any other source is
unknown: its setjy step stops the run with a message, it never gets a placeholder flux.
"""

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

# ALMA's bands span 35-950 GHz; the catalogue takes 30-1000 GHz.
FREQ_MIN_GHZ, FREQ_MAX_GHZ = 30.0, 1000.0
CSV_COLUMNS = ("source", "freq_ghz", "flux_jy", "spectral_index", "measured", "provenance")


@dataclass(frozen=True)
class CatalogueFlux:
    """One measurement: flux_jy at freq_ghz, S ~ nu^spectral_index (None: not known)."""

    source: str
    freq_ghz: float
    flux_jy: float
    spectral_index: float | None
    measured: str | None  # ISO date of the measurement, None when there is none
    provenance: str  # where the number comes from

    def flux_at(self, freq_ghz: float) -> float:
        """The flux scaled to `freq_ghz` with the spectral index (flat when it is unknown)."""
        return scaled_flux(self.flux_jy, self.freq_ghz, self.spectral_index, freq_ghz)

    def as_dict(self) -> dict:
        return asdict(self)


def scaled_flux(flux_jy: float, freq_ghz: float, spectral_index: float | None, at_ghz: float) -> float:
    return flux_jy * (at_ghz / freq_ghz) ** (spectral_index or 0.0)


def problems(
    *, source: str, freq_ghz: float | None, flux_jy: float | None, provenance: str
) -> dict[str, str]:
    """The catalogue's rules, field -> what is wrong (empty: the entry is acceptable)."""
    found = {}
    if not source.strip():
        found["source"] = "Give the source name as it appears in the data (e.g. J1924-2914)."
    if freq_ghz is None or not math.isfinite(freq_ghz) or not FREQ_MIN_GHZ <= freq_ghz <= FREQ_MAX_GHZ:
        found["freq_ghz"] = f"The frequency must be between {FREQ_MIN_GHZ:g} and {FREQ_MAX_GHZ:g} GHz."
    if flux_jy is None or not math.isfinite(flux_jy) or flux_jy <= 0:
        found["flux_jy"] = "The flux density must be a positive number of Jy."
    if not provenance.strip():
        found["provenance"] = "Say where the number comes from (a measurement, a paper, the simulator)."
    return found


def nearest(entries: Iterable[CatalogueFlux], freq_ghz: float | None) -> dict[str, CatalogueFlux]:
    """Per source, the entry measured nearest `freq_ghz` (in log frequency); the first one when
    the frequency is not known."""
    best: dict[str, CatalogueFlux] = {}
    for entry in entries:
        current = best.get(entry.source)
        if current is None or (
            freq_ghz is not None
            and abs(math.log(entry.freq_ghz / freq_ghz)) < abs(math.log(current.freq_ghz / freq_ghz))
        ):
            best[entry.source] = entry
    return best


def parse_csv(text: str) -> list[CatalogueFlux]:
    """The catalogue file: '#' comment lines, a header line, one row per source and frequency.
    Raises ValueError naming the line of the first bad row."""
    rows = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(rows)))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ValueError(f"the header must be {','.join(CSV_COLUMNS)}, found {reader.fieldnames}")
    entries = []
    for number, row in enumerate(reader, start=1):
        try:
            measured = (row["measured"] or "").strip() or None
            if measured is not None:
                dt.date.fromisoformat(measured)
            alpha = (row["spectral_index"] or "").strip()
            entry = CatalogueFlux(
                source=(row["source"] or "").strip(),
                freq_ghz=float(row["freq_ghz"]),
                flux_jy=float(row["flux_jy"]),
                spectral_index=float(alpha) if alpha else None,
                measured=measured,
                provenance=(row["provenance"] or "").strip(),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data row {number}: {exc}") from exc
        wrong = problems(
            source=entry.source, freq_ghz=entry.freq_ghz, flux_jy=entry.flux_jy, provenance=entry.provenance
        )
        if wrong:
            raise ValueError(f"data row {number} ({entry.source or 'no name'}): {' '.join(wrong.values())}")
        entries.append(entry)
    return entries


# setjy knows these by model: 3C286, 3C48, 3C147, 3C138 (any of their usual names).
PERLEY_BUTLER_NAMES = ("1331+305", "3C286", "J1331+3030", "0137+331", "3C48", "0542+498", "3C147", "0521+166")
SOLAR_SYSTEM = (
    "Mars",
    "Uranus",
    "Neptune",
    "Callisto",
    "Ganymede",
    "Titan",
    "Ceres",
    "Pallas",
    "Vesta",
    "Juno",
)


def missing_flux_message(field_name: str) -> str:
    return (
        f"{field_name} has no flux in the calibrator catalogue: ask a DRM to add it (Calibrator "
        f"fluxes page) and generate the script again, or set its flux in this step"
    )


def setjy_model(field_name: str, catalogue: Mapping[str, CatalogueFlux] | None = None) -> dict[str, object]:
    """The setjy keyword arguments for a flux calibrator, plus a `comment` for the script.

    A source with no model and no catalogue entry gets {"missing": message, "comment": ...}:
    the script must stop there rather than calibrate with an invented flux."""
    if any(field_name.startswith(name) for name in PERLEY_BUTLER_NAMES):
        return {"standard": "Perley-Butler 2017", "comment": "standard VLA flux calibrator model"}
    if field_name in SOLAR_SYSTEM:
        return {"standard": "Butler-JPL-Horizons 2012", "comment": "Solar System object model"}
    entry = (catalogue or {}).get(field_name)
    if entry is None:
        return {
            "missing": missing_flux_message(field_name),
            "comment": f"{field_name} is not in the calibrator catalogue: no flux model is known",
        }
    alpha = "unknown (flat spectrum assumed)" if entry.spectral_index is None else f"{entry.spectral_index:g}"
    measured = f", measured {entry.measured}" if entry.measured else ", no measurement date"
    model: dict[str, object] = {"standard": "manual", "fluxdensity": [entry.flux_jy, 0, 0, 0]}
    if entry.spectral_index is not None:
        model["spix"] = entry.spectral_index
    model["reffreq"] = f"{entry.freq_ghz:g}GHz"
    provenance = " ".join(entry.provenance.split())  # one comment line in the script
    model["comment"] = (
        f"calibrator catalogue: {entry.flux_jy:g} Jy at {entry.freq_ghz:g} GHz, alpha {alpha}{measured}; "
        f"source of the number: {provenance}"
    )
    return model
