"""reports.fits_images: the image page's reading of exported FITS (astropy, no CASA, no worker).

The FITS files are written here with astropy, laid out as CASA's exportfits writes them:
RA---SIN / DEC--SIN, then FREQ, then STOKES (numpy order: stokes, freq, dec, ra), the beam in
degrees, BUNIT Jy/beam. Every file lives below the per-test DATA_ROOT (tests/conftest.py):
the module reads through assignments.datafiles.open_confined, which refuses anything else.
"""

import base64
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import Angle
from astropy.io import fits

from assignments.datafiles import UnsafePath
from reports import fits_images
from reports.fits_images import ImageUnreadable, beam_ellipse, block_mean, plane_payload, spectrum_payload

CRVAL1_DEG = 201.365063  # 13:25:27.615
CRVAL2_DEG = -43.019113  # -43:01:08.81
CELL_DEG = 0.02 / 3600  # 0.02 arcsec pixels
BMAJ_DEG = 0.30 / 3600  # 15 pixels
BMIN_DEG = 0.20 / 3600  # 10 pixels
FREQ_HZ = 230.0e9
CHAN_HZ = 15.625e6
ISSUE_LIMIT_BYTES = 5 * 1024 * 1024  # the issue: a 1000 x 1000 image's plane at most 5 MB


@pytest.fixture
def folder(data_root: Path) -> Path:
    """An Imaging/ folder below the per-test DATA_ROOT."""
    path = data_root / "mous" / "Imaging"
    path.mkdir(parents=True)
    return path


def write_image(
    path: Path,
    data: np.ndarray,
    *,
    nchan: int = 1,
    bpa: float = 0.0,
    beam: bool = True,
    crpix: tuple[float, float] | None = None,
) -> Path:
    """`data` (nchan, ny, nx) as a 4-axis FITS like exportfits: RA, Dec, FREQ, STOKES.

    CRPIX defaults to the image centre ((n + 1) / 2, 1-based), so the centre pixel of the
    pixel grid is CRVAL exactly."""
    cube = np.asarray(data, dtype=np.float32)
    if cube.ndim == 2:
        cube = cube[None]
    assert cube.shape[0] == nchan
    ny, nx = cube.shape[1:]
    hdu = fits.PrimaryHDU(cube[None])  # (stokes, freq, dec, ra)
    h = hdu.header
    cx, cy = crpix if crpix else ((nx + 1) / 2, (ny + 1) / 2)
    axes = [
        ("RA---SIN", CRVAL1_DEG, -CELL_DEG, cx, "deg"),
        ("DEC--SIN", CRVAL2_DEG, CELL_DEG, cy, "deg"),
        ("FREQ", FREQ_HZ, CHAN_HZ, 1.0, "Hz"),
        ("STOKES", 1.0, 1.0, 1.0, ""),
    ]
    for i, (ctype, crval, cdelt, crpix_i, cunit) in enumerate(axes, start=1):
        h[f"CTYPE{i}"], h[f"CRVAL{i}"], h[f"CDELT{i}"] = ctype, crval, cdelt
        h[f"CRPIX{i}"], h[f"CUNIT{i}"] = crpix_i, cunit
    h["RADESYS"], h["EQUINOX"], h["SPECSYS"] = "ICRS", 2000.0, "LSRK"
    h["BUNIT"] = "Jy/beam"
    if beam:
        h["BMAJ"], h["BMIN"], h["BPA"] = BMAJ_DEG, BMIN_DEG, bpa
    hdu.writeto(path)
    return path


def decode(payload: dict) -> np.ndarray:
    raw = base64.b64decode(payload["z"])
    return np.frombuffer(raw, dtype="<f4").reshape(payload["shape"])


def block_means(plane: np.ndarray, stride: int) -> np.ndarray:
    """Reference: float64 mean of each full stride x stride block (dimensions divisible)."""
    ny, nx = plane.shape
    return plane.astype(np.float64).reshape(ny // stride, stride, nx // stride, stride).mean(axis=(1, 3))


# --- one plane ----------------------------------------------------------------------------------
def test_plane_of_a_1000_pixel_image_is_2x2_block_means_and_under_5_mb(folder, capsys):
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 1e-3, (1000, 1000)).astype(np.float32)
    data[480:520, 600:640] += 0.25  # a source
    write_image(folder / "t_cont.pbcor.fits", data)

    payload = plane_payload(folder, "t_cont.pbcor.fits")

    assert payload["stride"] == 2
    assert payload["shape"] == [500, 500]
    assert payload["pixels"] == [1000, 1000]
    assert payload["channel"] == 0 and payload["nchan"] == 1
    assert payload["unit"] == "Jy/beam"
    assert payload["freq_ghz"] == pytest.approx(230.0)
    assert payload["peak"] == pytest.approx(float(data.max()))
    np.testing.assert_allclose(decode(payload), block_means(data, 2), rtol=1e-5, atol=1e-7)

    size = len(json.dumps(payload))
    with capsys.disabled():
        print(f"\n1000x1000 plane payload: {size} bytes ({size / 1e6:.2f} MB)")
    assert size <= ISSUE_LIMIT_BYTES
    # 500 x 500 float32 in base64 is 1.33 MB; the rest (ticks, beam) is small.
    assert size < 1.5e6


def test_a_small_image_is_sent_at_full_resolution(folder):
    data = np.arange(64 * 48, dtype=np.float32).reshape(48, 64)
    write_image(folder / "small.fits", data)
    payload = plane_payload(folder, "small.fits")
    assert payload["stride"] == 1
    assert payload["shape"] == [48, 64]
    np.testing.assert_array_equal(decode(payload), data)  # row-major, row 0 = the first FITS row


def test_a_side_not_divisible_by_the_stride_is_padded_without_biasing_the_edge(folder):
    # 1025 > 2 x 512: stride 3, the last row/column blocks hold 2 and 2 real pixels.
    data = np.ones((1025, 1030), dtype=np.float32)
    data[-1, :] = 4.0  # the last row: in a block with two rows of ones (1024 = 3 x 341 + 1)
    write_image(folder / "odd.fits", data)
    payload = plane_payload(folder, "odd.fits")
    assert payload["stride"] == 3
    assert payload["shape"] == [342, 344]
    z = decode(payload)
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(z[:-1, :], 1.0)
    # The last block row holds row 1023 (ones) and row 1024 (fours): mean 2.5, padding ignored.
    np.testing.assert_allclose(z[-1, :], 2.5)


# --- NaN ----------------------------------------------------------------------------------------
def test_block_mean_ignores_nan_and_an_all_nan_block_stays_nan():
    plane = np.array(
        [
            [1.0, np.nan, np.nan, np.nan],
            [3.0, 5.0, np.nan, np.nan],
            [2.0, 2.0, 7.0, np.nan],
            [2.0, 2.0, np.nan, np.nan],
        ],
        dtype=np.float32,
    )
    out = block_mean(plane, 2)
    assert out.dtype == np.float32
    assert out[0, 0] == pytest.approx(3.0)  # (1 + 3 + 5) / 3: the NaN is not a zero
    assert math.isnan(out[0, 1])  # all NaN
    assert out[1, 0] == pytest.approx(2.0)
    assert out[1, 1] == pytest.approx(7.0)


def test_block_mean_with_stride_1_is_the_plane():
    plane = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(block_mean(plane, 1), plane)


def test_nan_outside_the_primary_beam_reaches_the_page_as_nan(folder):
    # exportfits blanks pixels beyond the pb cut with NaN: they stay NaN, the peak skips them.
    data = np.full((1000, 1000), np.nan, dtype=np.float32)
    data[200:800, 200:800] = 0.5
    data[201, 201] = np.nan  # a lone NaN inside: its block is the mean of the other three
    data[500, 500] = 2.0
    write_image(folder / "blanked.fits", data)
    payload = plane_payload(folder, "blanked.fits")
    z = decode(payload)
    assert np.isnan(z[0, 0]) and np.isnan(z[-1, -1])
    assert z[100, 100] == pytest.approx(0.5)  # pixels 200-201: the lone NaN ignored
    assert z[250, 250] == pytest.approx((2.0 + 3 * 0.5) / 4)
    assert payload["peak"] == pytest.approx(2.0)
    json.dumps(payload, allow_nan=False)  # NaN travels inside z only: the JSON itself is valid


def test_an_all_nan_plane_has_no_peak(folder):
    write_image(folder / "nan.fits", np.full((20, 20), np.nan, dtype=np.float32))
    payload = plane_payload(folder, "nan.fits")
    assert payload["peak"] is None
    assert np.all(np.isnan(decode(payload)))


# --- axes ---------------------------------------------------------------------------------------
def test_ticks_are_five_each_and_the_middle_one_is_the_reference_position(folder):
    write_image(folder / "t.fits", np.zeros((1000, 1000), dtype=np.float32))
    ticks = plane_payload(folder, "t.fits")["ticks"]
    assert len(ticks["x"]["vals"]) == len(ticks["x"]["text"]) == 5
    assert len(ticks["y"]["vals"]) == len(ticks["y"]["text"]) == 5
    assert ticks["x"]["vals"][0] == 0 and ticks["x"]["vals"][-1] == 999
    assert ticks["x"]["vals"][2] == pytest.approx(499.5)  # CRPIX 500.5 (1-based) = pixel 499.5

    ra = Angle(CRVAL1_DEG, u.deg).to_string(unit=u.hour, sep=":", precision=2)
    dec = Angle(CRVAL2_DEG, u.deg).to_string(unit=u.deg, sep=":", precision=1)
    assert ra == "13:25:27.62"  # sanity of the constant
    assert ticks["x"]["text"][2] == ra
    assert ticks["y"]["text"][2] == dec
    # RA grows to the left (CDELT1 < 0): the first tick is east of the centre.
    first = Angle(ticks["x"]["text"][0], unit=u.hour)
    assert first.deg > CRVAL1_DEG
    # 999 pixels of 0.02" span 19.98"; the outer ticks are +-9.99" in Dec from the centre.
    top = Angle(ticks["y"]["text"][-1], unit=u.deg)
    assert (top.deg - CRVAL2_DEG) * 3600 == pytest.approx(9.99, abs=0.1)


def test_beam_ellipse_spans_bmaj_along_y_and_bmin_along_x_for_bpa_0(folder):
    write_image(folder / "b.fits", np.zeros((200, 200), dtype=np.float32), bpa=0.0)
    beam = plane_payload(folder, "b.fits")["beam"]
    assert beam["bmaj_arcsec"] == pytest.approx(0.30)
    assert beam["bmin_arcsec"] == pytest.approx(0.20)
    assert beam["bpa_deg"] == 0.0
    xs, ys = np.array(beam["x"]), np.array(beam["y"])
    assert len(xs) == fits_images.BEAM_POINTS + 1
    assert (xs[0], ys[0]) == pytest.approx((xs[-1], ys[-1]))  # closed
    assert ys.max() - ys.min() == pytest.approx(BMAJ_DEG / CELL_DEG)  # 15 pixels
    assert xs.max() - xs.min() == pytest.approx(BMIN_DEG / CELL_DEG)  # 10 pixels
    assert xs.min() > 0 and ys.min() > 0  # inside the image, lower-left corner
    assert xs.max() < 100 and ys.max() < 100


def test_beam_ellipse_at_bpa_90_lies_along_x():
    header = fits.Header({"BMAJ": BMAJ_DEG, "BMIN": BMIN_DEG, "BPA": 90.0, "CDELT2": CELL_DEG})
    beam = beam_ellipse(header, 200, 200)
    assert beam is not None
    xs, ys = np.array(beam["x"]), np.array(beam["y"])
    assert xs.max() - xs.min() == pytest.approx(15.0)
    assert ys.max() - ys.min() == pytest.approx(10.0)


def test_no_beam_in_the_header_means_no_ellipse(folder):
    write_image(folder / "nobeam.fits", np.zeros((50, 50), dtype=np.float32), beam=False)
    assert plane_payload(folder, "nobeam.fits")["beam"] is None


# --- cubes --------------------------------------------------------------------------------------
def make_cube(nchan: int = 16, ny: int = 40, nx: int = 50) -> np.ndarray:
    """Channel k holds k + 0.001 * (row index) + 0.000001 * (column index): every value is unique."""
    k = np.arange(nchan)[:, None, None]
    y = np.arange(ny)[None, :, None]
    x = np.arange(nx)[None, None, :]
    return (k + 1e-3 * y + 1e-6 * x).astype(np.float32)


def test_cube_channels_frequencies_and_planes(folder):
    cube = make_cube()
    write_image(folder / "t_cube.pbcor.fits", cube, nchan=16)
    header = fits.getheader(folder / "t_cube.pbcor.fits")
    assert fits_images.channel_count(header) == 16
    expected = [(FREQ_HZ + k * CHAN_HZ) / 1e9 for k in range(16)]  # CRPIX3 = 1
    assert fits_images.frequencies_ghz(header) == pytest.approx(expected)

    for k in (0, 7, 15):
        payload = plane_payload(folder, "t_cube.pbcor.fits", channel=k)
        assert payload["channel"] == k and payload["nchan"] == 16
        assert payload["freq_ghz"] == pytest.approx(expected[k])
        np.testing.assert_array_equal(decode(payload), cube[k])


def test_cube_frequencies_follow_crpix3_and_a_negative_cdelt3(folder):
    path = write_image(folder / "lsb.fits", make_cube(nchan=4, ny=4, nx=4), nchan=4)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["CRPIX3"] = 3.0
        hdul[0].header["CDELT3"] = -CHAN_HZ
    header = fits.getheader(path)
    assert fits_images.frequencies_ghz(header) == pytest.approx(
        [(FREQ_HZ + 2 * CHAN_HZ) / 1e9, (FREQ_HZ + CHAN_HZ) / 1e9, FREQ_HZ / 1e9, (FREQ_HZ - CHAN_HZ) / 1e9]
    )


@pytest.mark.parametrize("channel", [16, -1, 100])
def test_a_channel_outside_the_cube_is_refused_clearly(folder, channel):
    write_image(folder / "c.fits", make_cube(), nchan=16)
    with pytest.raises(ImageUnreadable, match=rf"channel {channel}: the image has channels 0 to 15"):
        plane_payload(folder, "c.fits", channel=channel)


def test_a_continuum_image_has_only_channel_0(folder):
    write_image(folder / "c.fits", np.zeros((10, 10), dtype=np.float32))
    with pytest.raises(ImageUnreadable, match="channels 0 to 0"):
        plane_payload(folder, "c.fits", channel=1)


def test_spectrum_at_a_pixel_is_its_16_values_in_order(folder):
    cube = make_cube()
    write_image(folder / "c.fits", cube, nchan=16)
    x, y = 12, 30
    spectrum = spectrum_payload(folder, "c.fits", x, y)
    assert (spectrum["x"], spectrum["y"]) == (x, y)
    assert spectrum["values"] == pytest.approx([float(cube[k, y, x]) for k in range(16)])
    assert spectrum["values"][0] < spectrum["values"][1] < spectrum["values"][15]
    assert spectrum["freq_ghz"] == pytest.approx([(FREQ_HZ + k * CHAN_HZ) / 1e9 for k in range(16)])
    assert spectrum["unit"] == "Jy/beam"
    # RA/Dec of the pixel, from the image's WCS: 0.02" pixels from the centre (25.5, 20.5 1-based).
    ra = Angle(spectrum["ra"], unit=u.hour)
    dec = Angle(spectrum["dec"], unit=u.deg)
    assert spectrum["ra"].count(":") == 2 and spectrum["dec"].count(":") == 2
    assert (dec.deg - CRVAL2_DEG) * 3600 == pytest.approx((y + 1 - 20.5) * 0.02, abs=0.01)
    ra_offset = (ra.deg - CRVAL1_DEG) * 3600 * math.cos(math.radians(CRVAL2_DEG))
    assert ra_offset == pytest.approx(-(x + 1 - 25.5) * 0.02, abs=0.01)  # RA grows to the left
    json.dumps(spectrum, allow_nan=False)


def test_spectrum_of_a_nan_pixel_is_none_per_channel(folder):
    cube = make_cube(nchan=3, ny=5, nx=5)
    cube[1, 2, 2] = np.nan
    write_image(folder / "c.fits", cube, nchan=3)
    values = spectrum_payload(folder, "c.fits", 2, 2)["values"]
    assert values[1] is None
    assert values[0] == pytest.approx(float(cube[0, 2, 2]))


def test_spectrum_of_a_continuum_image_is_one_value(folder):
    data = np.arange(100, dtype=np.float32).reshape(10, 10)
    write_image(folder / "c.fits", data)
    spectrum = spectrum_payload(folder, "c.fits", 3, 7)
    assert spectrum["values"] == [73.0]
    assert spectrum["freq_ghz"] == pytest.approx([230.0])


@pytest.mark.parametrize(("x", "y"), [(50, 0), (0, 40), (-1, 0), (0, -1), (10**6, 10**6)])
def test_a_pixel_outside_the_image_is_refused(folder, x, y):
    write_image(folder / "c.fits", make_cube(), nchan=16)
    with pytest.raises(ImageUnreadable, match=rf"pixel \({x}, {y}\) is outside the 50 x 40 image"):
        spectrum_payload(folder, "c.fits", x, y)


# --- what the confined helper refuses ---------------------------------------------------------
def test_a_link_named_like_the_fits_file_is_never_followed(folder, data_root):
    real = write_image(data_root / "elsewhere.fits", np.ones((10, 10), dtype=np.float32))
    (folder / "t_cont.pbcor.fits").symlink_to(real)
    with pytest.raises(UnsafePath, match="link"):
        plane_payload(folder, "t_cont.pbcor.fits")
    with pytest.raises(UnsafePath, match="link"):
        spectrum_payload(folder, "t_cont.pbcor.fits", 0, 0)


def test_a_link_to_a_file_outside_data_root_is_never_followed(folder, tmp_path):
    outside = write_image(tmp_path / "outside.fits", np.ones((10, 10), dtype=np.float32))
    (folder / "t.fits").symlink_to(outside)
    with pytest.raises(UnsafePath):
        plane_payload(folder, "t.fits")


def test_a_linked_folder_on_the_way_is_never_followed(folder, data_root):
    other = data_root / "other"
    other.mkdir()
    write_image(other / "t.fits", np.ones((10, 10), dtype=np.float32))
    (folder / "sub").symlink_to(other)
    with pytest.raises(UnsafePath, match="link"):
        plane_payload(folder, "sub/t.fits")


def test_a_hard_linked_fits_file_is_not_opened(folder, data_root):
    real = write_image(data_root / "elsewhere.fits", np.ones((10, 10), dtype=np.float32))
    os.link(real, folder / "t.fits")
    with pytest.raises(UnsafePath, match="hard link"):
        plane_payload(folder, "t.fits")


def test_a_name_leaving_the_folder_is_refused(folder, data_root):
    write_image(data_root / "mous" / "up.fits", np.ones((10, 10), dtype=np.float32))
    with pytest.raises(UnsafePath):
        plane_payload(folder, "../up.fits")
    with pytest.raises(UnsafePath):
        plane_payload(folder, str(data_root / "mous" / "up.fits"))


def test_a_fifo_named_like_the_fits_file_is_refused_without_blocking(folder):
    os.mkfifo(folder / "t.fits")
    with pytest.raises(UnsafePath, match="FIFO"):
        plane_payload(folder, "t.fits")


def test_a_missing_file_is_file_not_found(folder):
    with pytest.raises(FileNotFoundError):
        plane_payload(folder, "absent.fits")


# --- what is not an image ---------------------------------------------------------------------
def test_a_text_file_is_unreadable(folder):
    (folder / "t.fits").write_text("this is not a FITS file\n" * 200)
    with pytest.raises(ImageUnreadable, match=r"t\.fits"):
        plane_payload(folder, "t.fits")
    with pytest.raises(ImageUnreadable):
        spectrum_payload(folder, "t.fits", 0, 0)


def test_an_empty_file_is_unreadable(folder):
    (folder / "t.fits").write_bytes(b"")
    with pytest.raises(ImageUnreadable):
        plane_payload(folder, "t.fits")


def test_a_fits_without_an_image_is_unreadable(folder):
    fits.PrimaryHDU().writeto(folder / "t.fits")  # NAXIS = 0
    with pytest.raises(ImageUnreadable, match="not an image"):
        plane_payload(folder, "t.fits")
    one_d = fits.PrimaryHDU(np.zeros(10, dtype=np.float32))
    one_d.writeto(folder / "line.fits")
    with pytest.raises(ImageUnreadable, match="not an image"):
        spectrum_payload(folder, "line.fits", 0, 0)


def test_a_truncated_fits_file_is_unreadable_not_a_crash(folder):
    """exportfits interrupted (disk full, run killed): the header is whole, the data cut short.
    The page must say the image cannot be read (ImageUnreadable -> 400), not fail with 500."""
    path = write_image(folder / "t.fits", make_cube(nchan=4, ny=64, nx=64), nchan=4)
    raw = path.read_bytes()
    path.write_bytes(raw[: 2880 + 4000])  # the header block and part of the first plane
    with pytest.warns(UserWarning, match="truncated"), pytest.raises(ImageUnreadable):
        plane_payload(folder, "t.fits", channel=2)
    with pytest.warns(UserWarning, match="truncated"), pytest.raises(ImageUnreadable):
        spectrum_payload(folder, "t.fits", 10, 10)


# --- the JSON views -----------------------------------------------------------------------------
@pytest.fixture
def image_qa(db, client):
    """An ImageQA row of an imaging run, its cube exported as FITS in the MOUS's Imaging/."""
    from calibration.imaging import imaging_folder
    from calibration.models import Run
    from reports.models import ImageQA
    from tests.factories import MousFactory, PersonFactory

    mous = MousFactory()
    folder = imaging_folder(mous)
    folder.mkdir(parents=True)
    run = Run.objects.create(mous=mous, folder=str(folder))
    qa = ImageQA.objects.create(run=run, mous=mous, name="t_cube", kind="cube", summary={"rms_jy": 2e-4})
    write_image(folder / qa.pbcor_fits, make_cube(), nchan=16)
    client.force_login(PersonFactory().user)
    return qa


def _get(client, route: str, qa, **params):
    from django.urls import reverse

    return client.get(reverse(route, args=[qa.pk]), params)


def test_plane_view_answers_the_plane_and_the_measured_rms(client, image_qa):
    response = _get(client, "reports-image-plane", image_qa, channel=5)
    assert response.status_code == 200
    payload = response.json()
    assert payload["channel"] == 5 and payload["nchan"] == 16
    assert payload["rms"] == 2e-4
    np.testing.assert_array_equal(decode(payload), make_cube()[5])


def test_spectrum_view_answers_the_pixel_spectrum(client, image_qa):
    response = _get(client, "reports-image-spectrum", image_qa, x=3, y=4)
    assert response.status_code == 200
    assert response.json()["values"] == pytest.approx([float(v) for v in make_cube()[:, 4, 3]])


@pytest.mark.parametrize(
    ("route", "params", "message"),
    [
        ("reports-image-spectrum", {"x": "abc", "y": "1"}, "x must be a whole number, got 'abc'"),
        ("reports-image-spectrum", {"x": "1", "y": "1.5"}, "y must be a whole number, got '1.5'"),
        ("reports-image-spectrum", {"y": "1"}, "x must be a whole number, got None"),
        ("reports-image-spectrum", {"x": "50", "y": "0"}, "pixel (50, 0) is outside the 50 x 40 image"),
        ("reports-image-plane", {"channel": "abc"}, "channel must be a whole number, got 'abc'"),
        ("reports-image-plane", {"channel": "16"}, "channel 16: the image has channels 0 to 15"),
    ],
)
def test_views_answer_400_with_a_clear_error(client, image_qa, route, params, message):
    response = _get(client, route, image_qa, **params)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_views_refuse_a_linked_fits_with_400(client, image_qa, data_root):
    from calibration.imaging import imaging_folder

    path = imaging_folder(image_qa.mous) / image_qa.pbcor_fits
    path.rename(data_root / "moved.fits")
    path.symlink_to(data_root / "moved.fits")
    for route, params in (("reports-image-plane", {}), ("reports-image-spectrum", {"x": 0, "y": 0})):
        response = _get(client, route, image_qa, **params)
        assert response.status_code == 400
        assert "link" in response.json()["error"]


def test_views_answer_404_when_the_fits_is_not_there(client, image_qa):
    from calibration.imaging import imaging_folder

    (imaging_folder(image_qa.mous) / image_qa.pbcor_fits).unlink()
    response = _get(client, "reports-image-plane", image_qa)
    assert response.status_code == 404
    assert response.json() == {"error": "t_cube.pbcor.fits does not exist (yet)"}


def test_views_answer_400_for_a_truncated_fits(client, image_qa):
    """Today: the ValueError from astropy escapes the view (a 500); see the module test above."""
    from calibration.imaging import imaging_folder

    path = imaging_folder(image_qa.mous) / image_qa.pbcor_fits
    path.write_bytes(path.read_bytes()[: 2880 + 4000])
    with pytest.warns(UserWarning, match="truncated"):
        response = _get(client, "reports-image-plane", image_qa, channel=3)
    assert response.status_code == 400
    assert "t_cube.pbcor.fits" in response.json()["error"]
