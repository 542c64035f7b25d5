"""`servewise serve`: the MCP server over stdio (default) or streamable HTTP."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from planner.errors import BadInput
from server.limits import input_file
from server.output import run

TOKEN_ENV = "SERVEWISE_MCP_TOKEN"
_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$")
_ORIGIN = re.compile(r"^https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$")


def _token(token_file: Path | None) -> str | None:
    if token_file:
        from gitops.outbound import read_token_file

        return read_token_file(token_file, "--token-file") or None
    return os.environ.get(TOKEN_ENV) or None


def _checked(values: list[str], pattern: re.Pattern, what: str, example: str) -> list[str]:
    bad = [v for v in values if not pattern.match(v)]
    if bad:
        raise BadInput(f"{what} {bad[0][:80]!r} is not valid; give e.g. {example}")
    return values


def serve_cmd(http: str = typer.Option(None, "--http", help="HOST:PORT for streamable HTTP (path /mcp), e.g. 127.0.0.1:8765."),
              token_file: Path = typer.Option(None, "--token-file", callback=input_file("token file", 64 * 1024), help=f"File holding the bearer token (else ${TOKEN_ENV})."),
              require_token: bool = typer.Option(False, "--require-token", help="Require the bearer token even on loopback."),
              allow_host: list[str] = typer.Option(None, "--allow-host", help="Host name clients use to reach a "
                                                   "non-loopback bind (repeatable; setting mcp_allowed_hosts)."),
              allow_origin: list[str] = typer.Option(None, "--allow-origin", help="Browser Origin allowed to call the "
                                                     "server, e.g. https://app.example.com (repeatable; setting "
                                                     "mcp_allowed_origins).")) -> None:
    """Run the MCP server for Claude Desktop, Claude Code or any MCP client.

    stdio (default):   servewise serve
    HTTP on loopback:  servewise serve --http 127.0.0.1:8765
    Remote:            servewise serve --http 0.0.0.0:8765 --token-file TOKEN --allow-host plan.example.com
    Any other address than loopback needs a bearer token from $SERVEWISE_MCP_TOKEN or --token-file; requests
    without it get 401. Host headers other than loopback names and the bind address need --allow-host.
    """
    def action() -> None:
        from server import mcp_server
        from server.config import load_settings
        from server.mcp_http import is_loopback

        if http is None:
            mcp_server.run_stdio()
            return
        host, _, port = http.rpartition(":")
        host = host.strip("[]")
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise BadInput(f"--http must be HOST:PORT with a port from 1 to 65535 (got {http[:100]!r})")
        settings, _ = load_settings()
        hosts = _checked([*settings.mcp_allowed_hosts, *(allow_host or [])], _HOST, "allowed host", "plan.example.com")
        origins = _checked([*settings.mcp_allowed_origins, *(allow_origin or [])], _ORIGIN, "allowed origin",
                           "https://app.example.com")
        token = _token(token_file)
        needs_token = require_token or not is_loopback(host)
        if needs_token and not token:
            raise BadInput(f"serving on {host} needs a bearer token: set ${TOKEN_ENV} or pass --token-file")
        try:
            mcp_server.run_http(host, int(port), token if needs_token else None, hosts, origins)
        except OSError as exc:
            raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    run(False, action)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
