"""The small simulated EB as CASA sees it, and the build cache."""

import json
import threading
from pathlib import Path

import pytest

from calibration.simulate import presets
from calibration.simulate.build import EbBuild, cached_build, copy_ms
from calibration.simulate.layout import INTENTS
from tests.calibration.simulate.casa_checks import inspect_eb

pytestmark = pytest.mark.casa


@pytest.fixture(scope="module")
def small_inspected(small_eb):
    return inspect_eb(small_eb.ms)


def test_small_eb_looks_like_an_alma_eb(small_eb, small_inspected):
    info = small_inspected
    spec = presets.small()
    assert info["antennas"] == spec.antenna_names
    assert info["fields"] == ["J1924-2914", "J1733-1304", "HD_163296"]
    assert info["spw_nchan"] == [4, 64, 64, 64]
    assert info["spw_names"][0] == "WVR#NOMINAL"
    assert info["wvr_spws"] == [0]
    assert info["ncorr"][0] == 1  # wvrgcal reads exactly one correlation
    assert {i.split("#")[0] for i in info["intents"]} >= {
        "CALIBRATE_ATMOSPHERE",
        "CALIBRATE_BANDPASS",
        "CALIBRATE_PHASE",
        "OBSERVE_TARGET",
    }
    assert INTENTS["target"] in info["intents"]
    assert info["pointing_frame"] == "AZELGEO"
    assert {"SYSCAL", "WEATHER", "ASDM_CALWVR"} <= set(info["keywords"])
    assert "TSYS_SPECTRUM" in info["syscal_columns"]
    assert info["syscal_rows"] == 3 * 3 * 10  # ATM scans x spws x antennas
    assert info["columns"].count("DATA") == 1 and "CORRECTED_DATA" not in info["columns"]
    assert 19 * 60 < info["duration_s"] < 22 * 60
    assert 25 < small_eb.size_mb < 60


def test_truth_lists_every_injected_fault_with_its_values(small_eb):
    truth = small_eb.truth
    by_kind = {f["kind"]: f for f in truth["faults"]}
    assert set(by_kind) == {f.kind for f in presets.small().faults}
    assert by_kind["bandpass_defect"]["notch_channels"] == [38, 44]
    assert by_kind["hot_tsys"]["antenna"] == "DA44"
    assert truth["tsys_median_k"]["DA44"] > 1.5 * truth["tsys_median_k"]["DA41"]
    assert truth["fields"]["J1733-1304"]["flux_jy_per_spw"]["2"] == pytest.approx(
        1.2 * (233 / 237) ** -0.5, rel=1e-3
    )
    assert (small_eb.folder / "truth.npz").exists()
    assert truth["build"]["spec_hash"] == small_eb.folder.name


def test_cached_build_is_built_once_even_when_two_builders_race(tmp_path):
    calls = []
    barrier = threading.Barrier(2)

    def make(folder: Path) -> None:
        calls.append(folder)
        barrier.wait(timeout=10)  # both are building at the same time
        (folder / "x.ms").mkdir()
        (folder / "truth.json").write_text(json.dumps({"ms_name": "x.ms", "builder": folder.name}))

    results: list[EbBuild] = []
    threads = [
        threading.Thread(target=lambda: results.append(cached_build(tmp_path, "key", make))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2 and len(results) == 2
    assert results[0].truth == results[1].truth  # both use the winner's build
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]  # the loser's temp folder is gone
    assert cached_build(tmp_path, "key", make).ms == tmp_path / "key" / "x.ms"
    assert len(calls) == 2  # third call: from the cache


def test_copy_ms_gives_a_private_copy(small_eb, tmp_path):
    copy = copy_ms(small_eb.ms, tmp_path / "work")
    assert copy.name == small_eb.ms.name and copy.is_dir()
    (copy / "table.lock").unlink(missing_ok=True)
    assert (small_eb.ms / "table.dat").exists()
    renamed = copy_ms(small_eb.ms, tmp_path / "work", name="uid___A002_X1_X2.ms")
    assert renamed.name == "uid___A002_X1_X2.ms"
