"""Flatness of the calibrated calibrators: the measures on synthetic visibilities (numpy, no CASA)
and the assessment on synthetic summaries."""

import itertools

import numpy as np
import pytest

from reports.calibrated import calibrated
from reports.findings import ScriptContext
from reports.incasa.visibilities import _Accumulator, _metrics, uv_edges
from reports.qa import assess
from reports.thresholds import OPEN_SCORE

ANTENNAS = [f"DA{n}" for n in range(41, 49)]
STEPS = {
    11: "Listobs, clear pointing table, and save original flags",
    12: "Initial flagging",
    20: "Split out corrected column",
}
CONTEXT = ScriptContext(steps=STEPS, step=20)
NAME = "uid___A002_Xsim_X1.ms.split.cal"


def visibilities(
    *,
    nchan: int = 64,
    ntime: int = 20,
    phase_slope_deg: float = 0.0,
    ripple: tuple[int, int, float] | None = None,
    uv_slope: float = 0.0,
    noisy_antenna: int | None = None,
    quack: float = 1.0,
    seed: int = 1,
) -> tuple[dict, dict]:
    """A 1 Jy point source seen by 8 antennas, calibrated, with one chosen defect; returns
    (metrics, arrays) as the CASA side computes them."""
    rng = np.random.default_rng(seed)
    pairs = list(itertools.combinations(range(len(ANTENNAS)), 2))
    times = np.arange(ntime) * 6.048
    a1 = np.array([a for _t in times for a, _b in pairs])
    a2 = np.array([b for _t in times for _a, b in pairs])
    time = np.repeat(times, len(pairs))
    uvdist = np.tile(np.linspace(15.0, 150.0, len(pairs)), ntime)
    freq = 231e9 + np.arange(nchan) * 31.25e6
    chan = np.arange(nchan)
    spectrum = np.exp(1j * np.radians(phase_slope_deg * (chan / (nchan - 1) - 0.5)))
    if ripple:
        first, last, depth = ripple
        spectrum[first : last + 1] *= 1 - depth
    amp_uv = 1.0 + uv_slope * (uvdist - 15.0) / 135.0
    antenna_phase = np.zeros((len(ANTENNAS), ntime))
    if noisy_antenna is not None:
        antenna_phase[noisy_antenna] = rng.normal(0, np.radians(40), ntime)
    t = np.searchsorted(times, time)
    gains = np.exp(1j * (antenna_phase[a1, t] - antenna_phase[a2, t]))
    scans = 1 + np.arange(ntime) // 5  # scans of 5 integrations
    start = np.r_[True, scans[1:] != scans[:-1]]
    model = amp_uv * gains * np.where(start[t], quack, 1.0)
    data = spectrum[None, :, None] * model[None, None, :] * np.ones((2, 1, 1))
    data = data + 0.02 * (rng.normal(size=data.shape) + 1j * rng.normal(size=data.shape))
    flag = np.zeros(data.shape, bool)
    flag[:, :2, :] = flag[:, -2:, :] = True  # edge channels, as the generated script flags them
    weight = np.ones((2, len(time)), np.float32)
    acc = _Accumulator(nchan, times, len(ANTENNAS), uv_edges(uvdist, len(pairs)))
    for lo in range(0, len(time), 100):  # in chunks, as the CASA side reads
        hi = lo + 100
        acc.add(
            data[:, :, lo:hi].astype(np.complex64),
            flag[:, :, lo:hi],
            weight[:, lo:hi],
            time[lo:hi],
            a1[lo:hi],
            a2[lo:hi],
            uvdist[lo:hi],
        )
    return _metrics(acc, nchan, freq, ANTENNAS, scans)


def summary_of(metrics: dict, field: str = "J1733-1304", spw: str = "1") -> dict:
    return {
        "vis": NAME,
        "antennas": ANTENNAS,
        "fields": [field],
        "spws": [int(spw)],
        "per_field": {field: {spw: metrics}},
        "ms_spw": {spw: 17 + int(spw)},
    }


def codes(found: list[dict]) -> set[str]:
    return {f["code"] for f in found}


def test_a_flat_calibrator_measures_flat_and_gets_one_green_finding():
    metrics, arrays = visibilities()

    assert metrics["amp_freq_dev"] < 0.02 and metrics["phase_freq_rms_deg"] < 2
    assert metrics["phase_time_rms_deg"] < 2 and abs(metrics["uv_ratio"] - 1) < 0.02
    assert metrics["amp_mean"] == pytest.approx(1.0, abs=0.01)
    assert metrics["flagged_fraction"] == pytest.approx(4 / 64)
    assert np.isnan(arrays["amp_freq"][:2]).all() and np.isfinite(arrays["amp_freq"][2:-2]).all()
    assert arrays["phase_ant_time"].shape == (len(ANTENNAS), 20)
    [flat] = calibrated(NAME, summary_of(metrics), CONTEXT)
    assert flat["code"] == "calibrated_flat" and flat["score"] == 1.0


def test_a_phase_slope_across_the_band_is_a_phase_vs_frequency_finding():
    metrics, _ = visibilities(phase_slope_deg=90.0)
    found = assess("calibrated", NAME, summary_of(metrics), CONTEXT)

    [slope] = [f for f in found if f["code"] == "calibrated_phase_freq"]
    assert slope["score"] <= OPEN_SCORE and slope["field"] == "J1733-1304"
    assert slope["spw"] == 18 and slope["split_spw"] == 1, "the MS's spw, the split's beside it"
    assert "slope of 90°" in slope["message"] and "residual delay" in slope["message"]
    assert codes(found) == {"calibrated_phase_freq"}


def test_an_amplitude_dip_gets_a_flagdata_edit_on_its_channels():
    metrics, _ = visibilities(ripple=(30, 35, 0.3))
    found = assess("calibrated", NAME, summary_of(metrics), CONTEXT)

    [dip] = [f for f in found if f["code"] == "calibrated_amp_freq"]
    assert dip["value"] > 0.1 and dip["score"] <= 0.34
    first, last = metrics["amp_freq_channels"]
    assert 28 <= first <= 30 and 35 <= last <= 37
    assert dip["edit"]["step"] == 12
    assert dip["edit"]["append"] == [
        f"flagdata(vis = 'uid___A002_Xsim_X1.ms.split', mode = 'manual', spw = '1:{first}~{last}', "
        "flagbackup = False)"
    ]
    assert dip["edit"]["expect"]["direction"] == "gone"


def test_amplitude_falling_with_uv_distance_is_a_uv_finding():
    metrics, _ = visibilities(uv_slope=-0.3)
    found = assess("calibrated", NAME, summary_of(metrics), CONTEXT)

    [uv] = [f for f in found if f["code"] == "calibrated_amp_uv"]
    assert uv["value"] == pytest.approx(metrics["uv_ratio"]) and uv["value"] < 0.85
    assert "decorrelation" in uv["message"] and uv["edit"] is None


def test_a_dip_at_every_scan_start_is_one_quack_finding():
    metrics, _ = visibilities(quack=0.5)
    summary = summary_of(metrics)
    summary["per_field"]["J1924-2914"] = {"1": metrics}
    found = calibrated(NAME, summary, CONTEXT)

    [start] = found
    assert start["code"] == "calibrated_scan_start" and start["value"] == pytest.approx(0.5, abs=0.02)
    assert "seen in 2 field/spw pairs" in start["message"]
    assert start["edit"]["append"] == [
        "flagdata(vis = 'uid___A002_Xsim_X1.ms.split', mode = 'quack', quackinterval = 3.0, "
        "quackmode = 'beg', flagbackup = False)"
    ]
    assert metrics["amp_time_rms_frac"] > 0.1 > metrics["amp_time_rms_frac_rest"], "the rest is flat"


def test_one_antenna_with_noisy_phases_is_named_with_a_flag_edit():
    metrics, _ = visibilities(noisy_antenna=3)
    found = calibrated(NAME, summary_of(metrics), CONTEXT)

    noisy = [f for f in found if f["code"] == "calibrated_phase_time_antenna"]
    assert [f["antenna"] for f in noisy] == ["DA44"]
    assert "antenna = 'DA44', spw = '1'" in noisy[0]["edit"]["append"][0]
    assert metrics["per_antenna"]["DA44"]["phase_rms_deg"] > 20
    healthy = [v["phase_rms_deg"] for a, v in metrics["per_antenna"].items() if a != "DA44"]
    assert max(healthy) < 15, "the other antennas stay under the limit"


@pytest.mark.parametrize(
    ("metric", "value", "code"),
    [
        ("amp_time_rms_frac", 0.15, "calibrated_amp_time"),
        ("phase_time_rms_deg", 25.0, "calibrated_phase_time"),
        ("flagged_fraction", 0.8, "calibrated_flagged"),
    ],
)
def test_the_other_checks_fire_above_their_limits(metric, value, code):
    metrics, _ = visibilities()
    found = calibrated(NAME, summary_of({**metrics, metric: value}), CONTEXT)

    assert codes(found) == {code}
    assert found[0]["score"] <= OPEN_SCORE and found[0]["field"] == "J1733-1304"


def test_a_ripple_within_the_noise_of_a_weak_calibrator_is_not_a_finding():
    metrics, _ = visibilities()
    weak = {**metrics, "amp_freq_dev": 0.08, "amp_noise_frac": 0.03}

    assert codes(calibrated(NAME, summary_of(weak), CONTEXT)) == {"calibrated_flat"}


def test_nothing_to_assess_says_so():
    [f] = assess("calibrated", NAME, {"cannot_assess": "no calibrator data"}, CONTEXT)
    assert f["code"] == "cannot_assess" and "no calibrator data" in f["message"]


@pytest.mark.worker
@pytest.mark.casa
@pytest.mark.django_db(transaction=True)
def test_the_standard_script_leaves_the_calibrators_flat_and_the_page_plots_them(
    page, live_server, login, celery_worker_process, calibrator_catalogue, make_eb, small_eb, reducer
):
    from calibration import script_generation
    from reports import artifacts
    from reports.models import Topic
    from reports.services import topic_scores
    from tests.reports.test_diagnostics import fault, run_to_end

    eb = make_eb(small_eb.ms)
    version = script_generation.calibration_script_create(
        eb=eb, summary=script_generation.data_summary_refresh(eb), by=reducer.user
    )
    run = run_to_end(version, [], reducer.user)

    [diagnostic] = run.diagnostics.filter(topic=Topic.CALIBRATED)
    assert diagnostic.step is not None and diagnostic.step.title == "Split out corrected column"
    assert diagnostic.name.endswith(".ms.split.cal")
    summary = diagnostic.summary
    assert "cannot_assess" not in summary, summary
    calibrators = {name for name, f in small_eb.truth["fields"].items() if f["role"] != "target"}
    assert set(summary["fields"]) == calibrators
    arrays = artifacts.load(diagnostic)
    for index, field in enumerate(summary["fields"]):
        for spw in summary["spws"]:
            m = summary["per_field"][field][str(spw)]
            assert m["amp_mean"] > 0.5, (field, spw, m)
            for name in ("amp_freq", "phase_freq", "amp_time", "phase_time", "amp_uv", "uv_klambda"):
                values = arrays[f"f{index}_{name}_{spw}"]
                assert np.isfinite(values).mean() > 0.8, (field, spw, name)
    # Flat in frequency and uv distance everywhere. Not flat in time where the truth says so:
    # the first integration of every scan at half amplitude (the quack fault), and DV07's
    # broken WVR on the phase calibrator, which is calibrated with per-scan phases (phase_inf),
    # so WVR noise inside a scan stays (the bandpass calibrator's per-integration phases hide it).
    truth = small_eb.truth
    quack, bad_wvr = fault(truth, "quack"), fault(truth, "bad_wvr")
    phase_cal = next(name for name, f in truth["fields"].items() if f["role"] == "phase")
    by_code: dict[str, list] = {}
    for f in run.findings.filter(topic=Topic.CALIBRATED):
        by_code.setdefault(f.code, []).append(f)
    [start] = by_code.pop("calibrated_scan_start")
    assert start.value == pytest.approx(quack["factor"], abs=0.05)
    assert "mode = 'quack', quackinterval = 3.0" in start.edit["append"][0]
    noisy = by_code.pop("calibrated_phase_time_antenna")
    assert {(f.antenna, f.field) for f in noisy} == {(bad_wvr["antenna"], phase_cal)}
    assert by_code == {}, {code: [f.message for f in fs] for code, fs in by_code.items()}
    for spw in summary["spws"]:
        m = summary["per_field"][phase_cal][str(spw)]
        assert m["amp_time_rms_frac_rest"] < 0.1 and abs(m["uv_ratio"] - 1) < 0.05
    score = topic_scores(run)["calibrated"]
    assert score is not None and 0 < score <= OPEN_SCORE

    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login("calreducer", "reducer-pw-123")
    page.goto(f"{live_server.url}/reports/eb/{eb.pk}/")
    page.locator("#scores .score-card[data-topic='calibrated']").click()
    page.wait_for_function("document.body.dataset.figuresReady === '3'", timeout=30_000)
    assert page.evaluate("window.__figureErrors") == []
    traces = page.evaluate(
        "Array.from(document.querySelectorAll('.plotly-figure')).map(el => (el._fullData || []).length)"
    )
    assert traces == [2, 3, 2], traces
    other = sorted(calibrators - {page.locator("select[name=field]").input_value()})[0]
    page.locator("select[name=field]").select_option(other)
    page.wait_for_function("document.body.dataset.figuresReady === '3'", timeout=30_000)
    assert other in page.evaluate("document.getElementById('fig-frequency').layout.title.text")
    assert page.locator("#numbers tbody tr").count() == len(calibrators) * len(summary["spws"])
    assert errors == []
