"""A loopback server answering like Prometheus's HTTP API (/api/v1/query, /api/v1/status/config) with
scripted answers: `answer(query)` returns a number (sent as Prometheus's [time, "string"] sample), None (an
empty vector), or `Raw(status, body)` sent as it is, for malformed and faulty answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Raw:
    status: int
    body: bytes


class ScriptedPrometheus:
    def __init__(self, answer: Callable[[str], float | str | None | Raw], delay_s: float = 0.0) -> None:
        self.answer, self.delay_s = answer, delay_s
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                time.sleep(fake.delay_s)
                url = urlparse(self.path)
                if url.path == "/api/v1/status/config":
                    return self._send(Raw(200, json.dumps({"status": "success", "data": {
                        "yaml": "global:\n  scrape_interval: 1s\n"}}).encode()))
                if url.path != "/api/v1/query":
                    return self._send(Raw(404, b'{"status":"error","error":"not found"}'))
                query = parse_qs(url.query)["query"][0]
                fake.queries.append(query)
                value = fake.answer(query)
                if isinstance(value, Raw):
                    return self._send(value)
                result = [] if value is None else [{"metric": {}, "value": [time.time(), str(value)]}]
                self._send(Raw(200, json.dumps({"status": "success", "data": {"resultType": "vector",
                                                                              "result": result}}).encode()))

            def _send(self, raw: Raw) -> None:
                self.send_response(raw.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw.body)))
                self.end_headers()
                try:
                    self.wfile.write(raw.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
