"""The MCP server over streamable HTTP, started as `servewise serve --http` and driven by the real `mcp`
client and raw HTTP: concurrency, the bearer token, Host/Origin allowlists for loopback and remote binds,
the per-client session cap, and the header/body deadlines that stop slow clients holding it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from tests.fakes.loopback import free_port

SERVEWISE = str(Path(sys.executable).parent / "servewise")

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def _start(tmp: Path, host: str = "127.0.0.1", *extra: str, env_extra: dict | None = None,
           probe_host: str | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port(host if host != "0.0.0.0" else "127.0.0.1")
    env = {**os.environ, "SERVEWISE_KB": str(tmp / "kb.sqlite"), "SERVEWISE_LOCAL_FORGE": str(tmp / "forge.git"),
           "SERVEWISE_CONFIG": str(tmp / "config.toml"), **(env_extra or {})}
    proc = subprocess.Popen([SERVEWISE, "serve", "--http", f"{host}:{port}", *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://{probe_host or host}:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode())
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the HTTP server did not start within 30 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def _post(url: str, host_header: str | None = None, **headers: str) -> httpx.Response:
    h = {**ACCEPT, **headers}
    if host_header:
        h["Host"] = host_header
    return httpx.post(url, json=INIT, headers=h, timeout=10)


def test_a_hundred_concurrent_calls_all_succeed(isolated_env):
    """Issue 14 asks for 100 concurrent calls over HTTP without a failure (issue 17 for 50)."""
    proc, url = _start(isolated_env)
    try:
        async def one_client(i: int) -> list:
            async with Client(url) as c:
                if i == 0:
                    assert len((await c.list_tools()).tools) >= 10
                calls = [c.call_tool("predict", {"model": "qwen3-8b", "gpu": "a100-80gb", "isl": 256 + j, "osl": 64,
                                                 "concurrency": 1 + i}) for j in range(10)]
                return await asyncio.gather(*calls)

        async def go():
            return [r for batch in await asyncio.gather(*(one_client(i) for i in range(10))) for r in batch]

        results = asyncio.run(go())
        assert len(results) == 100
        failed = [r.content[0].text for r in results if r.is_error]
        assert not failed, failed
        assert all(r.structured_content["output_tok_s"] > 0 for r in results)
    finally:
        _stop(proc)


def test_http_token_is_required_and_checked(isolated_env):
    proc, url = _start(isolated_env, "127.0.0.1", "--require-token", env_extra={"SERVEWISE_MCP_TOKEN": "s3cret-token"})
    try:
        assert httpx.post(url, json={}, timeout=5).status_code == 401
        assert httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        ok = _post(url, Authorization="Bearer s3cret-token")
        assert ok.status_code == 200 and ok.headers.get("mcp-session-id")
    finally:
        _stop(proc)


def test_loopback_bind_rejects_rebinding_but_answers_its_own_address(isolated_env):
    """127.0.0.2 is loopback too: its own Host is answered, a foreign Host or Origin is not (DNS rebinding)."""
    try:
        probe = socket.create_server(("127.0.0.2", 0))
        probe.close()
    except OSError:
        pytest.skip("this machine cannot bind 127.0.0.2")
    proc, url = _start(isolated_env, "127.0.0.2", "--allow-origin", "https://ui.example.com")
    port = url.split(":")[2].split("/")[0]
    try:
        assert _post(url).status_code == 200
        assert _post(url, f"localhost:{port}").status_code == 200
        assert _post(url, f"evil.example:{port}").status_code == 421
        assert _post(url, Origin="http://evil.example").status_code == 403
        assert _post(url, Origin="https://ui.example.com").status_code == 200

        async def go():
            async with Client(url) as c:
                r = await c.call_tool("capacity", {"model": "qwen3-8b", "gpu": "l40s", "qps": 2})
                assert not r.is_error

        asyncio.run(go())
    finally:
        _stop(proc)


def test_remote_bind_needs_a_token_and_answers_allowed_hosts(isolated_env, servewise_bin, monkeypatch):
    monkeypatch.delenv("SERVEWISE_MCP_TOKEN", raising=False)
    refused = servewise_bin("serve", "--http", "0.0.0.0:8799")
    assert refused.returncode == 2 and "bearer token" in refused.stderr
    bad = servewise_bin("serve", "--http", "0.0.0.0:8799", "--allow-host", "evil host/x")
    assert bad.returncode == 2 and "allowed host" in bad.stderr
    assert servewise_bin("serve", "--http", "127.0.0.1:99999").returncode == 2

    (isolated_env / "config.toml").write_text('mcp_allowed_hosts = ["plan.example.com"]\n')
    proc, url = _start(isolated_env, "0.0.0.0", "--allow-host", "mcp.example.org",
                       env_extra={"SERVEWISE_MCP_TOKEN": "remote-token"}, probe_host="127.0.0.1")
    port = url.split(":")[2].split("/")[0]
    auth = {"Authorization": "Bearer remote-token"}
    try:
        assert _post(url, f"plan.example.com:{port}").status_code == 401  # the token is checked first
        assert _post(url, f"plan.example.com:{port}", **auth).status_code == 200  # from the settings
        assert _post(url, f"mcp.example.org:{port}", **auth).status_code == 200  # from --allow-host
        assert _post(url, f"other.example.net:{port}", **auth).status_code == 421
    finally:
        _stop(proc)


def test_one_client_cannot_take_every_session(isolated_env):
    from server.mcp_http import SESSIONS_PER_CLIENT

    proc, url = _start(isolated_env)
    try:
        opened = [_post(url) for _ in range(SESSIONS_PER_CLIENT)]
        assert all(r.status_code == 200 for r in opened)
        over = _post(url)
        assert over.status_code == 429 and int(over.headers["retry-after"]) > 0
        closed = httpx.delete(url, headers={**ACCEPT, "mcp-session-id": opened[0].headers["mcp-session-id"]}, timeout=10)
        assert closed.status_code < 400
        assert _post(url).status_code == 200  # a closed session frees its place
    finally:
        _stop(proc)


def test_a_body_that_does_not_arrive_in_time_gets_408():
    from server.mcp_http import BodyDeadline

    sent = []

    async def app(scope, receive, send):  # the MCP app must never see a half-read body
        raise AssertionError("reached the app")

    async def slow_receive():
        await anyio.sleep(30)

    async def send(message):
        sent.append(message)

    anyio.run(BodyDeadline(app, timeout_s=0.2), {"type": "http", "method": "POST", "headers": []}, slow_receive, send)
    assert sent[0]["status"] == 408


def test_a_request_head_that_does_not_arrive_in_time_closes_the_connection():
    import uvicorn

    from server.mcp_http import HeaderDeadlineH11

    class Quick(HeaderDeadlineH11):
        header_timeout_s = 0.3

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=Quick, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line ending the head
            assert s.recv(100) == b""  # closed by the server, not by the 10 s client timeout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 204")
    finally:
        server.should_exit = True
        thread.join(10)
