"""The start and stop every loopback HTTP fake shares: a threading HTTP server on 127.0.0.1 at a port the
system picks, served from a daemon thread, and a request-handler base that keeps quiet and answers with a
body and its length. What a fake answers, and which real API's documentation it follows, is its own."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now: for a server started in another process, or for nothing to answer."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LoopbackServer:
    """Serves `handler` until `close()` (or the end of a `with` block); `url` is its base URL, https when a
    server-side `tls` context is given."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None,
                 poll_interval_s: float = 0.5) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port: int = self.server.server_address[1]
        self.url = f"{'https' if tls is not None else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": poll_interval_s},
                         daemon=True).start()

    def close(self) -> None:
        # Handler threads are daemons (ThreadingHTTPServer's default): a deliberately slow answer still
        # sleeping does not hold the close up.
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QuietHandler(BaseHTTPRequestHandler):
    """No access log on stderr; `send_body` / `send_json` answer with Content-Length and tolerate a client
    that has already gone."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass

    def send_body(self, status: int, body: bytes, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as timeout tests make it

    def send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), headers=headers)
