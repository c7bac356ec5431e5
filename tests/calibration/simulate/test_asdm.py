"""The ASDM round trip findings of ASDM_ROUNDTRIP.md, kept true by a real run."""

import pytest

from calibration.simulate.build import asdm_roundtrip

pytestmark = pytest.mark.casa


def test_asdm_roundtrip_loses_what_the_doc_says(small_eb, tmp_path):
    found = asdm_roundtrip(small_eb.ms, tmp_path)
    assert found["full_export"].startswith("failed")  # WVR spw (183 GHz) + band 6 in one EB
    assert "SysCal.xml" in found["asdm_tables"] and "CalWVR.xml" not in found["asdm_tables"]
    back, before = found["roundtrip"], found["science_only"]
    assert back["rows"] == before["rows"] and back["spw_nchan"] == before["spw_nchan"]
    assert back["SYSCAL_rows"] == before["SYSCAL_rows"]  # Tsys survives
    assert back["pointing_frame"] == "AZELGEO"
    assert back["obs_modes"] == ["OBSERVE_TARGET#ON_SOURCE"]  # every calibration intent is lost
    assert back["scans"] == 1 and not back["msmetadata_opens"]  # and the MS is not usable
    assert back["WEATHER_rows"] == 0 and back["ASDM_CALWVR_rows"] == 0
