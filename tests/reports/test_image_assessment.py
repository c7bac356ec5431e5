"""The suggested QA2 outcome of an image against the PI's request: rms tolerances per band class,
the semipass bound, the beam range in area, the goal choosing the image, the compact MOUS of a
multi-array goal, the notes (theoretical rms, dynamic range) and missing data. Pure: no database."""

import math

import pytest

from reports.image_assessment import (
    Assessment,
    Criterion,
    ImageNumbers,
    Request,
    assess,
    dynamic_range_limit,
    is_multi_array_compact,
    rms_semipass_bound,
    rms_tolerance,
    scaled_rms_jy,
)


def request(**overrides) -> Request:
    values: dict = {
        "band": 6,
        "array": "TE",
        "goal": "continuum",
        "rms_mjy": 0.5,
        "rms_bandwidth_mhz": 2000.0,
        "res_min_arcsec": 0.4,
        "res_max_arcsec": 0.6,
    }
    return Request(**{**values, **overrides})


def image(**overrides) -> ImageNumbers:
    values: dict = {
        "kind": "continuum",
        "rms_jy": 0.5e-3,
        "bandwidth_mhz": 2000.0,
        "bmaj_arcsec": 0.5,
        "bmin_arcsec": 0.5,
        "peak_jy": 10e-3,  # dynamic range 20: no note
        "theoretical_rms_jy": None,
    }
    return ImageNumbers(**{**values, **overrides})


def criterion(assessment: Assessment, name: str) -> Criterion:
    found = assessment.criterion(name)
    assert found is not None, f"no {name} criterion in {assessment.criteria}"
    return found


def status(assessment: Assessment, name: str) -> str:
    return criterion(assessment, name).status


# --- thresholds --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("band", "tolerance", "bound"),
    [
        (1, 0.10, 1.4),
        (3, 0.10, 1.4),
        (6, 0.10, 1.4),
        (7, 0.15, 1.5),
        (8, 0.15, 1.5),
        (9, 0.20, 1.6),
        (10, 0.20, 1.6),
    ],
)
def test_tolerance_and_semipass_bound_by_band(band, tolerance, bound):
    assert rms_tolerance(band) == tolerance
    assert rms_semipass_bound(band) == bound


@pytest.mark.parametrize("band", [0, 11, -3])
def test_band_outside_1_to_10_is_refused(band):
    with pytest.raises(ValueError):
        rms_tolerance(band)
    with pytest.raises(ValueError):
        rms_semipass_bound(band)
    with pytest.raises(ValueError):
        request(band=band)


def test_scaled_rms_goes_as_sqrt_of_bandwidth():
    assert scaled_rms_jy(1.0, 7500.0, 2000.0) == pytest.approx(math.sqrt(3.75))
    assert scaled_rms_jy(2.0, 2000.0, 8000.0) == pytest.approx(1.0)
    assert scaled_rms_jy(0.3, 1000.0, 1000.0) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        scaled_rms_jy(1.0, 0.0, 2000.0)
    with pytest.raises(ValueError):
        scaled_rms_jy(1.0, 2000.0, -1.0)


@pytest.mark.parametrize(
    ("array", "limit", "compact"),
    [
        ("TE", 200, False),
        ("TP", 200, False),
        ("TC", 200, True),
        ("_TC", 200, True),
        ("7M", 50, True),
        ("_7m", 50, True),
    ],
)
def test_array_helpers(array, limit, compact):
    assert dynamic_range_limit(array) == limit
    assert is_multi_array_compact(array) is compact


# --- rms by band class -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("band", "ratio", "expected"),
    [
        # bands 1-6: 10%, semipass to 1.4
        (3, 1.00, "pass"),
        (3, 1.10, "pass"),  # exactly on the limit: "at most 10% above"
        (3, 1.11, "semipass"),
        (3, 1.40, "semipass"),
        (3, 1.41, "fail"),
        (6, 1.09, "pass"),
        (6, 1.11, "semipass"),
        (6, 1.45, "fail"),
        # bands 7-8: 15%, semipass to 1.5
        (7, 1.15, "pass"),
        (7, 1.16, "semipass"),
        (7, 1.51, "fail"),
        (8, 1.14, "pass"),
        (8, 1.16, "semipass"),
        (8, 1.50, "semipass"),
        (8, 1.55, "fail"),
        # bands 9-10: 20%, semipass to 1.6
        (9, 1.19, "pass"),
        (9, 1.21, "semipass"),
        (9, 1.61, "fail"),
        (10, 1.20, "pass"),
        (10, 1.21, "semipass"),
        (10, 1.60, "semipass"),
        (10, 1.70, "fail"),
        # an rms better than requested is always fine
        (10, 0.50, "pass"),
    ],
)
def test_rms_ratio_by_band(band, ratio, expected):
    result = assess(request(band=band), [image(rms_jy=ratio * 0.5e-3)])
    assert status(result, "rms") == expected
    assert status(result, "beam") == "pass"
    assert result.outcome == expected
    if expected == "pass":
        assert result.reasons == [
            "No theoretical rms was given, so the achieved rms was not compared with it."
        ]
    else:
        assert any("rms is" in r for r in result.reasons)


def test_rms_scaled_to_the_requested_bandwidth():
    # 0.28 mJy over 7500 MHz is 0.28 * sqrt(3.75) = 0.542 mJy at 2000 MHz: ratio 1.08, a pass in band 6
    wide = image(rms_jy=0.28e-3, bandwidth_mhz=7500.0)
    passed = assess(request(), [wide])
    assert status(passed, "rms") == "pass"
    assert "ratio 1.08" in criterion(passed, "rms").value
    # ... and the unscaled 0.28 would wrongly look like 0.56x; 0.30 mJy over 7500 MHz is 1.16x: semipass
    assert assess(request(), [image(rms_jy=0.30e-3, bandwidth_mhz=7500.0)]).outcome == "semipass"
    # a cube channel of 0.5 MHz compared with a request at 1 MHz: the rms scales down
    cube = image(kind="cube", rms_jy=1.5e-3, bandwidth_mhz=0.5)
    line = assess(request(goal="line", rms_mjy=1.0, rms_bandwidth_mhz=1.0), [cube])
    assert criterion(line, "rms").value.endswith("(ratio 1.06)")
    assert line.outcome == "pass"


# --- goal picks the image ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("goal", "expected", "kind"), [("continuum", "pass", "continuum"), ("line", "fail", "cube")]
)
def test_goal_decides_which_image_is_judged(goal, expected, kind):
    continuum = image(kind="continuum", rms_jy=0.5e-3, bandwidth_mhz=2000.0)  # ratio 1.0
    cube = image(kind="cube", rms_jy=10e-3, bandwidth_mhz=2000.0)  # ratio 20
    result = assess(request(goal=goal), [cube, continuum])
    assert result.image is not None and result.image.kind == kind
    assert status(result, "image") == "pass"
    assert status(result, "rms") == expected
    assert result.outcome == expected


@pytest.mark.parametrize(
    ("goal", "given", "missing"), [("line", "continuum", "cube"), ("continuum", "cube", "continuum")]
)
def test_missing_image_gives_no_outcome(goal, given, missing):
    result = assess(request(goal=goal), [image(kind=given)])
    assert result.outcome is None
    assert result.image is None
    assert [(c.name, c.status) for c in result.criteria] == [("image", "not assessed")]
    assert result.reasons == [
        f"No {missing} image to judge the {goal} goal on, so no outcome can be suggested."
    ]


def test_no_images_at_all_gives_no_outcome():
    result = assess(request(), [])
    assert result.outcome is None
    assert status(result, "image") == "not assessed"
    assert "images given: none" in result.criteria[0].value


# --- beam --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bmaj", "bmin", "expected"),
    [
        (0.5, 0.5, "pass"),  # inside [0.4, 0.6]
        (0.8, 0.45, "pass"),  # elongated, geometric mean 0.6: on the edge
        (0.6, 0.6, "pass"),  # on res_max
        (0.4, 0.4, "pass"),  # on res_min
        (0.65, 0.65, "semipass"),  # area (0.65/0.6)^2 = 1.17
        (0.6 * math.sqrt(1.5), 0.6 * math.sqrt(1.5), "semipass"),  # area exactly 1.5
        (0.74, 0.74, "fail"),  # area 1.52
        (1.2, 1.2, "fail"),  # area 4
        (0.35, 0.35, "semipass"),  # smaller than res_min: area (0.4/0.35)^2 = 1.31
        (0.3, 0.3, "fail"),  # smaller than res_min: area 1.78
    ],
)
def test_beam_geometric_mean_against_the_range(bmaj, bmin, expected):
    result = assess(request(), [image(bmaj_arcsec=bmaj, bmin_arcsec=bmin)])
    assert status(result, "rms") == "pass"
    assert status(result, "beam") == expected
    assert result.outcome == expected


def test_beam_smaller_than_res_min_says_so():
    result = assess(request(), [image(bmaj_arcsec=0.35, bmin_arcsec=0.35)])
    beam = criterion(result, "beam")
    assert "smaller than the requested minimum" in beam.reason
    assert beam.reason in result.reasons


def test_worst_criterion_decides_the_outcome():
    # rms semipass, beam fail -> fail; rms fail, beam semipass -> fail; both semipass -> semipass
    assert assess(request(), [image(rms_jy=0.6e-3, bmaj_arcsec=1.2, bmin_arcsec=1.2)]).outcome == "fail"
    assert assess(request(), [image(rms_jy=0.9e-3, bmaj_arcsec=0.65, bmin_arcsec=0.65)]).outcome == "fail"
    assert assess(request(), [image(rms_jy=0.6e-3, bmaj_arcsec=0.65, bmin_arcsec=0.65)]).outcome == "semipass"


# --- multi-array compact MOUS ------------------------------------------------------------------
@pytest.mark.parametrize("array", ["TC", "_TC", "7M", "_7m"])
def test_compact_array_is_not_judged_alone(array):
    terrible = image(rms_jy=50e-3, bmaj_arcsec=5.0, bmin_arcsec=4.0, peak_jy=0.5)  # ratio 100, DR 10
    result = assess(request(array=array), [terrible])
    assert status(result, "rms") == "not judged alone"
    assert status(result, "beam") == "not judged alone"
    assert status(result, "multi-array") == "not judged alone"
    assert result.outcome == "pass"
    assert "ratio 100.00" in criterion(result, "rms").value
    assert any("waits for the combination with the extended array" in r for r in result.reasons)


def test_compact_7m_dynamic_range_limit_is_50():
    result = assess(request(array="7M"), [image(rms_jy=1e-3, peak_jy=60e-3)])  # DR 60
    assert status(result, "dynamic range") == "note"
    assert "suggest self-calibration" in criterion(result, "dynamic range").reason
    assert result.outcome == "pass"
    # the same image from the 12 m compact array (limit 200) gets no note
    assert status(assess(request(array="TC"), [image(rms_jy=1e-3, peak_jy=60e-3)]), "dynamic range") == "pass"


# --- notes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("peak_jy", "expected"), [(0.1, "pass"), (0.11, "note"), (0.5, "note")])
def test_dynamic_range_note_above_200_for_12m(peak_jy, expected):
    result = assess(request(), [image(rms_jy=0.5e-3, peak_jy=peak_jy)])  # DR 200, 220, 1000
    assert status(result, "dynamic range") == expected
    assert result.outcome == "pass"  # a note never changes the outcome


@pytest.mark.parametrize(
    ("band", "theoretical_jy", "expected"),
    [
        (6, 0.5e-3, "pass"),  # ratio 1.0
        (6, 0.455e-3, "pass"),  # ratio 1.099
        (6, 0.44e-3, "note"),  # ratio 1.14: more than 10% above
        (9, 0.44e-3, "pass"),  # band 9 allows 20%
        (9, 0.40e-3, "note"),  # ratio 1.25
        (6, 0.7e-3, "pass"),  # ratio 0.714
        (6, 0.8e-3, "note"),  # ratio 0.625: more than 30% below
    ],
)
def test_theoretical_rms_note(band, theoretical_jy, expected):
    result = assess(request(band=band), [image(rms_jy=0.5e-3, theoretical_rms_jy=theoretical_jy)])
    assert status(result, "theoretical") == expected
    assert result.outcome == "pass"
    assert result.reasons == ([] if expected == "pass" else [criterion(result, "theoretical").reason])


# --- missing request values --------------------------------------------------------------------
@pytest.mark.parametrize("field", ["rms_mjy", "rms_bandwidth_mhz"])
def test_missing_requested_rms_gives_no_outcome(field):
    result = assess(request(**{field: None}), [image()])
    assert status(result, "rms") == "not assessed"
    assert status(result, "beam") == "pass"
    assert result.outcome is None
    assert any(field in r for r in result.reasons)


def test_missing_requested_rms_gives_no_outcome_even_for_a_compact_array():
    result = assess(request(array="TC", rms_mjy=None), [image()])
    assert status(result, "rms") == "not assessed"
    assert result.outcome is None


@pytest.mark.parametrize(
    ("field", "rms_jy", "expected"),
    [("res_min_arcsec", 0.5e-3, "pass"), ("res_max_arcsec", 0.6e-3, "semipass")],
)
def test_missing_resolution_leaves_beam_unassessed_but_gives_an_outcome(field, rms_jy, expected):
    result = assess(request(**{field: None}), [image(rms_jy=rms_jy, bmaj_arcsec=3.0, bmin_arcsec=3.0)])
    assert status(result, "beam") == "not assessed"
    assert status(result, "rms") == expected
    assert result.outcome == expected  # a 3" beam would fail, but the range is unknown
    assert any(field in r and "beam was not assessed" in r for r in result.reasons)


# --- the words ---------------------------------------------------------------------------------
def test_rms_criterion_words():
    result = assess(request(), [image(rms_jy=0.52e-3)])
    rms = criterion(result, "rms")
    assert rms.value == "0.52 mJy/beam over 2000 MHz = 0.52 mJy/beam at 2000 MHz (ratio 1.04)"
    assert rms.limit == "<= 1.10 x 0.5 mJy/beam (band 6); semipass <= 1.40 x"
    assert rms.status == "pass"


def test_reasons_are_those_of_criteria_not_passing():
    result = assess(
        request(),
        [image(rms_jy=0.6e-3, bmaj_arcsec=0.65, bmin_arcsec=0.65, peak_jy=0.2, theoretical_rms_jy=0.6e-3)],
    )
    assert [(c.name, c.status) for c in result.criteria] == [
        ("image", "pass"),
        ("rms", "semipass"),
        ("beam", "semipass"),
        ("theoretical", "pass"),
        ("dynamic range", "note"),
    ]
    assert result.reasons == [c.reason for c in result.criteria[1:3]] + [result.criteria[4].reason]


@pytest.mark.parametrize(
    "overrides", [{"rms_jy": 0.0}, {"bandwidth_mhz": -1.0}, {"bmin_arcsec": math.nan}, {"kind": "mfs"}]
)
def test_invalid_image_numbers_are_refused(overrides):
    with pytest.raises(ValueError):
        image(**overrides)


@pytest.mark.parametrize("overrides", [{"array": "12M"}, {"goal": "polarisation"}])
def test_invalid_request_is_refused(overrides):
    with pytest.raises(ValueError):
        request(**overrides)
