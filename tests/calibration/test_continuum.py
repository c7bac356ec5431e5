"""Line-free channel finding on made-up spectra: Gaussian noise of sigma 1, fixed seeds."""

import math

import numpy as np
import pytest

from calibration.continuum import ContinuumChannels, continuum_selection, find_continuum, ranges

NCHAN = 64
CHANNELS = np.arange(NCHAN, dtype=float)


def noise(seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, NCHAN)


def gaussian(centre: float, peak: float, width: float) -> np.ndarray:
    return peak * np.exp(-0.5 * ((CHANNELS - centre) / width) ** 2)


# 10 sigma at channel 30, about 7 sigma at 29 and 31, under 3 sigma further out.
NARROW_LINE = gaussian(30, 10.0, 1.2)


def test_flat_noise_is_all_free() -> None:
    found = find_continuum(3, noise())
    assert found.free == ((0, NCHAN - 1),)
    assert found.line == ()
    assert found.free_count == NCHAN
    assert found.selection() == "3"
    assert not found.too_little_continuum
    assert 0.7 < found.sigma < 1.3


def test_narrow_line_is_masked_and_grown_by_one() -> None:
    found = find_continuum(0, noise() + NARROW_LINE)
    assert found.line == ((28, 32),)
    assert found.free == ((0, 27), (33, 63))
    assert found.free_count == NCHAN - 5
    assert found.selection() == "0:0~27;33~63"
    assert not found.too_little_continuum


def test_grow_is_a_parameter() -> None:
    assert find_continuum(0, noise() + NARROW_LINE, grow=0).line == ((29, 31),)
    assert find_continuum(0, noise() + NARROW_LINE, grow=3).line == ((26, 34),)


def test_continuum_slope_makes_no_false_lines() -> None:
    # A bright continuum rising by 32 sigma across the band: the straight-line fit takes it.
    sloped = 100.0 + 0.5 * CHANNELS + noise() + NARROW_LINE
    found = find_continuum(0, sloped)
    assert found.line == ((28, 32),)
    assert found.free == ((0, 27), (33, 63))
    assert 0.7 < found.sigma < 1.3


def test_wide_line_of_twenty_channels() -> None:
    spectrum = noise() + np.where((CHANNELS >= 20) & (CHANNELS <= 39), 20.0, 0.0)
    found = find_continuum(0, spectrum)
    assert found.line == ((19, 40),)
    assert found.free == ((0, 18), (41, 63))
    # Neighbour differences do not see the line's plateau: the noise is still the noise.
    assert 0.7 < found.sigma < 1.3


def test_strong_wide_line_does_not_turn_the_whole_band_into_line() -> None:
    # The first fit sits 16 sigma above the continuum: only the median keeps it free.
    spectrum = noise() + np.where((CHANNELS >= 20) & (CHANNELS <= 39), 50.0, 0.0)
    found = find_continuum(0, spectrum)
    assert found.line == ((19, 40),)
    assert found.free == ((0, 18), (41, 63))
    assert not found.too_little_continuum


def test_wide_line_on_a_slope() -> None:
    # The line is off-centre, so the first fit is pulled both up and tilted.
    spectrum = 50.0 - 0.8 * CHANNELS + noise() + np.where((CHANNELS >= 10) & (CHANNELS <= 29), 20.0, 0.0)
    found = find_continuum(0, spectrum)
    assert found.line == ((9, 30),)
    assert found.free == ((0, 8), (31, 63))


def test_two_lines() -> None:
    spectrum = noise() + gaussian(15, 10.0, 1.2) + gaussian(45, 20.0, 1.5)
    found = find_continuum(1, spectrum)
    assert found.line == ((13, 17), (42, 48))
    assert found.free == ((0, 12), (18, 41), (49, 63))
    assert found.selection() == "1:0~12;18~41;49~63"


def test_absorption_line_is_found_like_emission() -> None:
    found = find_continuum(0, 30.0 + noise() - NARROW_LINE)
    assert found.line == ((28, 32),)
    assert found.free == ((0, 27), (33, 63))


def test_line_at_the_band_edge_grows_only_inwards() -> None:
    spectrum = noise() + np.where(CHANNELS <= 1, 20.0, 0.0)
    found = find_continuum(0, spectrum)
    assert found.line == ((0, 2),)
    assert found.selection() == "0:3~63"


def test_nan_channels_are_neither_free_nor_line() -> None:
    spectrum = noise() + NARROW_LINE
    # 32 would be a grown line channel; 5, 6, 40 and 63 sit in the continuum.
    spectrum[[5, 6, 32, 40, 63]] = np.nan
    found = find_continuum(0, spectrum)
    assert found.line == ((28, 31),)
    assert found.free == ((0, 4), (7, 27), (33, 39), (41, 62))
    assert found.selection() == "0:0~4;7~27;33~39;41~62"
    assert found.nchan == NCHAN
    assert math.isfinite(found.sigma)


def test_all_nan_has_nothing_free() -> None:
    found = find_continuum(2, [math.nan] * 8)
    assert found.free == ()
    assert found.line == ()
    assert found.selection() == ""
    assert found.too_little_continuum


def test_whole_band_line_like_says_so() -> None:
    # Broad plateaus 60 sigma apart: no channel is near any straight line.
    spectrum = noise() + np.repeat([0.0, 60.0, 0.0, 60.0], NCHAN // 4)
    found = find_continuum(0, spectrum)
    assert found.too_little_continuum
    assert found.free == ()
    assert found.line == ((0, NCHAN - 1),)
    assert found.selection() == ""


@pytest.mark.parametrize(("fraction", "too_little"), [(0.9, False), (0.95, True)])
def test_min_free_fraction(fraction: float, too_little: bool) -> None:
    # 59 of 64 channels are free: 92%.
    found = find_continuum(0, noise() + NARROW_LINE, min_free_fraction=fraction)
    assert found.free_count == 59
    assert found.too_little_continuum is too_little


def test_threshold_is_a_parameter() -> None:
    # At 20 sigma the 10-sigma line is not a line.
    assert find_continuum(0, noise() + NARROW_LINE, threshold=20.0).free == ((0, NCHAN - 1),)


@pytest.mark.parametrize(
    ("free", "expected"),
    [
        (((0, 63),), "4"),
        ((), ""),
        (((0, 20), (26, 63)), "4:0~20;26~63"),
        (((5, 5), (7, 63)), "4:5~5;7~63"),
        (((1, 63),), "4:1~63"),
    ],
)
def test_selection_strings(free: tuple[tuple[int, int], ...], expected: str) -> None:
    found = ContinuumChannels(spw=4, nchan=64, free=free, line=(), sigma=1.0, too_little_continuum=False)
    assert found.selection() == expected


def test_continuum_selection_joins_spws_and_skips_those_without_free_channels() -> None:
    found = [
        find_continuum(0, noise(1) + NARROW_LINE),
        find_continuum(1, noise(2)),
        find_continuum(2, noise(3) + np.repeat([0.0, 60.0, 0.0, 60.0], NCHAN // 4)),
        find_continuum(3, noise(4)),
    ]
    assert continuum_selection(found) == "0:0~27;33~63,1,3"
    assert continuum_selection([]) == ""


@pytest.mark.parametrize(
    ("indices", "expected"),
    [
        ([], ()),
        ([4], ((4, 4),)),
        ([1, 2, 3, 7, 8, 10], ((1, 3), (7, 8), (10, 10))),
        ([8, 7, 1, 3, 2, 2], ((1, 3), (7, 8))),
        (np.array([0, 1, 5]), ((0, 1), (5, 5))),
    ],
)
def test_ranges(indices: list[int], expected: tuple[tuple[int, int], ...]) -> None:
    result = ranges(indices)
    assert result == expected
    assert all(type(value) is int for run in result for value in run)


@pytest.mark.parametrize(
    ("spectrum", "kwargs"),
    [
        ([], {}),
        (np.zeros((2, 8)), {}),
        ([1.0, 2.0, 3.0], {"threshold": 0.0}),
        ([1.0, 2.0, 3.0], {"grow": -1}),
    ],
)
def test_bad_input_is_refused(spectrum: object, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        find_continuum(0, spectrum, **kwargs)  # type: ignore[arg-type]
