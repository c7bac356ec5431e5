"""What the imaging-prep run stored comes out of the run's sandbox, where the reducer's script ran
too: a summary that is not what imaging_data writes is refused with the reason (409), and no
imaging script version is made."""

import pytest

from calibration import imaging
from calibration.models import ImagingData, Run, Script, ScriptVersion
from calibration.scripts import script_get_or_create, script_version_create
from tests.calibration.conftest import alma_steps

pytestmark = pytest.mark.django_db

GOOD_FIELD = {"id": 0, "name": "T", "ra_rad": 1.0, "dec_rad": -0.3}


@pytest.mark.parametrize(
    "summary",
    [
        {"fields": [GOOD_FIELD]},  # no spws, baselines, dishes
        {"fields": [GOOD_FIELD], "spws": "many", "baselines_m": {}, "dish_diameters_m": [], "spectra": {}},
        {"fields": [{"name": "T"}], "spws": [], "baselines_m": {"p80": 0, "max": 0}, "spectra": {}},
        {"fields": [GOOD_FIELD], "spws": [{"id": 0}], "baselines_m": {"p80": 100.0}, "spectra": []},
    ],
)
def test_a_forged_imaging_data_summary_is_refused_with_the_reason(make_eb, reducer, summary):
    eb = make_eb()
    mous = eb.mous
    prep = script_get_or_create(kind=Script.Kind.IMAGING_PREP, mous=mous)
    version = script_version_create(
        script=prep, text=alma_steps("print('prep')"), source="generated", by=None
    )
    run = Run.objects.create(
        script_version=version,
        mous=mous,
        folder=str(imaging.imaging_folder(mous)),
        status=Run.Status.SUCCEEDED,
    )
    ImagingData.objects.create(mous=mous, run=run, vis="calibrated_final.ms", summary=summary)

    with pytest.raises(imaging.ImagingRefused, match=r"is not usable|holds no target field"):
        imaging.imaging_script_create(mous=mous, by=reducer.user)
    assert not ScriptVersion.objects.filter(script__mous=mous, script__kind=Script.Kind.IMAGING).exists()
