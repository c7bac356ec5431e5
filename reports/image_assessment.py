"""A suggested QA2 outcome for one MOUS's image, judged against the PI's request.

This module only *suggests*: it compares the achieved rms and beam of the image the science
goal needs with what the PI asked for, adds the notes an image reviewer would add (rms far
from the theoretical, a dynamic range that calls for self-calibration, a compact array whose
numbers wait for the combination), and gives each finding a reason in words. The outcome of
QA2 is the DRM's decision, never this module's: `Assessment.outcome` is a proposal, and it is
None whenever the data needed to propose one are missing (never a pass on missing data).

Sources of the thresholds (summarised in ../shared/reference/qa-heuristics-jira-sizing.md §3.9):
- ALMA "current QA2 requirements" (help.almascience.org/kb/articles/what-are-the-current-qa2-
  requirements): rms within 10% (bands 1-6), 15% (7-8), 20% (9-10) of the request; the beam's
  geometric mean sqrt(bmaj*bmin) within [minAR, maxAR].
- ALMA Cycle 1-2 QA2 criteria: still a pass if the rms is within 1.4x / 1.5x / 1.6x and the beam
  area within 1.5x *and* the science goal is judged met; our "semipass" is that band, left to the
  DRM's judgement of the science goal.
- NRAO SRDP image QA: rms not more than 10/15/20% above the theoretical nor more than 30% below
  it; dynamic range > 200 (50 for the 7 m array) -> a note to self-calibrate.

Django-free (stdlib only), so it can be tested and reused without a database.
"""

import math
from dataclasses import dataclass

# --- statuses ----------------------------------------------------------------------------------
PASS = "pass"  # noqa: S105 (a QA status, not a password)
SEMIPASS = "semipass"
FAIL = "fail"
NOTE = "note"
NOT_JUDGED_ALONE = "not judged alone"
NOT_ASSESSED = "not assessed"

# The statuses that decide the outcome; notes, "not judged alone" and "not assessed" do not.
_JUDGED = (PASS, SEMIPASS, FAIL)

ARRAYS = ("TE", "TC", "7M", "TP")
GOALS = ("continuum", "line")
# The image each science goal is judged on: a line goal asks for an rms per channel of the cube.
_IMAGE_FOR_GOAL = {"continuum": "continuum", "line": "cube"}

# --- thresholds (sources in the module docstring) ----------------------------------------------
# ALMA current QA2: the rms may be at most this fraction above the requested rms.
_RMS_TOLERANCE = {1: 0.10, 2: 0.10, 3: 0.10, 4: 0.10, 5: 0.10, 6: 0.10, 7: 0.15, 8: 0.15, 9: 0.20, 10: 0.20}
# ALMA Cycle 1-2: "still pass if the science goal is met" up to this rms ratio; above it, fail.
_RMS_SEMIPASS_BOUND = {1: 1.4, 2: 1.4, 3: 1.4, 4: 1.4, 5: 1.4, 6: 1.4, 7: 1.5, 8: 1.5, 9: 1.6, 10: 1.6}
# ALMA Cycle 1-2: a beam whose area is off the requested range by at most 1.5x is a semipass.
BEAM_AREA_SEMIPASS = 1.5
# NRAO SRDP: an rms more than 30% below the theoretical is suspicious (noise underestimated,
# wrong weighting, or the theoretical estimate is wrong).
THEORETICAL_BELOW_FRACTION = 0.30
# NRAO SRDP: above this peak/rms the image is probably limited by calibration errors.
DYNAMIC_RANGE_12M = 200.0
DYNAMIC_RANGE_7M = 50.0

# A ratio printed as "1.10" must not fail a "<= 1.10" limit because of binary rounding
# (0.55 / 0.50 == 1.1000000000000001): limits are compared with this relative slack.
_SLACK = 1e-9


def _within(value: float, limit: float) -> bool:
    return value <= limit * (1 + _SLACK)


def _check_band(band: int) -> int:
    if isinstance(band, bool) or not isinstance(band, int) or not 1 <= band <= 10:
        raise ValueError(f"ALMA band must be an integer 1..10, got {band!r}")
    return band


def _array_code(array: str) -> str:
    """One spelling per array: "TC", "_TC", "7m" and "_7m" name the same arrays."""
    return array.strip().lstrip("_").upper()


def rms_tolerance(band: int) -> float:
    """The fraction the achieved rms may lie above the request (ALMA current QA2)."""
    return _RMS_TOLERANCE[_check_band(band)]


def rms_semipass_bound(band: int) -> float:
    """The rms ratio up to which the outcome is still a semipass (ALMA Cycle 1-2)."""
    return _RMS_SEMIPASS_BOUND[_check_band(band)]


def scaled_rms_jy(rms_jy: float, image_bandwidth_mhz: float, requested_bandwidth_mhz: float) -> float:
    """The rms the image would have over the requested bandwidth (noise goes as 1/sqrt(bandwidth)):
    a continuum image over 7500 MHz compared with a request at 2000 MHz has its rms scaled up."""
    if not (image_bandwidth_mhz > 0 and requested_bandwidth_mhz > 0):
        raise ValueError(
            f"bandwidths must be positive, got {image_bandwidth_mhz!r} and {requested_bandwidth_mhz!r} MHz"
        )
    return rms_jy * math.sqrt(image_bandwidth_mhz / requested_bandwidth_mhz)


def dynamic_range_limit(array: str) -> float:
    """Peak/rms above which self-calibration is suggested: 50 for the 7 m array, else 200."""
    return DYNAMIC_RANGE_7M if _array_code(array) == "7M" else DYNAMIC_RANGE_12M


def is_multi_array_compact(array: str) -> bool:
    """The 12 m compact (_TC) and 7 m (_7m) MOUSes of a multi-array goal: their request is for the
    data combined with the extended array, so their rms and beam cannot be judged alone."""
    return _array_code(array) in ("TC", "7M")


# --- data --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    band: int  # ALMA band 1..10
    array: str  # "TE" | "TC" | "7M" | "TP"
    goal: str  # "continuum" | "line"
    rms_mjy: float | None  # requested rms, mJy/beam
    rms_bandwidth_mhz: float | None
    res_min_arcsec: float | None
    res_max_arcsec: float | None

    def __post_init__(self) -> None:
        _check_band(self.band)
        if _array_code(self.array) not in ARRAYS:
            raise ValueError(f"array must be one of {ARRAYS}, got {self.array!r}")
        if self.goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {self.goal!r}")


@dataclass(frozen=True)
class ImageNumbers:
    kind: str  # "continuum" | "cube"
    rms_jy: float  # achieved rms (per channel for a cube), Jy/beam
    bandwidth_mhz: float  # continuum: sum of imaged channel widths; cube: one channel
    bmaj_arcsec: float
    bmin_arcsec: float
    peak_jy: float
    theoretical_rms_jy: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("continuum", "cube"):
            raise ValueError(f"image kind must be 'continuum' or 'cube', got {self.kind!r}")
        # A zero rms, bandwidth or beam would make every ratio below meaningless.
        for name in ("rms_jy", "bandwidth_mhz", "bmaj_arcsec", "bmin_arcsec"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Criterion:
    name: str  # "rms" | "beam" | "theoretical" | "dynamic range" | "multi-array" | "image"
    status: str  # "pass" | "semipass" | "fail" | "note" | "not judged alone" | "not assessed"
    value: str  # the measured number(s) in words
    limit: str  # the limit it was judged against, in words
    reason: str  # one sentence a DRM reads


@dataclass(frozen=True)
class Assessment:
    outcome: str | None  # "pass" | "semipass" | "fail" | None (cannot suggest)
    criteria: tuple[Criterion, ...]
    image: ImageNumbers | None  # the image judged

    @property
    def reasons(self) -> list[str]:
        """What the DRM should read: every criterion that is not a plain pass."""
        return [c.reason for c in self.criteria if c.status != PASS]

    def criterion(self, name: str) -> Criterion | None:
        return next((c for c in self.criteria if c.name == name), None)


# --- the criteria ------------------------------------------------------------------------------
def _mjy(value_jy: float) -> str:
    return f"{value_jy * 1000:.3g} mJy/beam"


def _missing(request: Request, fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if getattr(request, f) is None]


def _rms_criterion(request: Request, image: ImageNumbers, compact: bool) -> Criterion:
    measured = f"{_mjy(image.rms_jy)} over {image.bandwidth_mhz:g} MHz"
    missing = _missing(request, ("rms_mjy", "rms_bandwidth_mhz"))
    if missing:
        return Criterion(
            "rms",
            NOT_ASSESSED,
            measured,
            "no request to compare with",
            f"The request has no {' and no '.join(missing)}, so the rms cannot be compared with it.",
        )
    assert request.rms_mjy is not None and request.rms_bandwidth_mhz is not None  # for mypy
    scaled = scaled_rms_jy(image.rms_jy, image.bandwidth_mhz, request.rms_bandwidth_mhz)
    ratio = scaled * 1000 / request.rms_mjy
    tolerance = rms_tolerance(request.band)
    bound = rms_semipass_bound(request.band)
    value = f"{measured} = {_mjy(scaled)} at {request.rms_bandwidth_mhz:g} MHz (ratio {ratio:.2f})"
    limit = (
        f"<= {1 + tolerance:.2f} x {request.rms_mjy:g} mJy/beam (band {request.band}); "
        f"semipass <= {bound:.2f} x"
    )
    if compact:
        return Criterion(
            "rms",
            NOT_JUDGED_ALONE,
            value,
            limit,
            f"The rms ratio {ratio:.2f} is not judged alone: the requested {request.rms_mjy:g} mJy/beam "
            "is for the data combined with the extended array.",
        )
    if _within(ratio, 1 + tolerance):
        status = PASS
        reason = (
            f"The rms is {ratio:.2f}x the requested {request.rms_mjy:g} mJy/beam, "
            f"within the {tolerance:.0%} of band {request.band}."
        )
    elif _within(ratio, bound):
        status = SEMIPASS
        reason = (
            f"The rms is {ratio:.2f}x the request, above the {tolerance:.0%} of band {request.band} "
            f"but within {bound:.2f}x: a semipass only if the DRM judges the science goal met."
        )
    else:
        status = FAIL
        reason = f"The rms is {ratio:.2f}x the request, beyond {bound:.2f}x for band {request.band}."
    return Criterion("rms", status, value, limit, reason)


def _beam_criterion(request: Request, image: ImageNumbers, compact: bool) -> Criterion:
    g = math.sqrt(image.bmaj_arcsec * image.bmin_arcsec)
    value = f'{image.bmaj_arcsec:.3g}" x {image.bmin_arcsec:.3g}" (geometric mean {g:.3g}")'
    missing = _missing(request, ("res_min_arcsec", "res_max_arcsec"))
    if missing:
        return Criterion(
            "beam",
            NOT_ASSESSED,
            value,
            "no requested resolution range",
            f"The request has no {' and no '.join(missing)}, so the beam was not assessed.",
        )
    assert request.res_min_arcsec is not None and request.res_max_arcsec is not None  # for mypy
    res_min, res_max = request.res_min_arcsec, request.res_max_arcsec
    limit = (
        f'{res_min:.3g}" <= geometric mean <= {res_max:.3g}"; semipass within {BEAM_AREA_SEMIPASS}x in area'
    )
    if compact:
        return Criterion(
            "beam",
            NOT_JUDGED_ALONE,
            value,
            limit,
            "The beam is not judged alone: the requested resolution is for the data combined "
            "with the extended array.",
        )
    # With the same slack: sqrt(0.8 * 0.45) is 0.6000000000000001, on a 0.6" edge.
    if _within(res_min, g) and _within(g, res_max):
        return Criterion(
            "beam", PASS, value, limit, f'The beam ({g:.3g}") lies within the requested resolution range.'
        )
    # How far outside, measured in beam area (the current QA2 criterion is on the area).
    if not _within(g, res_max):
        area_ratio, side = (g / res_max) ** 2, f'larger than the requested maximum {res_max:.3g}"'
    else:
        area_ratio, side = (res_min / g) ** 2, f'smaller than the requested minimum {res_min:.3g}"'
    value = f"{value}, area {area_ratio:.2f}x off"
    if _within(area_ratio, BEAM_AREA_SEMIPASS):
        status = SEMIPASS
        reason = (
            f'The beam ({g:.3g}") is {side}, {area_ratio:.2f}x in area, within {BEAM_AREA_SEMIPASS}x: '
            "a semipass only if the DRM judges the science goal met."
        )
    else:
        status = FAIL
        reason = f'The beam ({g:.3g}") is {side}, {area_ratio:.2f}x in area, beyond {BEAM_AREA_SEMIPASS}x.'
    return Criterion("beam", status, value, limit, reason)


def _theoretical_criterion(request: Request, image: ImageNumbers) -> Criterion:
    theoretical = image.theoretical_rms_jy
    if theoretical is None or not theoretical > 0:
        return Criterion(
            "theoretical",
            NOT_ASSESSED,
            _mjy(image.rms_jy),
            "no theoretical rms",
            "No theoretical rms was given, so the achieved rms was not compared with it.",
        )
    # The theoretical rms is for this very image, so no bandwidth scaling here.
    ratio = image.rms_jy / theoretical
    tolerance = rms_tolerance(request.band)
    value = f"{_mjy(image.rms_jy)} vs theoretical {_mjy(theoretical)} (ratio {ratio:.2f})"
    lowest = 1 - THEORETICAL_BELOW_FRACTION
    limit = f"{lowest:.2f} x to {1 + tolerance:.2f} x the theoretical (band {request.band})"
    if not _within(ratio, 1 + tolerance):
        reason = (
            f"The rms is {ratio:.2f}x the theoretical, more than {tolerance:.0%} above it: "
            "check flagging, calibration or residual emission."
        )
        return Criterion("theoretical", NOTE, value, limit, reason)
    if ratio < lowest:
        reason = (
            f"The rms is {ratio:.2f}x the theoretical, more than {THEORETICAL_BELOW_FRACTION:.0%} below it: "
            "check the noise estimate and the theoretical one."
        )
        return Criterion("theoretical", NOTE, value, limit, reason)
    return Criterion("theoretical", PASS, value, limit, "The rms is close to the theoretical.")


def _dynamic_range_criterion(request: Request, image: ImageNumbers) -> Criterion:
    dr = image.peak_jy / image.rms_jy
    limit_dr = dynamic_range_limit(request.array)
    array_words = "7 m array" if limit_dr == DYNAMIC_RANGE_7M else "12 m array"
    value = f"peak {image.peak_jy * 1000:.3g} mJy/beam / rms {_mjy(image.rms_jy)} = {dr:.0f}"
    limit = f"<= {limit_dr:.0f} ({array_words})"
    if dr > limit_dr:
        reason = (
            f"The dynamic range {dr:.0f} exceeds {limit_dr:.0f} ({array_words}): suggest self-calibration."
        )
        return Criterion("dynamic range", NOTE, value, limit, reason)
    return Criterion(
        "dynamic range", PASS, value, limit, f"The dynamic range {dr:.0f} needs no self-calibration."
    )


def _pick_image(goal: str, images: list[ImageNumbers]) -> tuple[ImageNumbers | None, Criterion]:
    kind = _IMAGE_FOR_GOAL[goal]
    given = ", ".join(sorted({i.kind for i in images})) or "none"
    limit = f"a {kind} image (goal {goal})"
    # Several images of the same kind: the first is the one the pipeline made for the goal.
    image = next((i for i in images if i.kind == kind), None)
    if image is None:
        reason = f"No {kind} image to judge the {goal} goal on, so no outcome can be suggested."
        return None, Criterion("image", NOT_ASSESSED, f"images given: {given}", limit, reason)
    return image, Criterion(
        "image", PASS, f"the {kind} image", limit, f"The {kind} image is judged (goal {goal})."
    )


def _overall(criteria: list[Criterion]) -> str:
    statuses = {c.status for c in criteria if c.status in _JUDGED}
    if FAIL in statuses:
        return FAIL
    if SEMIPASS in statuses:
        return SEMIPASS
    return PASS


def assess(request: Request, images: list[ImageNumbers]) -> Assessment:
    """Suggest a QA2 outcome for the image the request's goal needs, with a reason per criterion."""
    _check_band(request.band)  # Request checks it too; a band 0 must never reach a lookup
    image, picked = _pick_image(request.goal, images)
    if image is None:
        return Assessment(outcome=None, criteria=(picked,), image=None)

    compact = is_multi_array_compact(request.array)
    rms = _rms_criterion(request, image, compact)
    criteria = [
        picked,
        rms,
        _beam_criterion(request, image, compact),
        _theoretical_criterion(request, image),
        _dynamic_range_criterion(request, image),
    ]
    if compact:
        criteria.append(
            Criterion(
                "multi-array",
                NOT_JUDGED_ALONE,
                f"array {_array_code(request.array)}",
                "the request is for the combination with the extended array",
                "This is the compact MOUS of a multi-array goal: the comparison with the request waits "
                "for the combination with the extended array.",
            )
        )
    # Never a suggested pass on missing data: without a judged (or at least judgeable) rms the
    # sensitivity, the first thing the PI asked for, is unknown.
    outcome = None if rms.status == NOT_ASSESSED else _overall(criteria)
    return Assessment(outcome=outcome, criteria=tuple(criteria), image=image)
