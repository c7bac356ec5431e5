"""Secrets at the door: API tokens stored hashed, and sign-in throttling.

API tokens
- The database holds only the sha256 of a token (`ApiToken.digest`). The token itself is
  shown once, in the answer of POST /api/token/; whoever reads the database (a backup, a
  script that escaped its sandbox) cannot sign in with what it finds there.
- A token is 40 random hex characters (the length DRF's tokens had), so a lookup by its
  digest cannot be guessed faster than the token itself: comparing hashes through the unique
  index leaks no usable timing (the attacker does not control the digest's prefix).
- Each POST /api/token/ issues a new token; a user keeps the newest API_TOKENS_PER_USER.

Sign-in throttling (every path that checks a password: /login/, /api/token/, the admin's and
the browsable API's sign-in all call `authenticate()`, which reaches `ThrottledModelBackend`)
- LOGIN_FAILURE_LIMIT wrong passwords for one user name from one address within
  LOGIN_FAILURE_WINDOW_SECONDS lock that pair for LOGIN_LOCKOUT_SECONDS: every attempt is
  refused, the right password too, without checking it. LOGIN_FAILURE_IP_LIMIT failures
  from one address (any user names) lock the address the same way (password spraying).
- A lock is per user name *and* address, so nobody can lock a colleague out from elsewhere.
- Counters live in a database table (`LoginFailure`), not in Django's cache: the embedded
  mode has no shared cache between gunicorn workers (the default cache is per process), and
  in production every gunicorn worker and container shares the one PostgreSQL. Rows are
  updated under a row lock, so parallel attempts cannot lose a count. The key is a sha256 of
  (user name, address): user names typed by strangers (sometimes a password) are not stored.
- The client address is REMOTE_ADDR. X-Forwarded-For is trusted only as far as
  TRUSTED_PROXY_COUNT says (behind a TLS proxy every client would otherwise share its address).
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

# --- models ----------------------------------------------------------------------------


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


class ApiToken(models.Model):
    """An API token, by its sha256 only (the token is shown once, when it is issued)."""

    digest = models.CharField(max_length=64, unique=True, help_text="sha256 (hex) of the token")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"API token of {self.user} ({self.digest[:8]}…)"


class LoginFailure(models.Model):
    """Failed sign-ins of one (user name, address) pair or one address, in the current window."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of the throttled pair or address")
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)
    last_failure_at = models.DateTimeField(default=timezone.now, db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "failed sign-in counter"

    def __str__(self) -> str:
        return f"{self.failures} failed sign-ins ({self.key[:8]}…)"


# --- tokens ----------------------------------------------------------------------------


def token_issue(user) -> str:
    """A new API token for `user` (returned once, stored hashed); the oldest beyond the cap go."""
    key = secrets.token_hex(20)
    with transaction.atomic():
        ApiToken.objects.create(user=user, digest=token_digest(key))
        mine = ApiToken.objects.filter(user=user)
        newest = mine.order_by("-created_at", "-pk").values_list("pk", flat=True)
        keep = list(newest[: settings.API_TOKENS_PER_USER])
        mine.exclude(pk__in=keep).delete()
    return key


class HashedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` (the header DRF's tokens used), checked against the digest."""

    keyword = "Token"
    # Writing last_used_at on every request would make every API read a write.
    LAST_USED_RESOLUTION = timedelta(minutes=5)

    def authenticate_credentials(self, key: str):
        token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > self.LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token


# --- throttling ------------------------------------------------------------------------


def client_address(request: HttpRequest | None) -> str:
    """REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the outermost one saw:
    each proxy appends the address it received from to X-Forwarded-For, so only the last
    TRUSTED_PROXY_COUNT entries are trusted (a client can write anything before them)."""
    if request is None:
        return ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        chain = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        chain = [part for part in chain if part]
        if len(chain) >= proxies:
            return chain[-proxies][:64]
    return request.META.get("REMOTE_ADDR") or ""


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    """(counter key, failure limit) pairs that one attempt counts against."""
    pair = token_digest(f"user\x00{username.casefold()}\x00{address}")
    return [
        (pair, settings.LOGIN_FAILURE_LIMIT),
        (token_digest(f"addr\x00{address}"), settings.LOGIN_FAILURE_IP_LIMIT),
    ]


def login_locked_for(username: str, address: str) -> int:
    """Seconds until this user name may try again from this address (0: not locked)."""
    now = timezone.now()
    keys = [key for key, _ in _keys(username, address)]
    until = (
        LoginFailure.objects.filter(key__in=keys, locked_until__gt=now)
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    return 0 if until is None else max(1, int((until - now).total_seconds() + 0.999))


def login_failed(username: str, address: str) -> None:
    """Count one wrong password; lock the pair (or the address) when it reaches its limit."""
    now = timezone.now()
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    with transaction.atomic():
        for key, limit in _keys(username, address):
            row, _ = LoginFailure.objects.select_for_update().get_or_create(
                key=key, defaults={"window_started_at": now, "last_failure_at": now}
            )
            if now - row.window_started_at > window and not (row.locked_until and row.locked_until > now):
                row.failures, row.window_started_at = 0, now
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= limit:
                row.locked_until = now + timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
            row.save()
        # Forget counters nobody has touched for a while (the table stays small).
        stale = now - max(window, timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)) * 2
        LoginFailure.objects.filter(last_failure_at__lt=stale).delete()


def login_succeeded(username: str, address: str) -> None:
    """The right password (while not locked) clears this pair's count, not the address's."""
    key, _ = _keys(username, address)[0]
    LoginFailure.objects.filter(key=key).delete()


def lockout_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return (
        f"Too many failed sign-ins for this user name from your address: try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}."
    )


class LoginLocked(PermissionDenied):
    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        super().__init__(lockout_message(seconds))


class ThrottledModelBackend(ModelBackend):
    """ModelBackend that refuses locked (user name, address) pairs and counts wrong passwords."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        username, address = str(username), client_address(request)
        seconds = login_locked_for(username, address)
        if seconds:
            # PermissionDenied stops authenticate() from trying any other backend.
            raise LoginLocked(seconds)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failed(username, address)
        else:
            login_succeeded(username, address)
        return user


class ThrottledAuthenticationForm(AuthenticationForm):
    """The sign-in form, saying plainly when the user name is locked (not 'wrong password')."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username:
            seconds = login_locked_for(username, client_address(self.request))
            if seconds:
                raise ValidationError(lockout_message(seconds), code="locked")
        return super().clean()
