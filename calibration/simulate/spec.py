"""What a simulated ALMA execution block contains: typed, validated, JSON round-trippable.

Pure Python (no Django, no CASA): the web process validates a spec before any CASA
subprocess starts, and the builder inside CASA reads the same spec back from JSON.
Spectral-window numbers in faults are MS spw ids: spw 0 is always the WVR spw, the
science spws are 1..n in the order given.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

MIN_ANTENNAS, MAX_ANTENNAS = 4, 50
MIN_CHANNELS, MAX_CHANNELS = 64, 3840
MAX_SCIENCE_SPWS = 4
ANTENNA_NAME_RE = re.compile(r"^(DA|DV|DM)\d{2}$")  # ALMA 12-m antenna names (CM = 7 m has no WVR)
FIELD_ROLES = ("bandpass", "phase", "target")


class SpecError(ValueError):
    """A spec that cannot be built; the message says what to change."""


# --- the parts ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Antenna:
    name: str  # DA41, DV07, DM03 ...
    pad: str  # a pad of the ALMA configuration file, e.g. A001


@dataclass(frozen=True)
class Spw:
    """A science spectral window (TDM-like: 64-128 wide channels; FDM-like: up to 3840)."""

    center_ghz: float
    nchan: int
    bandwidth_mhz: float = 2000.0
    name: str = ""  # ALMA-style name; filled in by EbSpec when empty


@dataclass(frozen=True)
class Component:
    """A source component: flux density at the spec's reference frequency, spectral index."""

    flux_jy: float
    spectral_index: float = 0.0
    fwhm_arcsec: float = 0.0  # 0: point source, else a circular Gaussian
    offset_arcsec: tuple[float, float] = (0.0, 0.0)  # (east, north)


@dataclass(frozen=True)
class Line:
    """A Gaussian spectral line added to the first component of a field."""

    flux_jy: float
    freq_ghz: float
    fwhm_mhz: float


@dataclass(frozen=True)
class Field:
    name: str
    role: str  # bandpass | phase | target
    ra: str  # 19h24m51.0559s
    dec: str  # -29d14m30.121s
    components: tuple[Component, ...]
    line: Line | None = None


@dataclass(frozen=True)
class Schedule:
    """ALMA-like scan layout: ATM + bandpass, ATM + phase, ATM on target, then cycles of
    [target, phase]. Each ATM scan has three subscans (OFF_SOURCE, AMBIENT, HOT)."""

    integration_s: float = 6.048
    wvr_integration_s: float = 1.152
    bandpass_integrations: int = 40
    phase_integrations: int = 6
    target_integrations: int = 25
    cycles: int = 4
    atm_integrations: int = 1  # per ATM subscan
    atm_on_every_field: bool = True  # False: one ATM scan (on the bandpass calibrator) only
    gap_s: float = 10.0
    start_utc: str = "2024/06/01/05:00:00"


@dataclass(frozen=True)
class Weather:
    pwv_mm: float = 1.0
    path_rms_um: float = 100.0  # mean baseline rms of the zenith wet path (turbulence)
    wind_m_s: float = 8.0
    wind_direction_deg: float = 30.0


# --- faults -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """Base of the injected faults; `kind` is the name used in JSON and truth.json."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class BadWvr(Fault):
    """A broken WVR radiometer: noisy and drifting brightness temperatures."""

    kind: ClassVar[str] = "bad_wvr"
    antenna: str
    noise_k: float = 3.0
    drift_k: float = 0.4  # random-walk step per WVR sample


@dataclass(frozen=True)
class HotTsys(Fault):
    """A receiver with a high noise temperature (Trx x factor)."""

    kind: ClassVar[str] = "hot_tsys"
    antenna: str
    factor: float = 2.5


@dataclass(frozen=True)
class BandpassDefect(Fault):
    """A notch and/or a phase jump in one antenna's bandpass (positions as band fractions)."""

    kind: ClassVar[str] = "bandpass_defect"
    antenna: str
    spw: int
    notch_start: float = 0.6
    notch_stop: float = 0.69
    notch_depth: float = 0.3  # amplitude factor inside the notch (1 = no notch)
    jump_at: float = 0.75
    jump_deg: float = 50.0  # 0 = no phase jump


@dataclass(frozen=True)
class DeadAntenna(Fault):
    """No signal on the antenna's cross-correlations (noise only)."""

    kind: ClassVar[str] = "dead_antenna"
    antenna: str


@dataclass(frozen=True)
class Quack(Fault):
    """Low amplitude in the first seconds of every scan (all antennas)."""

    kind: ClassVar[str] = "quack"
    seconds: float = 6.048
    factor: float = 0.5


@dataclass(frozen=True)
class LowSnrSpw(Fault):
    """A narrow science spw: same channel count over a small bandwidth, hence more noise."""

    kind: ClassVar[str] = "low_snr_spw"
    spw: int
    bandwidth_mhz: float = 62.5


@dataclass(frozen=True)
class AtmLine(Fault):
    """Put an atmospheric line (from the ATM model) into a spw by centring the spw on it."""

    kind: ClassVar[str] = "atm_line"
    spw: int
    freq_ghz: float = 231.281  # O3 in band 6


FaultT = TypeVar("FaultT", bound=Fault)

FAULT_KINDS: dict[str, type[Fault]] = {
    cls.kind: cls for cls in (BadWvr, HotTsys, BandpassDefect, DeadAntenna, Quack, LowSnrSpw, AtmLine)
}


def fault_from_dict(data: dict[str, Any]) -> Fault:
    data = dict(data)
    kind = data.pop("kind", None)
    cls = FAULT_KINDS.get(kind)
    if cls is None:
        raise SpecError(f"unknown fault kind {kind!r}; known kinds: {', '.join(sorted(FAULT_KINDS))}")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise SpecError(f"fault {kind!r} has no parameter(s) {', '.join(sorted(unknown))}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise SpecError(f"fault {kind!r}: {exc}") from exc


# --- the whole EB -------------------------------------------------------------------------
@dataclass(frozen=True)
class EbSpec:
    ms_name: str
    antennas: tuple[Antenna, ...]
    spws: tuple[Spw, ...]
    fields: tuple[Field, ...]
    schedule: Schedule = field(default_factory=Schedule)
    weather: Weather = field(default_factory=Weather)
    faults: tuple[Fault, ...] = ()
    seed: int = 42
    band: int = 6
    reference_freq_ghz: float = 237.0  # where component fluxes are given
    configuration: str = "alma.cycle10.1.cfg"  # casadata alma/simmos file the pads come from
    project: str = "2019.1.00001.S"

    # -- convenience
    @property
    def antenna_names(self) -> list[str]:
        return [a.name for a in self.antennas]

    def field_by_role(self, role: str) -> Field:
        return next(f for f in self.fields if f.role == role)

    def faults_of(self, cls: type[FaultT]) -> list[FaultT]:
        return [f for f in self.faults if isinstance(f, cls)]

    # -- JSON
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["faults"] = [f.to_dict() for f in self.faults]
        return data

    @property
    def eb_uid(self) -> str:
        """The EB uid the MS names in its OBSERVATION table: read from an ALMA-style MS name
        (uid___A002_Xsim01_X1.ms -> uid://A002/Xsim01/X1), so an ingest can check it."""
        match = re.fullmatch(r"uid___(A\d+)_(X[0-9a-zA-Z]+)_(X[0-9a-zA-Z]+)\.ms", self.ms_name)
        return "uid://{}/{}/{}".format(*match.groups()) if match else "uid://A002/Xsim/X1"

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EbSpec:
        try:
            return cls(
                ms_name=data["ms_name"],
                antennas=tuple(Antenna(**a) for a in data["antennas"]),
                spws=tuple(Spw(**s) for s in data["spws"]),
                fields=tuple(
                    Field(
                        **{
                            **f,
                            "components": tuple(
                                Component(**{**c, "offset_arcsec": tuple(c.get("offset_arcsec", (0, 0)))})
                                for c in f["components"]
                            ),
                            "line": Line(**f["line"]) if f.get("line") else None,
                        }
                    )
                    for f in data["fields"]
                ),
                schedule=Schedule(**data.get("schedule", {})),
                weather=Weather(**data.get("weather", {})),
                faults=tuple(fault_from_dict(f) for f in data.get("faults", ())),
                **{
                    k: data[k]
                    for k in ("seed", "band", "reference_freq_ghz", "configuration", "project")
                    if k in data
                },
            )
        except (KeyError, TypeError) as exc:
            raise SpecError(f"malformed spec: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> EbSpec:
        return cls.from_dict(json.loads(text))

    def with_faults(self, *faults: Fault, seed: int | None = None, ms_name: str | None = None) -> EbSpec:
        return replace(
            self,
            faults=tuple(faults),
            seed=self.seed if seed is None else seed,
            ms_name=ms_name or self.ms_name,
        )


# --- derived layout (pure; the builder and the tests use the same numbers) ----------------
def spw_name(band: int, index: int) -> str:
    return f"X1#ALMA_RB_{band:02d}#BB_{index + 1}#SW-01#FULL_RES"


def effective_spws(spec: EbSpec) -> list[Spw]:
    """The science spws after the spectral faults (narrow spw, spw moved onto an ATM line)."""
    spws = [replace(s, name=s.name or spw_name(spec.band, i)) for i, s in enumerate(spec.spws)]
    for fault in spec.faults:
        if isinstance(fault, LowSnrSpw):
            spws[fault.spw - 1] = replace(spws[fault.spw - 1], bandwidth_mhz=fault.bandwidth_mhz)
        elif isinstance(fault, AtmLine):
            spws[fault.spw - 1] = replace(spws[fault.spw - 1], center_ghz=fault.freq_ghz)
    return spws


def channel_range(nchan: int, start: float, stop: float) -> tuple[int, int]:
    """Band fractions -> [first, last) channel numbers, at least one channel wide."""
    first = min(nchan - 1, max(0, round(start * nchan)))
    return first, max(first + 1, min(nchan, round(stop * nchan)))


# --- validation -----------------------------------------------------------------------------
@cache
def configuration_pads(configuration: str) -> frozenset[str] | None:
    """Pad names of a casadata ALMA configuration, or None when casadata is not installed here.

    Located with find_spec (no import of casatools: this runs in the web process)."""
    found = importlib.util.find_spec("casadata")
    if found is None or not found.submodule_search_locations:
        return None
    cfg = Path(next(iter(found.submodule_search_locations))) / "__data__" / "alma" / "simmos" / configuration
    if not cfg.is_file():
        raise SpecError(f"ALMA configuration {configuration!r} not found in casadata ({cfg.parent})")
    pads = set()
    for line in cfg.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and not line.startswith("#"):
            pads.add(parts[4])
    return frozenset(pads)


def validate(spec: EbSpec) -> EbSpec:
    """Raise SpecError listing everything wrong with `spec`; return it unchanged when buildable."""
    problems: list[str] = []
    names = spec.antenna_names
    if not MIN_ANTENNAS <= len(names) <= MAX_ANTENNAS:
        problems.append(f"{len(names)} antennas: need {MIN_ANTENNAS} to {MAX_ANTENNAS}")
    if len(set(names)) != len(names):
        problems.append("antenna names must be unique")
    bad_names = [n for n in names if not ANTENNA_NAME_RE.match(n)]
    if bad_names:
        problems.append(f"antenna names must look like DA41/DV07/DM01, got {', '.join(bad_names)}")
    pads = [a.pad for a in spec.antennas]
    if len(set(pads)) != len(pads):
        problems.append("two antennas on the same pad")
    known_pads = configuration_pads(spec.configuration)
    if known_pads is not None:
        unknown = [p for p in pads if p not in known_pads]
        if unknown:
            problems.append(f"pads not in {spec.configuration}: {', '.join(unknown)}")

    if not 1 <= len(spec.spws) <= MAX_SCIENCE_SPWS:
        problems.append(f"{len(spec.spws)} science spws: need 1 to {MAX_SCIENCE_SPWS}")
    for i, spw in enumerate(spec.spws, start=1):
        if not MIN_CHANNELS <= spw.nchan <= MAX_CHANNELS:
            problems.append(f"spw {i} has {spw.nchan} channels: need {MIN_CHANNELS} to {MAX_CHANNELS}")
        if spw.bandwidth_mhz <= 0 or not 30.0 <= spw.center_ghz <= 950.0:
            problems.append(f"spw {i}: centre {spw.center_ghz} GHz / bandwidth {spw.bandwidth_mhz} MHz")

    roles = sorted(f.role for f in spec.fields)
    if roles != sorted(FIELD_ROLES):
        problems.append(f"need exactly one field per role {FIELD_ROLES}, got {roles}")
    for f in spec.fields:
        if not f.components or any(c.flux_jy <= 0 for c in f.components):
            problems.append(f"field {f.name}: needs components with positive flux")

    s = spec.schedule
    if s.integration_s <= 0 or s.wvr_integration_s <= 0 or s.wvr_integration_s > s.integration_s:
        problems.append("integration times must be positive, the WVR one not longer than the science one")
    if min(s.bandpass_integrations, s.phase_integrations, s.target_integrations, s.atm_integrations) < 1:
        problems.append("every scan needs at least one integration")
    if s.cycles < 1:
        problems.append("need at least one target/phase cycle")
    if not 0.05 <= spec.weather.pwv_mm <= 10:
        problems.append(f"PWV {spec.weather.pwv_mm} mm out of 0.05-10")

    problems += _fault_problems(spec)
    if problems:
        raise SpecError(f"spec {spec.ms_name!r} refused: " + "; ".join(problems))
    return spec


def _fault_problems(spec: EbSpec) -> list[str]:
    problems = []
    names = set(spec.antenna_names)
    per_kind: dict[str, int] = {}
    for fault in spec.faults:
        if type(fault) not in FAULT_KINDS.values():
            problems.append(f"unknown fault {fault!r}")
            continue
        per_kind[fault.kind] = per_kind.get(fault.kind, 0) + 1
        antenna = getattr(fault, "antenna", None)
        if antenna is not None and antenna not in names:
            problems.append(f"fault {fault.kind} on antenna {antenna}, which is not in the array")
        spw = getattr(fault, "spw", None)
        if spw is not None and not 1 <= spw <= len(spec.spws):
            problems.append(f"fault {fault.kind} on spw {spw}: science spws are 1..{len(spec.spws)}")
        if isinstance(fault, HotTsys) and fault.factor <= 1:
            problems.append("hot_tsys factor must be > 1")
        if isinstance(fault, Quack) and (fault.seconds <= 0 or not 0 <= fault.factor < 1):
            problems.append("quack needs seconds > 0 and 0 <= factor < 1")
        if isinstance(fault, BandpassDefect) and not (
            0 <= fault.notch_start < fault.notch_stop <= 1 and 0 < fault.jump_at < 1
        ):
            problems.append("bandpass_defect positions are band fractions: 0 <= start < stop <= 1")
        if isinstance(fault, LowSnrSpw) and fault.bandwidth_mhz <= 0:
            problems.append("low_snr_spw bandwidth must be positive")
    for kind in ("quack",):
        if per_kind.get(kind, 0) > 1:
            problems.append(f"at most one {kind} fault")
    dead = {f.antenna for f in spec.faults if isinstance(f, DeadAntenna)}
    if len(names - dead) < MIN_ANTENNAS:
        problems.append(f"fewer than {MIN_ANTENNAS} working antennas")
    return problems


# --- cache key ------------------------------------------------------------------------------
BUILDER_SOURCES = (
    "spec.py",
    "layout.py",
    "atmosphere.py",
    "visibilities.py",
    "subtables.py",
    "faults.py",
    "builder.py",
)


def spec_hash(spec: EbSpec) -> str:
    """Cache key: the spec and the source of every module the build runs, so an edit of the
    generator invalidates old builds by itself."""
    digest = hashlib.sha256(spec.to_json().encode())
    here = Path(__file__).resolve().parent
    for name in BUILDER_SOURCES:
        path = here / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
