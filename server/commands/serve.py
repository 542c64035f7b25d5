"""`servewise serve`: the MCP server over stdio (default) or streamable HTTP."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import typer

from planner.errors import BadInput
from server.output import run

TOKEN_ENV = "SERVEWISE_MCP_TOKEN"


def _token(token_file: Path | None) -> str | None:
    if token_file:
        from gitops.outbound import read_token_file

        return read_token_file(token_file, "--token-file") or None
    return os.environ.get(TOKEN_ENV) or None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_cmd(http: str = typer.Option(None, "--http", help="HOST:PORT for streamable HTTP (path /mcp), e.g. 127.0.0.1:8765."),
              token_file: Path = typer.Option(None, "--token-file", help=f"File holding the bearer token (else ${TOKEN_ENV})."),
              require_token: bool = typer.Option(False, "--require-token", help="Require the bearer token even on loopback.")) -> None:
    """Run the MCP server for Claude Desktop, Claude Code or any MCP client.

    stdio (default):   servewise serve
    HTTP on loopback:  servewise serve --http 127.0.0.1:8765
    Any other address needs a bearer token from $SERVEWISE_MCP_TOKEN or --token-file; requests without it get 401.
    """
    def action() -> None:
        from server import mcp_server

        if not http:
            mcp_server.run_stdio()
            return
        host, _, port = http.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise BadInput(f"--http must be HOST:PORT (got {http!r})")
        token = _token(token_file)
        if (require_token or not _loopback(host)) and not token:
            raise BadInput(f"serving on {host} needs a bearer token: set ${TOKEN_ENV} or pass --token-file")
        mcp_server.run_http(host, int(port), token if (require_token or not _loopback(host)) else None)

    run(False, action)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
