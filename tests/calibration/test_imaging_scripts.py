"""calibration.imaging_scripts: the text of scriptForImagingPrep.py and scriptForImaging.py.

Pure: made-up ImagingData summaries (the shape calibration.incasa.imaging_data returns), no
Django models, no CASA. Besides reading the text, each generated script is executed with
recording stand-ins for the CASA tasks, so the tests check the arguments tclean, impbcor and
exportfits would receive, not only how they are written.
"""

import math
import os
from pathlib import Path

import numpy as np
import pytest

from calibration.continuum import ContinuumChannels, continuum_selection, find_continuum
from calibration.imaging_names import PREPARED_MS
from calibration.imaging_scripts import (
    ImagingRequest,
    geometry,
    imaging_script,
    imsize_for,
    prep_script,
    representative_spw,
    targets_of,
)
from calibration.scriptparse import parse_script
from calibration.standard_scripts import GOOD_IMSIZES

C = 299792458.0
ARCSEC = math.pi / 180 / 3600
RA0 = math.radians(201.365063)
DEC0 = math.radians(-43.019113)
L80 = 400.0

LINE = ImagingRequest(goal="line", representative_frequency_ghz=231.2, rms_mjy=0.5, rms_bandwidth_mhz=5.0)
CONTINUUM = ImagingRequest(
    goal="continuum", representative_frequency_ghz=245.0, rms_mjy=0.05, rms_bandwidth_mhz=7500.0
)


# --- made-up data -------------------------------------------------------------------------------
def spw(sid: int, first_ghz: float, nchan: int, width_mhz: float) -> dict:
    """An spw as imaging_data describes it; a negative width: frequency falls with channel."""
    last = first_ghz + (nchan - 1) * width_mhz / 1e3
    return {
        "id": sid,
        "nchan": nchan,
        "first_freq_ghz": first_ghz,
        "last_freq_ghz": last,
        "chan_width_mhz": abs(width_mhz),
        "bandwidth_mhz": nchan * abs(width_mhz),
        "mean_freq_ghz": (first_ghz + last) / 2,
    }


SPWS = [
    spw(0, 229.0, 128, 15.625),  # 229.0 - 230.98 GHz
    spw(1, 231.0, 480, 0.9765625),  # 231.0 - 231.47 GHz: the line spw
    spw(2, 244.0, 128, 15.625),  # 244.0 - 245.98
    spw(3, 247.98, 128, -15.625),  # 247.98 down to 246.0
]


def spectrum(nchan: int, seed: int, line: tuple[int, int] | None = None) -> list[float]:
    values = 1.0 + np.random.default_rng(seed).normal(0.0, 0.01, nchan)
    if line:
        values[line[0] : line[1] + 1] += 0.5
    return [float(v) for v in values]


def field(fid: int, name: str, dra_arcsec: float = 0.0, ddec_arcsec: float = 0.0) -> dict:
    """A pointing offset (on the sky) from RA0/DEC0."""
    return {
        "id": fid,
        "name": name,
        "ra_rad": RA0 + dra_arcsec * ARCSEC / math.cos(DEC0),
        "dec_rad": DEC0 + ddec_arcsec * ARCSEC,
    }


def hexagon(name: str, first_id: int = 0, spacing: float = 12.0) -> list[dict]:
    """7 pointings: six around the centre at `spacing` arcsec; the centre is the 4th (id first+3)."""
    around = [
        field(0, name, spacing * math.cos(math.radians(a)), spacing * math.sin(math.radians(a)))
        for a in range(0, 360, 60)
    ]
    fields = [*around[:3], field(0, name), *around[3:]]
    for i, f in enumerate(fields):
        f["id"] = first_id + i
    return fields


def data(fields: list[dict] | None = None, *, spws: list[dict] | None = None, dishes=(12.0,)) -> dict:
    spws = SPWS if spws is None else spws
    return {
        "vis": PREPARED_MS,
        "fields": fields if fields is not None else [field(0, "NGC_5128")],
        "spws": spws,
        "dish_diameters_m": list(dishes),
        "baselines_m": {"min": 15.0, "median": 200.0, "p80": L80, "max": 1200.0},
        "spectra": {
            "0": spectrum(128, 1),
            "1": spectrum(480, 2, line=(200, 240)),
            "2": spectrum(128, 3, line=(60, 63)),
            "3": spectrum(128, 4),
        },
    }


def found_in(summary: dict) -> list[ContinuumChannels]:
    return [find_continuum(s["id"], summary["spectra"][str(s["id"])]) for s in summary["spws"]]


def expected_geometry(spws: list[dict], dish: float = 12.0) -> tuple[float, float, float]:
    """(beam, cell, primary beam) in arcsec, written out from the formulas."""
    top = max(max(s["first_freq_ghz"], s["last_freq_ghz"]) for s in spws) * 1e9
    bottom = min(min(s["first_freq_ghz"], s["last_freq_ghz"]) for s in spws) * 1e9
    beam = 0.574 * (C / top) / L80 / ARCSEC
    pb = 1.13 * (C / bottom) / dish / ARCSEC
    exponent = math.floor(math.log10(beam / 5))
    cell = round(beam / 5, -exponent + 1)  # two significant digits
    return beam, cell, pb


# --- running a generated script with stand-in CASA tasks -------------------------------------------
class Casalog:
    def post(self, *args, **kwargs) -> None:
        pass


def run(text: str, monkeypatch, tmp_path: Path) -> list[tuple[str, dict]]:
    """Execute `text` (all steps) with recording tasks; os.system is recorded, never run."""
    calls: list[tuple[str, dict]] = []

    def task(name):
        def record(*args, **kwargs):
            assert not args, f"{name} called with positional arguments {args}"
            calls.append((name, kwargs))

        return record

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "system", lambda command: calls.append(("os.system", {"command": command})) or 0)
    names = ("tclean", "impbcor", "exportfits", "split", "concat", "listobs")
    namespace = {"casalog": Casalog(), **{n: task(n) for n in names}}
    exec(compile(text, "generated.py", "exec"), namespace)  # noqa: S102 - our own generated text
    return calls


def of(calls: list[tuple[str, dict]], name: str) -> list[dict]:
    return [kw for task, kw in calls if task == name]


def assert_parses(text: str, titles: list[str]) -> None:
    compile(text, "generated.py", "exec")
    parsed = parse_script(text, "scriptForImaging.py")
    assert parsed.runnable
    assert not parsed.python2 and not parsed.syntax_error
    assert parsed.blocking == [], parsed.findings
    assert [s.number for s in parsed.steps] == list(range(len(titles)))
    assert [s.title for s in parsed.steps] == titles
    assert parsed.titles == dict(enumerate(titles))


# --- targets: one pointing or a mosaic -------------------------------------------------------------
def test_one_pointing_is_imaged_with_the_standard_gridder(monkeypatch, tmp_path):
    summary = data()
    text = imaging_script(summary, LINE, found_in(summary))
    cleans = of(run(text, monkeypatch, tmp_path), "tclean")
    assert len(cleans) == 2
    for kw in cleans:
        assert kw["field"] == "NGC_5128"
        assert kw["gridder"] == "standard"
        assert "phasecenter" not in kw
        assert kw["vis"] == PREPARED_MS
    assert "phasecenter" not in text


def test_seven_pointings_of_one_source_are_a_mosaic_centred_on_the_middle_field(monkeypatch, tmp_path):
    fields = hexagon("NGC_5128", first_id=2)  # ids 2..8, the centre is 5
    (target,) = targets_of({"fields": fields})
    assert target.is_mosaic
    assert target.field_ids == (2, 3, 4, 5, 6, 7, 8)
    assert target.phasecenter == 5
    assert target.extent_arcsec == pytest.approx(24.0, rel=1e-4)  # opposite corners

    single = data()
    mosaic = data(fields)
    text = imaging_script(mosaic, LINE, found_in(mosaic))
    cleans = of(run(text, monkeypatch, tmp_path), "tclean")
    assert [kw["gridder"] for kw in cleans] == ["mosaic", "mosaic"]
    assert [kw["phasecenter"] for kw in cleans] == [5, 5]
    assert all(kw["field"] == "NGC_5128" for kw in cleans)  # every pointing, by name

    _beam, cell, pb = expected_geometry(SPWS)
    single_size = imsize_for(targets_of(single)[0], geometry(single))
    mosaic_size = cleans[0]["imsize"][0]
    assert mosaic_size > single_size
    assert mosaic_size * cell >= 24.0 + 1.5 * pb
    smaller = [s for s in GOOD_IMSIZES if s < mosaic_size]
    assert smaller[-1] * cell < 24.0 + 1.5 * pb  # the smallest good size that covers it


def test_a_single_field_target_has_no_extent():
    (target,) = targets_of({"fields": [field(9, "X")]})
    assert not target.is_mosaic
    assert (target.field_ids, target.phasecenter, target.extent_arcsec) == ((9,), 9, 0.0)


# --- cell, beam and image size ---------------------------------------------------------------------
def test_cell_is_a_fifth_of_the_beam_at_the_highest_frequency_to_two_digits(monkeypatch, tmp_path):
    summary = data()
    beam, cell, pb = expected_geometry(SPWS)
    geo = geometry(summary)
    assert geo.beam_arcsec == pytest.approx(beam)
    assert geo.pb_arcsec == pytest.approx(pb)
    assert geo.cell_arcsec == cell
    assert geo.dish_m == 12.0
    # 0.574 x 1.209 mm / 400 m = 0.3578"; / 5 = 0.07157 -> 0.072 (highest frequency: spw 3's 247.98 GHz)
    assert beam == pytest.approx(0.3578, abs=1e-3)
    assert cell == 0.072
    # 1.13 x 1.309 mm / 12 m at 229 GHz = 25.4"
    assert pb == pytest.approx(25.43, abs=0.05)

    text = imaging_script(summary, LINE, found_in(summary))
    cleans = of(run(text, monkeypatch, tmp_path), "tclean")
    assert {kw["cell"] for kw in cleans} == {"0.072arcsec"}
    size = cleans[0]["imsize"]
    assert size[0] == size[1]
    assert size[0] in GOOD_IMSIZES
    assert size[0] * cell >= 1.5 * pb
    assert [s for s in GOOD_IMSIZES if s < size[0]][-1] * cell < 1.5 * pb
    assert size[0] == 540  # 1.5 x 25.43 / 0.072 = 529.7 -> 540 (2^2 3^3 5)


def test_seven_metre_dishes_give_a_larger_primary_beam_and_image():
    twelve, seven, mixed = data(dishes=(12.0,)), data(dishes=(7.0,)), data(dishes=(7.0, 12.0))
    g12, g7, gmixed = geometry(twelve), geometry(seven), geometry(mixed)
    assert g7.cell_arcsec == g12.cell_arcsec  # the same baselines: the same cell
    assert g7.pb_arcsec == pytest.approx(g12.pb_arcsec * 12 / 7)
    assert gmixed.dish_m == 7.0  # the smallest dish sets the field of view
    target = targets_of(twelve)[0]
    assert imsize_for(target, g7) > imsize_for(target, g12)
    assert imsize_for(target, g7) * g7.cell_arcsec >= 1.5 * g7.pb_arcsec


def test_no_dish_diameter_means_12_m_and_no_baselines_is_refused():
    summary = data(dishes=())
    assert geometry(summary).dish_m == 12.0
    summary["baselines_m"] = {"min": 0.0, "median": 0.0, "p80": 0.0, "max": 0.0}
    with pytest.raises(ValueError, match="no baselines"):
        geometry(summary)


def test_an_image_too_large_for_the_sizes_gets_the_largest():
    summary = data(dishes=(12.0,))
    summary["baselines_m"]["p80"] = 1e9  # a tiny beam: more pixels than GOOD_IMSIZES holds
    assert imsize_for(targets_of(summary)[0], geometry(summary)) == GOOD_IMSIZES[-1]


# --- continuum and cube --------------------------------------------------------------------------
def test_the_continuum_image_uses_the_line_free_channels(monkeypatch, tmp_path):
    summary = data()
    found = found_in(summary)
    assert found[1].line and found[2].line  # the made-up lines were found
    text = imaging_script(summary, LINE, found)
    cont, cube = of(run(text, monkeypatch, tmp_path), "tclean")
    assert cont["specmode"] == "mfs"
    assert cont["spw"] == continuum_selection(found)
    assert cont["spw"].startswith("0,1:0~")  # spw 0 whole, spw 1 without its line
    assert cont["imagename"] == "NGC_5128_cont"
    assert cube["specmode"] == "cube" and cube["imagename"] == "NGC_5128_cube"
    assert f"# continuum: {continuum_selection(found)} (" in text


def test_no_line_free_channel_leaves_the_selection_to_the_reducer(monkeypatch, tmp_path):
    summary = data()
    nothing = [ContinuumChannels(s["id"], s["nchan"], (), ((0, s["nchan"] - 1),), 1.0, True) for s in SPWS]
    text = imaging_script(summary, LINE, nothing)
    cont = of(run(text, monkeypatch, tmp_path), "tclean")[0]
    assert cont["spw"] == ""
    assert cont["threshold"] == "0mJy"  # no bandwidth to scale the rms to
    assert "# continuum: no line-free channel found: choose by hand (0 MHz)" in text


@pytest.mark.parametrize(
    ("frequency", "expected"),
    [
        (231.2, 1),  # inside spw 1
        (229.0, 0),  # spw 0's first channel (edges included)
        (247.0, 3),  # inside spw 3, whose frequency falls with channel
        (238.0, 1),  # between spws: the nearest mean frequency (231.23 vs 244.99)
        (300.0, 3),  # above all: the nearest (spw 3, mean 246.99)
        (None, 0),  # not given: the first
    ],
)
def test_the_representative_spw(frequency, expected):
    assert representative_spw(data(), frequency)["id"] == expected


def test_the_cube_is_of_the_representative_spw_at_the_requested_resolution(monkeypatch, tmp_path):
    summary = data()
    text = imaging_script(summary, LINE, found_in(summary))
    cube = of(run(text, monkeypatch, tmp_path), "tclean")[1]
    assert cube["spw"] == "1"
    assert cube["width"] == round(5.0 / 0.9765625) == 5
    assert cube["outframe"] == "LSRK"
    assert "# cube: spw 1 (representative frequency 231.2 GHz), width 5 channel(s)" in text


@pytest.mark.parametrize(
    ("request_", "width"),
    [
        (ImagingRequest("continuum", 231.2, 0.5, 5.0), 1),  # a continuum goal: native channels
        (ImagingRequest("line", 231.2, 0.5, 1.4), 1),  # round(1.43) = 1
        (ImagingRequest("line", 231.2, 0.5, 1.5), 2),  # round(1.54) = 2
        (ImagingRequest("line", 231.2, 0.5, 0.1), 1),  # finer than a channel: never 0
        (ImagingRequest("line", 231.2, 0.5, 10_000.0), 480),  # never more than the spw
        (ImagingRequest("line", 231.2, 0.5, None), 1),  # no resolution asked
    ],
)
def test_cube_width(monkeypatch, tmp_path, request_, width):
    summary = data()
    text = imaging_script(summary, request_, found_in(summary))
    assert of(run(text, monkeypatch, tmp_path), "tclean")[1]["width"] == width


def test_without_a_representative_frequency_the_first_spw_is_the_cube(monkeypatch, tmp_path):
    summary = data()
    request = ImagingRequest("line", None, 0.5, 5.0)
    text = imaging_script(summary, request, found_in(summary))
    assert of(run(text, monkeypatch, tmp_path), "tclean")[1]["spw"] == "0"
    assert "representative frequency not given GHz" in text


# --- thresholds ----------------------------------------------------------------------------------
def test_thresholds_are_3_sigma_of_the_requested_rms_scaled_to_each_image(monkeypatch, tmp_path):
    summary = data()
    found = found_in(summary)
    text = imaging_script(summary, LINE, found)
    cont, cube = of(run(text, monkeypatch, tmp_path), "tclean")

    widths = {s["id"]: s["chan_width_mhz"] for s in SPWS}
    cont_bw = sum(widths[f.spw] * f.free_count for f in found)
    cont_mjy = 3 * 0.5 * math.sqrt(5.0 / cont_bw)
    cube_mjy = 3 * 0.5 * math.sqrt(5.0 / (5 * 0.9765625))
    assert cont["threshold"] == f"{cont_mjy:.3g}mJy"
    assert cube["threshold"] == f"{cube_mjy:.3g}mJy"
    assert cube["threshold"] == "1.52mJy"
    assert float(cont["threshold"].removesuffix("mJy")) == pytest.approx(cont_mjy, rel=5e-3)
    assert "# thresholds: 3 x the requested 0.5 mJy/beam at 5.0 MHz" in text


def test_a_continuum_project_scales_its_rms_down_to_a_channel_of_the_cube(monkeypatch, tmp_path):
    summary = data()
    text = imaging_script(summary, CONTINUUM, found_in(summary))
    cube = of(run(text, monkeypatch, tmp_path), "tclean")[1]
    assert cube["spw"] == "2"  # 245.0 GHz
    assert cube["width"] == 1
    assert cube["threshold"] == f"{3 * 0.05 * math.sqrt(7500.0 / 15.625):.3g}mJy" == "3.29mJy"


def test_no_requested_rms_means_no_threshold_and_the_header_says_so(monkeypatch, tmp_path):
    summary = data()
    request = ImagingRequest("line", 231.2, None, 5.0)
    text = imaging_script(summary, request, found_in(summary))
    cleans = of(run(text, monkeypatch, tmp_path), "tclean")
    assert [kw["threshold"] for kw in cleans] == ["0mJy", "0mJy"]
    assert all(kw["niter"] == 10000 for kw in cleans)
    assert "# the request gives no rms" in text
    assert "thresholds from the weights only" in text
    assert "# thresholds:" not in text


def test_an_rms_without_its_bandwidth_is_said_as_no_threshold(monkeypatch, tmp_path):
    """The MOUS allows requested_rms_mjy without rms_bandwidth_mhz (both are nullable): the
    thresholds are then 0mJy, and the header must not claim a scaled threshold 'at None MHz'."""
    summary = data()
    request = ImagingRequest("line", 231.2, 0.5, None)
    text = imaging_script(summary, request, found_in(summary))
    cleans = of(run(text, monkeypatch, tmp_path), "tclean")
    assert [kw["threshold"] for kw in cleans] == ["0mJy", "0mJy"]
    assert "None MHz" not in text
    assert "# thresholds:" not in text
    assert "thresholds from the weights only" in text


def test_data_better_than_requested_are_cleaned_to_3_sigma_of_their_thermal_rms(monkeypatch, tmp_path):
    """The weights predict 1/sqrt(sum) x 1.1 (robust 0.5); when that is below the request
    scaled to the image, the threshold follows the data (else the residual keeps emission)."""
    summary = data()
    summary["weight_sums"] = {str(s["id"]): 4.0e6 for s in summary["spws"]}
    request = ImagingRequest("line", 231.2, 50.0, 5.0)  # a very loose request
    text = imaging_script(summary, request, found_in(summary))
    cube = of(run(text, monkeypatch, tmp_path), "tclean")[1]
    width = cube["width"]
    thermal = 1.1 * 1e3 / math.sqrt(4.0e6 * width)
    assert cube["threshold"] == f"{3 * thermal:.3g}mJy"
    strict = imaging_script(summary, ImagingRequest("line", 231.2, 1e-6, 5.0), found_in(summary))
    requested = 1e-6 * math.sqrt(5.0 / (width * summary["spws"][1]["chan_width_mhz"]))
    assert of(run(strict, monkeypatch, tmp_path), "tclean")[1]["threshold"] == f"{3 * requested:.3g}mJy"


# --- primary beam correction and export -------------------------------------------------------------
def test_both_images_are_pb_corrected_and_exported(monkeypatch, tmp_path):
    summary = data()
    text = imaging_script(summary, LINE, found_in(summary))
    calls = run(text, monkeypatch, tmp_path)
    assert [kw["imagename"] for kw in of(calls, "impbcor")] == ["NGC_5128_cont.image", "NGC_5128_cube.image"]
    assert [kw["pbimage"] for kw in of(calls, "impbcor")] == ["NGC_5128_cont.pb", "NGC_5128_cube.pb"]
    assert [kw["outfile"] for kw in of(calls, "impbcor")] == [
        "NGC_5128_cont.image.pbcor",
        "NGC_5128_cube.image.pbcor",
    ]
    exports = [(kw["imagename"], kw["fitsimage"]) for kw in of(calls, "exportfits")]
    assert exports == [
        ("NGC_5128_cont.image.pbcor", "NGC_5128_cont.pbcor.fits"),
        ("NGC_5128_cont.pb", "NGC_5128_cont.flux.fits"),
        ("NGC_5128_cube.image.pbcor", "NGC_5128_cube.pbcor.fits"),
        ("NGC_5128_cube.pb", "NGC_5128_cube.flux.fits"),
    ]
    assert all(kw["overwrite"] is True for kw in of(calls, "exportfits") + of(calls, "impbcor"))
    # What each step removes before writing stays inside the target's own images.
    removed = [kw["command"] for kw in of(calls, "os.system")]
    assert removed == [
        "rm -rf NGC_5128_cont.*",
        "rm -rf NGC_5128_cube.*",
        "rm -rf NGC_5128_cont.image.pbcor",
        "rm -rf NGC_5128_cube.image.pbcor",
    ]


def test_two_targets_get_steps_each(monkeypatch, tmp_path):
    fields = [field(0, "NGC_5128"), *hexagon("Cen A lobe", first_id=1)]
    summary = data(fields)
    text = imaging_script(summary, LINE, found_in(summary))
    titles = [
        "Continuum image of NGC_5128",
        "Cube of NGC_5128 (spw 1)",
        "Primary beam correction and FITS export of NGC_5128",
        "Continuum image of Cen A lobe",
        "Cube of Cen A lobe (spw 1)",
        "Primary beam correction and FITS export of Cen A lobe",
    ]
    assert_parses(text, titles)
    calls = run(text, monkeypatch, tmp_path)
    cleans = of(calls, "tclean")
    assert [(kw["field"], kw["imagename"], kw["gridder"]) for kw in cleans] == [
        ("NGC_5128", "NGC_5128_cont", "standard"),
        ("NGC_5128", "NGC_5128_cube", "standard"),
        ("Cen A lobe", "Cen_A_lobe_cont", "mosaic"),
        ("Cen A lobe", "Cen_A_lobe_cube", "mosaic"),
    ]
    assert cleans[2]["phasecenter"] == 4
    assert cleans[2]["imsize"][0] > cleans[0]["imsize"][0]
    assert [kw["fitsimage"] for kw in of(calls, "exportfits")][4:] == [
        "Cen_A_lobe_cont.pbcor.fits",
        "Cen_A_lobe_cont.flux.fits",
        "Cen_A_lobe_cube.pbcor.fits",
        "Cen_A_lobe_cube.flux.fits",
    ]
    assert "# Imaging of NGC_5128, Cen A lobe from calibrated_final.ms" in text


# --- the scripts as the portal reads them --------------------------------------------------------
def test_the_imaging_script_parses_with_its_steps_and_titles():
    summary = data()
    text = imaging_script(summary, LINE, found_in(summary))
    assert_parses(
        text,
        [
            "Continuum image of NGC_5128",
            "Cube of NGC_5128 (spw 1)",
            "Primary beam correction and FITS export of NGC_5128",
        ],
    )


def test_selected_steps_run_alone(monkeypatch, tmp_path):
    summary = data()
    text = imaging_script(summary, LINE, found_in(summary))
    calls = run("mysteps = [1]\n" + text, monkeypatch, tmp_path)
    assert [kw["imagename"] for kw in of(calls, "tclean")] == ["NGC_5128_cube"]
    assert of(calls, "exportfits") == []


# --- scriptForImagingPrep.py ---------------------------------------------------------------------
def test_prep_of_one_input_splits_the_targets_and_lists_the_result(monkeypatch, tmp_path):
    text = prep_script(["uid___A002_X1_X2.ms.split.cal"], ["NGC_5128", "Cen A lobe"])
    assert_parses(text, ["Split out the science target"])
    calls = run(text, monkeypatch, tmp_path)
    assert of(calls, "concat") == []
    (split,) = of(calls, "split")
    assert split == {
        "vis": "uid___A002_X1_X2.ms.split.cal",
        "outputvis": PREPARED_MS,
        "field": "NGC_5128,Cen A lobe",
        "datacolumn": "data",
        "keepflags": False,
    }
    assert of(calls, "listobs") == [{"vis": PREPARED_MS, "listfile": f"{PREPARED_MS}.listobs"}]
    assert [c[0] for c in calls] == ["os.system", "split", "os.system", "listobs"]
    assert of(calls, "os.system")[0] == {"command": f"rm -rf {PREPARED_MS}"}
    assert "-> calibrated_final.ms (NGC_5128,Cen A lobe)" in text


def test_prep_of_two_inputs_concatenates_first(monkeypatch, tmp_path):
    inputs = ["uid___A002_X1_X2.ms.split.cal", "uid___A002_X3_X4.ms.split.cal"]
    text = prep_script(inputs, ["NGC_5128"])
    assert_parses(text, ["Concatenate the calibrated data", "Split out the science target"])
    calls = run(text, monkeypatch, tmp_path)
    assert [c[0] for c in calls if c[0] != "os.system"] == ["concat", "split", "listobs"]
    assert of(calls, "concat") == [{"vis": inputs, "concatvis": "calibrated.ms"}]
    assert of(calls, "split")[0]["vis"] == "calibrated.ms"
    assert of(calls, "split")[0]["outputvis"] == PREPARED_MS


def test_prep_without_input_is_refused():
    with pytest.raises(ValueError, match="no calibrated data"):
        prep_script([], ["NGC_5128"])


def _wrapped(fields: list[dict], low: float) -> list[dict]:
    """The fields with RA put in [low, low + 2 pi), as the MS may give it."""
    for f in fields:
        f["ra_rad"] = (f["ra_rad"] - low) % (2 * math.pi) + low
    return fields


@pytest.mark.parametrize(
    ("ra0", "low"),
    [
        (math.pi, -math.pi),  # a mosaic at 12h with RA in (-pi, pi] (CASA's msmd gives this)
        (0.0, 0.0),  # a mosaic at 0h with RA in [0, 2 pi)
    ],
)
def test_a_mosaic_across_the_ra_wrap_keeps_its_middle_pointing_as_phasecenter(ra0, low):
    fields = hexagon("X")
    for f in fields:
        f["ra_rad"] += ra0 - RA0
    (target,) = targets_of({"fields": _wrapped(fields, low)})
    assert target.extent_arcsec == pytest.approx(24.0, rel=1e-4)
    assert target.phasecenter == 3
