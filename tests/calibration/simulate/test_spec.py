"""Spec validation, JSON round trip, cache keys and layouts: pure Python, no CASA."""

import json
from dataclasses import replace
from itertools import pairwise

import pytest

from calibration.simulate import layout, presets
from calibration.simulate.build import build_eb
from calibration.simulate.spec import (
    Antenna,
    DeadAntenna,
    EbSpec,
    HotTsys,
    LowSnrSpw,
    SpecError,
    Spw,
    effective_spws,
    spec_hash,
    validate,
)


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_presets_are_valid_and_round_trip_through_json(name):
    spec = validate(presets.preset(name))
    again = EbSpec.from_json(spec.to_json())
    assert again == spec
    assert spec_hash(again) == spec_hash(spec)


def test_preset_shapes_match_the_issue():
    small, typical, wide = presets.small(), presets.alma_typical(), presets.alma_wide()
    assert (len(small.antennas), [s.nchan for s in small.spws]) == (10, [64, 64, 64])
    assert 19 * 60 < layout.duration_s(small) < 22 * 60
    assert (len(typical.antennas), [s.nchan for s in typical.spws]) == (43, [128] * 4)
    assert 55 * 60 < layout.duration_s(typical) < 65 * 60
    assert (len(wide.antennas), [s.nchan for s in wide.spws]) == (43, [3840] * 4)
    assert layout.duration_s(wide) < 5 * 60
    assert {a.name[:2] for a in typical.antennas} == {"DA", "DV", "DM"}
    assert len({a.pad for a in typical.antennas}) == 43


def test_small_preset_injects_every_fault_kind_once():
    from calibration.simulate.spec import FAULT_KINDS

    kinds = [f.kind for f in presets.small().faults]
    assert sorted(kinds) == sorted(FAULT_KINDS)


def test_small_layout_has_alma_intents_and_atm_subscans():
    scans = layout.scans(presets.small())
    assert [s.intent for s in scans[:2]] == ["ATM", layout.INTENTS["bandpass"]]
    assert [sub.obs_mode.split(",")[0] for sub in scans[0].subscans] == [
        "CALIBRATE_ATMOSPHERE#OFF_SOURCE",
        "CALIBRATE_ATMOSPHERE#AMBIENT",
        "CALIBRATE_ATMOSPHERE#HOT",
    ]
    assert [s.number for s in scans] == list(range(1, len(scans) + 1))
    assert all(a.stop_s < b.start_s for a, b in pairwise(scans))


def test_hash_changes_with_seed_and_faults():
    base = presets.small()
    assert spec_hash(base) != spec_hash(replace(base, seed=base.seed + 1))
    assert spec_hash(base) != spec_hash(base.with_faults(HotTsys("DA41")))


def test_spectral_faults_change_the_layout():
    spws = effective_spws(presets.small())
    assert spws[0].center_ghz == pytest.approx(231.281)  # atm_line moved spw 1 onto O3
    assert spws[2].bandwidth_mhz == 62.5  # low_snr_spw narrowed spw 3
    assert spws[1] == replace(presets.small().spws[1], name=spws[1].name)


# --- refusals: a clear message, before CASA starts -------------------------------------------
def _refused(spec: EbSpec) -> str:
    with pytest.raises(SpecError) as info:
        validate(spec)
    return str(info.value)


def test_zero_antennas_refused():
    assert "0 antennas: need 4 to 50" in _refused(replace(presets.small(), antennas=(), faults=()))


def test_five_channels_refused():
    spec = replace(presets.small(), spws=(Spw(231.0, 5),), faults=())
    assert "spw 1 has 5 channels: need 64 to 3840" in _refused(spec)


def test_unknown_fault_refused():
    data = presets.small().to_dict()
    data["faults"].append({"kind": "cosmic_rays", "antenna": "DA41"})
    with pytest.raises(SpecError, match="unknown fault kind 'cosmic_rays'; known kinds: atm_line"):
        EbSpec.from_dict(data)


def test_fault_parameter_typo_refused():
    data = presets.small().to_dict()
    data["faults"] = [{"kind": "hot_tsys", "antena": "DA41"}]
    with pytest.raises(SpecError, match="fault 'hot_tsys' has no parameter"):
        EbSpec.from_dict(data)


def test_fault_on_missing_antenna_refused():
    spec = presets.small().with_faults(DeadAntenna("DV99"))
    assert "fault dead_antenna on antenna DV99, which is not in the array" in _refused(spec)


def test_fault_on_missing_spw_refused():
    assert "science spws are 1..3" in _refused(presets.small().with_faults(LowSnrSpw(spw=4)))


def test_bad_antenna_names_and_pads_refused():
    spec = replace(presets.small(), antennas=(*presets.small().antennas[:9], Antenna("XX01", "Z999")))
    message = _refused(spec)
    assert "XX01" in message and "Z999" in message


def test_several_problems_reported_together():
    spec = replace(presets.small(), antennas=(), spws=(Spw(231.0, 5),))
    message = _refused(spec)
    assert "antennas" in message and "5 channels" in message and "not in the array" in message


def test_build_refuses_bad_spec_before_casa_starts(settings, tmp_path):
    # A CASA interpreter that cannot start: a refused spec must never get that far.
    settings.CASA_PYTHON = "/nonexistent/python"
    with pytest.raises(SpecError, match="0 antennas"):
        build_eb(replace(presets.small(), antennas=(), faults=()), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_spec_json_is_plain_data():
    data = json.loads(presets.small().to_json())
    assert data["faults"][0] == {"kind": "bad_wvr", "antenna": "DV07", "noise_k": 3.0, "drift_k": 0.4}
