"""Error answers: JSON under /api/ whatever failed; our own 404 and 500 pages, also with DEBUG on."""

import json

import pytest
from django.test import Client

from assignments.auth import token_issue
from assignments.models import Project
from tests.factories import DrmFactory, UserFactory

pytestmark = pytest.mark.django_db

URLCONF = "tests.qa2portal.urls_with_errors"


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings) -> bool:
    """Every test runs twice: as in production and as in the embedded mode (DEBUG on)."""
    settings.DEBUG = request.param
    settings.ROOT_URLCONF = URLCONF
    return request.param


@pytest.fixture
def api(db) -> Client:
    drm = DrmFactory(user=UserFactory(username="errdrm"), initials="ED")
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {token_issue(drm.user)}")


def post_json(api: Client, path: str, body: bytes):
    return api.post(path, body, content_type="application/json")


def assert_json_error(answer, status: int, text: str = "") -> dict:
    assert answer.status_code == status, answer.content[:500]
    assert answer["Content-Type"] == "application/json", answer.content[:500]
    body = answer.json()
    assert text in body["detail"], body
    return body


def test_a_body_over_the_upload_limit_is_413_json(debug, api, settings):
    too_long = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 500_000)  # 2.5 MB with the default limit
    body = json.dumps({"code": "2019.1.00001.S", "title": too_long})

    answer = post_json(api, "/api/projects/", body.encode())

    assert_json_error(answer, 413, "larger than the 2,097,152 bytes")
    assert not Project.objects.exists()


def test_bad_json_is_400_json(debug, api):
    answer = post_json(api, "/api/projects/", b'{"code": "2019.1.00001.S",')

    assert_json_error(answer, 400, "JSON parse error")


def test_json_nested_too_deeply_is_400_json_and_changes_nothing(debug, api):
    answer = post_json(api, "/api/projects/", b"[" * 100_000 + b"]" * 100_000)

    assert_json_error(answer, 400, "nested too deeply")
    assert not Project.objects.exists()


def test_unknown_api_route_is_404_json(debug, api):
    assert_json_error(api.get("/api/no-such-thing/"), 404, "/api/no-such-thing/")
    assert_json_error(api.post("/api/mous/999999/transition/", {}), 404)


@pytest.mark.parametrize("path", ["/api/boom/", "/api/plain-boom/"])
def test_a_bug_in_an_api_view_is_500_json_and_logged(debug, api, path, caplog):
    body = assert_json_error(api.get(path), 500, "Internal server error")

    assert "RuntimeError" not in json.dumps(body), "no traceback for the client"
    logged = [r for r in caplog.records if r.name == "django.request" and r.levelname == "ERROR"]
    assert logged and logged[-1].exc_info and "a bug in" in str(logged[-1].exc_info[1])


def test_unknown_page_is_our_404_without_the_url_list(debug, client):
    answer = client.get("/no-such-page/")

    assert answer.status_code == 404
    text = answer.content.decode()
    assert 'id="not-found"' in text and "/no-such-page/" in text
    assert "URLconf" not in text and "whiteboard/" not in text and "tried" not in text


def test_missing_object_is_our_404_for_a_signed_in_user(debug, client):
    drm = DrmFactory(user=UserFactory(username="pagedrm"), initials="PD")
    client.force_login(drm.user)

    answer = client.get("/mous/987654/")

    assert answer.status_code == 404
    text = answer.content.decode()
    assert 'id="not-found"' in text and "Back to your home page" in text
    assert "pagedrm" in text, "the site's top bar, for the signed-in user"
    assert "URLconf" not in text and "mous/&lt;int:pk&gt;" not in text and "mous/<int:pk>" not in text


def test_append_slash_still_redirects(debug, client):
    drm = DrmFactory(user=UserFactory(username="slashdrm"), initials="SD")
    client.force_login(drm.user)

    answer = client.get("/whiteboard")

    assert answer.status_code == 301 and answer["Location"] == "/whiteboard/"


def test_a_bug_in_a_page_is_our_500_page_in_production(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = URLCONF
    answer = Client(raise_request_exception=False).get("/boom/")

    assert answer.status_code == 500
    text = answer.content.decode()
    assert 'id="server-error"' in text and "a bug in a page" not in text


def test_the_500_page_renders_without_any_context():
    from django.template import loader

    html = loader.get_template("500.html").render()

    assert "Something went wrong" in html and "{%" not in html
