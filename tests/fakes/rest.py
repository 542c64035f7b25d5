"""A loopback JSON REST server with failure injection, shared by the GitHub and GitLab fakes.

`fail(method, pattern, *actions)` makes the next requests matching method and path regex fail, one
action each: "500", "429" (Retry-After: 0), "secondary" (GitHub's 403 secondary rate limit, with its
documented message), "drop" (close the connection without answering), "slow" (answer after `slow_s`).
The ambiguous ones, where the server did the work and the client cannot know: "502-after" (do it, then
answer 502 as a proxy whose upstream answered too late would), "drop-after" (do it, then close the
connection without answering), "slow-after" (do it, answer after `slow_s`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from urllib.parse import parse_qs, urlparse

from tests.fakes.loopback import LoopbackServer, QuietHandler

_FAILURE = {"500": (500, "Server Error"), "429": (429, "API rate limit exceeded"),
            "secondary": (403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")}


def _body(raw: bytes):
    """A request body: JSON, else form fields."""
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return parse_qs(raw.decode())


class LoopbackRest(LoopbackServer):
    """Subclasses implement `authorized(headers)` and `route(method, path, query, body) -> (status, json)`."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, re.Pattern, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.slow_s = 3.0
        self.lock = threading.Lock()
        super().__init__(self._handler())
        self.base = self.url

    def fail(self, method: str, pattern: str, *actions: str) -> None:
        self.failures.extend((method, re.compile(pattern), a) for a in actions)

    def authorized(self, headers) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        raise NotImplementedError

    def _take_failure(self, method: str, path: str) -> str | None:
        with self.lock:
            for i, (m, rx, action) in enumerate(self.failures):
                if m == method and rx.search(path):
                    self.failures.pop(i)
                    return action
        return None

    def _handler(self):
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, url.path))
                action = fake._take_failure(self.command, url.path)
                if action in ("502-after", "drop-after", "slow-after") and fake.authorized(self.headers):
                    with fake.lock:
                        fake.route(self.command, url.path, parse_qs(url.query), _body(raw))
                    if action == "502-after":
                        return self._send(502, {"message": "Bad Gateway"})
                    if action == "slow-after":
                        time.sleep(fake.slow_s)
                        return self._send(504, {"message": "Gateway Timeout"})
                    action = "drop"
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action == "slow":
                    time.sleep(fake.slow_s)
                elif action:
                    status, message = _FAILURE[action]
                    return self._send(status, {"message": message}, {"Retry-After": "0"} if status != 500 else {})
                if not fake.authorized(self.headers):
                    return self._send(401, {"message": "Bad credentials"})
                with fake.lock:
                    status, payload = fake.route(self.command, url.path, parse_qs(url.query), _body(raw))
                self._send(status, payload)

            def _send(self, status: int, payload, headers: dict | None = None) -> None:
                if isinstance(payload, bytes):
                    return self.send_body(status, payload, "application/octet-stream", headers)
                self.send_json(status, payload, headers)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler
