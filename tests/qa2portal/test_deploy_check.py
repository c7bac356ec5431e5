"""`manage.py check --deploy` is clean with the production environment docker-compose sets,
and the embedded demo (DEBUG on) still answers plain http://127.0.0.1."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

REPO = Path(__file__).resolve().parents[2]


def test_deploy_check_passes_with_production_settings(tmp_path):
    # Only what docker-compose.yml sets; everything else is the settings' production default.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DJANGO_ALLOW"))
    }
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "qa2portal.settings",
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "qa2.example.org",
        "QA2_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_the_embedded_demo_is_served_over_plain_http(settings):
    # The suite runs with the embedded defaults (DEBUG on in the environment; Django's test
    # runner switches DEBUG itself off afterwards): no redirect to HTTPS, no HSTS.
    assert (settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS) == (False, 0)
    answer = Client().get("/login/")
    assert answer.status_code == 200
    assert "Strict-Transport-Security" not in answer.headers
