"""X-Hub-Signature: sha256=<hex>, HMAC-SHA256 of the raw request bytes (JIRA's WebSub format)."""

import hashlib
import hmac


def signature_for(*, body: bytes, secret: str) -> str:
    """The header value JIRA sends for `body` (tests and the benchmark sign with it too)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(*, body: bytes, header: str | None, secret: str) -> bool:
    """True when `header` is a sha256 HMAC of `body` under `secret`; constant-time compare."""
    if not secret or not header:
        return False
    method, _, digest = header.partition("=")
    # Only sha256: accepting whatever method the sender names would allow a downgrade.
    if method.strip().lower() != "sha256" or not digest:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())
