"""qa2portal settings: one file, every knob an environment variable.

Defaults serve the embedded mode (`make run`): SQLite under var/, Celery's filesystem
transport under var/broker/, DATA_ROOT under var/data. Production (docker-compose) sets
DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and DEBUG=False.
"""

import importlib.util
import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImproperlyConfigured(f"The {name} package is not installed.")
    return Path(spec.origin).parent


# --- paths -----------------------------------------------------------------------------
VAR_DIR = Path(env_str("QA2_VAR_DIR", str(BASE_DIR / "var"))).resolve()
DATA_ROOT = Path(env_str("DATA_ROOT", str(VAR_DIR / "data"))).resolve()
# Where data analysts deliver a QA2-passed MOUS (the packager's tree), and where a QA2-failed
# MOUS folder goes.
DELIVERIES_ROOT = Path(env_str("DELIVERIES_ROOT", str(VAR_DIR / "deliveries"))).resolve()
QA2FAILS_ROOT = Path(env_str("QA2FAILS_ROOT", str(VAR_DIR / "qa2fails"))).resolve()
# Packaging reads lustre: at most this many bytes per second (0 = no limit).
DELIVERY_MAX_BYTES_PER_SECOND = env_int("DELIVERY_MAX_BYTES_PER_SECOND", 0)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media"))).resolve()
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static"))).resolve()
BENCH_DIR = VAR_DIR / "bench"

# --- security --------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DEBUG=False requires SECRET_KEY: set SECRET_KEY to a long random string "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = "insecure-embedded-demo-key-do-not-use-in-production"  # noqa: S105 - DEBUG only
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Production is served over HTTPS (a TLS proxy in front of gunicorn): redirect plain HTTP and
# send HSTS (one year) unless told otherwise. The embedded demo (DEBUG on) stays on plain
# http://127.0.0.1. `manage.py check --deploy --fail-level WARNING` passes with these defaults
# (tests/qa2portal/test_deploy_check.py).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
# Behind a TLS-terminating proxy (docker-compose), trust its scheme header only when told to.
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# --- apps ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "qa2portal",
    "assignments",
    "calibration",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # JSON errors under /api/, our own 404 page (never DEBUG's URLconf listing): qa2portal/errors.py
    "qa2portal.errors.ErrorAnswersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "qa2portal.urls"
WSGI_APPLICATION = "qa2portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database --------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'qa2portal.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except Exception as exc:  # dj_database_url raises bare ValueErrors/KeyErrors
    raise ImproperlyConfigured(f"DATABASE_URL={DATABASE_URL!r} cannot be parsed: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast with a clear message instead of hanging when the server is unreachable.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded web server (several threads) and the worker write to one file:
    # - WAL lets readers go on while one writer writes (the default rollback journal blocks them);
    #   synchronous=NORMAL is durable in WAL mode except for the last commits on a power loss.
    # - IMMEDIATE takes the write lock when a transaction begins. A DEFERRED transaction that
    #   read first and writes later cannot wait for the lock: SQLite answers "database is
    #   locked" at once, without calling the busy handler (11 of 40 parallel writes did).
    # - timeout is the busy timeout: how long a writer waits for the lock before failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30),
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every password check goes through the throttled backend (assignments/auth.py): /login/,
# /api/token/, the admin's and the browsable API's sign-in.
AUTHENTICATION_BACKENDS = ["assignments.auth.ThrottledModelBackend"]
# Wrong passwords per (user name, address) within the window before that pair is locked, and
# per address (any user names); counted in the database, so shared by every gunicorn worker.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_IP_LIMIT = env_int("LOGIN_FAILURE_IP_LIMIT", 50)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
# How many reverse proxies in front of gunicorn append to X-Forwarded-For (0: use REMOTE_ADDR).
# Set it behind a proxy, or every sign-in counts against the proxy's address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# API tokens are stored as sha256 only; each POST /api/token/ issues one, the oldest beyond this go.
API_TOKENS_PER_USER = env_int("API_TOKENS_PER_USER", 10)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- static / uploads ------------------------------------------------------------------
STATIC_URL = "static/"
# plotly.js is served from the installed plotly package, so it always matches plotly.py
# (plotly.py >= 6 sends base64 arrays that an older plotly.js draws as empty plots).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", package_dir("plotly") / "package_data"),
]
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "assignments.auth.HashedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Domain errors carry their HTTP status: one place answers them for every viewset.
    "EXCEPTION_HANDLER": "qa2portal.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "qa2portal API",
    "DESCRIPTION": "Manual calibration and QA2 of ALMA data: MOUS, EBs, runs, diagnostics.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One schema enum for the MOUS states (state, blocked_from, old/new_state, transition `to`).
    "ENUM_NAME_OVERRIDES": {"MousStateEnum": "assignments.models.MousState"},
    # The error answers every operation can give (400/401/403/404/...): assignments/api/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "assignments.api.schema.add_error_responses",
    ],
}

# --- Celery ----------------------------------------------------------------------------
# Embedded default: the filesystem transport, so `make run` needs no Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
BROKER_DIR = VAR_DIR / "broker"
CASA_STEP_WALLCLOCK_LIMIT = env_int("CASA_STEP_WALLCLOCK_LIMIT", 6 * 3600)
# A whole run (all its steps) is one Celery task: its own limit, enforced by the run engine;
# Celery's limits and the visibility timeout derive from it, so Celery never cuts a run short.
CASA_RUN_WALLCLOCK_LIMIT = env_int("CASA_RUN_WALLCLOCK_LIMIT", 48 * 3600)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", CASA_RUN_WALLCLOCK_LIMIT + 600)
# Keyword options of the kombu transport; their names and value types depend on the transport.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any]
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # kombu polls the folders (default every 1 s): 0.1 s lets a worker pick up a task and
        # answer the health page's ping in a fraction of a second, for a few listdir() calls.
        "polling_interval": 0.1,
    }
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", f"file://{BROKER_DIR / 'results'}")
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Must exceed the longest CASA step, or Redis redelivers a step that is still running.
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # kombu sweeps unacked messages every interval x throttle; 1 makes it every 10 s.
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 3,
    }
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
# Redeliver when a worker child dies; the run engine caps attempts itself (Celery has no cap).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = CASA_RUN_WALLCLOCK_LIMIT + 300  # backstop: the engine enforces the limits
CELERY_TASK_SOFT_TIME_LIMIT = CASA_RUN_WALLCLOCK_LIMIT + 120
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 30
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CASA_QUEUE = env_str("CASA_QUEUE", "casa")
# Only the tasks that run CASA take a casa slot; the reapers and sweeps stay on `default`, so
# they still run when every casa slot is busy (or stuck).
CASA_TASKS = ("run_execute", "script_generate", "ingest_execute")
CELERY_TASK_ROUTES = {
    **{f"calibration.tasks.{name}": {"queue": CASA_QUEUE} for name in CASA_TASKS},
    "reports.tasks.qa2_report": {"queue": CASA_QUEUE},
    "reports.tasks.deliver": {"queue": CASA_QUEUE},
    "calibration.tasks.*": {"queue": CELERY_TASK_DEFAULT_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "reap-stale-runs": {"task": "calibration.tasks.reap_stale_runs", "schedule": 30.0},
    "reap-stale-generations": {"task": "calibration.tasks.reap_stale_generations", "schedule": 60.0},
    "reap-stale-ingests": {"task": "calibration.tasks.reap_stale_ingests", "schedule": 60.0},
    "reap-stale-deliveries": {"task": "reports.tasks.reap_stale_deliveries", "schedule": 60.0},
    "reap-stale-calibrated-copies": {
        "task": "calibration.tasks.reap_stale_calibrated_copies",
        "schedule": 60.0,
    },
}
WORKER_QUEUES = env_list("WORKER_QUEUES", "default,casa")  # what `run_embedded` consumes

# --- CASA ------------------------------------------------------------------------------
# Every CASA subprocess gets this site config (offline data, no auto-update, no stray log).
CASA_SITECONFIG = BASE_DIR / "calibration" / "casasiteconfig.py"
# CASA reads ~/.casa/config.py on top of the site config: give it an empty home of its own.
CASA_HOME = Path(env_str("CASA_HOME", str(VAR_DIR / "casa-home"))).resolve()
CASA_PYTHON = env_str("CASA_PYTHON", "")  # empty: the interpreter running Django
CASA_CHECK_CACHE = VAR_DIR / "casa_check.json"
# What the in-CASA runner calls after each step ("module:function"): the diagnostics extraction
# of reports, named here so that calibration does not import the layer above it.
CASA_AFTER_STEP_HOOK = env_str("CASA_AFTER_STEP_HOOK", "reports.incasa.extract:after_step")
CASA_SANDBOX_STATE = VAR_DIR / "sandbox.json"  # written by each worker at start, read by /health/
# What one CASA process may use (calibration/limits.py); 0 = no limit. Sized for real ALMA
# data on a reduction node: tclean on a big cube wants tens of GB; an MS can be 100s of GB.
CASA_LIMIT_ADDRESS_SPACE_GB = env_int("CASA_LIMIT_ADDRESS_SPACE_GB", 64)
CASA_LIMIT_PROCESSES = env_int("CASA_LIMIT_PROCESSES", 512)  # threads count too
CASA_LIMIT_CPU_SECONDS = env_int("CASA_LIMIT_CPU_SECONDS", 48 * 3600)
CASA_LIMIT_FILE_SIZE_GB = env_int("CASA_LIMIT_FILE_SIZE_GB", 1024)
CASA_LIMIT_OPEN_FILES = env_int("CASA_LIMIT_OPEN_FILES", 8192)
# The uid CASA runs as inside its sandbox (a user namespace; no capabilities).
CASA_SANDBOX_UID = env_int("CASA_SANDBOX_UID", 65534)
# auto: bubblewrap when installed (no network, read-only outside the run folder); bwrap: required; none.
CASA_SANDBOX = env_str("CASA_SANDBOX", "auto")
if CASA_SANDBOX not in {"auto", "bwrap", "none"}:
    raise ImproperlyConfigured(f"CASA_SANDBOX={CASA_SANDBOX!r}: use auto, bwrap or none")
RUN_HEARTBEAT_SECONDS = env_int("RUN_HEARTBEAT_SECONDS", 10)
# A RUNNING run whose heartbeat is older than this is failed as "worker lost" by the reaper.
RUN_STALE_AFTER_SECONDS = env_int("RUN_STALE_AFTER_SECONDS", 60)
SCRIPT_MAX_BYTES = 1024 * 1024

# --- data ingest -----------------------------------------------------------------------
# Where staging puts raw data (ASDMs, MSs): an EB's data is ingested only from below one of
# these (colon-separated absolute paths; the roots themselves are resolved, and below them the
# worker walks and copies by fds with O_NOFOLLOW: no link is ever followed).
INGEST_ROOTS = [
    Path(p).resolve() for p in env_str("INGEST_ROOTS", str(VAR_DIR / "ingest")).split(":") if p.strip()
]
# Uploaded tar/tgz files are streamed here (on the data disk that the workers share), never
# held in memory; the worker extracts them and removes the file.
# Empty: DATA_ROOT/.ingest-uploads.
INGEST_UPLOAD_DIR = env_str("INGEST_UPLOAD_DIR", "")
INGEST_UPLOAD_MAX_BYTES = env_int("INGEST_UPLOAD_MAX_BYTES", 50 * 1024**3)
# An ingest in COPYING/CHECKING without progress for this long has lost its worker; one still
# QUEUED this long after it was asked for, with no worker having claimed it, was lost by the queue.
INGEST_STALE_AFTER_SECONDS = env_int("INGEST_STALE_AFTER_SECONDS", 300)
# What one archive may extract to (a tgz bomb, millions of empty files): bytes and members.
INGEST_EXTRACT_MAX_BYTES = env_int("INGEST_EXTRACT_MAX_BYTES", 200 * 1024**3)
INGEST_EXTRACT_MAX_MEMBERS = env_int("INGEST_EXTRACT_MAX_MEMBERS", 200_000)
# An extraction or a copy must leave at least this much free on the data disk.
INGEST_FREE_SPACE_MARGIN_BYTES = env_int("INGEST_FREE_SPACE_MARGIN_BYTES", 2 * 1024**3)

# --- JIRA (unset = feature off) --------------------------------------------------------
JIRA_WEBHOOK_SECRET = env_str("JIRA_WEBHOOK_SECRET", "")
JIRA_BASE_URL = env_str("JIRA_BASE_URL", "")
JIRA_TOKEN = env_str("JIRA_TOKEN", "")
# Deliveries larger than this answer 413 before the signature is even computed.
JIRA_WEBHOOK_MAX_BYTES = env_int("JIRA_WEBHOOK_MAX_BYTES", 512 * 1024)
# Which tickets are data-reduction tickets (JIRA project keys; issue type names, empty = any).
JIRA_PROJECT_KEYS = env_list("JIRA_PROJECT_KEYS", "SCOPS")
JIRA_ISSUE_TYPES = env_list("JIRA_ISSUE_TYPES", "")
# Custom fields differ per JIRA site: the field id (e.g. customfield_10401) holding each MOUS
# attribute. Empty = read it from the summary/description (project code, uid://..., "SB: name").
JIRA_FIELD_MAP = {
    "project_code": env_str("JIRA_FIELD_PROJECT_CODE", ""),
    "mous_uid": env_str("JIRA_FIELD_MOUS_UID", ""),
    "sb_name": env_str("JIRA_FIELD_SB_NAME", ""),
    "eb_uids": env_str("JIRA_FIELD_EB_UIDS", ""),
    "band": env_str("JIRA_FIELD_BAND", ""),
    "array": env_str("JIRA_FIELD_ARRAY", ""),
}
# JIRA workflow status name -> MOUS state ("JIRA name=STATE,..."); unmapped statuses are ignored.
JIRA_STATUS_MAP = dict(
    item.split("=", 1)
    for item in env_list(
        "JIRA_STATUS_MAP",
        "In Progress=CALIBRATING,Imaging=IMAGING,Ready for Review=READY_FOR_REVIEW,"
        "In Review=REVIEWING,QA2 Pass=QA2_PASS,QA2 Semipass=QA2_SEMIPASS,QA2 Fail=QA2_FAIL,"
        "Delivering=DELIVERING,Delivered=DELIVERED,Blocked=BLOCKED",
    )
)
JIRA_COMMAND_PREFIX = env_str("JIRA_COMMAND_PREFIX", "qa2portal:")
JIRA_HTTP_TIMEOUT = env_int("JIRA_HTTP_TIMEOUT", 10)
# Outbox retry backoff: base * 2**attempt seconds, capped (the sweep keeps trying after that).
JIRA_OUTBOX_BACKOFF_BASE = env_int("JIRA_OUTBOX_BACKOFF_BASE", 30)
JIRA_OUTBOX_BACKOFF_MAX = env_int("JIRA_OUTBOX_BACKOFF_MAX", 3600)
# Safety net for the outbox and for deliveries whose processing task was lost (needs celery beat).
CELERY_BEAT_SCHEDULE["jira-sweep"] = {
    "task": "assignments.tasks.jira_sweep",
    "schedule": env_int("JIRA_SWEEP_SECONDS", 60),
}

# --- logging ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
