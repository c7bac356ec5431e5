"""The only code that talks to JIRA's REST API (stdlib HTTP: three calls do not need a client library)."""

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings

# JIRA's own retry policy for webhooks; the same statuses are worth retrying on its REST API.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))


class JiraError(Exception):
    """A call to JIRA failed; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status, self.retryable = status, retryable


@dataclass(frozen=True)
class JiraComment:
    id: str
    body: str


def _request(
    method: str,
    path: str,
    payload: dict | None = None,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
) -> dict | list:
    base = settings.JIRA_BASE_URL.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise JiraError(f"JIRA_BASE_URL {base!r} is not an http(s) URL", status=None, retryable=False)
    data = json.dumps(payload).encode() if payload is not None else body
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        base + path,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {settings.JIRA_TOKEN}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )
    try:
        # JIRA_BASE_URL comes from the settings, and its scheme is checked above (http/https only).
        with urllib.request.urlopen(request, timeout=settings.JIRA_HTTP_TIMEOUT) as response:  # noqa: S310 # nosec B310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise JiraError(
            f"JIRA answered {exc.code} to {method} {path}: {detail}",
            status=exc.code,
            retryable=exc.code in RETRYABLE_STATUSES,
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise JiraError(
            f"JIRA unreachable ({method} {path}): {reason}", status=None, retryable=True
        ) from None
    return json.loads(raw) if raw.strip() else {}


def _object(answer: dict | list) -> dict:
    return answer if isinstance(answer, dict) else {}


def comment_post(*, issue_key: str, body: str) -> JiraComment:
    """POST /rest/api/2/issue/{key}/comment (API v2 takes wiki markup, v3 would need ADF)."""
    answer = _object(
        _request("POST", f"/rest/api/2/issue/{urllib.parse.quote(issue_key)}/comment", {"body": body})
    )
    return JiraComment(id=str(answer.get("id", "")), body=str(answer.get("body", "")))


def attachment_post(*, issue_key: str, name: str, content: bytes, content_type: str = "text/plain") -> str:
    """POST /rest/api/2/issue/{key}/attachments: multipart/form-data with one part named "file";
    JIRA refuses it without X-Atlassian-Token: no-check (its XSRF guard). Returns the id."""
    boundary = f"qa2portal-{secrets.token_hex(16)}"
    safe = name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = _request(
        "POST",
        f"/rest/api/2/issue/{urllib.parse.quote(issue_key)}/attachments",
        body=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-Atlassian-Token": "no-check",
        },
    )
    first = answer[0] if isinstance(answer, list) and answer else {}
    return str(first.get("id", "")) if isinstance(first, dict) else ""


def comments_recent(*, issue_key: str, limit: int = 50) -> list[JiraComment]:
    """The newest comments of a ticket (to find one we may already have posted)."""
    query = urllib.parse.urlencode({"orderBy": "-created", "maxResults": limit})
    answer = _object(_request("GET", f"/rest/api/2/issue/{urllib.parse.quote(issue_key)}/comment?{query}"))
    return [
        JiraComment(id=str(c.get("id", "")), body=str(c.get("body", ""))) for c in answer.get("comments", [])
    ]
