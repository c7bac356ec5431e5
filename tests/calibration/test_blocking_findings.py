"""An error-level parse finding blocks running that version until the reducer fixes the script
or explicitly confirms it should run as it is."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from calibration.models import Run
from tests.calibration.conftest import alma_steps, script_version

pytestmark = pytest.mark.django_db

# Step 1's header is commented out but its block is live: it runs as part of step 0.
HEADER_COMMENTED = alma_steps("print('zero')", "print('one')").replace(
    "mystep = 1\n", "# mystep = 1   # skip this one\n"
)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_version_with_an_error_finding_does_not_run_until_confirmed(client, reducer, make_eb):
    eb = make_eb()
    version = script_version(eb, HEADER_COMMENTED)
    assert [f["code"] for f in version.blocking_findings] == ["commented_header_live_body"]
    assert version.blocked
    client.force_login(reducer.user)

    refused = client.post(
        reverse("calibration-eb-run", args=[eb.pk]), {"version": version.pk, "action": "all"}
    )
    [message] = _messages(refused)
    assert "1 error-level finding(s)" in message and "confirm on the version page" in message
    api = client.post("/api/runs/", {"script_version": version.pk}, content_type="application/json")
    assert api.status_code == 409 and "error-level finding" in api.json()["detail"]
    page = client.get(reverse("calibration-version", args=[version.pk]))
    assert b'id="blocked"' in page.content and b'id="confirm-blocking"' in page.content

    client.post(reverse("calibration-version-confirm", args=[version.pk]))
    version.refresh_from_db()
    assert not version.blocked and version.blocking_confirmed_by == reducer.user
    # Past the parse gate, the next refusal is the EB's missing data (nothing is queued here).
    after = client.post("/api/runs/", {"script_version": version.pk}, content_type="application/json")
    assert after.status_code == 409 and "has no data on disk yet" in after.json()["detail"]
    assert b'id="confirmed"' in client.get(reverse("calibration-version", args=[version.pk])).content
    assert not Run.objects.exists()


def test_a_clean_version_has_nothing_to_confirm(client, reducer, make_eb):
    eb = make_eb()
    clean = script_version(eb, alma_steps("print('zero')"))
    client.force_login(reducer.user)
    response = client.post(reverse("calibration-version-confirm", args=[clean.pk]))
    assert "has no error-level findings to confirm" in _messages(response)[0]
    clean.refresh_from_db()
    assert clean.blocking_confirmed_at is None
