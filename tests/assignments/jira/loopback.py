"""A real HTTP server on loopback playing JIRA's REST API for comments and attachments (the
only test double).

POST /rest/api/2/issue/{key}/comment and GET the same path, bearer token checked, and three
failure modes on demand: answer `fail_status` (JIRA down), or store the comment and then
answer 503 (the answer is lost, the comment is not).
"""

import email
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMENT_PATH = re.compile(r"^/rest/api/2/issue/([A-Z][A-Z0-9_]*-\d+)/comment(?:\?.*)?$")
ATTACH_PATH = re.compile(r"^/rest/api/2/issue/([A-Z][A-Z0-9_]*-\d+)/attachments$")


@dataclass
class Seen:
    method: str
    path: str
    authorization: str
    status: int


@dataclass
class LoopbackJira:
    port: int
    token: str
    comments: dict[str, list[dict]] = field(default_factory=dict)
    # What JIRA's attachments API took: {"filename", "content" (bytes), "content_type"}.
    attachments: dict[str, list[dict]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    fail_status: int | None = None
    lose_answers: bool = False
    missing_issues: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.comments.clear()
            self.attachments.clear()
            self.seen.clear()
            self.fail_status, self.lose_answers = None, False
            self.missing_issues.clear()

    def bodies(self, key: str) -> list[str]:
        with self.lock:
            return [c["body"] for c in self.comments.get(key, [])]

    def posts(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == "POST"]


def _handler(jira: LoopbackJira) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def _answer(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _attach(self, key: str, raw: bytes) -> tuple[int, object]:
            """JIRA's rules: the XSRF header, multipart/form-data, parts named "file"."""
            if self.headers.get("X-Atlassian-Token") != "no-check":
                return 403, {"errorMessages": ["XSRF check failed"]}
            ctype = self.headers.get("Content-Type", "")
            if not ctype.startswith("multipart/form-data; boundary="):
                return 415, {"errorMessages": ["not multipart/form-data"]}
            message = email.message_from_bytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
            parts = [
                p
                for p in message.get_payload()
                if p.get_param("name", header="content-disposition") == "file"
            ]
            if not message.is_multipart() or not parts:
                return 400, {"errorMessages": ["no part named file"]}
            made = []
            for part in parts:
                stored = {
                    "filename": part.get_filename(),
                    "content": part.get_payload(decode=True),
                    "content_type": part.get_content_type(),
                }
                jira.attachments.setdefault(key, []).append(stored)
                made.append({"id": str(20000 + len(jira.attachments[key])), "filename": stored["filename"]})
            return 200, made

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            attach = ATTACH_PATH.match(self.path) if method == "POST" else None
            if attach is not None:
                with jira.lock:
                    if self.headers.get("Authorization", "") != f"Bearer {jira.token}":
                        status, answer = 401, {"errorMessages": ["not authenticated"]}
                    elif jira.fail_status is not None:
                        status, answer = jira.fail_status, {"errorMessages": ["JIRA is down"]}
                    else:
                        status, answer = self._attach(attach.group(1), raw)
                    jira.seen.append(Seen(method, self.path, self.headers.get("Authorization", ""), status))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            match = COMMENT_PATH.match(self.path)
            auth = self.headers.get("Authorization", "")
            with jira.lock:
                if not match:
                    status, payload = 404, {"errorMessages": ["no such resource"]}
                elif auth != f"Bearer {jira.token}":
                    status, payload = 401, {"errorMessages": ["not authenticated"]}
                elif jira.fail_status is not None:
                    status, payload = jira.fail_status, {"errorMessages": ["JIRA is down"]}
                elif match.group(1) in jira.missing_issues:
                    status, payload = 404, {"errorMessages": ["Issue does not exist"]}
                elif method == "GET":
                    found = list(reversed(jira.comments.get(match.group(1), [])))
                    status, payload = (
                        200,
                        {"startAt": 0, "maxResults": 50, "total": len(found), "comments": found},
                    )
                else:
                    body = json.loads(raw)["body"]
                    stored = jira.comments.setdefault(match.group(1), [])
                    comment = {"id": str(10001 + sum(map(len, jira.comments.values()))), "body": body}
                    stored.append(comment)
                    status, payload = (
                        (503, {"errorMessages": ["gateway"]}) if jira.lose_answers else (201, comment)
                    )
                jira.seen.append(Seen(method, self.path, auth, status))
            self._answer(status, payload)

        def do_POST(self) -> None:
            self._handle("POST")

        def do_GET(self) -> None:
            self._handle("GET")

    return Handler


def loopback_jira_start(*, port: int, token: str) -> tuple[LoopbackJira, ThreadingHTTPServer]:
    jira = LoopbackJira(port=port, token=token)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(jira))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="loopback-jira", daemon=True).start()
    return jira, server
