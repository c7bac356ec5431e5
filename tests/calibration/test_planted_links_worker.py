"""The hostile-battery case "link the run's log or output to a secret and fetch it through the
web", with the real worker, real CASA and the sandbox: one script step replaces the run's CASA
log and output log with links to a secret and links a folder outside as 'plots'."""

from pathlib import Path

import pytest

from calibration import runs
from tests.calibration.conftest import alma_steps, script_version
from tests.calibration.test_runs import wait_terminal

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]

SECRET = "SECRET-planted-by-step-0-5b1e"


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", errors="replace")
    return response.content.decode("utf-8", errors="replace")


def test_a_step_that_links_its_logs_to_a_secret_cannot_make_the_web_serve_it(
    celery_worker_process, make_eb, ngc5921_ms, reducer, client, tmp_path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(SECRET + "\n")
    outside.chmod(0o755)
    secret.chmod(0o644)  # readable by anyone: only the portal's refusal keeps it from the web
    step = (
        "import glob, os\n"
        "for name in glob.glob('casa-run*.log') + glob.glob('run*.output.txt'):\n"
        "    os.remove(name)\n"
        f"    os.symlink({str(secret)!r}, name)\n"
        f"os.symlink({str(outside)!r}, 'plots')\n"
        "open('listobs.txt', 'w').write('a real product\\n')\n"
    )
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, alma_steps(step))
    run = wait_terminal(runs.run_create(version=version, steps=[0], by=reducer.user))
    assert secret.read_text() == SECRET + "\n", "the worker wrote through a planted link"

    client.force_login(reducer.user)
    urls = [
        f"/calibration/runs/{run.pk}/",
        f"/calibration/runs/{run.pk}/status/",
        f"/calibration/runs/{run.pk}/log/output/",
        f"/calibration/runs/{run.pk}/log/casa/",
        f"/calibration/eb/{eb.pk}/",
        f"/calibration/eb/{eb.pk}/products/",
        f"/calibration/eb/{eb.pk}/files/plots/secret.txt",
        f"/api/runs/{run.pk}/",
        f"/api/products/?run={run.pk}",
    ]
    urls += [f"/calibration/eb/{eb.pk}/files/{p.relpath}" for p in run.products.all()]
    urls += [f"/calibration/products/{p.pk}/file/" for p in run.products.all()]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 403, 404), (url, response.status_code)
        assert SECRET not in _body(response), url
    folder = Path(run.folder)
    for name in (run.casa_log_name, run.output_log_name):
        if (folder / name).is_symlink():  # still the planted link: refused, with the reason
            response = client.get(f"/calibration/runs/{run.pk}/log/{'casa' if 'casa' in name else 'output'}/")
            assert response.status_code == 403
            assert "is a link" in _body(response)
    assert client.get(f"/calibration/eb/{eb.pk}/files/listobs.txt").status_code == 200
