"""Plotly figure builders: arrays in, go.Figure out (no ORM, no request). WebGL traces."""

import warnings
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=40, b=50), hovermode="closest", height=420)
MAX_BUCKETS = 1500  # ~2 points per pixel column of a wide plot


def decimate_minmax(x: np.ndarray, y: np.ndarray, buckets: int = MAX_BUCKETS) -> tuple[np.ndarray, ...]:
    """Min and max of y per bucket of x: the same picture as every point, ~2 points per pixel."""
    n = len(x)
    if n <= 2 * buckets:
        return x, y
    size = -(-n // buckets)  # ceil
    padded = np.full(size * buckets, np.nan)
    padded[:n] = y
    rows = padded.reshape(buckets, size)
    valid = np.isfinite(rows).any(axis=1)
    lo = np.argmin(np.where(np.isfinite(rows), rows, np.inf), axis=1)
    hi = np.argmax(np.where(np.isfinite(rows), rows, -np.inf), axis=1)
    base = np.arange(buckets) * size
    index = np.unique(np.concatenate([(base + lo)[valid], (base + hi)[valid]]))
    index = index[index < n]
    return np.asarray(x)[index], np.asarray(y)[index]


def _lines(
    fig: go.Figure, x: np.ndarray, rows: np.ndarray, names: Sequence[str], highlight: str = ""
) -> None:
    for name, row in zip(names, rows, strict=True):
        if not np.isfinite(row).any():
            continue
        xs, ys = decimate_minmax(np.asarray(x), np.asarray(row, dtype=np.float32))
        thick = name == highlight
        fig.add_scattergl(
            x=xs.astype(np.float32),
            y=ys.astype(np.float32),
            name=name,
            mode="lines",
            line=dict(width=3 if thick else 1),
            opacity=1.0 if thick or not highlight else 0.35,
        )


def tsys_spectra(freq_ghz, spectra, antennas, *, spw: int, highlight: str = "", atm=None) -> go.Figure:
    fig = go.Figure(layout=LAYOUT)
    _lines(fig, freq_ghz, spectra, antennas, highlight)
    if atm is not None:
        fig.add_scattergl(
            x=freq_ghz,
            y=atm,
            name="ATM transmission",
            yaxis="y2",
            mode="lines",
            line=dict(color="magenta", dash="dot"),
        )
    fig.update_layout(
        title=f"Tsys spectra, spw {spw} (time-averaged, colour = antenna)",
        xaxis_title="Frequency (GHz)",
        yaxis_title="Tsys (K)",
        yaxis2=dict(title="transmission", overlaying="y", side="right", range=[0, 1], showgrid=False),
    )
    return fig


def tsys_medians(antennas, medians, array_median: float, *, spw: int, highlight: str = "") -> go.Figure:
    colours = ["#c62828" if m >= 1.5 * array_median else "#1f5fa8" for m in medians]
    fig = go.Figure(layout={**LAYOUT, "height": 300})
    fig.add_bar(x=list(antennas), y=medians, marker_color=colours, name="median Tsys")
    fig.add_hline(y=array_median, line_dash="dash", annotation_text=f"array median {array_median:.0f} K")
    fig.update_layout(
        title=f"Median Tsys per antenna, spw {spw} (click a bar to pick the antenna)", yaxis_title="Tsys (K)"
    )
    return fig


def wvr_phase_rms(antennas, before: dict, after: dict, *, reference: str = "") -> go.Figure:
    fig = go.Figure(layout=LAYOUT)
    fig.add_bar(x=list(antennas), y=[before.get(a) for a in antennas], name="without WVR")
    fig.add_bar(x=list(antennas), y=[after.get(a) for a in antennas], name="with WVR")
    fig.update_layout(
        barmode="group",
        title="Calibrator phase rms per antenna, before/after WVR",
        yaxis_title="phase rms (deg)",
    )
    if reference in antennas:
        # Phases are measured against the reference, so its own phase rms is ~0: say why.
        fig.add_annotation(
            x=reference,
            y=0,
            yanchor="bottom",
            text=f"{reference}: reference antenna<br>(phases measured against it, so no bar)",
            showarrow=True,
            arrowhead=2,
            ay=-60,
        )
    return fig


def wvr_path(time_s, path_um, antennas, *, antenna: str) -> go.Figure:
    fig = go.Figure(layout=LAYOUT)
    index = list(antennas).index(antenna) if antenna in antennas else 0
    _lines(fig, np.asarray(time_s) / 60.0, path_um[[index]], [antennas[index]])
    fig.update_layout(
        title=f"WVR path of {antennas[index]}", xaxis_title="time (min)", yaxis_title="path (µm)"
    )
    return fig


def bandpass_overlay(freq_ghz, values, antennas, *, spw: int, kind: str, highlight: str = "") -> go.Figure:
    """values [nant, npol, nchan]: one line per antenna (polarisations averaged)."""
    fig = go.Figure(layout=LAYOUT)
    rows = _nanmean(values, axis=1)
    _lines(fig, freq_ghz, rows, antennas, highlight)
    unit = "amplitude" if kind == "amp" else "phase (deg)"
    fig.update_layout(
        title=f"Bandpass {unit}, spw {spw}, all antennas", xaxis_title="Frequency (GHz)", yaxis_title=unit
    )
    return fig


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over unflagged values; all-flagged stays NaN (plotted as a gap), without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def bandpass_pair(freq_ghz, amp, phase, antennas, *, worst: str, typical: str, spw: int) -> go.Figure:
    fig = go.Figure(layout=LAYOUT)
    for name, dash in ((worst, "solid"), (typical, "dot")):
        i = list(antennas).index(name)
        with np.errstate(all="ignore"):
            fig.add_scattergl(
                x=freq_ghz, y=_nanmean(amp[i], axis=0), name=f"{name} amp", line=dict(dash=dash)
            )
            fig.add_scattergl(
                x=freq_ghz,
                y=_nanmean(phase[i], axis=0),
                name=f"{name} phase",
                yaxis="y2",
                line=dict(dash=dash),
            )
    fig.update_layout(
        title=f"Worst antenna {worst} next to a typical one ({typical}), spw {spw}",
        xaxis_title="Frequency (GHz)",
        yaxis_title="amplitude",
        yaxis2=dict(title="phase (deg)", overlaying="y", side="right", showgrid=False),
    )
    return fig


def gains_vs_time(time_s, values, antennas, *, title: str, ylabel: str, highlight: str = "") -> go.Figure:
    fig = go.Figure(layout=LAYOUT)
    _lines(fig, np.asarray(time_s) / 60.0, values, antennas, highlight)
    for trace in fig.data:
        trace.mode = "lines+markers"
        trace.marker = dict(size=4)
    fig.update_layout(title=title, xaxis_title="time (min)", yaxis_title=ylabel)
    return fig


def flags_stages(stages, fractions) -> go.Figure:
    fig = go.Figure(layout={**LAYOUT, "height": 320})
    fig.add_bar(x=list(stages), y=[100 * f for f in fractions], name="flagged")
    fig.update_layout(title="Flagged data at each flag-saving step", yaxis_title="flagged (%)")
    return fig


def flags_heatmap(antennas, stages, matrix) -> go.Figure:
    fig = go.Figure(layout=LAYOUT)
    fig.add_heatmap(
        z=np.asarray(matrix, dtype=np.float32) * 100,
        x=list(antennas),
        y=list(stages),
        colorscale="Reds",
        zmin=0,
        zmax=100,
        colorbar=dict(title="%"),
    )
    fig.update_layout(
        title="Flagged fraction of each antenna's baselines, per step (a baseline counts for both antennas)"
    )
    return fig


def flux_spectrum(fields: dict, spectral_index: dict) -> go.Figure:
    fig = go.Figure(layout=LAYOUT)
    for name, spws in fields.items():
        if not spws:
            continue
        freq = np.array([v["freq_ghz"] for v in spws.values()])
        flux = np.array([v["flux"] for v in spws.values()])
        error = np.array([v["error"] for v in spws.values()])
        fig.add_scatter(x=freq, y=flux, error_y=dict(array=error), mode="markers", name=f"{name} (fluxscale)")
        alpha = spectral_index.get(name)
        if alpha is not None and len(freq):
            ref = freq[int(np.argmax(flux / np.maximum(error, 1e-9)))]
            s_ref = flux[int(np.argmax(flux / np.maximum(error, 1e-9)))]
            grid = np.linspace(freq.min() * 0.995, freq.max() * 1.005, 50)
            fig.add_scatter(
                x=grid, y=s_ref * (grid / ref) ** alpha, mode="lines", name=f"{name} fit alpha={alpha:.2f}"
            )
    fig.update_layout(
        title="Derived flux densities per spw, with the fitted spectrum",
        xaxis_title="Frequency (GHz)",
        yaxis_title="flux density (Jy)",
    )
    return fig


def _amp_phase(title: str, xlabel: str) -> go.Figure:
    """Amplitude above, phase below, one shared x axis (plotms' two panels)."""
    fig = go.Figure(layout={**LAYOUT, "height": 520})
    fig.update_layout(
        title=title,
        xaxis=dict(title=xlabel, anchor="y2"),
        yaxis=dict(title="amplitude (Jy)", domain=[0.55, 1.0]),
        yaxis2=dict(title="phase (deg)", domain=[0.0, 0.45], range=[-180, 180]),
    )
    return fig


def _pair_traces(fig: go.Figure, x, amp, phase, *, name: str, mode: str, **style) -> None:
    for y, axis, label in ((amp, "y", "amp"), (phase, "y2", "phase")):
        xs, ys = decimate_minmax(np.asarray(x, dtype=float), np.asarray(y, dtype=np.float32))
        fig.add_scattergl(
            x=np.asarray(xs, dtype=np.float32),
            y=np.asarray(ys, dtype=np.float32),
            yaxis=axis,
            name=f"{name} {label}",
            mode=mode,
            **style,
        )


def calibrated_vs_frequency(freq_ghz, amp, phase, *, field: str, spw: str) -> go.Figure:
    fig = _amp_phase(
        f"{field}, {spw}: corrected amp & phase vs frequency (averaged over time and baselines)",
        "Frequency (GHz)",
    )
    _pair_traces(fig, freq_ghz, amp, phase, name=field, mode="lines")
    return fig


def calibrated_vs_time(
    time_s, amp, phase, scans, *, field: str, spw: str, antenna: str = "", antenna_phase=None
) -> go.Figure:
    fig = _amp_phase(
        f"{field}, {spw}: corrected amp & phase vs time (averaged over channels and baselines)", "time (min)"
    )
    minutes = np.asarray(time_s, dtype=float) / 60.0
    _pair_traces(
        fig,
        minutes,
        amp,
        phase,
        name="array",
        mode="markers",
        marker=dict(size=5, color=np.asarray(scans, dtype=np.float32), colorscale="Viridis"),
        text=[f"scan {int(s)}" for s in scans],
    )
    if antenna_phase is not None and np.isfinite(antenna_phase).any():
        fig.add_scattergl(
            x=minutes.astype(np.float32),
            y=np.asarray(antenna_phase, dtype=np.float32),
            yaxis="y2",
            name=f"{antenna} phase (its baselines)",
            mode="markers",
            marker=dict(size=4, color="#c62828", symbol="x"),
        )
    return fig


def calibrated_vs_uv(uv_klambda, amp, phase, *, field: str, spw: str) -> go.Figure:
    fig = _amp_phase(
        f"{field}, {spw}: corrected amp & phase vs uv distance (binned, averaged over channels)",
        "uv distance (kλ)",
    )
    _pair_traces(fig, uv_klambda, amp, phase, name=field, mode="lines+markers", marker=dict(size=6))
    return fig


def combination_fluxes(ebs: Sequence[tuple[str, dict]], means: dict, fits: dict) -> go.Figure:
    """allFluxes: each EB's calibrator flux per spw with its error, the (weighted or edited)
    mean, and the fitted spectrum S0 (nu/nu0)^alpha per calibrator.

    `ebs`: [(uid, {field: {spw: {flux, error, freq_ghz}}})]; `means`: {field: {spw: {flux, error,
    freq_ghz}}}; `fits`: {field: (alpha, S0, nu0) or None}."""
    fig = go.Figure(layout=LAYOUT)
    for uid, fields in ebs:
        for name, spws in fields.items():
            entries = sorted(spws.values(), key=lambda e: e["freq_ghz"])
            fig.add_scatter(
                x=[e["freq_ghz"] for e in entries],
                y=[e["flux"] for e in entries],
                error_y=dict(array=[e["error"] for e in entries]),
                mode="markers",
                name=f"{name} {uid}",
            )
    for name, spws in means.items():
        entries = sorted(spws.values(), key=lambda e: e["freq_ghz"])
        freq = [e["freq_ghz"] for e in entries]
        fig.add_scatter(
            x=freq,
            y=[e["flux"] for e in entries],
            error_y=dict(array=[e["error"] for e in entries]),
            mode="markers",
            marker=dict(symbol="diamond", size=11, color="black"),
            name=f"{name} combined",
        )
        fit = fits.get(name)
        if fit is not None and freq:
            alpha, s0, nu0 = fit
            grid = np.linspace(min(freq) * 0.995, max(freq) * 1.005, 50)
            fig.add_scatter(
                x=grid, y=s0 * (grid / nu0) ** alpha, mode="lines", name=f"{name} fit alpha={alpha:.2f}"
            )
    fig.update_layout(
        title="Calibrator flux per EB, the combined value and the spectral-index fit",
        xaxis_title="Frequency (GHz)",
        yaxis_title="flux density (Jy)",
    )
    return fig
