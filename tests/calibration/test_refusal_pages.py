"""The one error map: domain errors carry their HTTP status; the pages answer them as before
(an error message and a redirect back), the API with {"detail": ...} and that status."""

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assignments.models import InvalidTransition, StaleVersion, TransitionForbidden
from assignments.services import ConflictOfInterest
from calibration import ingest, runs, script_generation, scripts, uploads
from calibration.models import Run, ScriptVersion
from reports.artifacts import ArtifactUnavailable
from reports.edits import EditFailed
from tests.calibration.conftest import alma_steps, script_version

pytestmark = pytest.mark.django_db

GOOD = alma_steps("print('zero')", "print('one')")


def test_each_domain_error_carries_the_status_the_api_answered_before():
    assert InvalidTransition("new", "done", frozenset()).status == 409
    assert StaleVersion(3, 2).status == 412
    assert ConflictOfInterest("co-I").status == 409
    assert TransitionForbidden("no").status == 403
    assert runs.RunRefused("busy").status == 409
    assert script_generation.GenerationFailed("unreadable").status == 409
    assert scripts.InvalidScript("not .py").status == 400
    assert scripts.ScriptTooLarge("big").status == 413
    assert ingest.IngestRefused("bad path").status == 400
    assert ingest.IngestConflict("running").status == 409
    assert uploads.UploadTooLarge("big").status == 413
    assert EditFailed("no such call").status == 400
    assert ArtifactUnavailable("gone", refused=False).status == 404
    assert ArtifactUnavailable("a link", refused=True).status == 403
    # What other code catches them as stays true.
    assert isinstance(runs.RunRefused("x"), ValueError)
    assert isinstance(ConflictOfInterest("x"), PermissionError)


def test_the_size_limit_is_written_from_the_setting(settings):
    assert scripts.size_text(1024 * 1024) == "1 MB"
    settings.SCRIPT_MAX_BYTES = 512 * 1024
    with pytest.raises(scripts.ScriptTooLarge, match=r"big\.py: 600,000 bytes is over the 512 KB limit"):
        scripts.check_script_size("big.py", 600_000)
    scripts.check_script_size("small.py", 512 * 1024)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_script_over_the_limit_is_refused_on_the_page_and_nothing_is_stored(client, reducer, make_eb):
    eb = make_eb()
    client.force_login(reducer.user)
    big = SimpleUploadedFile("big.py", b"# " + b"x" * (1024 * 1024 + 10))

    response = client.post(reverse("calibration-eb-upload", args=[eb.pk]), {"file": big})

    assert response.status_code == 302 and response["Location"] == reverse("calibration-eb", args=[eb.pk])
    assert _messages(response) == ["big.py: 1,048,588 bytes is over the 1 MB limit; nothing stored"]
    assert not ScriptVersion.objects.exists()


def test_a_bad_script_is_refused_on_the_page_with_the_reason(client, reducer, make_eb):
    eb = make_eb()
    client.force_login(reducer.user)

    response = client.post(
        reverse("calibration-eb-upload", args=[eb.pk]), {"file": SimpleUploadedFile("s.exe", b"x")}
    )

    assert response.status_code == 302
    assert _messages(response) == ["Upload refused: s.exe: only Python scripts (.py) are accepted"]


def test_a_refused_run_goes_back_to_the_version_on_the_eb_page(client, reducer, make_eb):
    eb = make_eb()
    version = script_version(eb, GOOD)
    client.force_login(reducer.user)

    response = client.post(reverse("calibration-eb-run", args=[eb.pk]), {"version": version.pk})

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('calibration-eb', args=[eb.pk])}?version={version.pk}"
    assert _messages(response) == ["Run refused: select at least one step (or use Run all)"]
    assert not Run.objects.exists()


def test_a_run_without_data_is_refused_by_the_api_with_409(client, reducer, make_eb):
    eb = make_eb()
    version = script_version(eb, GOOD)
    client.force_login(reducer.user)

    response = client.post("/api/runs/", {"script_version": version.pk}, content_type="application/json")

    assert response.status_code == 409
    assert set(response.json()) == {"detail"} and "has no data on disk yet" in response.json()["detail"]
    assert not Run.objects.exists()
