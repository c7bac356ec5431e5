"""A script step that plants links in its run folder cannot make the web serve another file.

The run rows and folder are made directly (what a hostile step leaves behind; the worker is not
needed to read them back): the output log links to a secret, the CASA log to a stand-in for the
SQLite database, a product folder to a folder outside, a flag-version list and a diagnostic
artifact to secrets as well. Every page, file, status JSON and API answer is checked for the
secret; each planted file is answered 403 with the reason, or left out of a listing."""

import os
from pathlib import Path

import numpy as np
import pytest
from django.test import Client

from assignments.datafiles import eb_folder
from assignments.models import MousState
from assignments.staging import mous_stage
from calibration.models import Product, Run
from reports.models import Diagnostic, Topic
from tests.calibration.conftest import script_version
from tests.factories import ExecutionBlockFactory, MousFactory

pytestmark = pytest.mark.django_db

SECRET = "SECRET-token-7f3a9c-do-not-serve"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files outside DATA_ROOT that hold the secret (the settings, /etc/shadow, the database)."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "shadow").write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    (folder / "qa2portal.sqlite3").write_text(f"SQLite format 3\x00 authtoken {SECRET}\n")
    (folder / "plot.png").write_text(SECRET)
    (folder / "FLAG_VERSION_LIST").write_text(f"{SECRET} : stolen\n")
    np.savez(folder / "wvr.npz", time=np.arange(3.0), path_um=np.full((1, 3), 4711.0))
    return folder


@pytest.fixture
def planted(reducer, outside: Path) -> Run:
    """A finished run whose folder a hostile step filled with links to `outside`."""
    mous = MousFactory(state=MousState.CALIBRATING, assignee=reducer)
    eb = ExecutionBlockFactory(mous=mous)
    mous_stage(mous)
    folder = eb_folder(eb)
    version = script_version(eb, "print('hello')\n")
    run = Run.objects.create(
        script_version=version,
        mous=mous,
        execution_block=eb,
        folder=str(folder),
        status=Run.Status.SUCCEEDED,
        created_by=reducer.user,
    )
    (folder / run.output_log_name).symlink_to(outside / "shadow")
    (folder / run.casa_log_name).symlink_to(outside / "qa2portal.sqlite3")
    (folder / "plots").symlink_to(outside, target_is_directory=True)  # a folder link
    (folder / "listobs.txt").symlink_to(outside / "shadow")
    (folder / "good.txt").write_text("a product the step really made\n")
    for relpath, kind in [
        (run.output_log_name, Product.Kind.LOG),
        (run.casa_log_name, Product.Kind.LOG),
        ("plots/plot.png", Product.Kind.PNG),
        ("listobs.txt", Product.Kind.TXT),
        ("../../../../etc/passwd", Product.Kind.TXT),  # a forged product path
        ("good.txt", Product.Kind.TXT),
    ]:
        Product.objects.create(run=run, execution_block=eb, mous=mous, relpath=relpath, kind=kind)
    # Flag versions: one list is a link, one folder is a link, one is real.
    (folder / "a.ms.flagversions").mkdir()
    (folder / "a.ms.flagversions" / "FLAG_VERSION_LIST").symlink_to(outside / "FLAG_VERSION_LIST")
    (folder / "b.ms.flagversions").symlink_to(outside, target_is_directory=True)
    (folder / "c.ms.flagversions").mkdir()
    (folder / "c.ms.flagversions" / "FLAG_VERSION_LIST").write_text("Original : before any flagging\n")
    # A diagnostic artifact whose folder is a link.
    (folder / "qa2portal-diagnostics").symlink_to(outside, target_is_directory=True)
    Diagnostic.objects.create(
        run=run,
        execution_block=eb,
        mous=mous,
        topic=Topic.WVR,
        name="cal.wvr",
        artifact="qa2portal-diagnostics/wvr.npz",
        summary={"antennas": ["DA41"], "phase_rms_before": {}, "phase_rms_after": {}},
    )
    return run


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", errors="replace")
    return response.content.decode("utf-8", errors="replace")


def _get(client: Client, url: str, status: int) -> str:
    response = client.get(url)
    body = _body(response)
    assert response.status_code == status, (url, response.status_code, body[:300])
    assert SECRET not in body, url
    assert "4711" not in body, url  # the planted artifact's values
    return body


def test_planted_log_links_are_refused_on_every_page(client, reducer, planted):
    run, eb = planted, planted.execution_block
    client.force_login(reducer.user)

    for which, name in (("output", run.output_log_name), ("casa", run.casa_log_name)):
        body = _get(client, f"/calibration/runs/{run.pk}/log/{which}/", 403)
        assert f"{name} is not served" in body and "is a link" in body
        assert str(eb_folder(eb)) not in body  # the reason, not the server's paths

    status = client.get(f"/calibration/runs/{run.pk}/status/").json()
    assert SECRET not in str(status)
    assert status["log_tail"] == (
        f"[{run.output_log_name} is not shown: "
        f"{eb.mous.folder_name}/{eb.folder_name}/{run.output_log_name} is a link: "
        "the portal never follows links under DATA_ROOT]"
    )
    _get(client, f"/calibration/runs/{run.pk}/", 200)
    _get(client, f"/api/runs/{run.pk}/", 200)
    _get(client, f"/api/products/?run={run.pk}", 200)


def test_planted_product_links_are_listed_as_refused_and_never_served(client, reducer, planted):
    run, eb = planted, planted.execution_block
    client.force_login(reducer.user)
    page = _get(client, f"/calibration/eb/{eb.pk}/products/", 200)
    base = f"/calibration/eb/{eb.pk}/files/"
    assert f'href="{base}good.txt"' in page
    for relpath in ("plots/plot.png", "listobs.txt", run.casa_log_name):
        assert f'href="{base}{relpath}' not in page  # neither a link nor a thumbnail
    assert "not served: " in page and "plots is a link" in page
    assert "<img" not in page

    assert _get(client, f"{base}good.txt", 200) == "a product the step really made\n"
    for relpath in ("plots/plot.png", "listobs.txt", run.casa_log_name, run.output_log_name):
        body = _get(client, f"{base}{relpath}", 403)
        assert "is a link" in body
    for product in run.products.exclude(relpath="good.txt"):
        body = _get(client, f"/calibration/products/{product.pk}/file/", 403)
    forged = run.products.get(relpath__startswith="..")
    assert "'..' is not allowed" in _get(client, f"/calibration/products/{forged.pk}/file/", 403)


def test_planted_flag_version_links_are_left_out(client, reducer, planted):
    eb = planted.execution_block
    client.force_login(reducer.user)
    page = _get(client, f"/calibration/eb/{eb.pk}/", 200)
    assert "before any flagging" in page  # the real list is read
    assert "stolen" not in page
    from calibration import flagversions

    assert flagversions.flag_versions(eb) == {
        "c.ms": [{"name": "Original", "comment": "before any flagging"}]
    }


def test_a_planted_artifact_link_is_refused_by_the_figure(client, reducer, planted):
    client.force_login(reducer.user)
    response = client.get(f"/reports/runs/{planted.pk}/wvr/figures/path.json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert "qa2portal-diagnostics is a link" in error and "4711" not in error
    _get(client, f"/reports/runs/{planted.pk}/wvr/", 200)


def test_a_hard_link_or_a_fifo_as_the_log_is_refused(client, reducer, planted, outside):
    run = planted
    folder = Path(run.folder)
    (folder / run.output_log_name).unlink()
    (folder / run.casa_log_name).unlink()
    os.link(outside / "shadow", folder / run.output_log_name)  # both under pytest's tmp: one filesystem
    os.mkfifo(folder / run.casa_log_name)  # opening it for reading would block the web worker
    client.force_login(reducer.user)
    assert "2 hard links" in _get(client, f"/calibration/runs/{run.pk}/log/output/", 403)
    assert "a FIFO" in _get(client, f"/calibration/runs/{run.pk}/log/casa/", 403)
    assert "2 hard links" in client.get(f"/calibration/runs/{run.pk}/status/").json()["log_tail"]


def test_a_real_log_is_served(client, reducer, planted):
    run = planted
    folder = Path(run.folder)
    (folder / run.output_log_name).unlink()
    (folder / run.output_log_name).write_text("=== step 0\nhello\n")
    client.force_login(reducer.user)
    response = client.get(f"/calibration/runs/{run.pk}/log/output/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert _body(response) == "=== step 0\nhello\n"
    assert client.get(f"/calibration/runs/{run.pk}/status/").json()["log_tail"] == "=== step 0\nhello\n"
