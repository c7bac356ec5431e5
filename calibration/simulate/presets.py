"""The named specs used everywhere: `small` (tests), `alma-typical` and `alma-wide` (benchmarks).

Faults are listed per preset so each preset's truth.json says exactly what was injected.
"""

from __future__ import annotations

from calibration.simulate.spec import (
    Antenna,
    AtmLine,
    BadWvr,
    BandpassDefect,
    Component,
    DeadAntenna,
    EbSpec,
    Field,
    HotTsys,
    Line,
    LowSnrSpw,
    Quack,
    Schedule,
    Spw,
    configuration_pads,
)

FIELDS = (
    Field("J1924-2914", "bandpass", "19h24m51.0559s", "-29d14m30.121s", (Component(3.1, -0.6),)),
    Field("J1733-1304", "phase", "17h33m02.7058s", "-13d04m49.548s", (Component(1.2, -0.5),)),
    Field(
        "HD_163296",
        "target",
        "17h56m21.2882s",
        "-21d57m21.872s",
        (Component(0.30, 2.4, fwhm_arcsec=1.0), Component(0.08, 0.0, offset_arcsec=(3.0, 2.0))),
        line=Line(0.45, 230.538, 45.0),  # CO(2-1)-like
    ),
)

# The casa-lab array: 10 antennas on pads of the cycle-10 C-1 configuration (max baseline ~150 m).
SMALL_ANTENNAS = tuple(
    Antenna(name, pad)
    for name, pad in zip(
        ("DA41", "DA42", "DA43", "DA44", "DA45", "DV02", "DV03", "DV05", "DV07", "DV10"),
        ("A001", "A005", "A009", "A016", "A019", "A024", "A027", "A033", "A040", "A049"),
        strict=True,
    )
)

BAND6_TDM = (Spw(231.0, 64), Spw(233.0, 64), Spw(245.0, 64))


def alma_antennas(count: int, configuration: str = "alma.cycle10.1.cfg") -> tuple[Antenna, ...]:
    """`count` antennas named like ALMA's (DA41.., DV01.., DM01.. interleaved) on evenly
    spread pads of `configuration`."""
    pads = sorted(configuration_pads(configuration) or ())
    if len(pads) < count:
        raise ValueError(f"{configuration} has {len(pads)} pads, {count} antennas asked")
    chosen = [pads[round(i * (len(pads) - 1) / max(1, count - 1))] for i in range(count)]
    counters = {"DA": 41, "DV": 1, "DM": 1}
    antennas = []
    for i, pad in enumerate(chosen):
        prefix = ("DA", "DV", "DM")[i % 3]
        antennas.append(Antenna(f"{prefix}{counters[prefix]:02d}", pad))
        counters[prefix] += 1
    return tuple(antennas)


def small(seed: int = 42, ms_name: str = "uid___A002_Xsim01_X1.ms") -> EbSpec:
    """The test default (casa-lab shape): 10 antennas, 3 x 64 channels, 20 minutes, every fault
    type once: DV07 bad WVR + bandpass notch/jump in spw 2, DA44 hot, DV10 dead, quack,
    narrow spw 3, spw 1 centred on the 231.28 GHz O3 line."""
    return EbSpec(
        ms_name=ms_name,
        antennas=SMALL_ANTENNAS,
        spws=BAND6_TDM,
        fields=FIELDS,
        seed=seed,
        faults=(
            BadWvr("DV07"),
            BandpassDefect("DV07", spw=2),
            HotTsys("DA44"),
            DeadAntenna("DV10"),
            Quack(seconds=6.048, factor=0.5),
            LowSnrSpw(spw=3, bandwidth_mhz=62.5),
            AtmLine(spw=1, freq_ghz=231.281),
        ),
    )


def alma_typical(seed: int = 7, ms_name: str = "uid___A002_Xsimtyp_X1.ms") -> EbSpec:
    """43 antennas, 4 TDM spws x 128 channels + WVR, about 60 minutes."""
    return EbSpec(
        ms_name=ms_name,
        antennas=alma_antennas(43),
        spws=(Spw(231.0, 128), Spw(233.0, 128), Spw(245.0, 128), Spw(247.0, 128)),
        fields=FIELDS,
        seed=seed,
        schedule=Schedule(bandpass_integrations=50, phase_integrations=8, target_integrations=60, cycles=7),
        faults=(BadWvr("DV05"), HotTsys("DA43"), BandpassDefect("DV05", spw=2)),
    )


def alma_wide(seed: int = 11, ms_name: str = "uid___A002_Xsimwide_X1.ms") -> EbSpec:
    """43 antennas, 4 FDM spws x 3840 channels, as short as still gives ALMA-sized caltables:
    one ATM scan (Tsys 43 ant x 4 spw x 3840 ch), a few integrations per calibrator, so
    bandpass and gain tables have the real shape while the MS stays a few GB."""
    return EbSpec(
        ms_name=ms_name,
        antennas=alma_antennas(43),
        spws=tuple(Spw(c, 3840, bandwidth_mhz=1875.0) for c in (231.0, 233.0, 245.0, 247.0)),
        fields=FIELDS,
        seed=seed,
        schedule=Schedule(
            bandpass_integrations=2,
            phase_integrations=1,
            target_integrations=1,
            cycles=1,
            atm_on_every_field=False,
        ),
        faults=(HotTsys("DA43"), BandpassDefect("DV05", spw=2)),
    )


PRESETS = {"small": small, "alma-typical": alma_typical, "alma-wide": alma_wide}


def preset(name: str, **kwargs) -> EbSpec:
    try:
        return PRESETS[name](**kwargs)
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
