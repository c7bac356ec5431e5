"""Combination without CASA: the weighted mean, the spectral fit, the flux validation, the
refusals (one EB, an EB not calibrated, bad flux or spw, calibrate-all with a missing script)
and the generated script's layout."""

import math

import pytest
from django.core.exceptions import ValidationError

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, MousState
from assignments.staging import mous_stage
from calibration import calibrated_copy, runs, standard_scripts
from calibration import combination as copying
from calibration.models import CalibratedCopy, Run, Script
from calibration.runs import RunRefused, combination_folder
from reports import combination
from reports.models import Diagnostic, FluxEdit
from tests.calibration.conftest import alma_steps, script_version
from tests.factories import ExecutionBlockFactory, MousFactory


# --- pure ----------------------------------------------------------------------------------
def test_weighted_mean_of_known_values():
    mean, error = combination.weighted_mean([(1.0, 0.1), (2.0, 0.2)])
    # weights 100 and 25: (100 * 1 + 25 * 2) / 125 = 1.2; error 1/sqrt(125)
    assert mean == pytest.approx(1.2)
    assert error == pytest.approx(1 / math.sqrt(125))
    assert combination.weighted_mean([(1.5, 0.3)]) == pytest.approx((1.5, 0.3))
    equal = combination.weighted_mean([(1.0, 0.1), (3.0, 0.1)])
    assert equal == pytest.approx((2.0, 0.1 / math.sqrt(2)))


@pytest.mark.parametrize("pair", [(1.0, 0.0), (1.0, -0.1), (math.nan, 0.1), (1.0, math.inf)])
def test_weighted_mean_refuses_values_without_a_usable_error(pair):
    with pytest.raises(ValueError):
        combination.weighted_mean([(1.0, 0.1), pair])
    with pytest.raises(ValueError):
        combination.weighted_mean([])


def test_the_spectral_fit_recovers_a_power_law():
    points = [(f, 1.2 * (f / 237.0) ** -0.5, 0.01) for f in (231.0, 233.0, 245.0)]
    fit = combination.fit_spectral_index(points)
    assert fit is not None
    assert fit.alpha == pytest.approx(-0.5, abs=1e-9)
    assert fit.flux_at(237.0) == pytest.approx(1.2)
    assert combination.fit_spectral_index([(231.0, 1.0, 0.1)]) is None  # one frequency: no index


@pytest.mark.parametrize("text", ["abc", "", "-1", "0", "nan", "inf", "1e400"])
def test_a_flux_must_be_a_positive_number(text):
    with pytest.raises(ValidationError):
        combination.parse_flux(text)
    assert combination.parse_flux(" 1.05 ") == 1.05


def _eb_fluxes(vis: str, flux: float) -> dict:
    return {
        "vis": vis,
        "refant": "DA41",
        "fields": {"J1733-1304": {"0": {"flux": flux, "error": 0.01, "freq_ghz": 231.0}}},
    }


def test_the_generated_script_scales_then_concatenates():
    ebs = [_eb_fluxes("a.ms.split.cal", 1.1), _eb_fluxes("b.ms.split.cal", 1.3)]
    means = {"J1733-1304": {"0": {"flux": 1.2, "freq_ghz": 231.0}}}
    text = standard_scripts.flux_calibration_script(ebs, means, {"J1733-1304": -0.5}, scale=True)
    assert text.count("setjy(") == 2 and "fluxdensity = [1.2, 0, 0, 0]" in text and "spix = [-0.5000]" in text
    assert text.count("calmode = 'a'") == 2 and text.count("applycal(") == 2
    assert "concat(vis = ['a.ms.split.cal.rescaled', 'b.ms.split.cal.rescaled']" in text
    assert "concatvis = 'calibrated.ms'" in text
    assert '"J1733-1304" 0 231.000 1.1000 1.2000 a.ms.split.cal' in text  # allFluxes in the header
    only = standard_scripts.flux_calibration_script(ebs, means, {}, scale=False)
    assert "setjy(" not in only and "gaincal(" not in only
    assert "concat(vis = ['a.ms.split.cal', 'b.ms.split.cal']" in only


# --- refusals (database, no CASA) ----------------------------------------------------------
@pytest.fixture
def two_eb_mous(db, reducer):
    mous = MousFactory(state=MousState.ASSIGNED, assignee=reducer)
    ebs = [ExecutionBlockFactory(mous=mous) for _ in range(2)]
    mous_stage(mous)
    return mous, ebs


def _calibrated(eb: ExecutionBlock, flux: float, status: str = Run.Status.SUCCEEDED) -> Run:
    """A finished calibration run of `eb` with its split on disk and a flux diagnostic."""
    version = script_version(eb, alma_steps("print('cal')"))
    run = Run.objects.create(
        script_version=version, mous=eb.mous, execution_block=eb, folder=str(eb_folder(eb)), status=status
    )
    split = eb_folder(eb) / f"{eb.ms_name}.split.cal"
    split.mkdir(parents=True, exist_ok=True)
    (split / "table.dat").write_bytes(b"x")
    Diagnostic.objects.create(
        run=run,
        mous=eb.mous,
        execution_block=eb,
        topic="flux",
        name=f"{eb.ms_name}.split.flux_inf",
        summary={
            "fields": {
                "J1733-1304": {
                    "0": {"flux": flux, "error": 0.01, "freq_ghz": 231.0, "bandwidth_mhz": 2000.0},
                    "1": {"flux": flux * 0.99, "error": 0.02, "freq_ghz": 233.0, "bandwidth_mhz": 2000.0},
                }
            },
            "ms_spw": {"0": 1, "1": 2},
        },
    )
    return run


def test_one_eb_is_nothing_to_combine(make_eb, reducer):
    eb = make_eb()
    with pytest.raises(copying.CombinationRefused, match="nothing to combine"):
        copying.combination_copy_request(mous=eb.mous, by=reducer.user)
    assert not CalibratedCopy.objects.exists()


def test_an_eb_whose_latest_run_failed_is_not_calibrated(two_eb_mous, reducer):
    mous, (first, second) = two_eb_mous
    _calibrated(first, 1.1)
    _calibrated(second, 1.3, status=Run.Status.FAILED)
    with pytest.raises(copying.CombinationRefused, match=f"EB {second.uid} is not calibrated"):
        copying.combination_copy_request(mous=mous, by=reducer.user)
    assert not CalibratedCopy.objects.exists()
    with pytest.raises(copying.CombinationRefused, match="not calibrated"):
        combination.combination_script_create(mous=mous, mode=combination.SCALE, by=reducer.user)
    assert not Script.objects.filter(kind=Script.Kind.COMBINATION).exists()


def test_allfluxes_edits_are_validated_and_kept_as_history(two_eb_mous, reducer):
    mous, (first, second) = two_eb_mous
    _calibrated(first, 1.1)
    _calibrated(second, 1.3)
    fluxes = combination.all_fluxes(mous)
    assert [eb.fields for eb in fluxes.ebs] == [
        Diagnostic.objects.get(execution_block=eb).summary["fields"] for eb in (first, second)
    ]
    mean = fluxes.means["J1733-1304"]["0"]
    assert mean["flux"] == pytest.approx(1.2) and mean["edited"] is None
    for field, spw, value, reason in [
        ("J1733-1304", "0", "-2", "positive"),
        ("J1733-1304", "0", "lots", "not a number"),
        ("J1733-1304", "7", "1.0", "not a spw"),
        ("3C279", "0", "1.0", "not a calibrator"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            combination.flux_edit(mous=mous, field=field, spw=spw, value=value, by=reducer.user)
    assert not FluxEdit.objects.exists()
    combination.flux_edit(mous=mous, field="J1733-1304", spw="0", value="1.25", by=reducer.user)
    combination.flux_edit(mous=mous, field="J1733-1304", spw="0", value="1.22", by=reducer.user)
    edited = combination.all_fluxes(mous).means["J1733-1304"]["0"]
    assert edited["flux"] == 1.22 and edited["weighted_mean"] == pytest.approx(1.2)
    assert [(e.previous_jy, e.flux_jy) for e in FluxEdit.objects.order_by("pk")] == [
        (pytest.approx(1.2), 1.25),
        (1.25, 1.22),
    ]
    version = combination.combination_script_create(mous=mous, mode=combination.SCALE, by=reducer.user)
    assert (
        version.script.kind == Script.Kind.COMBINATION and "fluxdensity = [1.22, 0, 0, 0]" in version.text()
    )
    assert runs.run_folder_for(version) == combination_folder(mous)
    assert str(combination_folder(mous)).endswith("/Combination/calibrated")
    with pytest.raises(copying.CombinationRefused, match="copy the EBs' calibrated data first"):
        combination.combination_run_create(mous=mous, version=version, by=reducer.user)


def test_calibrate_all_starts_nothing_when_an_eb_has_no_script(two_eb_mous, reducer):
    mous, (first, second) = two_eb_mous
    ExecutionBlock.objects.filter(pk=first.pk).update(data_status=ExecutionBlock.DataStatus.PRESENT)
    script_version(first, alma_steps("print('cal')"))
    with pytest.raises(RunRefused, match="nothing was started") as refused:
        runs.runs_calibrate_all(mous=mous, by=reducer.user)
    assert str(refused.value) == (
        f"nothing was started: EB {second.uid} has no calibration script (generate or upload one); "
        f"EB {second.uid} has no data on disk yet (Expected (not yet on disk))"
    )
    assert not Run.objects.exists()


def test_a_copy_whose_worker_died_is_failed_by_the_reaper(two_eb_mous):
    from datetime import timedelta

    from django.utils import timezone

    mous, _ = two_eb_mous
    old = timezone.now() - timedelta(hours=1)
    stale = CalibratedCopy.objects.create(mous=mous, status=CalibratedCopy.Status.COPYING, heartbeat_at=old)
    fresh = CalibratedCopy.objects.create(
        mous=mous, status=CalibratedCopy.Status.COPYING, heartbeat_at=timezone.now()
    )
    assert calibrated_copy.copies_reap_stale() == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == CalibratedCopy.Status.FAILED and "worker lost" in stale.error
    assert fresh.status == CalibratedCopy.Status.COPYING
