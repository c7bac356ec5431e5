"""Imaging end to end, with real CASA on a real worker and the pages in Chromium: a one-EB MOUS
(simulated with another seed and one fault: a hot receiver) is calibrated, its split copied into
Imaging/, scriptForImagingPrep.py and scriptForImaging.py generated and run from the imaging
page; the image page shows the plane, the spectrum at a clicked pixel and the QA table; the
image is measured against the simulator's truth."""

import shutil
import time
from pathlib import Path

import pytest
from astropy.io import fits
from playwright.sync_api import expect

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, Mous, MousState
from assignments.staging import mous_stage
from calibration import imaging, runs, script_generation
from calibration.models import CalibratedCopy, Run, Script
from calibration.simulate import presets
from calibration.simulate.build import cached_eb
from calibration.simulate.spec import HotTsys
from reports.imaging import mous_assessment
from reports.models import ImageQA
from tests.factories import ExecutionBlockFactory, MousFactory
from tests.reports import imaging_truth

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]

SPEC = presets.small().with_faults(HotTsys("DA44"), seed=505, ms_name="uid___A002_Ximg_X1.ms")


def wait_for(row, done, timeout: float = 900):
    deadline = time.monotonic() + timeout
    while not done(row):
        assert time.monotonic() < deadline, f"{row} did not finish"
        time.sleep(1)
        row.refresh_from_db()
    return row


def calibrated_mous(reducer) -> Mous:
    mous = MousFactory(
        state=MousState.ASSIGNED,
        assignee=reducer,
        band=6,
        array=Mous.Array.TWELVE_M_EXTENDED,
        goal=Mous.Goal.CONTINUUM,
        representative_frequency_ghz=230.538,
        requested_rms_mjy=0.3,
        rms_bandwidth_mhz=2000.0,
        resolution_min_arcsec=1.0,
        resolution_max_arcsec=2.0,
    )
    eb = ExecutionBlockFactory(mous=mous, uid="uid://A002/Ximg/X1")
    mous_stage(mous)
    build = cached_eb(SPEC)
    shutil.copytree(build.ms, eb_folder(eb) / "raw" / build.ms.name)
    eb.data_name, eb.data_status = f"raw/{build.ms.name}", ExecutionBlock.DataStatus.PRESENT
    eb.save(update_fields=["data_name", "data_status"])
    version = script_generation.calibration_script_create(
        eb=eb, summary=script_generation.data_summary_refresh(eb), by=reducer.user
    )
    run = wait_for(runs.run_create(version=version, steps=[], by=reducer.user), lambda r: r.is_terminal)
    assert run.status == Run.Status.SUCCEEDED, run.error
    return mous


def test_the_reducer_images_a_calibrated_eb_and_reads_the_image_qa(
    page, live_server, login, celery_worker_process, reducer, calibrator_catalogue
):
    started = time.monotonic()
    mous = calibrated_mous(reducer)
    calibrated_at = time.monotonic()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login("calreducer", "reducer-pw-123")

    # 1. From the MOUS page to the imaging page; the copy into Imaging/ with its progress.
    page.goto(f"{live_server.url}/calibration/mous/{mous.pk}/")
    page.click("#imaging-link")
    expect(page.locator("#request")).to_contain_text("0.3 mJy/beam over 2000.0 MHz")
    # Nothing is prepared yet: generating the imaging script is refused with the reason.
    page.click("#generate-imaging")
    expect(page.locator(".messages")).to_contain_text("run scriptForImagingPrep.py first")
    page.click("#copy-data")
    expect(page.locator("#copy-progress")).to_contain_text("Done 100%", timeout=120_000)
    copy = CalibratedCopy.objects.get(mous=mous, destination=CalibratedCopy.Destination.IMAGING)
    folder = imaging.imaging_folder(mous)
    assert copy.bytes_done == copy.bytes_total > 0
    assert (folder / f"{SPEC.ms_name}.split.cal" / "table.dat").is_file()

    # 2. scriptForImagingPrep.py: generated, run in Imaging/ with its own log.
    page.click("#generate-prep")
    expect(page.locator(".messages")).to_contain_text("scriptForImagingPrep.py v1 generated")
    page.click("#run-prep")
    page.wait_for_function("document.body.dataset.runStatus === 'SUCCEEDED'", timeout=600_000)
    prep_run = imaging.latest_script_run(mous, Script.Kind.IMAGING_PREP)
    assert prep_run is not None and Path(prep_run.folder) == folder
    assert (folder / prep_run.casa_log_name).is_file()
    data = imaging.latest_imaging_data(mous)
    assert data is not None and [f["name"] for f in data.summary["fields"]] == ["HD_163296"]
    found = imaging.continuum_channels(data.summary)
    # The CO line (230.538 GHz, 45 MHz wide) is in the first spw: found as line channels there only.
    line_spw = next(s for s in data.summary["spws"] if s["first_freq_ghz"] <= 230.538 <= s["last_freq_ghz"])
    lines = {c.spw: c.line for c in found}
    assert lines[line_spw["id"]], "the CO line was not found"
    assert all(not lines[s] for s in lines if s != line_spw["id"]), lines
    step = (line_spw["last_freq_ghz"] - line_spw["first_freq_ghz"]) / (line_spw["nchan"] - 1)
    line_channel = round((230.538 - line_spw["first_freq_ghz"]) / step)
    assert any(a <= line_channel <= b for a, b in lines[line_spw["id"]])

    # 3. scriptForImaging.py from the prepared data: generated, run.
    page.goto(f"{live_server.url}/reports/mous/{mous.pk}/imaging/")
    expect(page.locator(f'#continuum-table tr[data-spw="{line_spw["id"]}"]')).to_contain_text(
        f"{found[line_spw['id']].selection()}"
    )
    page.click("#generate-imaging")
    expect(page.locator(".messages")).to_contain_text("scriptForImaging.py v1 generated")
    text = Script.objects.get(mous=mous, kind=Script.Kind.IMAGING).latest_version().text()
    assert "gridder = 'standard'" in text and f"spw = '{line_spw['id']}'" in text
    page.click("#run-imaging")
    page.wait_for_function("document.body.dataset.runStatus === 'SUCCEEDED'", timeout=900_000)
    mous.refresh_from_db()
    assert mous.state == MousState.IMAGING
    imaged_at = time.monotonic()

    # 4. The images and their QA on the imaging page; the FITS products open with astropy.
    page.goto(f"{live_server.url}/reports/mous/{mous.pk}/imaging/")
    rows = page.locator("#image-qa tbody tr")
    expect(rows).to_have_count(2)
    cont = ImageQA.objects.get(mous=mous, kind=ImageQA.Kind.CONTINUUM)
    cube = ImageQA.objects.get(mous=mous, kind=ImageQA.Kind.CUBE)
    for qa in (cont, cube):
        for name in (qa.pbcor_fits, qa.flux_fits):
            with fits.open(folder / name) as hdul:
                assert hdul[0].data is not None and hdul[0].header["NAXIS1"] > 0, name
    assessment = mous_assessment(mous)
    expect(page.locator("#suggested-outcome")).to_contain_text((assessment.outcome or "none").upper())
    assert assessment.criterion("rms") is not None

    # Against the simulator's truth: the target's flux (its disc and the point source beside it,
    # summed on the primary-beam corrected image) within 5%, the disc's position within 0.2
    # beam, the rms within 20% of the theoretical.
    s = cont.summary
    fit = imaging_truth.measure_source(
        folder / f"{cont.name}.image",
        folder / f"{cont.name}.image.pbcor",
        imaging_truth.target_extent_arcsec(SPEC),
    )
    freqs = imaging_truth.continuum_frequencies_ghz(data.summary, found)
    injected = imaging_truth.injected_flux_jy(SPEC, freqs)
    ra, dec = imaging_truth.target_direction_rad(SPEC)
    offset = imaging_truth.separation_arcsec(fit["ra_rad"], fit["dec_rad"], ra, dec)
    print(
        f'flux {fit["flux_jy"]:.4f} Jy vs injected {injected:.4f}; offset {offset:.3f}" '
        f'(beam {s["bmaj_arcsec"]:.2f}"); rms {s["rms_jy"] * 1e3:.4f} mJy vs theoretical '
        f"{s['theoretical_rms_jy'] * 1e3:.4f}; cube rms {cube.summary['rms_jy'] * 1e3:.3f} vs "
        f"{cube.summary['theoretical_rms_jy'] * 1e3:.3f}"
    )
    assert fit["flux_jy"] == pytest.approx(injected, rel=0.05)
    assert offset <= 0.2 * s["bmaj_arcsec"]
    # The rms of both images is the theoretical one within 20% (this source is bright, peak/rms
    # ~1000: the QA adds its self-calibration note).
    assert cube.summary["rms_jy"] == pytest.approx(cube.summary["theoretical_rms_jy"], rel=0.2)
    assert s["rms_jy"] == pytest.approx(s["theoretical_rms_jy"], rel=0.2)
    if s["dynamic_range"] > 200:
        assert assessment.criterion("dynamic range").status == "note"

    # 5. The cube's page: the plane, the channel slider, the spectrum at a clicked pixel.
    page.click(f'#image-qa tr[data-image="{cube.name}"] .image-link')
    page.wait_for_function("document.body.dataset.imageReady === '1'", timeout=30_000)
    expect(page.locator("#qa-beam")).to_contain_text(f"{cube.summary['bmaj_arcsec']:.3f}")
    expect(page.locator("#assessment-table")).to_be_visible()
    line_plane = max(range(cube.summary["nchan"]), key=lambda k: cube.summary["peak_per_channel_jy"][k] or 0)
    page.locator("#channel").fill(str(line_plane))
    page.wait_for_function(f"document.body.dataset.channel === '{line_plane}'", timeout=30_000)
    box = page.locator("#image-figure .nsewdrag").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("document.body.dataset.spectrumReady !== undefined", timeout=30_000)
    expect(page.locator("#spectrum-pixel")).to_contain_text("RA 17:56:21")
    assert int(page.evaluate("document.body.dataset.spectrumReady")) == cube.summary["nchan"]
    assert not errors, errors
    print(
        f"calibration {calibrated_at - started:.0f} s, imaging {imaged_at - calibrated_at:.0f} s, "
        f"total {time.monotonic() - started:.0f} s"
    )
