"""Settings for the webhook benchmark's gunicorn: the app's own, plus one bare URL as the baseline."""

from qa2portal.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.webhook_urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
SECRET_KEY = "bench-only-secret-key-not-used-anywhere-else-0123456789"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
