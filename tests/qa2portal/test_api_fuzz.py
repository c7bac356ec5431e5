"""schemathesis over the OpenAPI schema (/api/schema/): every operation, a few generated requests
each, authenticated as a DRM (who may do the most). No answer may be a server error, and the
answers must match the schema: status code, content type, headers and body.

Bounded: MAX_EXAMPLES generated requests per operation (plus the schema's own examples), so
the whole file runs in a minute or two. Requests go through Django's WSGI handler in this
process, inside the test's transaction: on_commit never fires, so nothing is handed to a
worker (no CASA runs, no copies) and nothing stays in the database.
"""

import os
import secrets

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import positive_data_acceptance

from assignments.auth import ApiToken, token_digest
from assignments.models import Mous, MousState
from assignments.services import mous_assign
from tests.factories import (
    DrmFactory,
    ExecutionBlockFactory,
    InvestigatorFactory,
    MousFactory,
    PersonFactory,
    ProjectFactory,
    UserFactory,
)

# API_FUZZ_EXAMPLES=50 for a deeper run by hand; the suite keeps it small.
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "6"))


# Loaded when the module is collected (the schema view reads no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def one_transaction(db):
    # Django's WSGI handler closes the connection around each request when it is inside a
    # transaction (the test's); Django's test Client disconnects this handler too.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


# The DRM's API token: fixed for the module, so it is known when schemathesis prepares its
# requests; each test stores its digest for the DRM it creates (the database rolls back after).
TOKEN_KEY = secrets.token_hex(20)


@schema.auth(refresh_interval=None)
class DrmToken:
    """The DRM's token on every request; schemathesis also sends requests without it, or with
    a broken one, and expects 401/403 then."""

    def get(self, case, context) -> str:
        return TOKEN_KEY

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}


@pytest.fixture
def drm_signed_in(one_transaction) -> None:
    """A DRM with TOKEN_KEY, and rows for every list to show: MOUS (one assigned and moved,
    one blocked), EBs, assignments and audit rows."""
    drm = DrmFactory(user=UserFactory(username="fuzzdrm"), initials="FZ")
    ApiToken.objects.create(user=drm.user, digest=token_digest(TOKEN_KEY))
    reducer = PersonFactory(user=UserFactory(username="fuzzred"), initials="FR")
    project = ProjectFactory(code="2019.1.00777.S")
    InvestigatorFactory(project=project, name="Pat Investigator", role="pi")
    assigned, blocked = (MousFactory(project=project) for _ in range(2))
    for mous in (assigned, blocked):
        ExecutionBlockFactory(mous=mous)
    for mous in (assigned, blocked):
        mous_assign(mous=mous, reducer=reducer, by=drm.user)
    Mous.objects.get(pk=assigned.pk).transition(MousState.CALIBRATING, by=reducer.user)
    Mous.objects.get(pk=blocked.pk).transition(MousState.BLOCKED, by=drm.user, note="no data yet")


# DELETE /api/token/ would revoke the token the other requests sign in with.
@schema.exclude(path="/api/token/", method="DELETE").parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_operation(case, drm_signed_in):
    # Every check but one. positive_data_acceptance expects any schema-valid body to be
    # accepted, but valid input also has to name rows that exist (a project code, a reducer's
    # user name, an EB id) and pass rules a JSON schema cannot state (an ALMA project code is
    # checked by the model, a conflict of interest by the service); those answer 400 with the
    # reason, which is right.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
