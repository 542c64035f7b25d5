"""A loopback server answering like Prometheus's HTTP API, with scripted answers.

It follows https://prometheus.io/docs/prometheus/latest/querying/api/: `/api/v1/query` by GET (URL
parameters) or POST (the same parameters form-encoded in the body), answering the JSON envelope
`{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [<unix time>,
"<number as a string>"]}]}}`; `/api/v1/status/config`, answering `{"status": "success", "data": {"yaml":
<the loaded configuration>}}`. `answer(query)` returns a number (one sample), None (an empty vector), or
`Raw(status, body)` sent as it is, for malformed and faulty answers.

Prometheus has no authentication of its own; with `token`, the fake stands behind a bearer-token proxy
(kube-rbac-proxy, an ingress) and answers 401 to any other Authorization. Every request's Authorization
header is recorded in `auth`, whatever its method and path, so a test can prove a token was never sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from tests.fakes.loopback import LoopbackServer, QuietHandler


@dataclass
class Raw:
    status: int
    body: bytes


def _empty(query: str) -> None:
    return None


class ScriptedPrometheus(LoopbackServer):
    def __init__(self, answer: Callable[[str], float | str | None | Raw] = _empty, delay_s: float = 0.0, *,
                 token: str | None = None, scrape_interval: str = "1s") -> None:
        self.answer, self.delay_s, self.token = answer, delay_s, token
        self.config_yaml = f"global:\n  scrape_interval: {scrape_interval}\n"
        self.queries: list[str] = []
        self.auth: list[str | None] = []
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._serve({})

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                self._serve(parse_qs(self.rfile.read(length).decode()))

            def _serve(self, form: dict[str, list[str]]) -> None:
                time.sleep(fake.delay_s)
                fake.auth.append(self.headers.get("Authorization"))
                if fake.token is not None and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self.send_json(401, {"status": "error", "errorType": "unauthorized", "error": "bad token"})
                url = urlparse(self.path)
                if url.path == "/api/v1/status/config":
                    return self.send_json(200, {"status": "success", "data": {"yaml": fake.config_yaml}})
                if url.path != "/api/v1/query":
                    return self.send_json(404, {"status": "error", "error": "not found"})
                query = {**parse_qs(url.query), **form}["query"][0]
                fake.queries.append(query)
                value = fake.answer(query)
                if isinstance(value, Raw):
                    return self.send_body(value.status, value.body)
                result = [] if value is None else [{"metric": {}, "value": [time.time(), str(value)]}]
                self.send_json(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

        super().__init__(Handler)
