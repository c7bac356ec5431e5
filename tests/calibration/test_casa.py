import json

import pytest
from django.core.management import CommandError, call_command

from calibration import casa

pytestmark = pytest.mark.casa
PROBE = "tests.calibration.casa_probe"  # what each test runs in CASA (by argument)


def test_casa_check_command_reports_versions_and_data_path(settings, tmp_path, capsys):
    settings.CASA_CHECK_CACHE = tmp_path / "casa_check.json"
    call_command("casa_check")
    out = capsys.readouterr().out
    assert "casatools 6.7.0" in out
    assert "casatasks 6.7.0.31" in out
    assert "casadata/__data__" in out
    cached = json.loads(settings.CASA_CHECK_CACHE.read_text())
    assert cached["casatasks"] == "6.7.0.31"
    assert cached["total_seconds"] > 0


def test_casa_check_fails_clearly_when_casa_is_missing(settings, tmp_path):
    settings.CASA_CHECK_CACHE = tmp_path / "casa_check.json"
    settings.CASA_PYTHON = "/nonexistent/python3"
    with pytest.raises(CommandError, match="cannot start the CASA interpreter"):
        call_command("casa_check")
    assert not settings.CASA_CHECK_CACHE.exists()


def test_casa_check_fails_clearly_when_casa_is_broken(settings, tmp_path):
    # An interpreter without casatools: a Python that cannot import it.
    settings.CASA_CHECK_CACHE = tmp_path / "casa_check.json"
    settings.CASA_PYTHON = "/usr/bin/python3"
    with pytest.raises(CommandError, match="CASA did not start"):
        call_command("casa_check")


def test_casa_subprocess_gets_a_minimal_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "must-not-leak")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:pw@host/db")
    result = casa.run_casa(PROBE, cwd=tmp_path, timeout=60, args=["environ"])
    env = json.loads(result.stdout)
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["CASASITECONFIG"].endswith("calibration/casasiteconfig.py")


def test_timeout_kills_the_process_group(tmp_path):
    result = casa.run_casa(PROBE, cwd=tmp_path, timeout=1.5, args=["sleep-with-child"])
    assert result.timed_out
    assert result.signal is not None
    assert not result.ok


def test_importing_casa_leaves_no_log_in_cwd(tmp_path):
    result = casa.run_casa(PROBE, cwd=tmp_path, timeout=120, args=["import-casa"])
    assert result.ok, result.stderr
    assert list(tmp_path.glob("casa-*.log")) == []
