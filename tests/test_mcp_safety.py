"""The MCP server acting for a client it does not trust: files only under the workspace root, outbound
URLs only from the settings, the Prometheus token only to the host it is configured for."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from tests.fakes.prometheus_api import ScriptedPrometheus

SERVEWISE = str(Path(sys.executable).parent / "servewise")
TOKEN = "prom-token-do-not-leak"


def _client(tmp: Path, **env: str) -> Client:
    full = {**os.environ, "SERVEWISE_KB": str(tmp / "kb.sqlite"), "SERVEWISE_LOCAL_FORGE": str(tmp / "forge.git"),
            "SERVEWISE_CONFIG": str(tmp / "config.toml"), **env}
    return Client(StdioServerParameters(command=SERVEWISE, args=["serve"], env=full))


async def _plan_id(c: Client) -> str:
    plan = await c.call_tool("recommend", {"use_case": "chatbot", "qps": 5, "top": 1})
    assert not plan.is_error, plan.content
    return plan.structured_content["id"]


def test_render_writes_only_under_the_workspace_with_a_derived_name(isolated_env):
    victim = isolated_env / "victim"
    victim.mkdir()
    (victim / "plan.json").write_text("{}")
    (victim / "notes.txt").write_text("mine")
    workspace = isolated_env / "ws"

    async def go():
        async with _client(isolated_env) as c:
            pid = await _plan_id(c)
            off = await c.call_tool("render", {"plan_id": pid, "write": True})
            assert off.is_error and "workspace" in off.content[0].text
            # A free path is no longer an argument: the old out_dir is rejected, not used.
            free = await c.call_tool("render", {"plan_id": pid, "out_dir": str(victim)})
            assert free.is_error or free.structured_content["written_to"] is None
        async with _client(isolated_env, SERVEWISE_WORKSPACE=str(workspace)) as c:
            pid = await _plan_id(c)
            for name in ("../victim", "..", "/tmp/x"):
                bad = await c.call_tool("render", {"plan_id": pid, "name": name, "write": True})
                assert bad.is_error and "DNS-1123" in bad.content[0].text
            ok = await c.call_tool("render", {"plan_id": pid, "name": "chat", "write": True})
            assert not ok.is_error and ok.structured_content["written_to"] == str(workspace.resolve() / "llm-serving" / "chat")
            again = await c.call_tool("render", {"plan_id": pid, "name": "chat", "write": True})
            assert not again.is_error
            (workspace / "llm-serving" / "chat" / "mine.txt").write_text("x")
            refused = await c.call_tool("render", {"plan_id": pid, "name": "chat", "write": True})
            assert refused.is_error and "not replaced" in refused.content[0].text

    asyncio.run(go())
    assert (victim / "notes.txt").read_text() == "mine" and (victim / "plan.json").read_text() == "{}"
    assert (workspace / "llm-serving" / "chat" / "mine.txt").exists()
    assert (workspace / "llm-serving" / "chat" / "inferenceservice.yaml").exists()


def test_slo_report_never_sends_the_token_to_a_url_that_is_not_configured(isolated_env):
    # Both answer every query with an empty vector and record each request's Authorization header.
    configured, attacker = ScriptedPrometheus(), ScriptedPrometheus()
    try:
        async def go():
            async with _client(isolated_env, SERVEWISE_PROMETHEUS=configured.url,
                               SERVEWISE_PROMETHEUS_TOKEN=TOKEN) as c:
                pid = await _plan_id(c)
                for url in (attacker.url, "file:///etc/passwd", f"http://u:{TOKEN}@127.0.0.1:9"):
                    r = await c.call_tool("slo_report", {"plan_id": pid, "window": "5m", "prometheus_url": url})
                    assert r.is_error or r.structured_content["verdict"] == "insufficient data"
                    assert TOKEN not in str(r.content)
                ok = await c.call_tool("slo_report", {"plan_id": pid, "window": "5m"})  # unknown arguments are refused
                assert not ok.is_error and ok.structured_content["verdict"] == "insufficient data"
                tools = {t.name: t for t in (await c.list_tools()).tools}
                assert "prometheus_url" not in tools["slo_report"].input_schema["properties"]

        asyncio.run(go())
    finally:
        configured.close()
        attacker.close()
    assert attacker.auth == []
    assert configured.auth and set(configured.auth) == {f"Bearer {TOKEN}"}


def test_a_symlink_inside_the_workspace_does_not_lead_out_of_it(tmp_path, chatbot_plans):
    from types import SimpleNamespace

    import pytest

    from gitops.render import render_bundle
    from planner.errors import BadInput
    from server.actions import workspace_dir
    from server.config import Settings

    outside = tmp_path / "outside"
    outside.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "llm-serving").symlink_to(outside)
    bundle = render_bundle(chatbot_plans[0], name="chat")
    with pytest.raises(BadInput, match="would leave the workspace"):
        workspace_dir(SimpleNamespace(settings=Settings(workspace=ws)), bundle)
    (ws / "llm-serving").unlink()
    assert workspace_dir(SimpleNamespace(settings=Settings(workspace=ws)), bundle) == ws.resolve() / "llm-serving" / "chat"
