"""API tokens stored hashed; sign-in throttling on /login/, /api/token/ and the other sign-ins."""

import hashlib

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from assignments.auth import ApiToken, LoginFailure, token_issue
from tests.factories import DrmFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def drm():
    person = DrmFactory(user=UserFactory(username="tokdrm"), initials="TD")
    person.user.set_password(PASSWORD)
    person.user.save()
    return person


def _token_for(username: str, password: str, address: str = "10.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/token/", {"username": username, "password": password}, format="json"
    )


def _login(username: str, password: str, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


# --- tokens ------------------------------------------------------------------------------
def test_a_token_is_shown_once_and_only_its_sha256_is_stored(drm):
    answer = _token_for("tokdrm", PASSWORD)

    assert answer.status_code == 200
    key = answer.json()["token"]
    assert len(key) == 40
    stored = ApiToken.objects.get(user=drm.user)
    assert stored.digest == hashlib.sha256(key.encode()).hexdigest()
    # Nowhere in the token table is the token itself.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")  # noqa: S608 - our own table name
        assert key not in repr(cursor.fetchall())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/mous/").status_code == 200


def test_the_stored_digest_does_not_sign_in_and_a_wrong_token_answers_401(drm):
    key = token_issue(drm.user)
    digest = ApiToken.objects.get(user=drm.user).digest
    api = APIClient()

    for sent in (digest, key[:-1] + ("0" if key[-1] != "0" else "1"), "x" * 500):
        api.credentials(HTTP_AUTHORIZATION=f"Token {sent}")
        answer = api.get("/api/mous/")
        assert answer.status_code == 401, sent
        assert answer.json() == {"detail": "Invalid token."}


def test_an_inactive_user_token_is_refused(drm):
    key = token_issue(drm.user)
    drm.user.is_active = False
    drm.user.save()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/mous/").status_code == 401


def test_each_request_issues_a_new_token_and_a_user_keeps_the_newest_ones(drm, settings):
    settings.API_TOKENS_PER_USER = 2
    first, second, third = (_token_for("tokdrm", PASSWORD).json()["token"] for _ in range(3))

    assert len({first, second, third}) == 3
    codes = {}
    for key in (first, second, third):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        codes[key] = api.get("/api/mous/").status_code
    assert [codes[first], codes[second], codes[third]] == [401, 200, 200]


def test_delete_revokes_the_token_it_was_sent_with(drm):
    key, other = token_issue(drm.user), token_issue(drm.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert api.delete("/api/token/").status_code == 204
    assert api.get("/api/mous/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {other}")
    assert api.get("/api/mous/").status_code == 200


def test_plain_text_tokens_of_drf_authtoken_are_hashed_by_the_migration_and_keep_working(drm):
    """The data step of migration 0006 on a database that still has DRF's authtoken table."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("assignments.migrations.0006_hashed_tokens_login_throttle_webhook_body")
    old_key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp with time zone, "
            "user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, now(), %s)",
            [old_key, drm.user.pk],
        )
    with connection.schema_editor() as editor:
        migration.hash_existing_tokens(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    assert ApiToken.objects.get(user=drm.user).digest == hashlib.sha256(old_key.encode()).hexdigest()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {old_key}")
    assert api.get("/api/mous/").status_code == 200


# --- throttling --------------------------------------------------------------------------
def test_thirty_wrong_passwords_on_the_token_endpoint_are_refused_and_then_even_the_right_one(drm, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    answers = [_token_for("tokdrm", f"guess-{n}").status_code for n in range(30)]

    assert answers[:5] == [400] * 5  # wrong password
    assert answers[5:] == [429] * 25  # locked: the password is not even checked
    right = _token_for("tokdrm", PASSWORD)
    assert right.status_code == 429
    assert "try again in 15 minutes" in right.json()["detail"]
    assert int(right["Retry-After"]) > 800
    assert not ApiToken.objects.exists()


def test_thirty_wrong_passwords_on_the_login_page_lock_it_with_a_clear_message(drm, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    for n in range(30):
        answer = _login("tokdrm", f"guess-{n}")
        assert answer.status_code == 200  # the form again, never a redirect into the site
        expected = "Too many failed sign-ins" if n >= 5 else "Wrong user name or password."
        assert expected in answer.content.decode(), n

    right = _login("tokdrm", PASSWORD)
    assert right.status_code == 200 and "_auth_user_id" not in right.client.session
    assert "Too many failed sign-ins for this user name from your address" in right.content.decode()


def test_the_lock_is_per_user_name_and_address_and_ends(drm, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for n in range(3):
        _login("tokdrm", f"guess-{n}", address="10.6.6.6")

    assert _login("tokdrm", PASSWORD, address="10.6.6.6").status_code == 200  # locked here
    assert _login("tokdrm", PASSWORD, address="10.0.0.2").status_code == 302  # not elsewhere
    assert _token_for("tokdrm", PASSWORD, address="10.6.6.6").status_code == 429  # same counter

    LoginFailure.objects.update(locked_until=None)  # the lockout time has passed
    assert _login("tokdrm", PASSWORD, address="10.6.6.6").status_code == 302
    # The right password cleared the pair's count.
    assert _login("tokdrm", "guess-again", address="10.6.6.6").status_code == 200
    assert _login("tokdrm", PASSWORD, address="10.6.6.6").status_code == 302


def test_one_address_trying_many_user_names_is_locked_too(drm, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_IP_LIMIT = 8
    for n in range(8):
        _token_for(f"nobody{n}", "guess", address="10.7.7.7")

    assert _token_for("tokdrm", PASSWORD, address="10.7.7.7").status_code == 429
    assert _token_for("tokdrm", PASSWORD, address="10.0.0.3").status_code == 200


def test_the_admin_and_browsable_api_sign_ins_are_throttled_by_the_same_backend(drm, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    drm.user.is_staff = True
    drm.user.save()
    client = Client(REMOTE_ADDR="10.8.8.8")
    for n in range(2):
        client.post("/admin/login/", {"username": "tokdrm", "password": f"guess-{n}"})

    admin = client.post("/admin/login/", {"username": "tokdrm", "password": PASSWORD})
    browsable = client.post("/api-auth/login/", {"username": "tokdrm", "password": PASSWORD})

    assert admin.status_code == 200 and browsable.status_code == 200  # forms again, not redirects
    assert "_auth_user_id" not in client.session


def test_failed_sign_ins_store_no_user_name(drm):
    _token_for("someone-typed-their-password-here", "x")
    rows = list(LoginFailure.objects.values_list("key", flat=True))
    assert len(rows) == 2 and all("someone" not in key for key in rows)


def test_an_admin_lists_tokens_without_the_token_and_revokes_or_unlocks_by_deleting(drm, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    key = token_issue(drm.user)
    for n in range(2):
        _token_for("tokdrm", f"guess-{n}")
    admin = Client()
    admin.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    listing = admin.get("/admin/assignments/apitoken/")
    assert listing.status_code == 200 and "tokdrm" in listing.content.decode()
    assert key not in listing.content.decode()
    assert admin.get("/admin/assignments/apitoken/add/").status_code == 403
    token = ApiToken.objects.get(user=drm.user)
    assert admin.post(f"/admin/assignments/apitoken/{token.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not ApiToken.objects.exists()

    assert _token_for("tokdrm", PASSWORD).status_code == 429
    assert admin.get("/admin/assignments/loginfailure/").status_code == 200
    counters = list(LoginFailure.objects.values_list("pk", flat=True))
    admin.post(
        "/admin/assignments/loginfailure/",
        {"action": "delete_selected", "_selected_action": counters, "post": "yes"},
    )
    assert _token_for("tokdrm", PASSWORD).status_code == 200


def test_behind_a_proxy_the_address_it_saw_is_throttled_not_the_proxy_nor_a_forged_one(drm, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    settings.TRUSTED_PROXY_COUNT = 1

    def via_proxy(password: str, client: str, forged: str = "") -> int:
        forwarded = f"{forged}, {client}" if forged else client
        answer = APIClient(REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR=forwarded).post(
            "/api/token/", {"username": "tokdrm", "password": password}, format="json"
        )
        return answer.status_code

    # The attacker forges a different first entry every time: the proxy's own entry counts.
    assert [via_proxy("guess", "203.0.113.7", forged=f"198.51.100.{n}") for n in range(3)] == [400, 400, 429]
    assert via_proxy(PASSWORD, "203.0.113.7") == 429
    assert via_proxy(PASSWORD, "203.0.113.8") == 200  # another client behind the same proxy
