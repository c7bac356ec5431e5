"""Who gets what on the diagnostics routes. Read by the permission matrix
(tests/assignments/test_permission_matrix.py explains the format)."""

import numpy as np

from calibration.models import Run, Script, ScriptVersion
from calibration.scripts import script_get_or_create, script_version_create
from reports.models import Diagnostic, Finding, ImageQA
from tests.assignments.matrix import everyone_reads, page
from tests.calibration.conftest import alma_steps


def prepare(world) -> None:
    from assignments.datafiles import eb_folder

    for mous in (world.own, world.other):
        eb = mous.execution_blocks.first()
        script = script_get_or_create(kind=Script.Kind.CALIBRATION, mous=mous, eb=eb)
        version = script_version_create(
            script=script, text=alma_steps("print('w')"), source=ScriptVersion.Source.UPLOADED, by=None
        )
        folder = eb_folder(eb)
        folder.mkdir(parents=True, exist_ok=True)
        run = Run.objects.create(script_version=version, mous=mous, execution_block=eb, folder=str(folder))
        np.savez(folder / "wvr.npz", time=np.arange(3.0), path_um=np.zeros((1, 3), dtype=np.float32))
        summary = {
            "antennas": ["DA41"],
            "report": {},
            "phase_rms_before": {"DA41": 10.0},
            "phase_rms_after": {"DA41": 5.0},
            "improvement": 2.0,
        }
        diagnostic = Diagnostic.objects.create(
            run=run,
            mous=mous,
            execution_block=eb,
            topic="wvr",
            name="x.wvr",
            artifact="wvr.npz",
            summary=summary,
        )
        edit = {"step": 0, "append": ["print('edited')"], "description": "matrix edit"}
        Finding.objects.create(
            diagnostic=diagnostic, run=run, topic="wvr", code="wvr", score=0.5, message="m", edit=edit
        )
        ImageQA.objects.create(run=run, mous=mous, name="target_cont", kind="continuum", summary={})


def _eb(mous) -> dict:
    return {"pk": mous.execution_blocks.first().pk}


def _run_pk(mous) -> int:
    return Diagnostic.objects.get(run__mous=mous).run_id


def _topic(mous) -> dict:
    return {"pk": _run_pk(mous), "topic": "wvr"}


def _figure(mous) -> dict:
    return {"pk": _run_pk(mous), "topic": "wvr", "name": "phase_rms"}


def _finding(mous) -> dict:
    return {"pk": Finding.objects.get(run__mous=mous).pk}


def _eb_post(world, mous) -> dict:
    return {"eb": mous.execution_blocks.first().pk}


def _image(mous) -> dict:
    return {"pk": ImageQA.objects.get(mous=mous).pk}


ROUTES = {
    # The MOUS's way into diagnostics: its one diagnosed EB here, so a redirect for everyone.
    "reports-mous": [page(other=302, own=302, drm=302, kwargs=lambda m: {"pk": m.pk})],
    "reports-eb": [everyone_reads(302, kwargs=_eb)],
    "reports-compare": [everyone_reads(302, kwargs=_eb)],
    "reports-topic": [everyone_reads(302, kwargs=_topic)],
    "reports-figure": [everyone_reads(302, kwargs=_figure)],
    # Applying an edit makes a new script version: the MOUS's reducer or a DRM only.
    # The combination page (the table's MOUS has one EB: the page says there is nothing to
    # combine, the figure answers 409, and every action is refused with that reason).
    "reports-combination": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-combination-status": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-combination-figure": [page(other=409, own=409, drm=409, kwargs=lambda m: {"pk": m.pk})],
    "reports-combination-copy": [
        page(other=403, own=302, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})
    ],
    "reports-combination-flux": [
        page(other=403, own=302, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})
    ],
    "reports-combination-generate": [
        page(other=403, own=302, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})
    ],
    # no combination version exists: 404 once the user may act
    "reports-combination-run": [
        page(other=403, own=404, drm=404, method="post", kwargs=lambda m: {"pk": m.pk})
    ],
    "reports-finding-apply": [page(other=403, own=302, drm=302, method="post", kwargs=_finding)],
    # The imaging page: the table's MOUS is not calibrated, so every action is refused with the
    # reason (a redirect) once the user may act; no imaging version exists to run (404).
    "reports-imaging": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-imaging-status": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-imaging-copy": [page(other=403, own=302, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})],
    "reports-imaging-generate": [
        page(other=403, own=302, drm=302, method="post", kwargs=lambda m: {"pk": m.pk, "which": "prep"})
    ],
    "reports-imaging-run": [
        page(other=403, own=404, drm=404, method="post", kwargs=lambda m: {"pk": m.pk, "which": "imaging"})
    ],
    # An image whose FITS was never exported: the page says so; its plane is a 404.
    "reports-image": [everyone_reads(302, kwargs=_image)],
    "reports-image-plane": [page(other=404, own=404, drm=404, kwargs=_image)],
    # no pixel given: a clear 400
    "reports-image-spectrum": [page(other=400, own=400, drm=400, kwargs=_image)],
    # The QA2 package: everyone signed in reads; the MOUS's reducer or a DRM acts (nothing is
    # calibrated here, so a qa2 report and an empty README are refused with the reason).
    "reports-checklist": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-readme": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-readme-edit": [page(other=403, own=302, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})],
    "reports-qa2-request": [
        page(other=403, own=302, drm=302, method="post", kwargs=lambda m: {"pk": m.pk}, data=_eb_post)
    ],
    "reports-qa2-status": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-qa2": [everyone_reads(302, kwargs=_eb)],
    # The review: everyone reads; only a DRM starts it or decides (here the MOUS is not ready:
    # the DRM is sent back with the reason).
    "reports-review": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-review-start": [page(other=403, own=403, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})],
    "reports-review-decide": [
        page(other=403, own=403, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})
    ],
    "reports-delivery": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-delivery-status": [everyone_reads(302, kwargs=lambda m: {"pk": m.pk})],
    "reports-delivery-start": [
        page(other=403, own=403, drm=302, method="post", kwargs=lambda m: {"pk": m.pk})
    ],
    "reports-qa2-file": [
        page(other=404, own=404, drm=404, kwargs=lambda m: {**_eb(m), "name": "textfile.txt"})
    ],
}
