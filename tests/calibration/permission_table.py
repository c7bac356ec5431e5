"""Who gets what on every calibration route (pages and /api/). Read by the permission matrix
(tests/assignments/test_permission_matrix.py explains the format).

Pages: anonymous -> 302 to login; any signed-in user reads; only the MOUS's reducer or a DRM
acts (others get 403). A refused action on a page redirects back with its message (302); in the
API it answers 409 (or 400 for bad input)."""

from calibration.models import (
    CalibratorFlux,
    DataIngest,
    Product,
    Run,
    RunStep,
    Script,
    ScriptGeneration,
    ScriptVersion,
)
from calibration.scripts import script_get_or_create, script_version_create
from tests.assignments.matrix import ANON_PAGE, api, everyone_reads, manager_only, page
from tests.calibration.conftest import alma_steps

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def prepare(world) -> None:
    from assignments.datafiles import eb_folder

    for mous in (world.own, world.other):
        eb = mous.execution_blocks.first()
        script = script_get_or_create(kind=Script.Kind.CALIBRATION, mous=mous, eb=eb)
        for body in ("print('a')", "print('b')"):
            version = script_version_create(
                script=script, text=alma_steps(body), source=ScriptVersion.Source.UPLOADED, by=None
            )
        imaging = script_get_or_create(kind=Script.Kind.IMAGING, mous=mous)
        script_version_create(script=imaging, text=alma_steps("print('i')"), source="generated", by=None)
        folder = eb_folder(eb)
        folder.mkdir(parents=True, exist_ok=True)
        run = Run.objects.create(script_version=version, mous=mous, execution_block=eb, folder=str(folder))
        RunStep.objects.create(run=run, number=0, title="step 0")
        (folder / run.casa_log_name).write_text("INFO casa log\n")
        (folder / "plot.png").write_bytes(PNG)
        Product.objects.create(
            run=run, execution_block=eb, mous=mous, relpath="plot.png", kind="png", size=40
        )
        ScriptGeneration.objects.create(execution_block=eb)
        DataIngest.objects.create(execution_block=eb, source_kind="path", source="/x", status="FAILED")


def _eb(mous) -> dict:
    return {"pk": mous.execution_blocks.first().pk}


def _mous(mous) -> dict:
    return {"pk": mous.pk}


def _version(mous) -> dict:
    return {
        "pk": ScriptVersion.objects.filter(script__execution_block__mous=mous).order_by("number").first().pk
    }


def _run(mous) -> dict:
    return {"pk": mous.runs.order_by("pk").first().pk}


def _log(mous) -> dict:
    return {"pk": mous.runs.order_by("pk").first().pk, "which": "casa"}


def _product(mous) -> dict:
    return {"pk": mous.products.first().pk}


def _eb_file(mous) -> dict:
    return {"pk": mous.execution_blocks.first().pk, "relpath": "plot.png"}


def _ingest(mous) -> dict:
    return {"pk": DataIngest.objects.filter(execution_block__mous=mous).first().pk}


def _generation(mous) -> dict:
    return {"pk": ScriptGeneration.objects.filter(execution_block__mous=mous).first().pk}


def _latest_version(world, mous) -> dict:
    return {"version": ScriptVersion.objects.filter(script__execution_block__mous=mous).latest("number").pk}


def _against(world, mous) -> dict:
    return {"against": ScriptVersion.objects.filter(script__execution_block__mous=mous).latest("number").pk}


def _run_all(world, mous) -> dict:
    return {**_latest_version(world, mous), "action": "all"}


def _api_run(world, mous) -> dict:
    return {"script_version": _latest_version(world, mous)["version"]}


def _api_generate(world, mous) -> dict:
    return {"execution_block": mous.execution_blocks.first().pk}


def _restore(world, mous) -> dict:
    return {"ms": "nothing.ms", "name": "Original"}


def _catalogue_entry(mous) -> dict:
    return {"pk": CalibratorFlux.objects.order_by("pk").first().pk}  # seeded by migration 0005


def acts(**kw):
    """A page action: 403 for another reducer's MOUS, a redirect (302) for its reducer and DRMs."""
    return page(other=403, own=302, drm=302, method="post", **kw)


ROUTES = {
    "calibration-eb": [everyone_reads(302, kwargs=_eb)],
    "calibration-eb-generate": [acts(kwargs=_eb)],
    "calibration-eb-upload": [acts(kwargs=_eb)],
    "calibration-eb-run": [acts(kwargs=_eb, data=_run_all)],
    "calibration-eb-restore-flags": [acts(kwargs=_eb, data=_restore)],
    "calibration-eb-products": [everyone_reads(302, kwargs=_eb)],
    "calibration-mous": [everyone_reads(302, kwargs=_mous)],
    # every EB at once: its reducer or a DRM is sent back (queued, or refused with the reason)
    "calibration-mous-calibrate-all": [acts(kwargs=_mous)],
    "calibration-generation": [everyone_reads(302, kwargs=_generation)],
    "calibration-version": [everyone_reads(302, kwargs=_version)],
    "calibration-version-download": [everyone_reads(302, kwargs=_version)],
    "calibration-version-convert": [acts(kwargs=_version)],
    # a version without error-level findings: its reducer or a DRM is sent back with the reason
    "calibration-version-confirm": [acts(kwargs=_version)],
    # the calibrator catalogue is the DRMs' to read and edit
    "calibration-catalogue": [manager_only(200, anon=ANON_PAGE)],
    "calibration-catalogue-edit": [manager_only(200, anon=ANON_PAGE, kwargs=_catalogue_entry)],
    "calibration-version-diff": [everyone_reads(302, kwargs=_version, data=_against)],
    "calibration-run": [everyone_reads(302, kwargs=_run)],
    "calibration-run-status": [everyone_reads(302, kwargs=_run)],
    "calibration-run-cancel": [acts(kwargs=_run)],
    "calibration-run-rerun": [acts(kwargs=_run)],
    "calibration-run-log": [everyone_reads(302, kwargs=_log)],
    "calibration-product-file": [everyone_reads(302, kwargs=_product)],
    "calibration-eb-file": [everyone_reads(302, kwargs=_eb_file)],
    # Bringing data in: DRMs and data analysts only (not even the MOUS's own reducer).
    "calibration-eb-ingest": [everyone_reads(302, kwargs=_eb)],
    "calibration-eb-ingest-path": [page(other=403, own=403, drm=302, method="post", kwargs=_eb)],
    "calibration-eb-ingest-upload": [page(other=403, own=403, drm=302, method="post", kwargs=_eb)],
    "calibration-ingest": [everyone_reads(302, kwargs=_ingest)],
    "calibration-ingest-status": [everyone_reads(302, kwargs=_ingest)],
    # The table's ingest is FAILED: nothing to cancel (the page says so, the API answers 409).
    "calibration-ingest-cancel": [page(other=403, own=403, drm=302, method="post", kwargs=_ingest)],
    "executionblock-ingest": [
        everyone_reads(kwargs=_eb),
        api(other=403, own=403, drm=400, method="post", kwargs=_eb),  # no path: bad input
    ],
    # No file: bad input for the DRM (the upload itself is in test_ingest.py).
    "executionblock-ingest-upload": [api(other=403, own=403, drm=400, method="post", kwargs=_eb)],
    "dataingest-list": [everyone_reads()],
    "dataingest-detail": [everyone_reads(kwargs=_ingest)],
    "dataingest-cancel": [api(other=403, own=403, drm=409, method="post", kwargs=_ingest)],
    "scriptversion-list": [everyone_reads()],
    "scriptversion-detail": [everyone_reads(kwargs=_version)],
    # JSON without a file is invalid input for everyone (the upload itself is tested with files).
    "scriptversion-upload": [api(other=400, own=400, drm=400, method="post")],
    # Routes without an object: the matrix probes the own MOUS only (another reducer's 403 on
    # these is tested in test_scripts.py::test_someone_elses_reducer_cannot_upload_or_run).
    "scriptversion-generate": [api(other=409, own=409, drm=409, method="post", data=_api_generate)],
    "scriptversion-convert": [api(other=403, own=400, drm=400, method="post", kwargs=_version)],
    "scriptversion-download": [everyone_reads(kwargs=_version)],
    "run-list": [everyone_reads(), api(other=409, own=409, drm=409, method="post", data=_api_run)],
    "run-detail": [everyone_reads(kwargs=_run)],
    "run-cancel": [api(other=403, own=200, drm=200, method="post", kwargs=_run)],
    "run-rerun": [api(other=403, own=409, drm=409, method="post", kwargs=_run)],
    "product-list": [everyone_reads()],
    "product-detail": [everyone_reads(kwargs=_product)],
}
