"""Flux models for the flux calibrator, as the generated script's setjy needs them.

At ALMA `es.getALMAFluxForMS` asks the calibrator catalogue; offline we carry the entries
for the grid sources our data use. Unknown quasars get a placeholder the reducer must set,
said plainly in the script; standard VLA calibrators use setjy's Perley-Butler 2017 models.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueFlux:
    flux_jy: float
    freq_ghz: float
    spectral_index: float
    measured: str  # when the monitoring measurement was made


# Band 3/6/7 grid-source monitoring values (flux at freq_ghz, spectral index).
ALMA_CATALOGUE: dict[str, CatalogueFlux] = {
    "J1924-2914": CatalogueFlux(3.1, 237.0, -0.6, "2026-10-28"),
    "J1733-1304": CatalogueFlux(1.2, 237.0, -0.5, "2026-10-30"),
    "J0522-3627": CatalogueFlux(4.6, 233.0, -0.3, "2026-10-21"),
    "J1256-0547": CatalogueFlux(8.9, 233.0, -0.55, "2026-11-02"),
    "J2253+1608": CatalogueFlux(5.3, 233.0, -0.7, "2026-10-25"),
    "J0423-0120": CatalogueFlux(2.4, 233.0, -0.45, "2026-10-19"),
}

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


def setjy_model(field_name: str) -> dict[str, object]:
    """The setjy keyword arguments for a flux calibrator, plus a `comment` for the script."""
    if any(field_name.startswith(name) for name in PERLEY_BUTLER_NAMES):
        return {"standard": "Perley-Butler 2017", "comment": "standard VLA flux calibrator model"}
    if field_name in SOLAR_SYSTEM:
        return {"standard": "Butler-JPL-Horizons 2012", "comment": "Solar System object model"}
    entry = ALMA_CATALOGUE.get(field_name)
    if entry is not None:
        return {
            "standard": "manual",
            "fluxdensity": [entry.flux_jy, 0, 0, 0],
            "spix": entry.spectral_index,
            "reffreq": f"{entry.freq_ghz}GHz",
            "comment": f"calibrator catalogue: {entry.flux_jy} Jy at {entry.freq_ghz} GHz, "
            f"alpha {entry.spectral_index} (measured {entry.measured})",
        }
    return {
        "standard": "manual",
        "fluxdensity": [1.0, 0, 0, 0],
        "comment": f"{field_name} is not in the offline catalogue: SET ITS FLUX before running this step",
    }
