"""The scan layout of a simulated EB (pure Python): scans, subscans, ALMA intents, times."""

from __future__ import annotations

from dataclasses import dataclass

from calibration.simulate.spec import EbSpec

ATM_SUBSCANS = (
    "CALIBRATE_ATMOSPHERE#OFF_SOURCE,CALIBRATE_WVR#OFF_SOURCE",
    "CALIBRATE_ATMOSPHERE#AMBIENT,CALIBRATE_WVR#AMBIENT",
    "CALIBRATE_ATMOSPHERE#HOT,CALIBRATE_WVR#HOT",
)
INTENTS = {
    "bandpass": "CALIBRATE_BANDPASS#ON_SOURCE,CALIBRATE_FLUX#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE",
    "phase": "CALIBRATE_PHASE#ON_SOURCE,CALIBRATE_WVR#ON_SOURCE",
    "target": "OBSERVE_TARGET#ON_SOURCE",
}


@dataclass(frozen=True)
class Subscan:
    number: int  # 1-based within the scan
    obs_mode: str  # STATE.OBS_MODE
    start_s: float  # seconds after the EB start
    stop_s: float
    integrations: int


@dataclass(frozen=True)
class Scan:
    number: int
    field: str
    role: str  # bandpass | phase | target
    atm: bool
    subscans: tuple[Subscan, ...]

    @property
    def start_s(self) -> float:
        return self.subscans[0].start_s

    @property
    def stop_s(self) -> float:
        return self.subscans[-1].stop_s

    @property
    def intent(self) -> str:
        return "ATM" if self.atm else self.subscans[0].obs_mode


def scans(spec: EbSpec) -> list[Scan]:
    """ATM+BP, ATM+PH, ATM(target), then `cycles` x [target, phase] (casa-lab shape)."""
    sch = spec.schedule
    tint = sch.integration_s
    out: list[Scan] = []
    clock = 0.0

    def add(role: str, atm: bool, nint: int) -> None:
        nonlocal clock
        name = spec.field_by_role(role).name
        modes = ATM_SUBSCANS if atm else (INTENTS[role],)
        subs = []
        for k, mode in enumerate(modes, start=1):
            subs.append(Subscan(k, mode, clock, clock + nint * tint, nint))
            clock += nint * tint
        out.append(Scan(len(out) + 1, name, role, atm, tuple(subs)))
        clock += sch.gap_s

    every = sch.atm_on_every_field
    add("bandpass", True, sch.atm_integrations)
    add("bandpass", False, sch.bandpass_integrations)
    if every:
        add("phase", True, sch.atm_integrations)
    add("phase", False, sch.phase_integrations)
    if every:
        add("target", True, sch.atm_integrations)
    for _ in range(sch.cycles):
        add("target", False, sch.target_integrations)
        add("phase", False, sch.phase_integrations)
    return out


def duration_s(spec: EbSpec) -> float:
    return scans(spec)[-1].stop_s


def science_integrations(spec: EbSpec) -> int:
    return sum(sub.integrations for scan in scans(spec) for sub in scan.subscans)


def estimated_size_mb(spec: EbSpec) -> float:
    """Rough MS size: DATA (complex64) + FLAG per row of each science spw, plus the WVR rows."""
    nant = len(spec.antennas)
    rows_per_int = nant * (nant + 1) // 2
    per_row = sum(2 * s.nchan * 9 + 120 for s in spec.spws)
    wvr = duration_s(spec) / spec.schedule.wvr_integration_s * nant * 60
    return (science_integrations(spec) * rows_per_int * per_row + wvr) / 1e6
