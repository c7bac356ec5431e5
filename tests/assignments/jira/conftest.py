"""Fixtures for the JIRA tests: the loopback JIRA, JIRA settings, signed posting, people."""

import os
import socket

import pytest

from tests.assignments.jira.loopback import LoopbackJira, loopback_jira_start
from tests.assignments.jira.payloads import jira_user, signed
from tests.factories import DrmFactory, InvestigatorFactory, MousFactory, PersonFactory

SECRET = "whsec-test-7d1f0c0b8e4a"
TOKEN = "jira-api-token-for-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The Celery worker subprocess reads its settings from the environment when it starts, after
# collection: a fixed port chosen now lets the loopback JIRA and the worker agree on the URL.
JIRA_PORT = _free_port()
os.environ.update(
    {
        "JIRA_BASE_URL": f"http://127.0.0.1:{JIRA_PORT}",
        "JIRA_TOKEN": TOKEN,
        "JIRA_OUTBOX_BACKOFF_BASE": "1",
        "JIRA_OUTBOX_BACKOFF_MAX": "2",
        "JIRA_HTTP_TIMEOUT": "3",
    }
)


@pytest.fixture(scope="session")
def _loopback_server():
    jira, server = loopback_jira_start(port=JIRA_PORT, token=TOKEN)
    yield jira
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_jira(_loopback_server) -> LoopbackJira:
    _loopback_server.reset()
    yield _loopback_server
    _loopback_server.reset()


@pytest.fixture
def jira_on(settings, loopback_jira) -> LoopbackJira:
    """This process configured like the worker: webhook secret, loopback JIRA, fast backoff."""
    settings.JIRA_WEBHOOK_SECRET = SECRET
    settings.JIRA_BASE_URL = loopback_jira.url
    settings.JIRA_TOKEN = TOKEN
    settings.JIRA_OUTBOX_BACKOFF_BASE = 1
    settings.JIRA_OUTBOX_BACKOFF_MAX = 2
    settings.JIRA_HTTP_TIMEOUT = 3
    return loopback_jira


@pytest.fixture
def post_signed(client):
    """POST a payload to the webhook through Django's test client, signed unless told otherwise."""

    def post(payload, *, identifier: str | None = None, secret: str = SECRET, headers: dict | None = None):
        body, sent = signed(payload, secret=secret, identifier=identifier)
        sent.update(headers or {})
        extra = {k: v for k, v in sent.items() if k != "Content-Type"}
        return client.post("/api/hooks/jira/", data=body, content_type=sent["Content-Type"], headers=extra)

    return post


@pytest.fixture
def people(db):
    """A DRM, a reducer, and a MOUS on SCOPS-1234 whose PI also has a reducer account."""
    drm = DrmFactory(user__username="jdrm", user__email="drm@alma.example.org")
    reducer = PersonFactory(user__username="ared", user__email="ared@alma.example.org")
    pi_person = PersonFactory(user__username="pipi", user__email="pi@uni.example.org")
    mous = MousFactory(
        jira_key="SCOPS-1234",
        uid="uid://A001/X100/X10",
        project__code="2019.1.00100.S",
        sb_name="NGC253_a_06_TE",
    )
    InvestigatorFactory(project=mous.project, email="pi@uni.example.org", user=pi_person.user, name="P. I.")
    return {
        "drm": drm,
        "reducer": reducer,
        "pi": pi_person,
        "mous": mous,
        "drm_jira": jira_user("jdrm", email="drm@alma.example.org"),
        "reducer_jira": jira_user("ared", email="ared@alma.example.org"),
        "pi_jira": jira_user("pipi", email="pi@uni.example.org"),
        "stranger_jira": jira_user("someone", email="someone@elsewhere.example.org"),
    }
