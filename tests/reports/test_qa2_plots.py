"""PNGs of the QA2 report folder (reports.qa2_plots) from small synthetic artifact arrays."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from reports.qa2_plots import render, safe_name

MS = "uid___A002_Xb1a2c3_X4d5.ms"
ANTENNAS = ["DA41", "DA42", "DA43"]
RNG = np.random.default_rng(7)


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def tsys_artifact(spws: list[int]) -> tuple[dict, dict[str, np.ndarray]]:
    arrays = {}
    for spw in spws:
        freq = np.linspace(230.0, 231.875, 64) + spw
        arrays[f"freq_ghz_{spw}"] = f32(freq)
        tsys = 80 + 5 * RNG.standard_normal((len(ANTENNAS), 64))
        tsys[2, :10] = np.nan  # flagged channels
        arrays[f"tsys_{spw}"] = f32(tsys)
        arrays[f"median_t_{spw}"] = f32(80 + RNG.standard_normal((len(ANTENNAS), 5)))
        arrays[f"time_{spw}"] = np.linspace(0, 3600, 5)
        arrays[f"atm_{spw}"] = f32(0.9 - 0.3 * np.exp(-(((freq - freq.mean()) / 0.1) ** 2)))
    summary = {
        "antennas": ANTENNAS,
        "spws": spws,
        "per_antenna": {
            a: {str(s): {"median": 80.0, "max": 90.0, "rms": 2.0} for s in spws} for a in ANTENNAS
        },
        "array_median": {str(s): 80.0 for s in spws},
        "atm_lines": {},
        "vis": MS,
        "ms_spw": {},
    }
    return summary, arrays


def wvr_artifact() -> tuple[dict, dict[str, np.ndarray]]:
    time = np.linspace(0, 3600, 200)
    path = 1000 * np.arange(len(ANTENNAS))[:, None] + 50 * np.sin(time / 300)[None, :]
    summary = {
        "antennas": ANTENNAS,
        "report": {"Name": ANTENNAS, "WVR": [True] * 3, "Flag": [False] * 3},
        "phase_rms_before": {"DA41": 40.0, "DA42": 42.0, "DA43": 39.0},
        "phase_rms_after": {"DA41": 20.0, "DA42": 22.0, "DA43": 45.0},
        "improvement": 1.8,
        "reference_antenna": "DA41",
    }
    return summary, {"time": time, "path_um": f32(path)}


def bandpass_artifact(spws: list[int]) -> tuple[dict, dict[str, np.ndarray]]:
    arrays = {}
    for spw in spws:
        arrays[f"freq_ghz_{spw}"] = f32(np.linspace(230.0, 231.875, 128) + spw)
        arrays[f"amp_{spw}"] = f32(1 + 0.02 * RNG.standard_normal((len(ANTENNAS), 2, 128)))
        arrays[f"phase_{spw}"] = f32(5 * RNG.standard_normal((len(ANTENNAS), 2, 128)))
    summary = {"antennas": ANTENNAS, "spws": spws, "per_antenna": {}, "spw_snr": {}, "nchan": {}}
    return summary, arrays


def gains_artifact(spws: list[int], calmode: str = "ap") -> tuple[dict, dict[str, np.ndarray]]:
    arrays = {}
    for spw in spws:
        arrays[f"time_{spw}"] = np.linspace(0, 3600, 30)
        phase = 20 * RNG.standard_normal((len(ANTENNAS), 30))
        phase[1] = np.nan  # an antenna entirely flagged
        arrays[f"phase_{spw}"] = f32(phase)
        arrays[f"amp_{spw}"] = f32(1 + 0.05 * RNG.standard_normal((len(ANTENNAS), 30)))
    summary = {"antennas": ANTENNAS, "spws": spws, "calmode": calmode, "per_antenna": {}, "spw_snr": {}}
    return summary, arrays


def calibrated_artifact() -> tuple[dict, dict[str, np.ndarray]]:
    fields = ["J1924-2914", "J1751+0939"]
    arrays: dict[str, np.ndarray] = {}
    for spw in (0, 1):
        arrays[f"freq_ghz_{spw}"] = f32(np.linspace(230.0, 231.875, 64) + 2 * spw)
        for i in range(len(fields)):
            arrays[f"f{i}_amp_freq_{spw}"] = f32(1.2 + 0.01 * RNG.standard_normal(64))
            arrays[f"f{i}_phase_freq_{spw}"] = f32(RNG.standard_normal(64))
            arrays[f"f{i}_time_{spw}"] = np.linspace(0, 600, 50)
            arrays[f"f{i}_scan_{spw}"] = f32(np.repeat([3, 7], 25))
            arrays[f"f{i}_amp_time_{spw}"] = f32(1.2 + 0.01 * RNG.standard_normal(50))
            arrays[f"f{i}_phase_time_{spw}"] = f32(RNG.standard_normal(50))
            arrays[f"f{i}_phase_ant_time_{spw}"] = f32(RNG.standard_normal((len(ANTENNAS), 50)))
            arrays[f"f{i}_uv_klambda_{spw}"] = f32(np.linspace(10, 250, 40))
            arrays[f"f{i}_amp_uv_{spw}"] = f32(1.2 + 0.01 * RNG.standard_normal(40))
            arrays[f"f{i}_phase_uv_{spw}"] = f32(RNG.standard_normal(40))
    summary = {
        "vis": MS + ".split.cal",
        "column": "DATA",
        "antennas": ANTENNAS,
        "fields": fields,
        "spws": [0, 1],
        "per_field": {},
        "ms_spw": {"0": 17, "1": 19},
    }
    return summary, arrays


FLUX = {
    "fields": {
        "J1751+0939": {
            "0": {"flux": 1.23, "error": 0.01, "freq_ghz": 230.5, "bandwidth_mhz": 1875.0},
            "1": {"flux": 1.21, "error": 0.02, "freq_ghz": 232.5, "bandwidth_mhz": 1875.0},
        },
        "J1733-1304": {"0": {"flux": 0.8, "error": None, "freq_ghz": 230.5, "bandwidth_mhz": 1875.0}},
    },
    "spectral_index": {"J1751+0939": -0.61},
    "reference": "J1924-2914",
}


def assert_png(path: Path) -> np.ndarray:
    assert path.exists()
    assert path.read_bytes()[:4] == b"\x89PNG"
    image = mpimg.imread(io.BytesIO(path.read_bytes()), format="png")
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    # 10 x 6 inches at 80 dpi (constrained layout keeps the figure size)
    assert image.shape[:2] == (480, 800)
    return image


@pytest.mark.parametrize(
    ("topic", "artifact", "expected"),
    [
        ("tsys", lambda: tsys_artifact([17, 19, 21]), {"tsys"}),
        ("wvr", wvr_artifact, {"wvr_path", "wvr_phase_rms"}),
        ("bandpass", lambda: bandpass_artifact([0, 1]), {"bandpass_amp", "bandpass_phase"}),
        ("gains", lambda: gains_artifact([0, 1]), {"gains_phase", "gains_amp"}),
        (
            "calibrated",
            calibrated_artifact,
            {
                "calibrated_amp_vs_freq",
                "calibrated_phase_vs_freq",
                "calibrated_amp_vs_uvdist",
                "calibrated_phase_vs_time",
            },
        ),
        ("flux", lambda: (FLUX, {}), {"flux"}),
    ],
)
def test_each_topic_renders_pngs_named_after_the_ms(tmp_path, topic, artifact, expected):
    summary, arrays = artifact()

    paths = render(topic, f"{MS}.{topic}", summary, arrays, tmp_path, MS)

    assert {p.name for p in paths} == {f"{MS}.{kind}.png" for kind in expected}
    assert all(p.parent == tmp_path for p in paths)
    for path in paths:
        image = assert_png(path)
        assert float(np.std(image[..., :3])) > 0.01  # something was drawn


def test_an_npz_file_is_a_valid_mapping_of_arrays(tmp_path):
    summary, arrays = tsys_artifact([17])
    np.savez(tmp_path / "a.npz", **arrays)
    with np.load(tmp_path / "a.npz") as npz:
        paths = render("tsys", "t", summary, npz, tmp_path / "out", MS)
    assert [p.name for p in paths] == [f"{MS}.tsys.png"]
    assert_png(paths[0])


def test_cannot_assess_or_no_arrays_writes_nothing(tmp_path):
    summary, arrays = gains_artifact([0])
    assert (
        render(
            "gains", "g", {**summary, "cannot_assess": "every gain solution is flagged"}, arrays, tmp_path, MS
        )
        == []
    )
    assert render("tsys", "t", {"antennas": ANTENNAS}, {}, tmp_path, MS) == []
    assert render("flags", "f", {"stage": "s", "total_fraction": 0.1}, {}, tmp_path, MS) == []
    assert render("flux", "x", {"cannot_assess": "fluxscale failed"}, {}, tmp_path, MS) == []
    assert render("flux", "x", {"fields": {"J1": {}}}, {}, tmp_path, MS) == []
    assert list(tmp_path.iterdir()) == []


def test_six_spws_are_split_over_pngs_of_at_most_four_panels(tmp_path):
    spws = [17, 19, 21, 23, 25, 27]
    summary, arrays = tsys_artifact(spws)

    paths = render("tsys", "t", summary, arrays, tmp_path, MS)

    assert [p.name for p in paths] == [f"{MS}.tsys_spw17_19_21_23.png", f"{MS}.tsys_spw25_27.png"]
    for path in paths:
        assert_png(path)

    summary, arrays = bandpass_artifact(list(range(6)))
    summary["ms_spw"] = {str(i): 17 + 2 * i for i in range(6)}  # named by the MS's ids
    names = [p.name for p in render("bandpass", "b", summary, arrays, tmp_path, MS)]
    assert names == [
        f"{MS}.bandpass_amp_spw17_19_21_23.png",
        f"{MS}.bandpass_amp_spw25_27.png",
        f"{MS}.bandpass_phase_spw17_19_21_23.png",
        f"{MS}.bandpass_phase_spw25_27.png",
    ]


def test_panel_count_per_png(tmp_path, monkeypatch):
    from reports import qa2_plots

    panels = []
    original = qa2_plots._figure

    def counting(n):
        fig, axes = original(n)
        panels.append(len(axes))
        return fig, axes

    monkeypatch.setattr(qa2_plots, "_figure", counting)
    summary, arrays = gains_artifact(list(range(6)))
    render("gains", "g", summary, arrays, tmp_path, MS)
    assert panels == [4, 2, 4, 2]


def test_a_phase_only_table_has_no_amplitude_plot(tmp_path):
    summary, arrays = gains_artifact([0], calmode="p")
    assert [p.name for p in render("gains", "g", summary, arrays, tmp_path, MS)] == [f"{MS}.gains_phase.png"]


def test_a_tag_keeps_several_tables_of_a_topic_apart(tmp_path):
    summary, arrays = gains_artifact([0])
    a = render("gains", "g", summary, arrays, tmp_path, MS, tag="phase_int")
    b = render("gains", "g", summary, arrays, tmp_path, MS, tag="ampli_inf")
    assert {p.name for p in a} == {f"{MS}.phase_int.gains_phase.png", f"{MS}.phase_int.gains_amp.png"}
    assert not {p.name for p in a} & {p.name for p in b}


def test_many_antennas_and_a_path_as_ms_name(tmp_path):
    antennas = [f"DA{i}" for i in range(41, 61)]  # 20 lines: no legend, still a plot
    summary, arrays = gains_artifact([0])
    summary["antennas"] = antennas
    arrays = {
        "time_0": np.linspace(0, 3600, 30),
        "phase_0": f32(RNG.standard_normal((20, 30))),
        "amp_0": f32(np.ones((20, 30))),
    }
    paths = render("gains", "g", summary, arrays, tmp_path, "/data/run 1/" + MS)
    assert {p.name for p in paths} == {f"{MS}.gains_phase.png", f"{MS}.gains_amp.png"}
    for path in paths:
        assert_png(path)


SAFE = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


@pytest.mark.parametrize(
    "text",
    [
        "../x",
        "/etc/passwd",
        "..",
        ".",
        ".hidden",
        "a b c.png",
        "Sgr A* (field).png",
        "Kryształ_źródło.png",
        "日本語",
        "a/../../b",
        "x" * 300 + ".png",
        "",
        "C:\\Windows\\system32",
        "name\x00with-nul",
    ],
)
def test_safe_name_maps_path_tricks_to_safe_names(text):
    name = safe_name(text)
    assert SAFE.match(name), name
    assert not name.startswith(".")
    assert ".." not in name
    assert "/" not in name and "\\" not in name


def test_safe_name_examples():
    assert safe_name("uid___A002_X1.ms.tsys.png") == "uid___A002_X1.ms.tsys.png"
    assert safe_name("../x") == "__x"
    assert safe_name("/etc/passwd") == "_etc_passwd"
    assert safe_name(".hidden") == "_hidden"
    assert safe_name("-rf") == "_rf"
    assert safe_name("a b.png") == "a_b.png"
    assert safe_name("é.png") == "_.png"
    assert safe_name("..") == safe_name("") == "unnamed"
    long_a, long_b = safe_name("a" * 200 + "1.png"), safe_name("a" * 200 + "2.png")
    assert len(long_a) == 120 and long_a.endswith(".png") and long_a != long_b
