"""NGC5921 (VLA, casadata demo) as an EB with an ALMA-step-layout calibration script."""

import pytest

from calibration.simulate.build import casa_json
from calibration.simulate.ngc5921 import render_script

pytestmark = pytest.mark.casa


def test_ngc5921_imports_with_numbered_antennas(ngc5921_ms, ngc5921_eb):
    assert ngc5921_ms.name == "ngc5921.ms" and ngc5921_ms.is_dir()
    truth = ngc5921_eb.truth
    assert truth["antennas"][:3] == ["1", "2", "3"]
    assert truth["refant"] == "15" and "15" in truth["antennas"]  # the tutorial's 'VA15'
    assert list(truth["fields"]) == ["1331+30500002_0", "1445+09900002_0", "N5921_2"]
    assert 30 < truth["build"]["size_mb"] < 45


def test_ngc5921_script_has_alma_steps_and_compiles(ngc5921_eb):
    script = (ngc5921_eb.folder / "ngc5921.ms.scriptForCalibration.py").read_text()
    compile(script, "scriptForCalibration.py", "exec")
    assert "mystep = 0" in script and "if(mystep in thesteps):" in script
    assert "refant='15'" in script and "VA15" not in script.replace("'VA15' is '15'", "")
    assert "if os.path.exists(vis) == False:" in script  # step 0 accepts "MS already present"
    renamed = render_script("uid___A002_Xsim02_X1.ms")
    assert "vis = 'uid___A002_Xsim02_X1.ms'" in renamed


def test_ngc5921_as_casa_lists_it(ngc5921_ms):
    # Not inspect_eb: NGC5921 has no SYSCAL and an ordinary POINTING table, unlike ALMA data.
    info = casa_json(
        "tests.calibration.simulate.ngc5921_info", "NGCINFO", cwd=ngc5921_ms.parent, args=[str(ngc5921_ms)]
    )
    assert info["spw_nchan"] == [63]
    assert len(info["antennas"]) >= 27
