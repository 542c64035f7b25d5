"""The MCP server through real clients: the `mcp` Python client over stdio and streamable HTTP, a
sampling-capable client, and the MCP Inspector CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CreateMessageResult, TextContent

from kb.audit import recent_calls
from kb.catalog import open_kb

SERVEWISE = str(Path(sys.executable).parent / "servewise")
TOOLS = {"predict", "capacity", "build_spec", "recommend", "whatif", "render", "propose_pr", "slo_report",
         "list_outcomes", "cluster_status"}


def _params(tmp: Path) -> StdioServerParameters:
    env = {**os.environ, "SERVEWISE_KB": str(tmp / "kb.sqlite"), "SERVEWISE_LOCAL_FORGE": str(tmp / "forge.git"),
           "SERVEWISE_CONFIG": str(tmp / "config.toml"), "SERVEWISE_PROMETHEUS": "http://127.0.0.1:9"}
    return StdioServerParameters(command=SERVEWISE, args=["serve"], env=env)


def _run(coro):
    return asyncio.run(coro)


def test_stdio_lists_and_calls_every_tool(isolated_env):
    async def go():
        async with Client(_params(isolated_env)) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == TOOLS
            assert tools["predict"].annotations.read_only_hint and not tools["propose_pr"].annotations.read_only_hint
            assert "isl" in tools["predict"].input_schema["properties"] and tools["predict"].output_schema
            assert {str(r.uri) for r in (await c.list_resources()).resources} >= {"kb://models", "kb://gpus",
                                                                                  "kb://use-cases", "kb://benchmarks"}
            assert any("kb://plans/" in t.uri_template for t in (await c.list_resource_templates()).resource_templates)
            assert {p.name for p in (await c.list_prompts()).prompts} == {"plan-deployment", "review-pr", "right-size"}
            p = await c.get_prompt("plan-deployment", {"need": "a chatbot"})
            assert "build_spec" in p.messages[0].content.text

            ok = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "l40s", "isl": 512, "osl": 128, "qps": 2})
            assert not ok.is_error and ok.structured_content["tpot_ms"]["p90"] > 0
            bad = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "h10", "isl": 512, "osl": 128, "qps": 2})
            assert bad.is_error and "H100-SXM-80GB" in bad.content[0].text
            huge = await c.call_tool("predict", {"model": "x" * 100_000, "gpu": "l4", "isl": 1, "osl": 1, "qps": 1})
            assert huge.is_error
            cap = await c.call_tool("capacity", {"model": "llama-3.1-8b", "gpu": "l40s", "qps": 5})
            assert not cap.is_error and cap.structured_content["replicas"] >= 1
            nofit = await c.call_tool("capacity", {"model": "llama-3.1-70b", "gpu": "l4", "qps": 5})
            assert nofit.is_error and "does not fit" in nofit.content[0].text
            spec = await c.call_tool("build_spec", {"text": "support chatbot at 20 req/s"})
            assert spec.structured_content["extracted_by"] == "rules" and spec.structured_content["traffic"]["qps"] == 20
            plan = await c.call_tool("recommend", {"spec": spec.structured_content, "top": 2})
            assert not plan.is_error and plan.structured_content["chosen"] == 0
            pid = plan.structured_content["id"]
            assert json.loads((await c.read_resource(f"kb://plans/{pid}")).contents[0].text)["id"] == pid
            w = await c.call_tool("whatif", {"plan_id": pid, "changes": ["traffic=x2"]})
            assert not w.is_error and w.structured_content["deltas"]
            wbad = await c.call_tool("whatif", {"plan_id": pid, "changes": ["colour=blue"]})
            assert wbad.is_error and "allowed" in wbad.content[0].text
            r = await c.call_tool("render", {"plan_id": pid})
            assert not r.is_error and "inferenceservice.yaml" in r.structured_content["files"]
            rbad = await c.call_tool("render", {"plan_id": "plan-nope"})
            assert rbad.is_error and "no plan" in rbad.content[0].text
            pr1 = await c.call_tool("propose_pr", {"plan_id": pid})
            pr2 = await c.call_tool("propose_pr", {"plan_id": pid})
            assert pr1.structured_content["created"] and not pr2.structured_content["created"]
            assert pr1.structured_content["number"] == pr2.structured_content["number"]
            rep = await c.call_tool("slo_report", {"plan_id": pid, "window": "5m"})
            assert not rep.is_error and rep.structured_content["verdict"] == "unreachable"
            rbad = await c.call_tool("slo_report", {"plan_id": pid, "window": "forever"})
            assert rbad.is_error and "window" in rbad.content[0].text
            outs = await c.call_tool("list_outcomes", {})
            assert not outs.is_error and outs.structured_content["outcomes"] == []
            cl = await c.call_tool("cluster_status", {"context": "no-such-context"})
            assert cl.is_error

    _run(go())
    calls = recent_calls(open_kb(isolated_env / "kb.sqlite"), 100)
    assert {c["tool"] for c in calls} >= TOOLS - {"cluster_status"} | {"cluster_status"}
    assert any(c["outcome"] == "error:bad_input" for c in calls) and all(len(c["args_digest"]) == 64 for c in calls)


def test_sampling_path_and_fallback(isolated_env):
    async def sampler(context, params):
        return CreateMessageResult(role="assistant", model="test-model", content=TextContent(
            type="text", text='Sure: {"use_case": "rag", "qps": 7, "ttft_p90_ms": 900}'))

    async def go():
        async with stdio_client(_params(isolated_env)) as (read, write):
            async with ClientSession(read, write, sampling_callback=sampler) as s:
                await s.initialize()
                r = await s.call_tool("build_spec", {"text": "questions over our wiki, about seven a second"})
                assert r.structured_content["extracted_by"] == "sampling"
                assert r.structured_content["use_case"] == "rag" and r.structured_content["traffic"]["qps"] == 7
        async with Client(_params(isolated_env)) as c:  # no sampling callback: the rule extractor answers
            r = await c.call_tool("build_spec", {"text": "questions over our wiki via retrieval, 7 req/s"})
            assert r.structured_content["extracted_by"] == "rules" and r.structured_content["use_case"] == "rag"

    _run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_http(tmp: Path, *extra: str, env_extra: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**_params(tmp).env, **(env_extra or {})}
    proc = subprocess.Popen([SERVEWISE, "serve", "--http", f"127.0.0.1:{port}", *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/mcp"
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


def test_streamable_http(isolated_env):
    proc, url = _start_http(isolated_env)
    try:
        async def go():
            async with Client(url) as c:
                assert {t.name for t in (await c.list_tools()).tools} == TOOLS
                r = await c.call_tool("predict", {"model": "qwen3-8b", "gpu": "a100-80gb", "isl": 256, "osl": 64,
                                                  "concurrency": 4})
                assert not r.is_error and r.structured_content["output_tok_s"] > 0

        _run(go())
    finally:
        proc.terminate()
        proc.wait(10)


def test_http_token_is_required_and_checked(isolated_env):
    proc, url = _start_http(isolated_env, "--require-token", env_extra={"SERVEWISE_MCP_TOKEN": "s3cret-token"})
    try:
        assert httpx.post(url, json={}, timeout=5).status_code == 401
        assert httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        ok = httpx.post(url, headers={"Authorization": "Bearer s3cret-token", "Accept": "application/json, text/event-stream"},
                        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}, timeout=10)
        assert ok.status_code != 401
    finally:
        proc.terminate()
        proc.wait(10)


def test_non_loopback_without_token_is_refused(servewise_bin, monkeypatch):
    monkeypatch.delenv("SERVEWISE_MCP_TOKEN", raising=False)
    r = servewise_bin("serve", "--http", "0.0.0.0:8799")
    assert r.returncode == 2 and "bearer token" in r.stderr


INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def test_inspector_cli_lists_tools_with_schemas(isolated_env):
    npx = shutil.which("npx")
    assert npx, "npx (Node.js) is needed for the MCP Inspector smoke test; install nodejs and npm"
    env = {**_params(isolated_env).env, "npm_config_yes": "true"}
    proc = subprocess.run([npx, "-y", INSPECTOR, "--cli", SERVEWISE, "serve", "--method", "tools/list"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tools = {t["name"]: t for t in json.loads(proc.stdout)["tools"]}
    assert set(tools) == TOOLS
    assert all(t["inputSchema"]["type"] == "object" for t in tools.values())
    assert "model" in tools["predict"]["inputSchema"]["properties"]
