"""Streamable HTTP for the MCP server, with the limits that keep one client from making it unusable.

- Sessions: at most SESSIONS_PER_CLIENT open per client address and MAX_SESSIONS in all; a session idle for
  SESSION_IDLE_S is closed (the SDK's default of 30 minutes let 10,000 `initialize` calls lock everyone out).
- Slow clients: request headers must arrive within HEADER_TIMEOUT_S and a body within BODY_TIMEOUT_S, else the
  connection is closed (408 for a body); idle keep-alive connections close after KEEP_ALIVE_S.
- DNS rebinding: Host and Origin are checked against loopback names plus the bind address on a loopback bind;
  a non-loopback bind (which needs the bearer token, see `servewise serve`) checks the hosts and origins the
  operator allows (`--allow-host`, `--allow-origin` or the settings `mcp_allowed_hosts`/`mcp_allowed_origins`).
- With a token, every request needs `Authorization: Bearer <token>` (compared in constant time).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("servewise.mcp.http")

SESSIONS_PER_CLIENT = 64
MAX_SESSIONS = 1000
SESSION_IDLE_S = 300.0
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
KEEP_ALIVE_S = 5
MAX_BODY = 4 * 1024 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hostport(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def transport_security(host: str, allowed_hosts: list[str], allowed_origins: list[str]) -> TransportSecuritySettings:
    """Host/Origin allowlists for a bind address. Entries without a port match any port."""
    # An entry without a port stands for itself (default port, as browsers and proxies send it) and any port.
    hosts = [v for h in map(_hostport, allowed_hosts) for v in ([h] if h.rsplit("]", 1)[-1].count(":") else [h, f"{h}:*"])]
    origins = [v for o in allowed_origins for v in ([o] if o.count(":") > 1 else [o, f"{o}:*"])]
    if is_loopback(host):
        names = dict.fromkeys([*LOOPBACK_NAMES, _hostport(host)])
        hosts += [f"{n}:*" for n in names]
        origins += [f"{scheme}://{n}:*" for n in names for scheme in ("http", "https")]
        return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                         allowed_origins=origins)
    if host not in ("0.0.0.0", "::"):
        hosts.append(f"{_hostport(host)}:*")
    # On 0.0.0.0 without --allow-host the names clients use are unknown; the required bearer token guards it.
    return TransportSecuritySettings(enable_dns_rebinding_protection=bool(allowed_hosts) or host not in ("0.0.0.0", "::"),
                                     allowed_hosts=hosts, allowed_origins=origins)


async def _reply(send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """ASGI middleware refusing HTTP requests without the bearer token."""

    def __init__(self, app, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            auth = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(auth, b"Bearer " + self.token):
                await _reply(send, 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
                return
        await self.app(scope, receive, send)


class BodyDeadline:
    """Reads a request body within a deadline and a size limit, then hands it to the app in one piece."""

    def __init__(self, app, timeout_s: float = BODY_TIMEOUT_S, max_bytes: int = MAX_BODY) -> None:
        self.app, self.timeout_s, self.max_bytes = app, timeout_s, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        with anyio.move_on_after(self.timeout_s) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    await _reply(send, 413, f"request body over {self.max_bytes} bytes")
                    return
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
        if deadline.cancelled_caught:
            await _reply(send, 408, f"request body not received within {self.timeout_s:g} s", [(b"connection", b"close")])
            return
        body, given = b"".join(chunks), False

        async def replay():
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SessionCap:
    """At most `per_client` open MCP sessions per client address; a session unused for `idle_s` no longer counts
    (the SDK closes it after the same idle time). Over the cap a new session gets 429 with Retry-After."""

    def __init__(self, app, per_client: int = SESSIONS_PER_CLIENT, idle_s: float = SESSION_IDLE_S) -> None:
        self.app, self.per_client, self.idle_s = app, per_client, idle_s
        self.sessions: dict[str, dict[bytes, float]] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        now = time.monotonic()
        mine = {s: t for s, t in self.sessions.get(client, {}).items() if now - t < self.idle_s}
        self.sessions[client] = mine
        sid = dict(scope.get("headers") or []).get(b"mcp-session-id")
        if sid is not None:
            if scope["method"] == "DELETE":
                mine.pop(sid, None)
            elif sid in mine:
                mine[sid] = now
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST" and len(mine) >= self.per_client:
            wait = int(self.idle_s - (now - min(mine.values()))) + 1
            await _reply(send, 429, f"this client already has {len(mine)} open MCP sessions; close one (HTTP DELETE) "
                                    f"or wait {wait} s", [(b"retry-after", str(wait).encode())])
            return

        async def record(message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                opened = dict(message.get("headers") or []).get(b"mcp-session-id")
                if opened:
                    mine[opened] = time.monotonic()
            await send(message)

        await self.app(scope, receive, record)


class HeaderDeadlineH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request head does not arrive within
    HEADER_TIMEOUT_S (uvicorn itself waits forever: 200 slow clients held the server for 40 s and more)."""

    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = None
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.info("closing a connection whose request head did not arrive within %g s", self.header_timeout_s)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm()  # a new request starts on this connection: its head has the same deadline
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:
            self._disarm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def build_app(mcp, host: str, token: str | None, allowed_hosts: list[str], allowed_origins: list[str]):
    app = mcp.streamable_http_app(transport_security=transport_security(host, allowed_hosts, allowed_origins),
                                  session_idle_timeout=SESSION_IDLE_S, max_sessions=MAX_SESSIONS,
                                  max_request_body_size=MAX_BODY, host=host)
    app = SessionCap(BodyDeadline(app))
    return BearerAuth(app, token) if token else app


def serve_http(mcp, host: str, port: int, token: str | None, *, allowed_hosts: list[str],
               allowed_origins: list[str]) -> None:
    """Serve until interrupted. The socket is bound here, so a busy or foreign address is an OSError for the
    caller to report (uvicorn would log it and exit)."""
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(build_app(mcp, host, token, allowed_hosts, allowed_origins), host=host, port=port,
                            log_level="warning", http=HeaderDeadlineH11, timeout_keep_alive=KEEP_ALIVE_S,
                            lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
