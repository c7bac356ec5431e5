"""Static PNGs of an EB's QA2 report folder, drawn from the diagnostics' artifacts.

`es.generateQA2Report` puts plots next to textfile.txt for the PI; here they come from the
float32 .npz arrays the worker already extracted (layout: reports/ARTIFACTS.md), never from
a CASA table. matplotlib's Agg canvas on a `Figure` of its own: no pyplot, no global state.

Pure: no Django, no CASA. One call renders one diagnostic (topic, summary, arrays) into
`out_dir` and returns the paths written; a diagnostic without arrays (flux excepted: it is
drawn from its summary) or with `cannot_assess` writes nothing. At most four panels a PNG:
more spws (or fields) are split over several PNGs. Every file name passes through safe_name.
"""

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reports.spws import ms_spw, spw_label

PANELS = 4  # per PNG at most
LEGEND_MAX = 12  # lines in a panel above which no legend is drawn
DPI = 80
SIZE_IN = (10.0, 6.0)
NAME_MAX = 120
POL_STYLES = ("-", "--", ":", "-.")

Draw = Callable[[Axes, str], int]
QUANTITY = {"amp": "amplitude", "phase": "phase"}


# --- names -------------------------------------------------------------------------------------
def safe_name(text: str) -> str:
    """A file-name-safe version of `text`: only [A-Za-z0-9._-], no leading dot, no '..', at most
    120 characters. Anything else (a slash, a space, a non-ASCII letter) becomes '_'; a name cut
    short keeps its extension and gets a short hash, so two long names stay two names."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(text))
    name = re.sub(r"\.{2,}", "_", name)  # no '..' anywhere
    name = re.sub(r"^[.-]+", "_", name)  # no hidden file, no name read as an option
    name = name.rstrip(".")
    if not name.strip("_"):
        return "unnamed"
    if len(name) > NAME_MAX:
        digest = hashlib.sha1(str(text).encode(), usedforsecurity=False).hexdigest()[:8]
        stem, dot, ext = name.rpartition(".")
        suffix = f".{ext}" if dot and stem and 0 < len(ext) <= 10 else ""
        stem = name[: len(name) - len(suffix)] if suffix else name
        name = f"{stem[: NAME_MAX - len(suffix) - 9].rstrip('.')}-{digest}{suffix}"
    return name


def _ms_display(ms: str) -> str:
    """The MS's own name (its last path component), for titles and file names."""
    return PurePosixPath(str(ms).replace("\\", "/").rstrip("/")).name or str(ms)


# --- figure helpers ----------------------------------------------------------------------------
def _figure(n_panels: int) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    rows, cols = {1: (1, 1), 2: (1, 2)}.get(n_panels, (2, 2))
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for extra in axes[n_panels:]:
        fig.delaxes(extra)
    return fig, axes[:n_panels]


def _save(fig: Figure, out_dir: Path, filename: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / safe_name(filename)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _legend(ax: Axes, n_lines: int) -> None:
    if 0 < n_lines <= LEGEND_MAX:
        ax.legend(fontsize="small", ncol=2 if n_lines > 6 else 1, loc="best")
    elif n_lines == 0:
        ax.text(0.5, 0.5, "no unflagged data", transform=ax.transAxes, ha="center", va="center")


def _axes(ax: Axes, xlabel: str, ylabel: str, crowded: bool) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if crowded:  # frequencies like 231.875 GHz: few ticks, so that their labels do not collide
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))


def _chunks(items: Sequence[Any], size: int = PANELS) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _spw_sort(spw: str) -> tuple[int, str]:
    return (int(spw), spw) if spw.lstrip("-").isdigit() else (1 << 30, spw)


def _spws(arrays: Mapping[str, np.ndarray], prefix: str) -> list[str]:
    """The spw keys of the arrays named `<prefix><spw>`."""
    found = {k[len(prefix) :] for k in arrays if k.startswith(prefix) and k[len(prefix) :]}
    return sorted(found, key=_spw_sort)


def _array(arrays: Mapping[str, np.ndarray], key: str) -> np.ndarray | None:
    return np.asarray(arrays[key]) if key in arrays else None


def _antennas(summary: Mapping, n: int) -> list[str]:
    names = [str(a) for a in summary.get("antennas") or []]
    return names if len(names) == n else [f"antenna {i}" for i in range(n)]


def _line(ax: Axes, x: np.ndarray, y: np.ndarray, label: str, **style: Any) -> int:
    """Draw one line when it has data of x's length; 1 when drawn, else 0."""
    y = np.asarray(y, dtype=float)
    if y.shape != np.shape(x) or not np.isfinite(y).any():
        return 0
    ax.plot(x, y, label=label, **style)
    return 1


def _label(summary: Mapping, spw: str) -> str:
    try:
        return spw_label(summary, spw)
    except (TypeError, ValueError):
        return f"spw {spw}"


def _spw_id(summary: Mapping, spw: str) -> str:
    try:
        return str(ms_spw(summary, spw))
    except (TypeError, ValueError):
        return spw


class _Pages:
    """The naming and paging of one render call."""

    def __init__(self, ms: str, topic: str, summary: Mapping, out_dir: Path, tag: str) -> None:
        self.ms = _ms_display(ms)
        self.topic = topic
        self.summary = summary
        self.out_dir = out_dir
        self.tag = tag

    def filename(self, kind: str, suffix: str = "") -> str:
        middle = f".{self.tag}" if self.tag else ""
        return f"{self.ms}{middle}.{kind}{suffix}.png"

    def per_spw(
        self, kind: str, what: str, spws: list[str], draw: Draw, xlabel: str, ylabel: str
    ) -> list[Path]:
        """One panel per spw, four to a PNG; `{ms}.{kind}.png`, or `{ms}.{kind}_spw17_19_21_23.png`
        and so on when there are more than four spws."""
        groups = _chunks(spws)
        paths = []
        for group in groups:
            suffix = "" if len(groups) == 1 else "_spw" + "_".join(_spw_id(self.summary, s) for s in group)
            fig, axes = _figure(len(group))
            for ax, spw in zip(axes, group, strict=True):
                _legend(ax, draw(ax, spw))
                ax.set_title(_label(self.summary, spw), fontsize="medium")
                _axes(ax, xlabel, ylabel, crowded=len(group) > 1)
            fig.suptitle(f"{self.ms} - {self.topic}: {what}")
            paths.append(_save(fig, self.out_dir, self.filename(kind, suffix)))
        return paths

    def per_field(
        self,
        kind: str,
        what: str,
        fields: list[tuple[int, str]],
        draw: Callable[[Axes, int], int],
        xlabel: str,
        ylabel: str,
    ) -> list[Path]:
        """One panel per field, four to a PNG (`_part1`, `_part2`, ... beyond four fields)."""
        groups = _chunks(fields)
        paths = []
        for n, group in enumerate(groups, start=1):
            suffix = "" if len(groups) == 1 else f"_part{n}"
            fig, axes = _figure(len(group))
            for ax, (index, field) in zip(axes, group, strict=True):
                _legend(ax, draw(ax, index))
                ax.set_title(field, fontsize="medium")
                _axes(ax, xlabel, ylabel, crowded=len(group) > 1)
            fig.suptitle(f"{self.ms} - {self.topic}: {what}")
            paths.append(_save(fig, self.out_dir, self.filename(kind, suffix)))
        return paths

    def single(self, kind: str, what: str, draw: Callable[[Axes], int], xlabel: str, ylabel: str) -> Path:
        fig, (ax,) = _figure(1)
        _legend(ax, draw(ax))
        _axes(ax, xlabel, ylabel, crowded=False)
        fig.suptitle(f"{self.ms} - {self.topic}: {what}")
        return _save(fig, self.out_dir, self.filename(kind))


# --- topics ------------------------------------------------------------------------------------
def _tsys(pages: _Pages, summary: Mapping, arrays: Mapping[str, np.ndarray]) -> list[Path]:
    spws = [s for s in _spws(arrays, "tsys_") if f"freq_ghz_{s}" in arrays]

    def draw(ax: Axes, spw: str) -> int:
        x, rows = np.asarray(arrays[f"freq_ghz_{spw}"]), np.atleast_2d(arrays[f"tsys_{spw}"])
        names = _antennas(summary, len(rows))
        n = sum(
            _line(ax, x, row, name, color=f"C{i % 10}", lw=0.8)
            for i, (name, row) in enumerate(zip(names, rows, strict=True))
        )
        atm = _array(arrays, f"atm_{spw}")
        if atm is not None and atm.shape == x.shape:
            twin = ax.twinx()
            twin.plot(x, atm, color="magenta", ls=":", lw=1.2)
            twin.set_ylim(0, 1.05)
            twin.set_ylabel("ATM transmission (dotted, 0-1)", color="magenta")
        return n

    return pages.per_spw(
        "tsys", "Tsys vs frequency (time-averaged)", spws, draw, "Frequency (GHz)", "Tsys (K)"
    )


def _wvr(pages: _Pages, summary: Mapping, arrays: Mapping[str, np.ndarray]) -> list[Path]:
    time, path = _array(arrays, "time"), _array(arrays, "path_um")
    paths = []
    if time is not None and path is not None:
        rows = np.atleast_2d(path)
        minutes = np.asarray(time, dtype=float) / 60.0

        def draw(ax: Axes) -> int:
            n = 0
            for i, (name, row) in enumerate(zip(_antennas(summary, len(rows)), rows, strict=True)):
                row = np.asarray(row, dtype=float)
                if np.isfinite(row).any():
                    n += _line(ax, minutes, row - np.nanmedian(row), name, color=f"C{i % 10}", lw=0.8)
            return n

        paths.append(
            pages.single(
                "wvr_path",
                "WVR path vs time (each antenna's median removed)",
                draw,
                "Time since the first sample (min)",
                "Path (um)",
            )
        )
    before, after = summary.get("phase_rms_before") or {}, summary.get("phase_rms_after") or {}
    names = [a for a in summary.get("antennas") or sorted({*before, *after}) if a in before or a in after]
    if names:

        def bars(ax: Axes) -> int:
            x = np.arange(len(names))
            values = [[_finite(d.get(a)) for a in names] for d in (before, after)]
            ax.bar(x - 0.2, values[0], width=0.4, label="without WVR", color="C1")
            ax.bar(x + 0.2, values[1], width=0.4, label="with WVR", color="C0")
            ax.set_xticks(x, names, rotation=90, fontsize="small")
            return 2

        improvement = summary.get("improvement")
        what = "phase rms on the calibrators with and without WVR"
        if isinstance(improvement, int | float) and math.isfinite(improvement):
            what += f" (improvement {improvement:.2f} x)"
        paths.append(pages.single("wvr_phase_rms", what, bars, "Antenna", "Phase rms (deg)"))
    return paths


def _finite(value: object) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def _bandpass(pages: _Pages, summary: Mapping, arrays: Mapping[str, np.ndarray]) -> list[Path]:
    paths: list[Path] = []
    for quantity, kind, ylabel in (
        ("amp", "bandpass_amp", "Amplitude (normalised)"),
        ("phase", "bandpass_phase", "Phase (deg)"),
    ):
        spws = [s for s in _spws(arrays, f"{quantity}_") if f"freq_ghz_{s}" in arrays]

        def draw(ax: Axes, spw: str, quantity: str = quantity) -> int:
            x = np.asarray(arrays[f"freq_ghz_{spw}"])
            cube = np.asarray(arrays[f"{quantity}_{spw}"])
            if cube.ndim == 2:
                cube = cube[:, None, :]
            n = 0
            for i, name in enumerate(_antennas(summary, cube.shape[0])):
                for p in range(cube.shape[1]):
                    label = f"{name} pol {p}" if cube.shape[1] > 1 else name
                    style = POL_STYLES[p % len(POL_STYLES)]
                    n += _line(ax, x, cube[i, p], label, color=f"C{i % 10}", ls=style, lw=0.8)
            return n

        paths += pages.per_spw(
            kind,
            f"{QUANTITY[quantity]} vs frequency (line style = polarization)",
            spws,
            draw,
            "Frequency (GHz)",
            ylabel,
        )
    return paths


def _gains(pages: _Pages, summary: Mapping, arrays: Mapping[str, np.ndarray]) -> list[Path]:
    calmode = str(summary.get("calmode") or "ap").lower()
    paths: list[Path] = []
    for quantity, kind, ylabel in (
        ("phase", "gains_phase", "Phase (deg)"),
        ("amp", "gains_amp", "Amplitude"),
    ):
        if calmode in ("p", "a") and calmode != quantity[0]:
            continue  # a phase-only table's amplitudes are 1 (and an amplitude-only one's phases 0)
        spws = [s for s in _spws(arrays, f"{quantity}_") if f"time_{s}" in arrays]

        def draw(ax: Axes, spw: str, quantity: str = quantity) -> int:
            x = np.asarray(arrays[f"time_{spw}"], dtype=float) / 60.0
            rows = np.atleast_2d(arrays[f"{quantity}_{spw}"])
            names = _antennas(summary, len(rows))
            return sum(
                _line(ax, x, row, name, color=f"C{i % 10}", lw=0.6, marker=".", ms=3)
                for i, (name, row) in enumerate(zip(names, rows, strict=True))
            )

        paths += pages.per_spw(
            kind, f"{QUANTITY[quantity]} vs time", spws, draw, "Time since the first solution (min)", ylabel
        )
    return paths


CALIBRATED_PLOTS = (
    # kind, what, y array, x array (None: the spw's frequencies), x label, y label
    (
        "calibrated_amp_vs_freq",
        "amplitude vs frequency",
        "amp_freq",
        None,
        "Frequency (GHz)",
        "Amplitude (Jy)",
    ),
    ("calibrated_phase_vs_freq", "phase vs frequency", "phase_freq", None, "Frequency (GHz)", "Phase (deg)"),
    (
        "calibrated_amp_vs_uvdist",
        "amplitude vs uv distance",
        "amp_uv",
        "uv_klambda",
        "uv distance (klambda)",
        "Amplitude (Jy)",
    ),
    (
        "calibrated_phase_vs_time",
        "phase vs time",
        "phase_time",
        "time",
        "Time since the field's first integration (min)",
        "Phase (deg)",
    ),
)


def _calibrated(pages: _Pages, summary: Mapping, arrays: Mapping[str, np.ndarray]) -> list[Path]:
    fields = [(i, str(f)) for i, f in enumerate(summary.get("fields") or [])]
    paths: list[Path] = []
    for kind, what, y_name, x_name, xlabel, ylabel in CALIBRATED_PLOTS:
        with_data = [(i, f) for i, f in fields if _spws(arrays, f"f{i}_{y_name}_")]
        if not with_data:
            continue

        def draw(ax: Axes, index: int, y_name: str = y_name, x_name: str | None = x_name) -> int:
            n = 0
            for k, spw in enumerate(_spws(arrays, f"f{index}_{y_name}_")):
                x = _array(arrays, f"freq_ghz_{spw}" if x_name is None else f"f{index}_{x_name}_{spw}")
                if x is None:
                    continue
                x = np.asarray(x, dtype=float) / (60.0 if x_name == "time" else 1.0)
                style: dict[str, Any] = {"color": f"C{k % 10}"}
                if x_name is None:
                    style["lw"] = 1.0
                elif x_name == "time":
                    style.update(ls="none", marker=".", ms=3)
                else:
                    style.update(lw=0.8, marker="o", ms=3)
                n += _line(ax, x, arrays[f"f{index}_{y_name}_{spw}"], _label(summary, spw), **style)
            return n

        paths += pages.per_field(kind, f"{what} (colour = spw)", with_data, draw, xlabel, ylabel)
    return paths


def _flux(pages: _Pages, summary: Mapping) -> list[Path]:
    fields = summary.get("fields") or {}
    index = summary.get("spectral_index")
    points: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for field, spws in fields.items():
        xs, ys, es = [], [], []
        for v in (spws or {}).values():
            freq, flux, error = _finite(v.get("freq_ghz")), _finite(v.get("flux")), _finite(v.get("error"))
            if math.isfinite(freq) and math.isfinite(flux):
                xs.append(freq)
                ys.append(flux)
                es.append(error if math.isfinite(error) else 0.0)
        if xs:
            points[str(field)] = (xs, ys, es)
    if not points:
        return []

    def draw(ax: Axes) -> int:
        for k, (field, (xs, ys, es)) in enumerate(points.items()):
            alpha = index.get(field) if isinstance(index, Mapping) else index
            label = field + (
                f" (alpha {alpha:+.2f})" if isinstance(alpha, int | float) and math.isfinite(alpha) else ""
            )
            order = np.argsort(xs)
            ax.errorbar(
                np.asarray(xs)[order],
                np.asarray(ys)[order],
                yerr=np.asarray(es)[order],
                label=label,
                color=f"C{k % 10}",
                marker="o",
                ms=4,
                capsize=3,
                lw=0.8,
            )
        return len(points)

    reference = summary.get("reference")
    what = "derived flux density vs frequency" + (f" (reference {reference})" if reference else "")
    return [pages.single("flux", what, draw, "Frequency (GHz)", "Flux density (Jy)")]


# --- entry point -------------------------------------------------------------------------------
def render(
    topic: str,
    name: str,
    summary: dict,
    arrays: Mapping[str, np.ndarray],
    out_dir: Path,
    ms: str,
    *,
    tag: str = "",
) -> list[Path]:
    """Write the PNGs of one diagnostic into `out_dir`; returns their paths ([] when nothing to draw).

    Names follow the ALMA tools, from the MS's name: `{ms}.tsys.png`, `{ms}.wvr_path.png`,
    `{ms}.wvr_phase_rms.png`, `{ms}.bandpass_amp.png`, `{ms}.bandpass_phase.png`,
    `{ms}.gains_phase.png`, `{ms}.gains_amp.png`, `{ms}.calibrated_amp_vs_freq.png`,
    `{ms}.calibrated_phase_vs_freq.png`, `{ms}.calibrated_amp_vs_uvdist.png`,
    `{ms}.calibrated_phase_vs_time.png`, `{ms}.flux.png`; more than four spws add `_spw<ids>`
    (`{ms}.tsys_spw17_19_21_23.png`), more than four fields `_part<n>`. `tag` (e.g. the caltable's
    own suffix, "phase_int") goes between the MS and the kind: `{ms}.phase_int.gains_phase.png`,
    so that several tables of one topic do not overwrite each other's PNGs. `name` (the
    diagnostic's name) is not used in file names."""
    summary = summary if isinstance(summary, Mapping) else {}
    if "cannot_assess" in summary:
        return []
    pages = _Pages(ms, topic, summary, Path(out_dir), safe_name(tag) if tag else "")
    if topic == "flux":
        return _flux(pages, summary)
    if not arrays or not len(list(arrays.keys())):
        return []
    drawers = {"tsys": _tsys, "wvr": _wvr, "bandpass": _bandpass, "gains": _gains, "calibrated": _calibrated}
    drawer = drawers.get(topic)
    return drawer(pages, summary, arrays) if drawer else []
