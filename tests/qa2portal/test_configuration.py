"""Bad configuration gives one clear sentence, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # The test process allows async-unsafe ORM calls for Playwright; production never does.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    full_env = {**inherited, "DJANGO_SETTINGS_MODULE": "qa2portal.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_debug_off_without_secret_key_is_refused():
    result = run_manage("check", DEBUG="False", SECRET_KEY="")
    assert result.returncode != 0
    assert "DEBUG=False requires SECRET_KEY" in result.stderr


def test_debug_must_be_a_boolean():
    result = run_manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_unreachable_database_is_named(tmp_path):
    result = run_manage(
        "check", "--database", "default", DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere"
    )
    assert result.returncode != 0
    assert "database 'default' is unreachable" in result.stderr
    assert "DATABASE_URL=postgres://postgres@127.0.0.1:1/nowhere" in result.stderr


def test_production_settings_pass_the_deploy_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="False",
        SECRET_KEY="x" * 60 + "-a-long-random-production-key",
        ALLOWED_HOSTS="qa2.example.org",
        SECURE_SSL_REDIRECT="True",
        SECURE_HSTS_SECONDS="31536000",
    )
    assert result.returncode == 0, result.stderr
