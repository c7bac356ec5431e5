"""Find the line-free (continuum) channels of a spectral window from its spectrum.

ALMA's imaging scripts need a continuum selection such as "0:0~20;26~63". This module
proposes one per spw from the target's spectrum: one amplitude per channel (for example the
vector average of its visibilities), with NaN (or infinite) for a flagged channel.

How the channels are chosen, step by step:
1. Flagged (NaN) channels are ignored: they are never line-free and never used in a fit.
2. A straight line is fitted to the channels not yet marked as line, and subtracted: what is
   left (the residual) is the spectrum without its continuum level and slope.
3. The noise is measured from the differences between neighbouring channels of the residual
   (both channels unmasked), with the median absolute deviation: differences barely see a
   smooth slope or a wide line, and the median ignores the few channels where a line starts
   or ends. If that gives 0 or nothing, the spread of the residual itself is used instead;
   if that is 0 too, the spectrum has no noise to compare against and no channel is a line.
4. Every channel further than `threshold` (default 5) noise sigmas from the continuum, above
   or below (emission or absorption), is marked as line. The continuum is the fitted line
   moved to the median of the residual: a strong line pulls a least-squares fit up, the
   median (of mostly line-free channels) does not. Steps 2-4 are repeated without the marked
   channels until the marks stop changing (at most 10 times), so that the lines found no
   longer pull the fit.
5. Each line is widened by `grow` channels on each side (default 1), to leave out its faint
   wings.
6. If fewer than `min_free_fraction` (default 10%) of the channels are left free, the result
   says so (`too_little_continuum`): the whole spw looks like line and a reducer must choose
   the continuum by hand. What was found is still returned.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_ITERATIONS = 10
# 1.4826 * MAD estimates a Gaussian sigma; the difference of two channels has sqrt(2) times
# the noise of one.
MAD_TO_SIGMA = 1.4826

Range = tuple[int, int]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ContinuumChannels:
    """The line-free and line channels found in one spw (inclusive channel ranges)."""

    spw: int
    nchan: int
    free: tuple[Range, ...]
    line: tuple[Range, ...]
    sigma: float
    too_little_continuum: bool

    @property
    def free_count(self) -> int:
        return sum(last - first + 1 for first, last in self.free)

    def selection(self) -> str:
        """The CASA spw selection of the free channels: "0:0~20;26~63", "0" if all, "" if none."""
        if not self.free:
            return ""
        if self.free == ((0, self.nchan - 1),):
            return str(self.spw)
        return f"{self.spw}:" + ";".join(f"{first}~{last}" for first, last in self.free)


def ranges(indices: Iterable[int]) -> tuple[Range, ...]:
    """Channel numbers -> inclusive runs of consecutive channels: [1, 2, 3, 7] -> ((1, 3), (7, 7))."""
    runs: list[Range] = []
    # Sorted and deduplicated here so that a caller's order cannot split a run.
    for index in sorted({int(i) for i in indices}):
        if runs and index == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return tuple(runs)


def _mad(values: FloatArray) -> float:
    return float(np.median(np.abs(values - np.median(values))))


def _noise(residual: FloatArray, use: BoolArray) -> float:
    """Robust noise sigma of one channel, from the residual on the `use` channels; 0 if none."""
    # Only true neighbours: a difference across a masked line or a flagged gap is not noise.
    pairs = use[:-1] & use[1:]
    differences = np.diff(residual)[pairs]
    sigma = MAD_TO_SIGMA * _mad(differences) / math.sqrt(2) if differences.size else math.nan
    if not (math.isfinite(sigma) and sigma > 0):
        kept = residual[use]
        sigma = MAD_TO_SIGMA * _mad(kept) if kept.size else 0.0
    return sigma if math.isfinite(sigma) else 0.0


def find_continuum(
    spw: int,
    spectrum: Sequence[float] | npt.NDArray[np.floating],
    *,
    threshold: float = 5.0,
    grow: int = 1,
    min_free_fraction: float = 0.1,
) -> ContinuumChannels:
    """The line-free channels of one spw's spectrum (NaN = flagged); see the module docstring."""
    values = np.asarray(spectrum, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"spw {spw}: the spectrum must be one-dimensional, not {values.shape}")
    if values.size == 0:
        raise ValueError(f"spw {spw}: the spectrum is empty")
    if threshold <= 0 or grow < 0:
        raise ValueError(f"spw {spw}: threshold must be > 0 and grow >= 0")

    nchan = values.size
    channels = np.arange(nchan, dtype=np.float64)
    valid = np.isfinite(values)
    masked = np.zeros(nchan, dtype=bool)
    sigma = 0.0
    for _ in range(MAX_ITERATIONS):
        use = valid & ~masked
        # A straight line needs two channels; with fewer, keep what the last pass found.
        if np.count_nonzero(use) < 2:
            break
        slope, offset = np.polyfit(channels[use], values[use], 1)
        residual = values - (slope * channels + offset)
        sigma = _noise(residual, use)
        if sigma > 0:
            # Measured from the median, not from the fit: a strong wide line pulls the first
            # least-squares fit up, which would put every continuum channel beyond the
            # threshold too; the median stays on the continuum, which most channels are.
            level = float(np.median(residual[use]))
            # NaN residuals compare False, so flagged channels are never marked.
            new_masked = valid & (np.abs(residual - level) > threshold * sigma)
        else:
            new_masked = np.zeros(nchan, dtype=bool)
        if np.array_equal(new_masked, masked):
            break
        masked = new_masked

    grown = np.zeros(nchan, dtype=bool)
    for first, last in ranges(np.flatnonzero(masked).tolist()):
        grown[max(0, first - grow) : last + grow + 1] = True
    # A flagged channel stays neither line nor free, even inside a grown line.
    line = grown & valid
    free = valid & ~grown

    found_free = ranges(np.flatnonzero(free).tolist())
    free_count = int(np.count_nonzero(free))
    return ContinuumChannels(
        spw=spw,
        nchan=nchan,
        free=found_free,
        line=ranges(np.flatnonzero(line).tolist()),
        sigma=float(sigma),
        too_little_continuum=free_count < min_free_fraction * nchan,
    )


def continuum_selection(found: Iterable[ContinuumChannels]) -> str:
    """The selections of all spws with free channels, comma-joined: "0:0~20;26~63,1,2"."""
    return ",".join(selection for selection in (f.selection() for f in found) if selection)
