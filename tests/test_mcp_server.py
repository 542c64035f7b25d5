"""The MCP server through real clients: the `mcp` Python client over stdio on the default protocol
(2026-07-28) and on the handshake era (`mode="legacy"`, 2025-11-25), with and without sampling and
elicitation callbacks, and the MCP Inspector CLI. HTTP is in test_mcp_http.py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import CreateMessageResult, ElicitResult, EmbeddedResource, ResourceLink, TextContent

from kb.audit import recent_calls
from kb.catalog import DATA_DIR, open_kb
from planner.whatif import parse_change

SERVEWISE = str(Path(sys.executable).parent / "servewise")
TOOLS = {"predict", "capacity", "add_model", "build_spec", "recommend", "whatif", "render", "propose_pr", "slo_report",
         "list_outcomes", "cluster_status"}
MODES = ["auto", "legacy"]  # the client's default (2026-07-28) and the handshake era (2025-11-25)
BATCH = "Nightly batch summarization of support tickets, ~3k-token documents, summaries of about 300 tokens"


def params(tmp: Path) -> StdioServerParameters:
    env = {**os.environ, "SERVEWISE_KB": str(tmp / "kb.sqlite"), "SERVEWISE_LOCAL_FORGE": str(tmp / "forge.git"),
           "SERVEWISE_CONFIG": str(tmp / "config.toml"), "SERVEWISE_PROMETHEUS": "http://127.0.0.1:9"}
    return StdioServerParameters(command=SERVEWISE, args=["serve"], env=env)


def _config(name: str) -> dict:
    """A real model's config.json (copies pinned in kb/data/hf_configs/SOURCES.json)."""
    return json.loads((DATA_DIR / "hf_configs" / name).read_text())


def _run(coro):
    return asyncio.run(coro)


def _size(result) -> int:
    """Characters a client receives for one tool result: every content block plus the structured content."""
    return len(json.dumps([c.model_dump(mode="json", exclude_none=True) for c in result.content])) + \
        len(json.dumps(result.structured_content or {}))


def test_stdio_default_protocol_lists_and_calls_every_tool(isolated_env):
    async def go():
        async with Client(params(isolated_env)) as c:
            assert c.protocol_version == "2026-07-28"
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == TOOLS
            assert all(t.title and t.annotations is not None for t in tools.values())
            assert all(t.input_schema.get("additionalProperties") is False for t in tools.values())
            assert tools["predict"].annotations.read_only_hint and not tools["propose_pr"].annotations.read_only_hint
            assert tools["propose_pr"].annotations.open_world_hint and not tools["recommend"].annotations.idempotent_hint
            props = tools["predict"].input_schema["properties"]
            assert "fp8" in json.dumps(props["weight_dtype"]) and "enum" in json.dumps(props["weight_dtype"])
            assert "rag" in json.dumps(tools["build_spec"].input_schema["properties"]["use_case"])
            assert tools["recommend"].output_schema and tools["render"].output_schema

            ok = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "l40s", "isl": 512, "osl": 128, "qps": 2})
            assert not ok.is_error and ok.structured_content["tpot_ms"]["p90"] > 0
            # a benchmark run of one round (every request sent at once) queues more than the default ten rounds
            sweep = {"model": "llama-3.1-8b", "gpu": "h100", "isl": 4096, "osl": 256, "concurrency": 32}
            one_round = await c.call_tool("predict", {**sweep, "num_prompts": 32})
            ten_rounds = await c.call_tool("predict", sweep)
            assert one_round.structured_content["ttft_ms"]["mean"] > ten_rounds.structured_content["ttft_ms"]["mean"]
            assert "32 requests in all" in " ".join(one_round.structured_content["assumptions"])
            moe = {"model": "openai/gpt-oss-120b", "gpu": "h200", "tp": 4, "isl": 1024, "osl": 256, "concurrency": 4}
            ep, tp = [await c.call_tool("predict", {**moe, "expert_parallel": on}) for on in (True, False)]
            assert ep.structured_content["tpot_ms"]["mean"] > tp.structured_content["tpot_ms"]["mean"]
            dense_ep = await c.call_tool("predict", {**moe, "model": "llama-3.1-8b", "expert_parallel": True})
            assert dense_ep.is_error and "is dense" in dense_ep.content[0].text
            bad = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "h10", "isl": 512, "osl": 128, "qps": 2})
            assert bad.is_error and "H100-SXM-80GB" in bad.content[0].text
            extra = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "l4", "isl": 5, "osl": 5, "qps": 1,
                                                  "prompt_len": 9})
            assert extra.is_error and "prompt_len" in extra.content[0].text and "pydantic" not in extra.content[0].text
            typed = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "l4", "isl": "many", "osl": 5, "qps": 1})
            assert typed.is_error and "isl" in typed.content[0].text and "errors.pydantic.dev" not in typed.content[0].text
            huge = await c.call_tool("predict", {"model": "x" * 100_000, "gpu": "l4", "isl": 1, "osl": 1, "qps": 1})
            assert huge.is_error and len(huge.content[0].text) < 500
            flood = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "l40s", "isl": 512, "osl": 128,
                                                  "qps": 100_000})
            assert flood.is_error and "queue grows without bound" in flood.content[0].text
            cap = await c.call_tool("capacity", {"model": "llama-3.1-8b", "gpu": "l40s", "qps": 5})
            assert not cap.is_error and cap.structured_content["replicas"] >= 1
            fast = await c.call_tool("capacity", {"model": "llama-3.1-8b", "gpu": "l40s", "qps": 5, "ttft_p90_ms": 1})
            assert fast.is_error and "TTFT" in fast.content[0].text
            nofit = await c.call_tool("capacity", {"model": "llama-3.1-70b", "gpu": "l4", "qps": 5})
            assert nofit.is_error and "does not fit" in nofit.content[0].text and "GiB" in nofit.content[0].text
            added = await c.call_tool("add_model", {"config": _config("Qwen--Qwen3-14B.json"), "name": "acme/qwen-ft"})
            assert not added.is_error and added.structured_content["params_total_b"] > 14

            spec = await c.call_tool("build_spec", {"text": "support chatbot at 20 req/s"})
            assert spec.structured_content["extracted_by"] == "rules" and spec.structured_content["traffic"]["qps"] == 20
            plan = await c.call_tool("recommend", {"spec": spec.structured_content})
            assert not plan.is_error and plan.structured_content["chosen"] == 0
            assert len(plan.structured_content["candidates"]) <= 3
            big = await c.call_tool("recommend", {"spec": {**spec.structured_content, "description": "x" * 1_000_000}})
            assert big.is_error and "too large" in big.content[0].text and len(big.content[0].text) < 500
            pid = plan.structured_content["id"]
            link = next(b for b in plan.content if isinstance(b, ResourceLink))
            assert str(link.uri) == f"kb://plans/{pid}" and link.size > 0
            full = json.loads((await c.read_resource(str(link.uri))).contents[0].text)
            assert full["id"] == pid and full["candidates"][0]["predicted"]["ttft_ms"]["p99"] > 0
            detailed = await c.call_tool("recommend", {"spec": spec.structured_content, "top": 1, "detail": True})
            assert any(isinstance(b, EmbeddedResource) for b in detailed.content)

            w = await c.call_tool("whatif", {"plan_id": pid, "changes": ["traffic=x2"]})
            assert not w.is_error and w.structured_content["deltas"] and w.structured_content["replanned"]
            wbad = await c.call_tool("whatif", {"plan_id": pid, "changes": ["colour=blue"]})
            assert wbad.is_error and "allowed" in wbad.content[0].text
            nofit = await c.call_tool("whatif", {"plan_id": pid, "changes": ["model=llama-3.1-70b", "gpu=l4"]})
            assert nofit.is_error and "does not fit" in nofit.content[0].text

            r = await c.call_tool("render", {"plan_id": pid})
            assert not r.is_error and "validated" in r.structured_content
            files = {f["name"]: f for f in r.structured_content["files"]}
            assert "inferenceservice.yaml" in files and "plan.json" in files
            manifest = (await c.read_resource(files["inferenceservice.yaml"]["uri"])).contents[0].text
            assert "kind: InferenceService" in manifest and len(manifest.encode()) == files["inferenceservice.yaml"]["bytes"]
            assert {str(b.uri) for b in r.content if isinstance(b, ResourceLink)} == {f["uri"] for f in files.values()}
            llm = await c.call_tool("render", {"plan_id": pid, "target": "llmisvc"})
            assert not llm.is_error, llm.content[0].text
            uri = next(f["uri"] for f in llm.structured_content["files"] if f["name"] == "llminferenceservice.yaml")
            assert "kind: LLMInferenceService" in (await c.read_resource(uri)).contents[0].text
            rbad = await c.call_tool("render", {"plan_id": "plan-nope"})
            assert rbad.is_error and "no plan" in rbad.content[0].text
            with pytest.raises(MCPError, match="no plan"):
                await c.read_resource("kb://plans/plan-nope")

            pr1 = await c.call_tool("propose_pr", {"plan_id": pid})
            pr2 = await c.call_tool("propose_pr", {"plan_id": pid})
            assert pr1.structured_content["created"] and not pr2.structured_content["created"]
            assert pr1.structured_content["number"] == pr2.structured_content["number"]
            rep = await c.call_tool("slo_report", {"plan_id": pid, "window": "5m"})
            assert not rep.is_error and rep.structured_content["verdict"] == "unreachable"
            assert rep.structured_content["cost_observed_usd_month"] is None  # nothing observed, nothing filled in
            rbad = await c.call_tool("slo_report", {"plan_id": pid, "window": "forever"})
            assert rbad.is_error and "window" in rbad.content[0].text
            outs = await c.call_tool("list_outcomes", {})
            assert not outs.is_error and outs.structured_content["outcomes"] == [] and outs.structured_content["total"] == 0
            cl = await c.call_tool("cluster_status", {"context": "no-such-context"})
            assert cl.is_error
            return pid

    pid = _run(go())
    calls = recent_calls(open_kb(isolated_env / "kb.sqlite"), 100)
    assert {c["tool"] for c in calls} == TOOLS
    assert any(c["outcome"] == "error:bad_input" for c in calls) and all(len(c["args_digest"]) == 64 for c in calls)
    assert pid


@pytest.mark.parametrize("mode", MODES)
def test_add_model_from_inline_config_or_hub_id_then_plan_with_it(isolated_env, mode):
    """add_model reads no path on the server: the client sends the config.json, or names a Hugging Face id read
    from the server's HF cache (laid out as huggingface_hub writes it) or the Hub (offline here)."""
    cache = isolated_env / "hf-cache"
    snap = cache / "models--acme--cached-model" / "snapshots" / "0123456789abcdef"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(_config("Qwen--Qwen3-4B.json")))
    (cache / "models--acme--cached-model" / "refs").mkdir()
    (cache / "models--acme--cached-model" / "refs" / "main").write_text("0123456789abcdef")
    p = params(isolated_env)
    p.env.update({"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})
    r1 = _config("deepseek-ai--DeepSeek-R1.json")

    async def go():
        async with Client(p, mode=mode) as c:
            tool = next(t for t in (await c.list_tools()).tools if t.name == "add_model")
            a = tool.annotations
            assert not a.read_only_hint and not a.destructive_hint and a.idempotent_hint and a.open_world_hint
            assert tool.output_schema and set(tool.input_schema["properties"]) == {"config", "hf_id", "name", "license"}
            first = await c.call_tool("add_model", {"config": r1, "name": "acme/r1-ft", "license": "mit"})
            assert not first.is_error, first.content[0].text
            m = first.structured_content
            assert m["added"] and m["hf_id"] == "acme/r1-ft" and m["attention"] == "mla"
            assert (m["experts"], m["experts_per_token"], m["weight_dtype"]) == (256, 8, "fp8_block")
            assert m["params_total_b"] == pytest.approx(671, rel=0.03) and len(json.dumps(m)) < 2000
            again = await c.call_tool("add_model", {"config": r1, "name": "acme/r1-ft"})
            assert not again.is_error and not again.structured_content["added"]  # idempotent: nothing rewritten
            assert again.structured_content["kb_version"] == m["kb_version"]
            other = await c.call_tool("add_model", {"config": _config("Qwen--Qwen3-14B.json"), "name": "acme/r1-ft"})
            assert other.is_error and "different architecture" in other.content[0].text
            seed = await c.call_tool("add_model", {"config": r1, "name": "deepseek-ai/DeepSeek-R1"})
            assert seed.is_error and "catalog model" in seed.content[0].text
            pred = await c.call_tool("predict", {"model": "acme/r1-ft", "gpu": "h200", "tp": 8, "isl": 1000, "osl": 200,
                                                 "qps": 0.5})
            assert not pred.is_error, pred.content[0].text
            models = json.loads((await c.read_resource("kb://models")).contents[0].text)
            assert next(x for x in models if x["hf_id"] == "acme/r1-ft")["origin"] == "user"

            cached = await c.call_tool("add_model", {"hf_id": "acme/cached-model"})
            assert not cached.is_error and cached.structured_content["hf_id"] == "acme/cached-model"
            assert "huggingface cache" in cached.structured_content["source"]
            offline = await c.call_tool("add_model", {"hf_id": "acme/not-cached"})
            assert offline.is_error and "Hugging Face Hub" in offline.content[0].text
            for bad, why in [({}, "exactly one"), ({"config": r1, "hf_id": "a/b"}, "exactly one"),
                             ({"hf_id": "../../etc"}, "not a Hugging Face model id"),
                             ({"hf_id": "acme/.."}, "not a Hugging Face model id"),
                             ({"config": {**r1, "pad": "x" * 200_000}, "name": "a/b"}, "not a config.json"),
                             ({"config": r1}, "give name"),
                             ({"config": r1, "name": "no-org"}, "org/name"),
                             ({"config": _config("nvidia--Nemotron-H-56B-Base-8K.json"), "name": "a/b"},
                              "hybrid_override_pattern"),
                             ({"config": r1, "name": "a/b", "path": "/etc/passwd"}, "path")]:
                out = await c.call_tool("add_model", bad)
                assert out.is_error and why in out.content[0].text, (bad.keys(), out.content[0].text)
                assert "Traceback" not in out.content[0].text and len(out.content[0].text) < 600

    _run(go())


@pytest.mark.parametrize("mode", MODES)
def test_a_traffic_mix_comes_back_per_class(isolated_env, mode):
    async def go():
        async with Client(params(isolated_env), mode=mode) as c:
            spec = await c.call_tool("build_spec", {"use_case": "chatbot", "qps": 10, "ttft_p90_ms": 600,
                                                    "models": ["llama-3.1-8b"], "gpus": ["h100"],
                                                    "traffic_mix": ["chat:0.7:300:200", "rag:0.3:8000:400"]})
            assert not spec.is_error, spec.content[0].text
            assert [k["name"] for k in spec.structured_content["traffic_mix"]] == ["chat", "rag"]
            plan = await c.call_tool("recommend", {"spec": spec.structured_content, "top": 1})
            assert not plan.is_error, plan.content[0].text
            view = plan.structured_content
            assert view["spec"]["traffic_mix"][1].startswith("rag 30%: 8000 prompt / 400 output tokens")
            chat, rag = view["candidates"][0]["classes"]
            assert (chat["name"], rag["name"]) == ("chat", "rag") and rag["ttft_p90_ms"] > chat["ttft_p90_ms"]
            assert rag["meets_slos"] and "class 'rag'" in view["candidates"][0]["binding_constraint"]
            both = await c.call_tool("build_spec", {"use_case": "chatbot", "qps": 1, "prompt_tokens": 500,
                                                    "traffic_mix": ["chat:1:300:200"]})
            assert both.is_error and "not both" in both.content[0].text
            plain = await c.call_tool("recommend", {"use_case": "chatbot", "qps": 2, "top": 1})
            assert "classes" not in plain.content[0].text  # no mix, no per-class view in the compact text

    _run(go())


def test_resources_prompts_and_completions(isolated_env):
    async def go():
        async with Client(params(isolated_env)) as c:
            resources = {str(r.uri): r for r in (await c.list_resources()).resources}
            assert set(resources) >= {"kb://models", "kb://gpus", "kb://use-cases", "kb://benchmarks"}
            for uri, r in resources.items():
                body = (await c.read_resource(uri)).contents[0].text
                assert r.title and r.name and not r.name.endswith("_resource") and r.size == len(body.encode())
            assert resources["kb://benchmarks"].size < 20_000  # a summary, the rows are paged
            summary = json.loads((await c.read_resource("kb://benchmarks")).contents[0].text)
            page = json.loads((await c.read_resource("kb://benchmarks/page/1")).contents[0].text)
            assert 0 < len(page["rows"]) <= 50 and page["pages"] == summary["pages"] >= 2
            templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
            assert "kb://plans/{plan_id}" in templates and "kb://benchmarks/page/{page}" in templates

            prompts = {p.name: p for p in (await c.list_prompts()).prompts}
            assert set(prompts) == {"plan-deployment", "review-pr", "right-size"} and all(p.title for p in prompts.values())
            p = await c.get_prompt("plan-deployment", {"need": "a chatbot"})
            assert "build_spec" in p.messages[0].content.text

            plan = await c.call_tool("recommend", {"use_case": "chatbot", "qps": 10, "top": 2})
            pid = plan.structured_content["id"]
            review = await c.get_prompt("review-pr", {"plan_id": pid})
            embedded = review.messages[0].content
            assert isinstance(embedded, EmbeddedResource) and json.loads(embedded.resource.text)["id"] == pid
            with pytest.raises(MCPError, match="plan_id") as missing:
                await c.get_prompt("review-pr", {})
            assert missing.value.error.code == -32602
            with pytest.raises(MCPError, match="no plan"):
                await c.get_prompt("review-pr", {"plan_id": "plan-nope"})
            right = (await c.get_prompt("right-size", {"plan_id": pid})).messages[0].content.text
            assert right.index("slo_report") < right.index("whatif")
            keys = right.split("keys whatif accepts:")[1].split(")")[0]
            for key in keys.split(","):
                parse_change(f"{key.strip()}=1")  # every key the prompt offers is one whatif accepts

            from mcp.types import PromptReference, ResourceTemplateReference

            done = await c.complete(PromptReference(type="ref/prompt", name="review-pr"), {"name": "plan_id", "value": "plan-"})
            assert pid in done.completion.values
            models = await c.complete(ResourceTemplateReference(type="ref/resource", uri="kb://plans/{plan_id}"),
                                      {"name": "model", "value": "llama-3.1"})
            assert models.completion.values and all("llama-3.1" in v.lower() for v in models.completion.values)
            gpus = await c.complete(PromptReference(type="ref/prompt", name="review-pr"), {"name": "gpu", "value": "h1"})
            assert any(v.startswith("H100") or v.lower().startswith("h100") for v in gpus.completion.values)
            cases = await c.complete(PromptReference(type="ref/prompt", name="review-pr"), {"name": "use_case", "value": "ra"})
            assert cases.completion.values == ["rag"]

    _run(go())


@pytest.mark.parametrize("mode", MODES)
def test_elicitation_asks_for_missing_traffic_and_the_spec_carries_the_answer(isolated_env, mode):
    asked = []

    async def elicitor(context, request):
        asked.append(request.message)
        return ElicitResult(action="accept", content={"qps": 37})

    async def go():
        async with Client(params(isolated_env), mode=mode, elicitation_callback=elicitor) as c:
            r = await c.call_tool("build_spec", {"text": BATCH})
            assert not r.is_error, r.content[0].text
            spec = r.structured_content
            assert asked and "traffic" in asked[0]
            assert spec["traffic"]["qps"] == 37 and not spec["questions"]
            assert spec["prompt_tokens"]["mean"] == 3000 and spec["output_tokens"]["mean"] == 300
            assert any(a["field"] == "traffic.qps" and "elicitation" in a["source"] for a in spec["assumptions"])
            plan = await c.call_tool("recommend", {"spec": spec, "top": 1})
            assert not plan.is_error
            asked.clear()
            stated = await c.call_tool("build_spec", {"text": BATCH, "qps": 5})
            assert stated.structured_content["traffic"]["qps"] == 5 and not asked  # stated traffic: nobody is asked

    _run(go())


@pytest.mark.parametrize("mode", MODES)
def test_declined_or_absent_elicitation_leaves_the_question_and_recommend_refuses(isolated_env, mode):
    async def decline(context, request):
        return ElicitResult(action="decline")

    async def go():
        async with Client(params(isolated_env), mode=mode, elicitation_callback=decline) as c:
            spec = (await c.call_tool("build_spec", {"text": BATCH})).structured_content
            assert spec["questions"] and spec["traffic"]["qps"] == 1
            assert any("decline" in a["source"] for a in spec["assumptions"])
        async with Client(params(isolated_env), mode=mode) as c:  # no elicitation: the questions come back
            spec = (await c.call_tool("build_spec", {"text": BATCH})).structured_content
            assert any("traffic" in q.lower() for q in spec["questions"])
            refused = await c.call_tool("recommend", {"spec": spec})
            assert refused.is_error and "traffic" in refused.content[0].text.lower()
            assert (await c.call_tool("recommend", {})).is_error
            words = await c.call_tool("recommend", {"text": "a translation service"})
            assert words.is_error and "open questions" in words.content[0].text

    _run(go())


@pytest.mark.parametrize("mode", MODES)
def test_sampling_client_model_extracts_and_a_bad_reply_falls_back_to_rules(isolated_env, mode):
    replies = iter(['Sure: {"use_case": "rag", "qps": 7, "ttft_p90_ms": 900, "prompt_tokens": 8000}',
                    "I think it is about seven per second.",
                    '{"use_case": "rag", "qps": -3}',
                    '{"models": ["no-such-model-xyz"], "qps": 4}'])

    async def sampler(context, request):
        return CreateMessageResult(role="assistant", model="test-model",
                                   content=TextContent(type="text", text=next(replies)))

    async def go():
        async with Client(params(isolated_env), mode=mode, sampling_callback=sampler) as c:
            r = await c.call_tool("build_spec", {"text": "questions over our wiki, about seven a second"})
            s = r.structured_content
            assert s["extracted_by"] == "sampling" and s["use_case"] == "rag" and s["traffic"]["qps"] == 7
            assert s["prompt_tokens"]["mean"] == 8000 and s["slos"]["ttft_p90_ms"] == 900
            for _ in range(3):  # prose, an invalid value, an unknown model: the rules read the words instead
                r = await c.call_tool("build_spec", {"text": "questions over our wiki via retrieval, 7 req/s"})
                assert not r.is_error, r.content[0].text
                s = r.structured_content
                assert s["extracted_by"] == "rules" and s["use_case"] == "rag" and s["traffic"]["qps"] == 7
                assert s["assumptions"][0]["field"] == "extracted_by"
        async with Client(params(isolated_env), mode=mode) as c:  # no sampling callback: the rule extractor answers
            r = await c.call_tool("build_spec", {"text": "questions over our wiki via retrieval, 7 req/s"})
            assert r.structured_content["extracted_by"] == "rules" and r.structured_content["use_case"] == "rag"

    _run(go())


def test_both_callbacks_sample_first_then_ask(isolated_env):
    async def sampler(context, request):
        return CreateMessageResult(role="assistant", model="m", content=TextContent(
            type="text", text='{"use_case": "offline-batch", "output_tokens": 300}'))

    async def elicitor(context, request):
        return ElicitResult(action="accept", content={"qps": 12.5})

    async def go():
        async with Client(params(isolated_env), sampling_callback=sampler, elicitation_callback=elicitor) as c:
            s = (await c.call_tool("build_spec", {"text": BATCH})).structured_content
            assert s["extracted_by"] == "sampling" and s["use_case"] == "offline-batch"
            assert s["traffic"]["qps"] == 12.5 and not s["questions"]

    _run(go())


def test_build_spec_keeps_stated_facts_and_takes_explicit_overrides(isolated_env):
    async def go():
        async with Client(params(isolated_env)) as c:
            words = await c.call_tool("build_spec", {"text": "RAG over our docs, 8k tokens prompts, 20 req/s, quality "
                                                             "matters most"})
            s = words.structured_content
            assert s["prompt_tokens"]["mean"] == 8000 and s["priority"] == "quality"
            code = (await c.call_tool("build_spec", {"text": "code completion for 500 developers, ~2k-token context / "
                                                              "~64 tokens"})).structured_content
            assert code["prompt_tokens"]["mean"] == 2000 and code["output_tokens"]["mean"] == 64
            assert code["use_case"] == "code-completion" and code["traffic"]["users"] == 500
            batch = (await c.call_tool("build_spec", {"text": "Nightly batch summarization of 2 million documents "
                                                               "within a 6-hour window"})).structured_content
            assert batch["traffic"]["qps"] == pytest.approx(2e6 / (6 * 3600)) and not batch["questions"]
            o = (await c.call_tool("build_spec", {
                "use_case": "chatbot", "qps": 3, "prompt_tokens": 1200, "output_tokens": 90, "ttft_p90_ms": 400,
                "tpot_p90_ms": 40, "e2e_p95_ms": 5000, "priority": "cost", "models": ["qwen3-8b"], "gpus": ["l40s"],
                "quantizations": ["fp8"], "max_gpus": 4, "budget_usd_month": 9000, "peak_factor": 1.5})).structured_content
            assert (o["prompt_tokens"]["mean"], o["output_tokens"]["mean"], o["priority"]) == (1200, 90, "cost")
            assert o["constraints"]["gpus"] == ["L40S"] and o["constraints"]["quantizations"] == ["fp8"]
            assert o["constraints"]["models"] and o["budget_usd_month"] == 9000 and o["traffic"]["peak_factor"] == 1.5
            unknown = await c.call_tool("build_spec", {"text": "a chatbot", "prompt_len": 8000})
            assert unknown.is_error and "prompt_len" in unknown.content[0].text
            enum = await c.call_tool("build_spec", {"use_case": "poetry"})
            assert enum.is_error and "use_case" in enum.content[0].text

    _run(go())


def test_every_tool_result_fits_a_models_context(isolated_env):
    """Typical calls of every tool stay under 16,000 characters (about 4,000 tokens) by default."""
    sizes = {}

    async def go():
        async with Client(params(isolated_env)) as c:
            tl = await c.list_tools()
            sizes["tools/list"] = len(json.dumps([t.model_dump(mode="json", exclude_none=True) for t in tl.tools]))
            calls = [("predict", {"model": "llama-3.1-70b", "gpu": "h100", "tp": 4, "isl": 2000, "osl": 300, "qps": 5}),
                     ("add_model", {"config": _config("deepseek-ai--DeepSeek-R1.json"), "name": "acme/r1"}),
                     ("capacity", {"model": "llama-3.1-8b", "gpu": "l40s", "qps": 20}),
                     ("build_spec", {"text": "customer support chatbot for 2,000 users, p90 first token under 300 ms, "
                                             "cheapest that holds " * 20})]
            for name, args in calls:
                sizes[name] = _size(await c.call_tool(name, args))
            plan = await c.call_tool("recommend", {"use_case": "rag", "qps": 30})
            sizes["recommend"] = _size(plan)
            pid = plan.structured_content["id"]
            for name, args in [("whatif", {"plan_id": pid, "changes": ["traffic=x2", "gpu=l40s"]}),
                               ("render", {"plan_id": pid}), ("propose_pr", {"plan_id": pid}),
                               ("slo_report", {"plan_id": pid}),
                               ("list_outcomes", {}), ("cluster_status", {"context": "none"})]:
                sizes[name] = _size(await c.call_tool(name, args))

    _run(go())
    assert all(size < 16_000 for name, size in sizes.items() if name != "tools/list"), sizes
    # 55,449 before issue 17; 46,030 with issue 20's spec and candidate options; 48,721 with add_model, 44,795 once
    # the schemas dropped `"default": null` and wrote optional simple types as ["T", "null"]; 46,810 with the
    # per-class traffic mix (build_spec's traffic_mix, class targets, per-class predictions and views); 47,730 with the
    # TPOT shares every prediction states (the coordinates of its TPOT correction); 47,851 with predict's expert_parallel
    assert sizes["tools/list"] < 47_900, sizes


INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def _inspector(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    npx = shutil.which("npx")
    if not npx:
        pytest.skip("npx (Node.js) is not installed: the MCP Inspector CLI cannot run")
    env = {**params(tmp).env, "npm_config_yes": "true"}
    # The Inspector waits 15 s for the server by default; a loaded machine starts it slower (2.12.0's own advice).
    return subprocess.run([npx, "-y", INSPECTOR, "--cli", "--connect-timeout", "300000", SERVEWISE, "serve", *args],
                          capture_output=True, text=True, timeout=600, env=env)


def test_inspector_cli_lists_tools_and_calls_one(isolated_env):
    listed = _inspector(isolated_env, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    tools = {t["name"]: t for t in json.loads(listed.stdout)["tools"]}
    assert set(tools) == TOOLS and all(t.get("title") for t in tools.values())
    assert all(t["inputSchema"]["type"] == "object" for t in tools.values())
    called = _inspector(isolated_env, "--method", "tools/call", "--tool-name", "capacity", "--tool-arg", "model=qwen3-8b",
                        "--tool-arg", "gpu=l40s", "--tool-arg", "qps=4")
    assert called.returncode == 0, called.stderr[-2000:]
    result = json.loads(called.stdout)
    assert not result.get("isError") and result["structuredContent"]["replicas"] >= 1
    refused = _inspector(isolated_env, "--method", "tools/call", "--tool-name", "recommend")
    assert refused.returncode == 5 and json.loads(refused.stdout)["isError"]  # 2.12.0 exits 5 on a tool error
