import pytest

from qa2portal.celery import ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_task_round_trip_through_redis_and_the_real_worker(celery_worker_process, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    result = ping.delay("through-redis")
    assert result.get(timeout=30) == "through-redis"
    # The reply came from the worker subprocess, not from an eager call in this process.
    assert result.successful()
    assert celery_worker_process.proc.poll() is None
    assert "qa2portal.ping" in celery_worker_process.log.read_text()
