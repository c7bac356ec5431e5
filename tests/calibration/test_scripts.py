"""Script versions: immutable, content-addressed, validated uploads; bad input changes nothing."""

import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from calibration import runs
from calibration.models import Run, ScriptVersion, script_storage_path
from tests.calibration.conftest import alma_steps, script_version

pytestmark = pytest.mark.django_db

SCRIPTS = Path(__file__).parent / "scripts"
GOOD = alma_steps("print('zero')", "print('one')", "print('two')").encode()


@pytest.fixture
def api(client, reducer):
    client.force_login(reducer.user)
    return client


def upload(api, eb, content: bytes, name: str):
    return api.post(
        "/api/script-versions/upload/",
        {"file": SimpleUploadedFile(name, content), "execution_block": eb.pk, "kind": "calibration"},
    )


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "scripts"
    return sorted(root.rglob("*.py")) if root.exists() else []


def test_upload_creates_immutable_versions_with_sha256(api, make_eb, settings):
    eb = make_eb()

    first = upload(api, eb, GOOD, "scriptForCalibration.py")
    second = upload(api, eb, GOOD.replace(b"'two'", b"'TWO'"), "edited.py")

    assert first.status_code == second.status_code == 201
    v1, v2 = (
        ScriptVersion.objects.get(pk=first.json()["id"]),
        ScriptVersion.objects.get(pk=second.json()["id"]),
    )
    assert (v1.number, v2.number) == (1, 2)
    assert v2.parent == v1
    assert v1.sha256 == hashlib.sha256(GOOD).hexdigest()
    assert v1.read_bytes() == GOOD, "version 1 is unchanged by version 2"
    assert script_storage_path(v1.sha256).name == f"{v1.sha256}.py", "stored under a server-chosen name"
    assert v1.step_numbers == [0, 1, 2]


@pytest.mark.parametrize(
    ("content", "name", "status", "message"),
    [
        (GOOD, "script.exe", 400, "only Python scripts (.py)"),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64, "script.py", 400, "binary content"),
        ("print('Tsys')\n".encode("utf-16"), "script.py", 400, "binary content"),
        (b"x = '\xe9t\xe9'\n", "latin1.py", 400, "not UTF-8"),
        (b"# " + b"x" * (1024 * 1024 + 10), "big.py", 413, "over the 1 MB limit"),
        (b"def (:\n", "broken.py", 400, "not valid Python"),
        (b"", "empty.py", 400, "empty"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    api, make_eb, settings, content, name, status, message
):
    eb = make_eb()

    response = upload(api, eb, content, name)

    assert response.status_code == status, response.content
    assert message in response.content.decode()
    assert not ScriptVersion.objects.exists()
    assert stored_files(settings) == []


def test_upload_from_a_windows_editor_or_python2_tabs_is_accepted(api, make_eb):
    eb = make_eb()
    with_bom = b"\xef\xbb\xbf" + GOOD
    # Python 2 reads the tab as 8 columns, like the 8 spaces above it; Python 3 raises TabError.
    with_tabs = GOOD.replace(b"  print('one')", b"  if True:\n        x = 1\n\tprint('one')")

    bom, tabs = upload(api, eb, with_bom, "bom.py"), upload(api, eb, with_tabs, "tabs.py")

    assert bom.status_code == tabs.status_code == 201, (bom.content, tabs.content)
    v_bom, v_tabs = (
        ScriptVersion.objects.get(pk=bom.json()["id"]),
        ScriptVersion.objects.get(pk=tabs.json()["id"]),
    )
    assert v_bom.read_bytes() == with_bom and v_tabs.read_bytes() == with_tabs, "stored as uploaded"
    assert v_bom.step_numbers == v_tabs.step_numbers == [0, 1, 2]
    assert "byte_order_mark" in [f["code"] for f in v_bom.parsed["findings"]]
    assert "tabs_expanded" in [f["code"] for f in v_tabs.parsed["findings"]]
    assert v_bom.parsed["blocking"] == v_tabs.parsed["blocking"] == []


def test_python2_upload_is_stored_flagged_and_converted_on_request(api, make_eb):
    eb = make_eb()
    text = (SCRIPTS / "cycle3_py2_scriptForCalibration.py.txt").read_bytes()

    created = upload(api, eb, text, "scriptForCalibration.py")
    assert created.status_code == 201
    assert created.json()["parsed"]["python2"] is True
    converted = api.post(f"/api/script-versions/{created.json()['id']}/convert/")

    assert converted.status_code == 201
    body = converted.json()
    assert body["source"] == "converted" and body["number"] == 2 and not body["parsed"]["python2"]
    diff = api.get(reverse("calibration-version-diff", args=[created.json()["id"]]), {"against": body["id"]})
    assert diff.status_code == 200
    assert b"print(&#x27;Step &#x27;, mystep, step_title[mystep])" in diff.content


def test_python2_version_is_never_run(api, make_eb, ngc5921_ms):
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, (SCRIPTS / "cycle3_py2_scriptForCalibration.py.txt").read_text())

    response = api.post("/api/runs/", {"script_version": version.pk}, content_type="application/json")

    assert response.status_code == 409
    assert "Python 2" in response.json()["detail"]
    assert not Run.objects.exists()


def test_run_refusals_change_nothing(api, make_eb, ngc5921_ms):
    no_data = make_eb()
    with_data = make_eb(ngc5921_ms)
    v_no_data = script_version(no_data, GOOD.decode())
    v_data = script_version(with_data, GOOD.decode())

    unknown = api.post(
        "/api/runs/", {"script_version": v_data.pk, "steps": [1, 7]}, content_type="application/json"
    )
    empty = api.post("/api/runs/", {"script_version": v_no_data.pk}, content_type="application/json")
    negative = api.post(
        "/api/runs/", {"script_version": v_data.pk, "steps": [-1]}, content_type="application/json"
    )

    assert unknown.status_code == 409 and "unknown step number(s) [7]" in unknown.json()["detail"]
    assert empty.status_code == 409 and "has no data on disk" in empty.json()["detail"]
    assert negative.status_code == 400
    assert not Run.objects.exists()
    with_data.mous.refresh_from_db()
    assert with_data.mous.state == "ASSIGNED", "a refused run does not move the MOUS"


def test_a_second_run_in_a_busy_folder_is_refused(
    api, make_eb, ngc5921_ms, django_capture_on_commit_callbacks
):
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, GOOD.decode())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = api.post("/api/runs/", {"script_version": version.pk}, content_type="application/json")
    second = api.post("/api/runs/", {"script_version": version.pk}, content_type="application/json")

    assert first.status_code == 201 and len(callbacks) == 1, "the task is sent only after commit"
    assert second.status_code == 409 and "wait for it or cancel it" in second.json()["detail"]


def test_a_tampered_script_is_refused_by_the_worker(
    make_eb, ngc5921_ms, reducer, django_capture_on_commit_callbacks
):
    eb = make_eb(ngc5921_ms)
    version = script_version(eb, GOOD.decode())
    with django_capture_on_commit_callbacks(execute=False):
        run = runs.run_create(version=version, steps=[], by=reducer.user)
    version.path.write_bytes(GOOD + b"import os; os.system('rm -rf ~')\n")

    runs.run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "changed on disk" in run.error


def test_someone_elses_reducer_cannot_upload_or_run(client, make_eb, ngc5921_ms):
    from tests.factories import PersonFactory

    eb = make_eb(ngc5921_ms)
    version = script_version(eb, GOOD.decode())
    other = PersonFactory()
    client.force_login(other.user)

    uploaded = upload(client, eb, GOOD, "x.py")
    ran = client.post("/api/runs/", {"script_version": version.pk}, content_type="application/json")
    page_run = client.post(
        reverse("calibration-eb-run", args=[eb.pk]), {"version": version.pk, "action": "all"}
    )

    assert uploaded.status_code == ran.status_code == page_run.status_code == 403
    assert ScriptVersion.objects.count() == 1 and not Run.objects.exists()


def test_download_is_an_attachment(api, make_eb):
    eb = make_eb()
    version = script_version(eb, GOOD.decode())

    response = api.get(f"/api/script-versions/{version.pk}/download/")

    assert response.status_code == 200
    assert (
        response["Content-Disposition"] == f'attachment; filename="{eb.ms_name}.scriptForCalibration.v1.py"'
    )
    assert response.content == GOOD


def test_diff_marks_the_changed_steps(api, make_eb):
    eb = make_eb()
    v1 = script_version(eb, GOOD.decode())
    v2 = script_version(eb, GOOD.decode().replace("print('one')", "print('one')  # CR: edited"))

    response = api.get(reverse("calibration-version-diff", args=[v1.pk]), {"against": v2.pk})

    assert response.status_code == 200
    assert response.context["changed_steps"] == [1]
    assert b"step 1: step 1" in response.content
