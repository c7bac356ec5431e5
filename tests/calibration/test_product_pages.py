"""EB pages as a reducer reads them, on the real worker and real CASA: text products in the
browser, plot and file links that keep working after a re-run, and a generation error that
clears once something later succeeds."""

import time

import pytest

from calibration import runs, script_generation
from calibration.models import Run, ScriptGeneration
from tests.calibration.conftest import alma_steps, script_version
from tests.calibration.test_runs import wait_terminal

pytestmark = [pytest.mark.worker, pytest.mark.casa, pytest.mark.django_db(transaction=True)]

# A 1x1 PNG, written by the script the way plotms/plotbandpass write theirs.
PNG_HEX = (
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a5ddb0b90000000049454e44ae426082"
)
SCRIPT = alma_steps(
    f"""
open('obs.listobs', 'w').write('listobs of run 0 <script>alert(1)</script>\\n')
open('plot.png', 'wb').write(bytes.fromhex('{PNG_HEX}'))
open('gone.txt', 'w').write('made by the first run\\n')
""",
    """
if os.path.exists('cal.fluxscale'):
    os.system('rm -rf gone.txt')
open('runs.txt', 'a').write('x')
open('cal.fluxscale', 'w').write('fluxscale after ' + str(len(open('runs.txt').read())) + ' run(s)\\n')
""",
)


def test_text_products_read_in_the_browser_and_links_survive_a_rerun(
    celery_worker_process, make_eb, ngc5921_ms, reducer, client
):
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, SCRIPT)
    first = wait_terminal(runs.run_create(version=version, steps=[], by=reducer.user))
    assert first.status == Run.Status.SUCCEEDED, first.error
    client.force_login(reducer.user)
    base = f"/calibration/eb/{eb.pk}/files/"

    page = client.get(f"/calibration/eb/{eb.pk}/products/").content.decode()
    for relpath in ("obs.listobs", "cal.fluxscale", "gone.txt", first.casa_log_name):
        assert f'<a href="{base}{relpath}" class="view">view</a>' in page
        assert f'<a href="{base}{relpath}?download=1" class="download">download</a>' in page
    # Plots: a grid of useful size, each opening the full-size file.
    assert f'<a href="{base}plot.png" target="_blank" rel="noopener"><img src="{base}plot.png"' in page

    text = client.get(f"{base}obs.listobs")
    assert text.status_code == 200
    assert text["Content-Type"] == "text/plain; charset=utf-8"
    assert text["X-Content-Type-Options"] == "nosniff"
    assert text["Content-Disposition"].startswith("inline")
    assert "sandbox" in text["Content-Security-Policy"]
    assert b"".join(text.streaming_content).startswith(b"listobs of run 0 <script>")
    download = client.get(f"{base}obs.listobs?download=1")
    assert download["Content-Disposition"] == 'attachment; filename="obs.listobs"'
    assert client.get(f"{base}plot.png")["Content-Type"] == "image/png"
    first_fluxscale = first.products.get(relpath="cal.fluxscale")

    # Re-run the second step: it rewrites cal.fluxscale and removes gone.txt.
    second = wait_terminal(runs.run_rerun(run=first, from_step=1, by=reducer.user))
    assert second.status == Run.Status.SUCCEEDED, second.error

    page = client.get(f"/calibration/eb/{eb.pk}/products/").content.decode()
    fluxscale = client.get(f"{base}cal.fluxscale")  # the same link as before the re-run
    assert b"".join(fluxscale.streaming_content) == b"fluxscale after 2 run(s)\n"
    assert fluxscale["Cache-Control"] == "no-cache"
    assert client.get(f"{base}obs.listobs").status_code == 200  # made by run 1, untouched
    old_row = client.get(f"/calibration/products/{first_fluxscale.pk}/file/")  # the API's link
    assert b"".join(old_row.streaming_content) == b"fluxscale after 2 run(s)\n"
    # What the re-run removed is listed as such, not as a link that answers 404.
    assert f'href="{base}gone.txt"' not in page
    assert "removed by a later run" in page
    gone = client.get(f"{base}gone.txt")
    assert gone.status_code == 404
    assert client.get(f"{base}../../../../etc/passwd").status_code == 404
    assert client.get(f"{base}{eb.ms_name}").status_code == 404  # tables are not served


def test_a_failed_generation_clears_once_something_later_succeeds(
    celery_worker_process, make_eb, reducer, client, tmp_path
):
    broken = tmp_path / "broken.ms"  # present, but no measurement set: real CASA refuses it
    broken.mkdir()
    (broken / "table.dat").write_bytes(b"not a casacore table")
    eb = make_eb(broken)
    _wait_generation(script_generation.script_generate_request(eb=eb, by=reducer.user))
    client.force_login(reducer.user)
    url = f"/calibration/eb/{eb.pk}/"

    assert 'class="error">\n        Generation failed' in client.get(url).content.decode()

    upload = client.post(
        f"{url}upload/",
        {"file": _file("scriptForCalibration.py", alma_steps("print('hand-made')")), "note": "by hand"},
    )
    assert upload.status_code == 302
    page = client.get(url).content.decode()
    assert "Generation failed" not in page
    assert (
        "hand-made"
        in client.get(f"/calibration/versions/{eb.scripts.get().versions.get().pk}/").content.decode()
    )

    # Generating again after that: the newest generation's own failure is shown again.
    assert client.post(f"{url}generate/").status_code == 302
    _wait_generation(eb.generations.first())
    assert 'class="error">\n        Generation failed' in client.get(url).content.decode()


def _wait_generation(request: ScriptGeneration) -> None:
    deadline = time.monotonic() + 120
    while ScriptGeneration.objects.get(pk=request.pk).status not in ("DONE", "FAILED"):
        assert time.monotonic() < deadline, "generation did not finish"
        time.sleep(0.5)
    request.refresh_from_db()
    assert request.status == "FAILED", "the broken data must fail"


def _file(name: str, text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode(), content_type="text/x-python")
