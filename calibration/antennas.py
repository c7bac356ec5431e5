"""Which antennas have signal (Django-free: the script generator, and the diagnostics in CASA).

An antenna with less than LIVE_AMPLITUDE_FRACTION of the array's median calibrator amplitude is
dead (our choice: a dead ALMA antenna sits at noise level, < 10% of the array's; a weak but
working one rarely drops below half), and is never chosen as a reference.
"""

from collections.abc import Sequence

LIVE_AMPLITUDE_FRACTION = 0.3


def live_antennas(names: Sequence[str], amplitudes: Sequence[float | None]) -> set[str]:
    """Antennas with at least LIVE_AMPLITUDE_FRACTION of the median amplitude among those measured."""
    known = sorted(a for a in amplitudes if a)
    typical = known[len(known) // 2] if known else 0.0
    return {n for n, a in zip(names, amplitudes, strict=True) if a and a >= LIVE_AMPLITUDE_FRACTION * typical}
