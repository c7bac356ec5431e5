"""No Docker engine runs here: check the compose file's shape, and `docker compose config` if it can."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_services_and_shared_volume(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    web, worker = services["web"], services["worker"]
    assert web["volumes"] == worker["volumes"] == ["qa2-data:/data"], "web and worker share one data path"
    assert web["environment"]["DATA_ROOT"] == worker["environment"]["DATA_ROOT"]
    assert "qa2-data" in compose["volumes"]


def test_production_environment(compose):
    env = compose["services"]["web"]["environment"]
    assert env["DEBUG"] == "False"
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["CELERY_BROKER_URL"].startswith("redis://")
    assert "SECRET_KEY" in env


def test_redis_is_durable_and_never_evicts(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_commands_and_healthchecks(compose):
    services = compose["services"]
    assert "gunicorn qa2portal.wsgi" in services["web"]["command"]
    assert "migrate" in services["web"]["command"]
    worker = services["worker"]
    assert "celery -A qa2portal worker" in worker["command"]
    assert "--concurrency $${WORKER_CONCURRENCY}" in worker["command"]
    assert worker["init"] is True
    # The sandbox is on, and required: what the container lifts for it is named, nothing added.
    assert worker["environment"]["CASA_SANDBOX"] == "bwrap"
    assert worker["cap_drop"] == ["ALL"] and "cap_add" not in worker
    assert "no-new-privileges:true" in worker["security_opt"] and worker["pids_limit"] > 0
    assert services["beat"]["command"][:4] == ["celery", "-A", "qa2portal", "beat"]
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_dockerfile_installs_casa_from_requirements():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    requirements = (REPO / "requirements.txt").read_text()
    for pin in ("casatools==6.7.0.31", "casatasks==6.7.0.31", "casadata==2025.9.22", "six=="):
        assert pin in requirements
