"""Webhook bodies shaped like JIRA Cloud's (jira.js payloads.ts, Atlassian's webhook docs)."""

import json
import time
import uuid

from assignments.jira.signature import signature_for


def jira_user(name: str, *, email: str = "", account_id: str = "") -> dict:
    return {
        "self": f"https://jira.example.org/rest/api/2/user?accountId={account_id or name}",
        "accountId": account_id or f"5b10a2844c20165700ede{abs(hash(name)) % 10**6:06d}",
        "emailAddress": email,
        "displayName": name.title(),
        "active": True,
        "timeZone": "America/Santiago",
        "accountType": "atlassian",
    }


def issue(
    key: str,
    *,
    summary: str,
    description: str = "",
    status: str = "To Do",
    assignee: dict | None = None,
    extra_fields: dict | None = None,
) -> dict:
    return {
        "id": str(20000 + int(key.split("-")[1])),
        "self": f"https://jira.example.org/rest/api/2/issue/{key}",
        "key": key,
        "fields": {
            "summary": summary,
            "description": description,
            "issuetype": {"id": "10301", "name": "Science Project Data Reduction", "subtask": False},
            "project": {"id": "10500", "key": key.split("-")[0], "name": "Science Operations"},
            "status": {"id": "3", "name": status, "statusCategory": {"key": "indeterminate"}},
            "assignee": assignee,
            "priority": {"name": "Major"},
            "labels": ["cycle7"],
            "created": "2026-11-02T10:15:31.000+0000",
            "updated": "2026-11-20T08:01:12.000+0000",
            **(extra_fields or {}),
        },
    }


def issue_event(
    event: str, ticket: dict, *, user: dict, items: list[dict] | None = None, type_name: str = "issue_generic"
) -> dict:
    payload = {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": event,
        "issue_event_type_name": type_name,
        "user": user,
        "issue": ticket,
    }
    if items is not None:
        payload["changelog"] = {"id": "31337", "items": items}
    return payload


def status_item(old: str, new: str) -> dict:
    return {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "1", "fromString": old,
            "to": "3", "toString": new}  # fmt: skip


def assignee_item(old: dict | None, new: dict) -> dict:
    return {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
            "from": old and old["accountId"], "fromString": old and old["displayName"],
            "to": new["accountId"], "toString": new["displayName"]}  # fmt: skip


def adf(*paragraphs: str) -> dict:
    """An Atlassian Document Format body: one paragraph per argument."""
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs],
    }


def comment_event(ticket: dict, *, author: dict, body) -> dict:
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "comment_created",
        "comment": {
            "self": f"{ticket['self']}/comment/10042",
            "id": "10042",
            "author": author,
            "body": body,
            "updateAuthor": author,
            "created": "2026-11-20T08:03:00.000+0000",
            "updated": "2026-11-20T08:03:00.000+0000",
            "jsdPublic": True,
        },
        "issue": {
            "id": ticket["id"],
            "self": ticket["self"],
            "key": ticket["key"],
            "fields": ticket["fields"],
        },
    }


def signed(payload: dict | bytes, *, secret: str, identifier: str | None = None) -> tuple[bytes, dict]:
    """Body and headers as JIRA sends them; the same identifier on a retry."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Atlassian Webhook HTTP Client",
        "X-Atlassian-Webhook-Identifier": identifier or str(uuid.uuid4()),
        "X-Atlassian-Webhook-Flow": "Primary",
        "X-Hub-Signature": signature_for(body=body, secret=secret),
    }
    return body, headers
