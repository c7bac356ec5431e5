"""textfile.txt of an EB's QA2 report folder, rebuilt from what the worker already extracted.

`es.generateQA2Report(ms, ms.split, refAnt=...)` writes `qa2/textfile.txt` next to the PNGs
sent to the PI: what was observed, how it was calibrated, and the numbers that help choose
imaging parameters. Here the same text comes from plain dicts: the observation (made inside
CASA), the diagnostics' summaries (reports/ARTIFACTS.md), the findings and the script edits.

Pure: no Django, no CASA. Every key may be missing (it then reads "not available"); a summary
with `cannot_assess` prints that text. Plain text only: fixed-width tables, spaces, no tabs.
"""

import math
import numbers
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reports.spws import spw_label
from reports.thresholds import TSYS_WARN_RATIO

NA = "not available"
NONE = "none"
WIDTH = 78  # rules, headings and wrapped text
MESSAGE_WIDTH = 60  # the wrapped last column of the findings table
WORST_FLAGGED = 3  # antennas listed per flag save
PB_FACTOR = 1.13  # primary beam FWHM = 1.13 lambda / D (ALMA 12-m; close for the 7-m too)
MRS_FACTOR = 0.6  # maximum recoverable scale ~ 0.6 lambda / shortest baseline
CELLS_PER_BEAM = 5
SKIPPED_SPWS = ("WVR", "SQLD", "CH_AVG")  # name markers of windows that are not imaged
C_KM_S = 299792.458
ARCSEC_PER_RAD = 180 / math.pi * 3600

TOPICS = (
    ("tsys", "System temperature (Tsys)"),
    ("wvr", "Water vapour radiometers (WVR)"),
    ("bandpass", "Bandpass"),
    ("gains", "Gains"),
    ("flux", "Flux scale"),
    ("flags", "Flags"),
    ("calibrated", "Calibrated visibilities of the calibrators"),
)

Lines = list[str]


# --- formatting --------------------------------------------------------------------------------
def _clean(value: object) -> str:
    """One line of plain text: tabs and line breaks become spaces."""
    return re.sub(r"[\t\r\n\v\f]+", " ", str(value)).strip()


def _text(value: object) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return NA
    return _clean(value)


def _number(value: object) -> float | None:
    """A finite number, or None (missing, null, NaN, text, a boolean)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fmt(value: object, spec: str = "{:.2f}", unit: str = "") -> str:
    number = _number(value)
    if number is None:
        return NA
    return spec.format(number) + (f" {unit}" if unit else "")


def _pct(fraction: object) -> str:
    """0.123 -> '12.3 %'."""
    number = _number(fraction)
    return NA if number is None else f"{number * 100:.1f} %"


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list:
    return list(value) if isinstance(value, list | tuple) else []


def _spw_key(spw: object) -> tuple[int, str]:
    text = str(spw)
    return (int(text), text) if text.lstrip("-").isdigit() else (1 << 30, text)


def _sorted_spws(keys: Iterable[object]) -> list[str]:
    return sorted({str(k) for k in keys}, key=_spw_key)


def _label(summary: Mapping, spw: str) -> str:
    """'spw 19 (split 0)' via reports.spws; the bare key when it is not a number."""
    try:
        return spw_label(summary, spw)
    except (TypeError, ValueError):
        return f"spw {_clean(spw)}"


def _intents(intents: object) -> str:
    """CALIBRATE_BANDPASS#ON_SOURCE -> BANDPASS; OBSERVE_TARGET#ON_SOURCE -> TARGET."""
    short: list[str] = []
    for intent in _list(intents):
        name = _clean(intent).split("#")[0]
        for prefix in ("CALIBRATE_", "OBSERVE_"):
            name = name.removeprefix(prefix)
        if name and name not in short:
            short.append(name)
    return ", ".join(short) if short else NA


def _is_numeric(cell: str) -> bool:
    return bool(re.match(r"^[-+]?\d", cell))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], wrap: int = 0, indent: int = 2) -> Lines:
    """A fixed-width table; number columns right-aligned; `wrap` > 0 wraps the last column."""
    rows = [[_clean(c) for c in row] for row in rows]
    ncol = len(headers)
    wrapped: list[list[list[str]]] = []
    for row in rows:
        cells = [[c] for c in row[:-1]]
        last = row[-1] if row else ""
        cells.append((textwrap.wrap(last, wrap) or [""]) if wrap else [last])
        wrapped.append(cells)
    widths = [len(h) for h in headers]
    for cells in wrapped:
        for i, parts in enumerate(cells):
            widths[i] = max(widths[i], *(len(p) for p in parts))
    right = [
        (i < ncol - 1 or not wrap)
        and any(_is_numeric(r[i]) for r in rows)
        and all(_is_numeric(r[i]) or r[i] in (NA, NONE, "", "-", "n/a") for r in rows)
        for i in range(ncol)
    ]
    pad = " " * indent

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[i]) if right[i] else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return (pad + "  ".join(out)).rstrip()

    lines = [line(headers), line(["-" * w for w in widths])]
    for cells in wrapped:
        depth = max(len(parts) for parts in cells)
        for k in range(depth):
            lines.append(line([parts[k] if k < len(parts) else "" for parts in cells]))
    return lines


def _fields(pairs: Sequence[tuple[str, str]], indent: int = 2) -> Lines:
    """'  Label      : value' lines."""
    width = max(len(label) for label, _ in pairs)
    return [f"{' ' * indent}{label.ljust(width)} : {value}" for label, value in pairs]


def _part(title: str) -> Lines:
    return ["", "=" * WIDTH, title, "=" * WIDTH]


def _section(title: str) -> Lines:
    return ["", title, "-" * len(title)]


def _say(text: str, indent: int = 2) -> Lines:
    return textwrap.wrap(_clean(text), WIDTH, initial_indent=" " * indent, subsequent_indent=" " * indent)


# --- header ------------------------------------------------------------------------------------
def report_header(project: str, mous_uid: str, eb_uid: str, generated_utc: str) -> str:
    """The first lines of textfile.txt: what the report is about and when it was made."""
    title = "ALMA QA2 REPORT - textfile.txt"
    lines = [
        title,
        "=" * len(title),
        *_fields(
            [
                ("Project", _text(project)),
                ("Member OUS", _text(mous_uid)),
                ("Execution block", _text(eb_uid)),
                ("Generated (UTC)", _text(generated_utc)),
            ],
            indent=0,
        ),
    ]
    return "\n".join(lines) + "\n\n"


# --- 1. the observation ------------------------------------------------------------------------
def _range(stats: object, keys: Sequence[str], spec: str, unit: str) -> str:
    values = _dict(stats)
    if not values:
        return NA
    return ", ".join(f"{_fmt(values.get(k), spec, unit)} ({k})" for k in keys)


def _diameters(antennas: list) -> dict[float, int]:
    counts: dict[float, int] = {}
    for antenna in antennas:
        d = _number(_dict(antenna).get("diameter_m"))
        if d is not None:
            counts[d] = counts.get(d, 0) + 1
    return counts


def _ms_name(ms: object) -> str:
    """The MS's own name: the folder it sits in on our disks is of no use to the PI."""
    text = _text(ms)
    return text if text == NA else text.rstrip("/").rsplit("/", 1)[-1]


def _observation(obs: Mapping[str, Any]) -> Lines:
    lines = _part("1. THE OBSERVATION")
    antennas = _list(obs.get("antennas"))
    diameters = _diameters(antennas)
    if antennas:
        by_size = ", ".join(f"{d:g} m: {n}" for d, n in sorted(diameters.items()))
        n_antennas = f"{len(antennas)}" + (f" ({by_size})" if by_size else "")
    else:
        n_antennas = NA
    pwv = obs.get("pwv_mm")
    lines += [
        "",
        *_fields(
            [
                ("Measurement set", _ms_name(obs.get("ms"))),
                ("Execution block", _text(obs.get("eb_uid"))),
                ("Start (UTC)", _text(obs.get("start_utc"))),
                ("End (UTC)", _text(obs.get("end_utc"))),
                ("Duration", _fmt(obs.get("duration_min"), "{:.1f}", "min")),
                ("Antennas", n_antennas),
                ("Baselines", _range(obs.get("baselines_m"), ("min", "median", "max"), "{:.1f}", "m")),
                ("PWV", _range(pwv, ("min", "median", "max"), "{:.2f}", "mm")),
            ]
        ),
    ]

    lines += _section("Antennas")
    if antennas:
        rows = [
            [
                _text(_dict(a).get("name")),
                _text(_dict(a).get("station")),
                _fmt(_dict(a).get("diameter_m"), "{:g}"),
            ]
            for a in antennas
        ]
        lines += _table(["antenna", "station", "diameter (m)"], rows)
    else:
        lines.append(f"  {NA}")

    spws = _list(obs.get("spws"))
    lines += _section("Spectral windows")
    if spws:
        rows = []
        for spw in spws:
            s = _dict(spw)
            centre, width = _number(s.get("centre_ghz")), _number(s.get("width_mhz"))
            velocity = (
                abs(width) / (centre * 1e3) * C_KM_S if centre and width is not None and centre > 0 else None
            )
            correlations = _list(s.get("correlations"))
            rows.append(
                [
                    _text(s.get("id")),
                    _text(s.get("name")),
                    _fmt(centre, "{:.4f}"),
                    _fmt(width, "{:.4f}"),
                    _fmt(velocity, "{:.3f}"),
                    _fmt(s.get("bandwidth_mhz"), "{:.1f}"),
                    _fmt(s.get("nchan"), "{:.0f}"),
                    " ".join(_clean(c) for c in correlations) if correlations else NA,
                ]
            )
        lines += _table(
            [
                "spw",
                "name",
                "centre (GHz)",
                "chan width (MHz)",
                "chan width (km/s)",
                "bandwidth (MHz)",
                "channels",
                "correlations",
            ],
            rows,
        )
    else:
        lines.append(f"  {NA}")

    lines += _fields_table(obs)
    lines += _scans(obs)
    lines += _imaging_hints(spws, _dict(obs.get("baselines_m")), diameters)
    return lines


def _fields_table(obs: Mapping[str, Any]) -> Lines:
    lines = _section("Fields")
    fields = [_dict(f) for f in _list(obs.get("fields"))]
    on_source = _dict(obs.get("time_on_source_min"))
    elevation = _dict(obs.get("elevation_deg"))
    names = [str(f.get("name")) for f in fields if f.get("name") is not None]
    extra = [n for n in [*on_source, *elevation] if n not in names]
    fields += [{"name": n} for n in dict.fromkeys(extra)]
    if not fields:
        return [*lines, f"  {NA}"]
    rows = []
    for f in fields:
        name = f.get("name")
        el = _dict(elevation.get(str(name))) if name is not None else {}
        el_text = f"{_fmt(el.get('min'), '{:.1f}')} - {_fmt(el.get('max'), '{:.1f}')}" if el else NA
        rows.append(
            [
                _text(f.get("id")),
                _text(name),
                _intents(f.get("intents")),
                _text(f.get("ra")),
                _text(f.get("dec")),
                _fmt(on_source.get(str(name)), "{:.1f}"),
                el_text,
            ]
        )
    return lines + _table(
        ["id", "field", "intents", "RA (J2000)", "Dec (J2000)", "on source (min)", "elevation (deg)"], rows
    )


def _scans(obs: Mapping[str, Any]) -> Lines:
    lines = _section("Scans")
    scans = [_dict(s) for s in _list(obs.get("scans"))]
    if not scans:
        return [*lines, f"  {NA}"]
    rows = [
        [
            _text(s.get("number")),
            _text(s.get("field")),
            _intents(s.get("intents")),
            _text(s.get("start_utc")),
            _fmt(s.get("duration_s"), "{:.1f}"),
        ]
        for s in scans
    ]
    return lines + _table(["scan", "field", "intents", "start (UTC)", "duration (s)"], rows)


def _is_science(spw: Mapping[str, Any]) -> bool:
    """Not the WVR, square-law or channel-average windows (ALMA names them so), nor 1-4 channels."""
    name = str(spw.get("name") or "").upper()
    nchan = _number(spw.get("nchan"))
    return not any(m in name for m in SKIPPED_SPWS) and (nchan is None or nchan > 4)


def _imaging_hints(spws: list, baselines: Mapping[str, Any], diameters: dict[float, int]) -> Lines:
    """Primary beam, angular resolution, cell and largest scale per spw, from the layout alone."""
    lines = _section("Imaging hints (estimates, science spws)")
    bmax, bmin = _number(baselines.get("max")), _number(baselines.get("min"))
    spws = [s for s in spws if _is_science(_dict(s))] or spws
    if not spws:
        return [*lines, f"  {NA}"]
    sizes = sorted(diameters)
    rows = []
    for spw in spws:
        s = _dict(spw)
        centre = _number(s.get("centre_ghz"))
        if centre is None or centre <= 0:
            rows.append([_text(s.get("id")), NA, *[NA for _ in sizes], NA, NA, NA])
            continue
        wavelength_m = C_KM_S * 1e3 / (centre * 1e9)

        def angle(factor: float, length: float | None, wavelength: float = wavelength_m) -> float | None:
            return factor * wavelength / length * ARCSEC_PER_RAD if length and length > 0 else None

        resolution = angle(1.0, bmax)
        rows.append(
            [
                _text(s.get("id")),
                f"{wavelength_m * 1e3:.3f}",
                *[_fmt(angle(PB_FACTOR, d), "{:.1f}") for d in sizes],
                _fmt(resolution, "{:.3f}"),
                _fmt(resolution / CELLS_PER_BEAM if resolution else None, "{:.4f}"),
                _fmt(angle(MRS_FACTOR, bmin), "{:.1f}"),
            ]
        )
    headers = [
        "spw",
        "wavelength (mm)",
        *[f"primary beam {d:g} m (arcsec)" for d in sizes],
        "resolution (arcsec)",
        "cell (arcsec)",
        "largest scale (arcsec)",
    ]
    lines += _table(headers, rows)
    note = (
        f"Primary beam FWHM = {PB_FACTOR} lambda/D; resolution ~ lambda / longest baseline (the "
        f"beam depends on the weighting and the uv coverage); cell = resolution / {CELLS_PER_BEAM}; "
        f"largest recoverable scale ~ {MRS_FACTOR} lambda / shortest baseline."
    )
    lines += ["", *_say(note)]
    return lines


# --- 2. the calibration ------------------------------------------------------------------------
def _worst(per_antenna: Mapping, spw: str, metric: str, lowest: bool = False) -> tuple[str, float] | None:
    """(antenna, value) of the worst antenna on a metric in a spw (largest, or smallest)."""
    values = {
        str(a): v
        for a, per_spw in per_antenna.items()
        if (v := _number(_dict(_dict(per_spw).get(spw)).get(metric))) is not None
    }
    if not values:
        return None
    pick = min if lowest else max
    antenna = pick(values, key=lambda a: values[a])
    return antenna, values[antenna]


def _median(values: Iterable[object]) -> float | None:
    finite = sorted(v for v in (_number(x) for x in values) if v is not None)
    if not finite:
        return None
    mid = len(finite) // 2
    return finite[mid] if len(finite) % 2 else (finite[mid - 1] + finite[mid]) / 2


def _per_antenna_spws(summary: Mapping) -> list[str]:
    listed = _list(summary.get("spws"))
    if listed:
        return _sorted_spws(listed)
    return _sorted_spws(k for v in _dict(summary.get("per_antenna")).values() for k in _dict(v))


def _tsys(s: Mapping) -> Lines:
    per_antenna = _dict(s.get("per_antenna"))
    array_median = _dict(s.get("array_median"))
    atm = _dict(s.get("atm_lines"))
    spws = _sorted_spws(_list(s.get("spws")) or array_median)
    if not spws:
        return [f"  Tsys per spw: {NA}"]
    rows = []
    for spw in spws:
        median = _number(array_median.get(spw))
        if median is None:
            high = NA
        else:
            above = sorted(
                (
                    (str(a), m)
                    for a, v in per_antenna.items()
                    if (m := _number(_dict(_dict(v).get(spw)).get("median"))) is not None
                    and m > TSYS_WARN_RATIO * median
                ),
                key=lambda am: -am[1],
            )
            high = ", ".join(f"{a} ({m:.0f} K)" for a, m in above) or NONE
        line = _dict(atm.get(spw))
        atm_text = (
            f"{_fmt(line.get('freq_ghz'), '{:.3f}', 'GHz')}: transmission dip {_pct(line.get('dip'))}, "
            f"Tsys rise {_pct(line.get('tsys_rise'))}"
            if line
            else NA
        )
        rows.append([_label(s, spw), _fmt(median, "{:.1f}"), atm_text, high])
    return _table(
        [
            "spw",
            "array median Tsys (K)",
            "deepest atmospheric line",
            f"antennas above {TSYS_WARN_RATIO:g} x array median",
        ],
        rows,
        wrap=40,
    )


def _wvr(s: Mapping) -> Lines:
    improvement = _number(s.get("improvement"))
    before, after = _dict(s.get("phase_rms_before")), _dict(s.get("phase_rms_after"))
    worse = sorted(
        a for a in after if (b := _number(before.get(a))) is not None and (_number(after[a]) or 0) > b
    )
    report = _dict(s.get("report"))
    names = [str(n) for n in _list(report.get("Name"))]
    flagged = [n for n, f in zip(names, _list(report.get("Flag")), strict=False) if f is True]
    lines = _fields(
        [
            (
                "Improvement",
                NA if improvement is None else f"{improvement:.2f} x (median phase rms without / with WVR)",
            ),
            ("Phase rms before (median)", _fmt(_median(before.values()), "{:.1f}", "deg")),
            ("Phase rms after (median)", _fmt(_median(after.values()), "{:.1f}", "deg")),
            ("Reference antenna", _text(s.get("reference_antenna"))),
            ("Worse with WVR", ", ".join(worse) if worse else (NONE if after else NA)),
            ("Flagged in wvrgcal", ", ".join(flagged) if flagged else (NONE if names else NA)),
        ]
    )
    if not names:
        names = sorted({*before, *after})
    if not names:
        return lines

    def column(key: str, i: int) -> object:
        values = _list(report.get(key))
        return values[i] if i < len(values) else None

    rows = []
    for i, name in enumerate(names):
        wvr_ok, flag = column("WVR", i), column("Flag", i)
        rows.append(
            [
                name,
                NA if wvr_ok is None else ("yes" if wvr_ok else "no"),
                NA if flag is None else ("yes" if flag else "no"),
                _fmt(column("RMS_um", i), "{:.0f}"),
                _fmt(column("Disc_um", i), "{:.0f}"),
                _fmt(before.get(name), "{:.1f}"),
                _fmt(after.get(name), "{:.1f}"),
            ]
        )
    return [
        *lines,
        "",
        *_table(
            [
                "antenna",
                "WVR",
                "flagged",
                "RMS (um)",
                "Disc (um)",
                "phase rms before (deg)",
                "after (deg)",
            ],
            rows,
        ),
    ]


def _antenna_value(found: tuple[str, float] | None, spec: str) -> str:
    return NA if found is None else f"{found[0]} ({spec.format(found[1])})"


def _bandpass(s: Mapping) -> Lines:
    per_antenna = _dict(s.get("per_antenna"))
    spw_snr, nchan = _dict(s.get("spw_snr")), _dict(s.get("nchan"))
    spws = _per_antenna_spws(s) or _sorted_spws(spw_snr)
    if not spws:
        return [f"  Bandpass per spw: {NA}"]
    rows = []
    for spw in spws:
        notch = _worst(per_antenna, spw, "notch_depth", lowest=True)
        rows.append(
            [
                _label(s, spw),
                _fmt(nchan.get(spw), "{:.0f}"),
                _fmt(spw_snr.get(spw), "{:.1f}"),
                _antenna_value(_worst(per_antenna, spw, "chan2chan"), "{:.4f}"),
                _antenna_value(notch, "{:.2f}"),
                _antenna_value(_worst(per_antenna, spw, "phase_jump_deg"), "{:.1f} deg"),
            ]
        )
    return _table(
        [
            "spw",
            "channels",
            "median SNR",
            "worst chan-to-chan (antenna)",
            "deepest notch, amp/median (antenna)",
            "largest phase jump (antenna)",
        ],
        rows,
    )


def _gains(s: Mapping) -> Lines:
    per_antenna = _dict(s.get("per_antenna"))
    spw_snr = _dict(s.get("spw_snr"))
    spws = _per_antenna_spws(s) or _sorted_spws(spw_snr)
    flagged = [str(a) for a in _list(s.get("flagged_antennas"))]
    lines = _fields(
        [
            ("Solution mode", _text(s.get("calmode"))),
            ("Antennas flagged entirely", ", ".join(flagged) if flagged else NONE),
        ]
    )
    if not spws:
        return [*lines, f"  Gains per spw: {NA}"]
    rows = []
    for spw in spws:

        def metric(key: str, spw: str = spw) -> list[object]:
            return [_dict(_dict(v).get(spw)).get(key) for v in per_antenna.values()]

        rows.append(
            [
                _label(s, spw),
                _fmt(spw_snr.get(spw), "{:.1f}"),
                _fmt(_median(metric("phase_rms_deg")), "{:.1f}"),
                _antenna_value(_worst(per_antenna, spw, "phase_rms_deg"), "{:.1f} deg"),
                _antenna_value(_worst(per_antenna, spw, "max_jump_deg"), "{:.1f} deg"),
                _fmt(_median(metric("amp_median")), "{:.3f}"),
            ]
        )
    return [
        *lines,
        "",
        *_table(
            [
                "spw",
                "median SNR",
                "phase rms median (deg)",
                "worst phase rms (antenna)",
                "largest phase jump (antenna)",
                "amp median",
            ],
            rows,
        ),
    ]


def _flux(s: Mapping) -> Lines:
    fields = _dict(s.get("fields"))
    index = s.get("spectral_index")
    catalogue = _dict(s.get("catalogue"))
    lines = _fields([("Flux reference", _text(s.get("reference")))])
    if not fields:
        return [*lines, f"  Derived fluxes: {NA}"]
    rows = []
    for field, spws in fields.items():
        spws = _dict(spws)
        if not spws:
            rows.append([_clean(field), NA, NA, NA, NA, NA])
            continue
        for spw in _sorted_spws(spws):
            v = _dict(spws[spw])
            value, error = _number(v.get("flux")), _number(v.get("error"))
            if value is None:
                flux = NA
            elif error is None:
                flux = f"{value:.4f} Jy (error {NA})"
            else:
                flux = f"{value:.4f} +/- {error:.4f} Jy"
            snr = value / error if value is not None and error else None
            rows.append(
                [
                    _clean(field),
                    _label(s, spw),
                    _fmt(v.get("freq_ghz"), "{:.3f}"),
                    _fmt(v.get("bandwidth_mhz"), "{:.1f}"),
                    flux,
                    _fmt(snr, "{:.1f}"),
                ]
            )
    lines += [
        "",
        *_table(["field", "spw", "frequency (GHz)", "bandwidth (MHz)", "flux density", "SNR"], rows),
    ]
    # spectral_index: {field: alpha} as written by the worker; a bare number is read as one index
    # for every field.
    if isinstance(index, Mapping):
        alphas = {str(k): index[k] for k in index}
    elif _number(index) is not None:
        alphas = {str(f): index for f in fields}
    else:
        alphas = {}
    lines += ["", "  Spectral index (fluxscale fit, S ~ nu^alpha):"]
    if alphas:
        lines += [f"    {_clean(f)}: alpha = {_fmt(a, '{:+.3f}')}" for f, a in alphas.items()]
    else:
        lines.append(f"    {NA}")
    described = []
    for field, entry in catalogue.items():
        e = _dict(entry)
        if not e:
            described.append(f"    {_clean(field)}: not in the calibrator catalogue")
            continue
        alpha = _number(e.get("spectral_index"))
        described.append(
            f"    {_clean(field)}: {_fmt(e.get('flux_jy'), '{:.4g}', 'Jy')} at "
            f"{_fmt(e.get('freq_ghz'), '{:.4g}', 'GHz')}, "
            + ("no spectral index" if alpha is None else f"alpha {alpha:+.3f}")
            + (f" ({_clean(e['provenance'])})" if e.get("provenance") else "")
        )
    if described:
        lines += ["", "  Calibrator catalogue:", *described]
    return lines


def _worst_flagged(per_antenna: Mapping) -> str:
    values = {str(a): f for a, v in per_antenna.items() if (f := _number(v)) is not None}
    if not values:
        return NA
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:WORST_FLAGGED]
    return ", ".join(f"{a} {_pct(f)}" for a, f in ranked)


def _flags(items: Sequence[Mapping]) -> Lines:
    """One table over every flag save: the percentages per stage."""
    rows = []
    notes: Lines = []
    for item in items:
        s = _dict(item.get("summary"))
        stage = _text(s.get("stage") or item.get("name"))
        if "cannot_assess" in s:
            notes.append(f"  {stage}: cannot assess: {_clean(s['cannot_assess'])}")
            continue
        total = _number(s.get("total_fraction"))
        previous = _dict(s.get("previous"))
        before = _number(previous.get("fraction"))
        new = (
            f"{_pct(max(0.0, total - before))} (since {_text(previous.get('stage'))})"
            if total is not None and before is not None
            else ("- (first save)" if "previous" in s and s.get("previous") is None else NA)
        )
        vis = _text(s.get("vis"))
        rows.append(
            [
                stage,
                vis.rsplit("/", 1)[-1],
                _pct(total),
                new,
                _worst_flagged(_dict(s.get("antenna"))),
            ]
        )
    lines: Lines = []
    if rows:
        lines += _table(
            ["stage", "MS", "flagged", "newly flagged", "most flagged antennas (of their baselines)"],
            rows,
        )
    spw_rows = []
    for item in items:
        s = _dict(item.get("summary"))
        per_spw = _dict(s.get("spw"))
        if per_spw and "cannot_assess" not in s:
            spw_rows.append(
                [
                    _text(s.get("stage") or item.get("name")),
                    ", ".join(f"{_clean(k)}: {_pct(per_spw[k])}" for k in _sorted_spws(per_spw)),
                ]
            )
    if spw_rows:
        lines += ["", *_table(["stage", "flagged per spw (the MS's own ids)"], spw_rows, wrap=60)]
    return [*lines, *notes]


def _calibrated(s: Mapping) -> Lines:
    per_field = _dict(s.get("per_field"))
    lines = _fields([("Data column", _text(s.get("column"))), ("MS", _text(s.get("vis")))])
    if not per_field:
        return [*lines, f"  Calibrators: {NA}"]
    rows = []
    for field, spws in per_field.items():
        for spw in _sorted_spws(_dict(spws)):
            m = _dict(_dict(spws)[spw])
            rows.append(
                [
                    _clean(field),
                    _label(s, spw),
                    _fmt(m.get("amp_mean"), "{:.4f}"),
                    _pct(m.get("amp_freq_dev")),
                    _fmt(m.get("phase_freq_rms_deg"), "{:.1f}"),
                    _fmt(m.get("phase_time_rms_deg"), "{:.1f}"),
                    _pct(m.get("amp_time_rms_frac")),
                    _fmt(m.get("uv_ratio"), "{:.3f}"),
                    _pct(m.get("flagged_fraction")),
                ]
            )
    return [
        *lines,
        "",
        *_table(
            [
                "field",
                "spw",
                "amp (Jy)",
                "amp vs freq",
                "phase rms freq (deg)",
                "phase rms time (deg)",
                "amp rms time",
                "uv outer/inner",
                "flagged",
            ],
            rows,
        ),
    ]


WRITERS = {
    "tsys": _tsys,
    "wvr": _wvr,
    "bandpass": _bandpass,
    "gains": _gains,
    "flux": _flux,
    "calibrated": _calibrated,
}


def _calibration(calibration: list[dict]) -> Lines:
    lines = _part("2. THE CALIBRATION")
    items = [i for i in calibration if isinstance(i, Mapping)]
    refant = next(
        (_dict(i.get("summary")).get("refant") for i in items if i.get("topic") == "refant"),
        None,
    )
    lines += ["", *_fields([("Reference antenna", _text(refant))])]
    for topic, title in TOPICS:
        lines += _section(title)
        of_topic = [i for i in items if i.get("topic") == topic]
        if not of_topic:
            lines.append(f"  {NA}")
            continue
        if topic == "flags":
            lines += _flags(of_topic)
            continue
        for n, item in enumerate(of_topic):
            summary = _dict(item.get("summary"))
            if n:
                lines.append("")
            lines.append(f"  {_text(item.get('name'))}:")
            if "cannot_assess" in summary:
                lines.append(f"  cannot assess: {_clean(summary['cannot_assess'])}")
            elif not summary:
                lines.append(f"  {NA}")
            else:
                lines += WRITERS[topic](summary)
    return lines


# --- 3. findings and edits ---------------------------------------------------------------------
def _score(finding: Mapping) -> float:
    number = _number(finding.get("score"))
    return number if number is not None else math.inf


def _score_text(score: object) -> str:
    """'0.42'; a negative score is the 'could not be assessed' marker (reports.thresholds)."""
    number = _number(score)
    if number is None:
        return NA
    return "n/a" if number < 0 else f"{number:.2f}"


def _version(edit: Mapping) -> float:
    number = _number(edit.get("version"))
    return number if number is not None else math.inf


def _findings_and_edits(findings: list[dict], edits: list[dict]) -> Lines:
    lines = _part("3. FINDINGS AND EDITS")
    lines += _section("Findings (score 0 to 1, lower is worse; worst first; n/a: could not be assessed)")
    found = sorted((f for f in findings if isinstance(f, Mapping)), key=_score)
    if found:
        rows = [
            [
                _score_text(f.get("score")),
                _text(f.get("topic")),
                _text(f.get("antenna")) if f.get("antenna") else "-",
                _text(f.get("spw")) if f.get("spw") not in (None, "") else "-",
                _text(f.get("message")),
            ]
            for f in found
        ]
        lines += _table(["score", "topic", "antenna", "spw", "message"], rows, wrap=MESSAGE_WIDTH)
    else:
        lines.append(f"  {NONE}")

    lines += _section("Script edits")
    done = sorted(
        (e for e in edits if isinstance(e, Mapping)),
        key=_version,
    )
    if not done:
        return [*lines, f"  {NONE}"]
    for n, edit in enumerate(done):
        if n:
            lines.append("")
        lines += textwrap.wrap(
            f"Version {_text(edit.get('version'))}: {_text(edit.get('description'))}",
            WIDTH,
            initial_indent="  ",
            subsequent_indent="    ",
        )
        for label, key in (("expected", "expect"), ("verdict", "verdict")):
            lines += textwrap.wrap(
                f"{label + ':':<10}{_text(edit.get(key))}",
                WIDTH,
                initial_indent="    ",
                subsequent_indent=" " * 14,
            )
    return lines


# --- the file ----------------------------------------------------------------------------------
def textfile(observation: dict, calibration: list[dict], findings: list[dict], edits: list[dict]) -> str:
    """textfile.txt (without its header: report_header gives the first lines) in three parts:
    the observation, the calibration, the findings and script edits."""
    lines = [
        *_observation(_dict(observation)),
        *_calibration(list(calibration or [])),
        *_findings_and_edits(list(findings or []), list(edits or [])),
    ]
    return "\n".join(line.replace("\t", " ").rstrip() for line in lines).lstrip("\n") + "\n"
