"""The calibrator flux catalogue: its file, setjy from it, the flux check against it, the DRM page."""

import copy
import io
import math
import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from calibration import catalogue, script_generation
from calibration import runs as calibration_runs
from calibration.calibrators import CatalogueFlux, nearest, parse_csv, setjy_model
from calibration.models import CalibratorFlux, Run, RunStep
from calibration.scriptparse import parse_script
from calibration.simulate import presets
from calibration.simulate.spec import EbSpec
from calibration.standard_scripts import RawData, calibration_script
from reports import qa, services
from reports.thresholds import CANNOT_ASSESS
from tests.factories import ExecutionBlockFactory, MousFactory, PersonFactory

J1924 = CatalogueFlux("J1924-2914", 237.0, 3.1, -0.6, None, "simulated: test")


# --- the pure parts ------------------------------------------------------------------------
def test_catalogue_flux_scales_with_its_spectral_index_and_flat_without_one():
    assert J1924.flux_at(237.0) == pytest.approx(3.1)
    assert J1924.flux_at(100.0) == pytest.approx(3.1 * (100 / 237) ** -0.6)
    flat = CatalogueFlux("X", 100.0, 2.0, None, None, "p")
    assert flat.flux_at(300.0) == 2.0


def test_the_catalogue_file_holds_the_simulators_truth_and_nothing_invented():
    entries = parse_csv(catalogue.CATALOGUE_FILE.read_text())
    truth = {f.name: f.components[0] for f in presets.FIELDS if f.role in ("bandpass", "phase")}
    reference = EbSpec.__dataclass_fields__["reference_freq_ghz"].default

    assert {e.source for e in entries} == set(truth)
    for e in entries:
        assert (e.flux_jy, e.spectral_index, e.freq_ghz) == (
            truth[e.source].flux_jy,
            truth[e.source].spectral_index,
            reference,
        )
        assert e.measured is None, "the simulated sources were never measured"
        assert e.provenance.startswith("simulated:")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (",237,3.1,-0.6,,p", "source name"),
        ("J1,237,-3.1,-0.6,,p", "positive"),
        ("J1,20,3.1,-0.6,,p", "between 30 and 1000 GHz"),
        ("J1,2000,3.1,,,p", "between 30 and 1000 GHz"),
        ("J1,237,3.1,,,", "where the number comes from"),
        ("J1,237,lots,,,p", "could not convert"),
        ("J1,237,3.1,,yesterday,p", "isoformat"),
    ],
)
def test_a_bad_catalogue_row_is_refused_with_its_row_number(row, message):
    text = "# comment\nsource,freq_ghz,flux_jy,spectral_index,measured,provenance\nJ0,237,1,,,p\n" + row
    with pytest.raises(ValueError, match="data row 2") as refused:
        parse_csv(text)
    assert message in str(refused.value)


def test_nearest_picks_the_entry_measured_nearest_the_data():
    b3 = CatalogueFlux("J1", 91.5, 2.0, None, None, "p")
    b7 = CatalogueFlux("J1", 343.5, 1.0, None, None, "p")
    assert nearest([b3, b7], 100.0)["J1"] is b3
    assert nearest([b3, b7], 300.0)["J1"] is b7


def test_setjy_model_for_a_catalogue_source_a_standard_and_an_unknown_one():
    known = setjy_model("J1924-2914", {"J1924-2914": J1924})
    assert known["fluxdensity"] == [3.1, 0, 0, 0]
    assert (known["spix"], known["reffreq"], known["standard"]) == (-0.6, "237GHz", "manual")
    assert "no measurement date" in str(known["comment"]) and "simulated: test" in str(known["comment"])

    assert setjy_model("1331+305=3C286")["standard"] == "Perley-Butler 2017"
    assert setjy_model("Uranus")["standard"] == "Butler-JPL-Horizons 2012"

    unknown = setjy_model("J1234-5678", {"J1924-2914": J1924})
    assert "fluxdensity" not in unknown
    assert "J1234-5678 has no flux in the calibrator catalogue" in str(unknown["missing"])


def _alma_summary(flux_name: str) -> dict:
    fields = [
        (flux_name, "CALIBRATE_BANDPASS#ON_SOURCE,CALIBRATE_FLUX#ON_SOURCE"),
        ("J1733-1304", "CALIBRATE_PHASE#ON_SOURCE"),
        ("HD_163296", "OBSERVE_TARGET#ON_SOURCE"),
    ]
    antennas = [
        {
            "name": f"DA4{i}",
            "east_m": 10.0 * i,
            "north_m": 0.0,
            "median_amplitude": 1.0,
            "flagged_fraction": 0,
        }
        for i in range(4)
    ]
    return {
        "observatory": "ALMA",
        "antennas": antennas,
        "fields": [{"id": i, "name": n, "intents": i_.split(",")} for i, (n, i_) in enumerate(fields)],
        "spws": [
            {"id": 0, "nchan": 4, "wvr": True, "max_freq_ghz": 190.0, "ref_freq_ghz": 187.0},
            {"id": 1, "nchan": 128, "wvr": False, "max_freq_ghz": 232.0, "ref_freq_ghz": 231.0},
        ],
        "science_spws": [1],
        "wvr_spws": [0],
        "has_syscal": True,
        "has_weather": True,
        "integration_s": 6.048,
    }


def _setjy_step(text: str):
    [step] = [s for s in parse_script(text).steps if "flux calibrator" in s.title]
    return step


def test_a_known_flux_calibrator_gets_its_catalogue_flux_in_the_script():
    text = calibration_script(
        _alma_summary("J1924-2914"), ms="x.ms", raw=RawData("ms", "raw/x.ms"), catalogue={"J1924-2914": J1924}
    )
    assert (
        "setjy(vis = 'x.ms.split', field = 'J1924-2914', standard = 'manual', fluxdensity = [3.1, 0, 0, 0], "
        "spix = -0.6, reffreq = '237GHz', usescratch = False)"
    ) in text
    assert "raise RuntimeError" not in text


def test_an_unknown_flux_calibrator_stops_the_run_at_setjy_with_the_reason():
    text = calibration_script(_alma_summary("J1234-5678"), ms="x.ms", raw=RawData("ms", "raw/x.ms"))
    assert "setjy(vis" not in text and "fluxdensity = [1" not in text, "no invented flux as if it were data"
    assert len(parse_script(text).steps) == 20
    step = _setjy_step(text)
    block = "\n".join(text.splitlines()[step.start_line - 1 : step.end_line])
    calls = []
    namespace = {
        "thesteps": [step.number],
        "step_title": {step.number: step.title},
        "casalog": type("Log", (), {"post": staticmethod(lambda *a: None)}),
        "setjy": lambda **kw: calls.append(kw),
    }
    # The step's block as the runner executes it (mystep = N; if(mystep in thesteps): ...).
    with pytest.raises(RuntimeError, match=r"J1234-5678 has no flux in the calibrator catalogue: ask a DRM"):
        exec(compile(block, "scriptForCalibration.py", "exec"), namespace)  # noqa: S102 - our generated text
    assert calls == []


# --- the flux check ------------------------------------------------------------------------
def _flux_summary(fluxes: dict[str, float], entry: dict | None) -> dict:
    freqs = {"0": 231.0, "1": 233.0, "2": 245.0}
    return {
        "fields": {
            "J1733-1304": {s: {"flux": f, "error": 0.01, "freq_ghz": freqs[s]} for s, f in fluxes.items()}
        },
        "spectral_index": {},
        "reference": "0",
        "catalogue": {"J1733-1304": entry},
    }


def test_the_flux_check_scores_each_spw_against_the_scaled_catalogue_value():
    entry = CatalogueFlux("J1733-1304", 237.0, 1.2, -0.5, None, "simulated: test").as_dict()
    expected = {s: 1.2 * (f / 237.0) ** -0.5 for s, f in {"0": 231.0, "1": 233.0, "2": 245.0}.items()}
    summary = _flux_summary(
        {"0": expected["0"] * 1.05, "1": expected["1"] * 0.80, "2": expected["2"] * 1.5}, entry
    )

    found = {f["spw"]: f for f in qa.flux_catalogue(summary)}

    assert {f["code"] for f in found.values()} == {"flux_catalogue"}
    assert found[0]["score"] == 1.0 and found[0]["value"] == pytest.approx(0.05)
    assert 0.33 < found[1]["score"] < 0.66, "20% off: yellow to red"
    assert found[2]["score"] == pytest.approx(0.33)
    assert found[1]["field"] == "J1733-1304"
    assert "J1733-1304 spw 1: derived" in found[1]["message"] and "-20%" in found[1]["message"]
    assert "alpha -0.5" in found[1]["message"] and "simulated: test" in found[1]["message"]
    # flux() includes them with its own checks
    assert {"flux_snr", "flux_catalogue"} <= {f["code"] for f in qa.flux("flux", summary, None)}


def test_a_source_absent_from_the_catalogue_is_said_unknown_with_no_score():
    [unknown] = qa.flux_catalogue(_flux_summary({"0": 1.0}, None))
    assert unknown["code"] == "flux_catalogue_unknown" and unknown["score"] == CANNOT_ASSESS
    assert unknown["field"] == "J1733-1304" and unknown["value"] is None
    assert "not in the calibrator catalogue" in unknown["message"]


def test_a_summary_recorded_without_a_lookup_gets_no_catalogue_finding():
    summary = _flux_summary({"0": 1.0}, None)
    del summary["catalogue"]
    assert qa.flux_catalogue(summary) == []


def test_a_flat_catalogue_entry_is_compared_flat_and_says_so():
    entry = CatalogueFlux("J1733-1304", 233.0, 1.0, None, None, "p").as_dict()
    [f] = qa.flux_catalogue(_flux_summary({"2": 1.0}, entry))
    assert f["score"] == 1.0 and "flat assumed" in f["message"]


# --- the table -----------------------------------------------------------------------------
@pytest.mark.django_db
def test_loading_the_file_is_idempotent_and_keeps_a_drms_edit():
    CalibratorFlux.objects.all().delete()
    first = catalogue.load_file()
    assert len(first.created) == 2
    again = catalogue.load_file()
    assert (again.created, again.updated, again.unchanged) == ([], [], 2)

    CalibratorFlux.objects.filter(source="J1733-1304").update(flux_jy=1.3)
    kept = catalogue.load_file()
    assert kept.kept == ["J1733-1304 at 237 GHz"]
    assert CalibratorFlux.objects.get(source="J1733-1304").flux_jy == 1.3
    replaced = catalogue.load_file(replace=True)
    assert replaced.updated == ["J1733-1304 at 237 GHz"]
    assert CalibratorFlux.objects.get(source="J1733-1304").flux_jy == 1.2


@pytest.mark.django_db
def test_the_load_command_reports_what_it_did_and_refuses_a_bad_file(tmp_path):
    CalibratorFlux.objects.all().delete()
    out = io.StringIO()
    call_command("load_calibrator_fluxes", stdout=out)
    assert "2 added, 0 updated, 0 unchanged" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_text("source,freq_ghz,flux_jy,spectral_index,measured,provenance\nJ1,237,-1,,,p\n")
    with pytest.raises(CommandError, match="positive"):
        call_command("load_calibrator_fluxes", "--file", str(bad))
    assert CalibratorFlux.objects.count() == 2


@pytest.mark.django_db
def test_the_generator_gets_the_table_entries_nearest_the_data():
    catalogue.load_file()
    CalibratorFlux.objects.create(source="J1924-2914", freq_ghz=91.5, flux_jy=5.0, provenance="test")
    found = catalogue.for_data(_alma_summary("J1924-2914"))
    assert set(found) == {"J1924-2914", "J1733-1304"}
    assert found["J1924-2914"].freq_ghz == 237.0, "nearest the 231 GHz science spw"


@pytest.mark.django_db
def test_recording_a_fluxscale_diagnostic_looks_the_fields_up_in_the_catalogue():
    catalogue.load_file()
    mous = MousFactory()
    run = Run.objects.create(mous=mous, execution_block=ExecutionBlockFactory(mous=mous), folder="/nowhere")
    step = RunStep.objects.create(run=run, number=15, title="Gain calibration")
    fields = {
        "J1733-1304": {"0": {"flux": 1.2 * (231 / 237) ** -0.5, "error": 0.01, "freq_ghz": 231.0}},
        "J9999-0000": {"0": {"flux": 0.5, "error": 0.01, "freq_ghz": 231.0}},
    }
    item = {"topic": "flux", "name": "fluxscale", "summary": {"fields": fields, "spectral_index": {}}}

    [diagnostic] = services.diagnostics_record(run=run, step=step, items=[item])

    assert diagnostic.summary["catalogue"]["J9999-0000"] is None
    assert diagnostic.summary["catalogue"]["J1733-1304"]["flux_jy"] == 1.2
    codes = {(f.code, f.field): f.score for f in diagnostic.findings.all()}
    assert codes[("flux_catalogue", "J1733-1304")] == 1.0
    assert codes[("flux_catalogue_unknown", "J9999-0000")] == CANNOT_ASSESS


# --- the DRM page --------------------------------------------------------------------------
@pytest.fixture
def drm_client(client, drm_person):
    client.force_login(drm_person.user)
    return client


GOOD = {
    "source": "J0000-0000",
    "freq_ghz": "100",
    "flux_jy": "1.5",
    "spectral_index": "-0.7",
    "measured_on": "",
    "provenance": "test entry",
}


@pytest.mark.django_db
def test_a_drm_adds_and_edits_an_entry_and_is_recorded_as_its_editor(drm_client, drm_person):
    page = drm_client.get(reverse("calibration-catalogue"))
    assert page.status_code == 200 and b"Calibrator flux catalogue" in page.content

    assert drm_client.post(reverse("calibration-catalogue"), GOOD).status_code == 302
    entry = CalibratorFlux.objects.get(source="J0000-0000")
    assert (entry.flux_jy, entry.spectral_index, entry.updated_by) == (1.5, -0.7, drm_person.user)

    edited = drm_client.post(
        reverse("calibration-catalogue-edit", args=[entry.pk]), {**GOOD, "flux_jy": "1.7"}
    )
    assert edited.status_code == 302
    entry.refresh_from_db()
    assert entry.flux_jy == 1.7
    listed = drm_client.get(reverse("calibration-catalogue")).content.decode()
    assert "J0000-0000" in listed and drm_person.user.username in listed


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flux_jy": "-1"}, "The flux density must be a positive number of Jy."),
        ({"freq_ghz": "20"}, "The frequency must be between 30 and 1000 GHz."),
        ({"freq_ghz": "1200"}, "The frequency must be between 30 and 1000 GHz."),
        ({"source": "  "}, "This field is required."),
        ({"provenance": ""}, "This field is required."),
    ],
)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(drm_client, change, message):
    entry = CalibratorFlux.objects.create(
        source="J0000-0000", freq_ghz=100.0, flux_jy=1.5, spectral_index=-0.7, provenance="test entry"
    )
    before = list(CalibratorFlux.objects.values())

    for url in (reverse("calibration-catalogue"), reverse("calibration-catalogue-edit", args=[entry.pk])):
        answer = drm_client.post(url, {**GOOD, "source": "J1111-1111", **change})
        assert answer.status_code == 400
        body = answer.content.decode()
        assert message in body and "Not saved" in body

    assert list(CalibratorFlux.objects.values()) == before


@pytest.mark.django_db
def test_a_duplicate_source_and_frequency_is_refused(drm_client):
    CalibratorFlux.objects.create(source="J0000-0000", freq_ghz=100.0, flux_jy=1.5, provenance="p")
    answer = drm_client.post(reverse("calibration-catalogue"), GOOD)
    assert answer.status_code == 400 and b"already exists" in answer.content
    assert CalibratorFlux.objects.filter(source="J0000-0000").count() == 1


@pytest.mark.django_db
def test_a_reducer_gets_403_and_changes_nothing(client, reducer):
    entry = CalibratorFlux.objects.create(source="J0000-0000", freq_ghz=100.0, flux_jy=1.5, provenance="p")
    client.force_login(reducer.user)
    assert client.get(reverse("calibration-catalogue")).status_code == 403
    assert client.post(reverse("calibration-catalogue"), {**GOOD, "source": "J2"}).status_code == 403
    edit = client.post(reverse("calibration-catalogue-edit", args=[entry.pk]), {**GOOD, "flux_jy": "9"})
    assert edit.status_code == 403
    entry.refresh_from_db()
    assert entry.flux_jy == 1.5 and not CalibratorFlux.objects.filter(source="J2").exists()


@pytest.mark.django_db
def test_the_catalogue_link_is_in_the_drms_nav_only(client, drm_person, reducer):
    url = reverse("calibration-catalogue")
    client.force_login(drm_person.user)
    assert url in client.get(reverse("assignments-my-work")).content.decode()
    client.force_login(PersonFactory().user)
    assert url not in client.get(reverse("assignments-my-work")).content.decode()


def test_nan_frequencies_are_skipped():
    entry = CatalogueFlux("J1733-1304", 237.0, 1.2, -0.5, None, "p").as_dict()
    summary = _flux_summary({"0": 1.0}, entry)
    summary["fields"]["J1733-1304"]["0"]["freq_ghz"] = math.nan
    assert qa.flux_catalogue(summary) == []


# --- in CASA -------------------------------------------------------------------------------
@pytest.mark.casa
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_stops_at_the_setjy_of_an_unknown_flux_calibrator_with_the_reason(
    celery_worker_process, make_eb, ngc5921_ms, reducer
):
    """NGC5921's flux calibrator renamed to a source nobody knows: the run fails at setjy."""
    eb = make_eb(ngc5921_ms)
    summary = copy.deepcopy(script_generation.data_summary_refresh(eb))
    summary["fields"][0]["name"] = "J1234-5678"  # 1331+305 (Perley-Butler) otherwise
    version = script_generation.calibration_script_create(eb=eb, summary=summary, by=reducer.user)
    setjy = _setjy_step(version.text())

    run = calibration_runs.run_create(version=version, steps=list(range(setjy.number + 1)), by=reducer.user)
    deadline = time.monotonic() + 180
    while not run.is_terminal:
        assert time.monotonic() < deadline, f"run {run.pk} stuck in {run.status}"
        time.sleep(0.5)
        run.refresh_from_db()

    assert run.status == Run.Status.FAILED
    failed = run.steps.get(number=setjy.number)
    assert failed.status == RunStep.Status.FAILED
    assert failed.error.startswith("RuntimeError: J1234-5678 has no flux in the calibrator catalogue")
    assert set(run.steps.filter(number__lt=setjy.number).values_list("status", flat=True)) == {
        RunStep.Status.SUCCEEDED
    }
