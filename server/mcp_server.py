"""The MCP server: servewise's planning capabilities as tools, its knowledge as resources, and prompts
that walk a person through a deployment. Thin translation over server.actions, planner, gitops and kb.

Every tool call is bounded in time, turns bad input into a short tool error that says what to change,
and leaves one row in the knowledge base's audit log. Results are compact views (server.mcp_views) with
resource links to the full objects; `detail=true` embeds the full object too.

Sampling and elicitation go through the SDK's resolvers (`Resolve(...)` returning `Sample`/`Elicit`), the
one mechanism that works on both the 2026-07-28 protocol (the request rides an input_required result and
the client retries with the answer) and handshake-era connections (a request mid-call).
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import time
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import anyio
from mcp.server.mcpserver import Context, ElicitationResult, MCPServer, Resolve, Sample
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.mcpserver.resolve import AcceptedElicitation, Elicit
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    Completion,
    CreateMessageResult,
    EmbeddedResource,
    PromptReference,
    ResourceLink,
    ResourceTemplateReference,
    SamplingMessage,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kb.audit import record_call
from kb.catalog import DATA_DIR
from planner import __version__
from planner.catalog import WeightDtype
from planner.contracts import DeploymentSpec, MemoryBreakdown, Plan, Prediction, Priority, PredictQuery
from planner.errors import BadInput, ServewiseError
from server import actions
from server.context import AppContext, app_context
from server.mcp_views import (
    AddedModel,
    ManifestFile,
    OutcomesPage,
    PlanView,
    RenderView,
    ReportView,
    WhatIfView,
    added_model_view,
    clip,
    manifest_uri,
    plan_uri,
    plan_view,
    report_view,
    whatif_view,
)
from server.output import validation_message

log = logging.getLogger("servewise.mcp")

CALL_TIMEOUT_S = 60.0
MAX_TEXT = 4000
MAX_SPEC_JSON = 32_000
PAGE = 50  # rows per page of a listed resource

INSTRUCTIONS = (
    "servewise plans LLM serving on Kubernetes with vLLM + KServe. Typical flow: build_spec (from the person's "
    "words; ask the person its questions) -> recommend (ranked, explained plan with predicted latency and monthly "
    "cost; returns a plan id) -> whatif (alternatives) -> render (validated manifests) -> propose_pr (GitOps pull "
    "request). Use predict or capacity for one configuration. Results are compact; full objects are resources "
    "(kb://plans/{id}). Every number carries its calibration and assumptions: show them to the person."
)

USE_CASES: tuple[str, ...] = tuple(u["name"] for u in json.loads((DATA_DIR / "use_cases.json").read_text()))
UseCaseName = Literal[USE_CASES]  # type: ignore[valid-type]  # the seed templates, as an enum in the schema


class _Server(MCPServer):
    """MCPServer with servewise's argument contract: every tool refuses unknown arguments
    (`additionalProperties: false`), argument errors are one short line without pydantic's links,
    a prompt called without a required argument gets an invalid-params error that names it, and
    listed resources carry their size."""

    def add_tool(self, fn, name=None, title=None, description=None, annotations=None, icons=None, meta=None,
                 structured_output=None) -> None:
        super().add_tool(fn, name=name, title=title, description=description, annotations=annotations, icons=icons,
                         meta=meta, structured_output=structured_output)
        # The SDK builds a lenient argument model; a client's misspelt option must not pass silently.
        tool = self._tool_manager.get_tool(name or fn.__name__)
        strict = type(tool.fn_metadata.arg_model.__name__, (tool.fn_metadata.arg_model,),
                      {"model_config": ConfigDict(extra="forbid", arbitrary_types_allowed=True)})
        tool.fn_metadata.arg_model = strict
        tool.parameters = _lean(strict.model_json_schema(by_alias=True))
        if tool.fn_metadata.output_schema:
            tool.fn_metadata.output_schema = _lean(tool.fn_metadata.output_schema, output=True)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None):
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"invalid arguments for {name}: {validation_message(exc.__cause__)}") from exc.__cause__
            raise

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Context | None = None):
        prompt = self._prompt_manager.get_prompt(name)
        missing = [a.name for a in (prompt.arguments or []) if a.required and not (arguments or {}).get(a.name)] if prompt else []
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"prompt {name} needs {', '.join(missing)}"
                           + (": a plan id from recommend (complete it to list saved plans)" if "plan_id" in missing else ""))
        return await super().get_prompt(name, arguments, context)

    async def list_resources(self):
        resources = await super().list_resources()
        for r in resources:
            # Static resources are small reads of the kb; the size lets a client decide before reading one.
            contents = list(await self.read_resource(r.uri))
            r.size = sum(len(c.content.encode() if isinstance(c.content, str) else c.content) for c in contents)
        return resources


def _lean(schema: Any, parent: str = "", output: bool = False) -> Any:
    """The same JSON schema in fewer characters, for no help to a model lost: without pydantic's generated `title`s
    (a quarter of tools/list), without `"default": null` (an optional property is absent by default anyway) and,
    in an output schema, without any default (the server sends every value), and an optional simple type
    `{"anyOf": [{"type": T, ...}, {"type": "null"}]}` as `{"type": [T, "null"], ...}`."""
    if isinstance(schema, list):
        return [_lean(v, output=output) for v in schema]
    if not isinstance(schema, dict):
        return schema
    if parent == "properties":  # keys here are property names, not schema keywords
        return {k: _lean(v, output=output) for k, v in schema.items()}
    out = {k: _lean(v, k, output) for k, v in schema.items()
           if not (k == "title" and isinstance(v, str)) and not (k == "default" and (v is None or output))}
    branches = out.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = branches[0] if branches[1] == {"type": "null"} else branches[1]
        # Only a plain typed branch folds: enum/const/$ref/anyOf would not admit null once merged.
        if isinstance(other.get("type"), str) and not set(other) & {"enum", "const", "$ref", "anyOf", "oneOf", "allOf"} \
                and not set(other) & set(out):
            out.pop("anyOf")
            out.update({**other, "type": [other["type"], "null"]})
    return out


mcp = _Server("servewise", title="servewise: LLM serving planner", version=__version__, instructions=INSTRUCTIONS,
              log_level="WARNING")

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def _record(ctx: AppContext, tool: str, args: dict, started: float, outcome: str, message: str) -> None:
    """Audit one call. A busy or failing audit write must not turn a finished call into an error; it is logged."""
    try:
        record_call(lambda: ctx.kb, actor="mcp", tool=tool, args=args, duration_ms=(time.monotonic() - started) * 1e3,
                    outcome=outcome, message=message)
    except (sqlite3.Error, ServewiseError) as exc:
        log.warning("audit row for %s not written: %s", tool, exc)


def _call(tool: str, fn, args: dict) -> Any:
    """Run one tool body with its own kb handle (in the worker thread), audit it, map errors."""
    ctx = app_context()
    started = time.monotonic()
    outcome, message = "ok", ""
    try:
        return fn(ctx)
    except ServewiseError as exc:
        outcome, message = f"error:{exc.code}", exc.message
        raise ToolError(clip(exc.message, 1500)) from None
    except ValidationError as exc:
        outcome, message = "error:bad_input", validation_message(exc)
        raise ToolError(f"invalid arguments: {message}") from None
    finally:
        _record(ctx, tool, args, started, outcome, message)


async def _bounded(tool: str, fn, args: dict) -> Any:
    try:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return await anyio.to_thread.run_sync(functools.partial(_call, tool, fn, args), abandon_on_cancel=True)
    except TimeoutError:
        raise ToolError(f"{tool} took longer than {CALL_TIMEOUT_S:g} s and was stopped; narrow the request "
                        "(fewer models/GPUs, a smaller top)") from None


def _result(view: BaseModel, text: str, links: list[ResourceLink] = (), embedded: list[EmbeddedResource] = ()) -> CallToolResult:
    """A short text for the model, resource links to the full objects, and the view as structured content."""
    return CallToolResult(content=[TextContent(type="text", text=text), *links, *embedded],
                          structured_content=view.model_dump(mode="json"))


def _embedded(uri: str, text: str, mime: str) -> EmbeddedResource:
    return EmbeddedResource(type="resource", resource=TextResourceContents(uri=uri, text=text, mime_type=mime))


def _compact_json(view: BaseModel) -> str:
    return json.dumps(view.model_dump(mode="json", exclude_none=True), separators=(",", ":"), ensure_ascii=False)


Text = Annotated[str, Field(max_length=MAX_TEXT)]
ModelName = Annotated[str, Field(max_length=200, description="HF id or alias, e.g. 'llama-3.1-8b', 'Qwen/Qwen3-8B'")]
GpuName = Annotated[str, Field(max_length=100, description="GPU name or alias, e.g. 'h100', 'L40S', 'A10G'")]
PlanId = Annotated[str, Field(max_length=100, description="id of a plan returned by recommend")]
Detail = Annotated[bool, Field(description="also embed the full object (large); the default result is a compact view "
                                           "with links to the full objects")]
Ms = Annotated[float, Field(gt=0, le=3_600_000)]
Tokens = Annotated[float, Field(gt=0, le=2_000_000)]


@mcp.tool(title="Predict latency and throughput of one configuration", annotations=READ_ONLY)
async def predict(model: ModelName, gpu: GpuName,
                  isl: Annotated[int, Field(gt=0, le=1_000_000, description="prompt tokens per request")],
                  osl: Annotated[int, Field(gt=0, le=1_000_000, description="output tokens per request")],
                  tp: Annotated[int, Field(ge=1, le=64, description="tensor-parallel GPUs per replica")] = 1,
                  pp: Annotated[int, Field(ge=1, le=16)] = 1,
                  concurrency: Annotated[int | None, Field(gt=0, le=100_000, description="closed loop of C clients (benchmark style)")] = None,
                  num_prompts: Annotated[int | None, Field(gt=0, le=1_000_000_000, description="with concurrency: requests the benchmark run sends in all (vllm bench serve --num-prompts); the clients' first requests arrive at once. Default 10 per client")] = None,
                  qps: Annotated[float | None, Field(gt=0, le=1_000_000, description="Poisson arrivals, requests/s over the deployment")] = None,
                  replicas: Annotated[int, Field(ge=1, le=1000)] = 1,
                  weight_dtype: Annotated[WeightDtype | None, Field(description="default: the model's native dtype")] = None,
                  expert_parallel: Annotated[bool, Field(description="vLLM --enable-expert-parallel (MoE, tp >= 2)")] = False,
                  ) -> Prediction:
    """Predict what vLLM does for ONE configuration under ONE load: TTFT, TPOT and E2E (mean, p50, p90, p95,
    p99, in ms), output tokens/s, and the per-GPU memory breakdown (GiB). Give exactly one of concurrency or qps.
    A load beyond what the replicas can serve is an error that says their capacity. The result names its
    calibration and lists its assumptions. To pick a configuration, call recommend instead."""
    args = {k: v for k, v in dict(model=model, gpu=gpu, isl=isl, osl=osl, tp=tp, pp=pp, concurrency=concurrency,
                                  num_prompts=num_prompts, qps=qps, replicas=replicas, weight_dtype=weight_dtype,
                                  expert_parallel=expert_parallel).items()
            if v is not None}

    def run(ctx: AppContext) -> Prediction:
        p = actions.predict_query(ctx, PredictQuery.model_validate(args))
        if p.saturated:
            # Beyond capacity the queue grows without bound: no latency or throughput figure is true.
            raise BadInput(f"{qps:g} req/s is more than {replicas} replica(s) of {model} on {tp}x {gpu} can serve: the "
                           "queue grows without bound, so no latency or throughput figure holds. Lower qps, add "
                           "replicas, or call capacity for the replicas this load needs.")
        return p

    return await _bounded("predict", run, args)


class Capacity(BaseModel):
    model: str
    gpu: str
    tp: int
    weight_dtype: str
    memory: MemoryBreakdown = Field(description="per-GPU memory in GiB at the goodput load")
    goodput_qps_per_replica: float = Field(description="largest req/s one replica sustains within the SLOs")
    binding: str
    replicas: int = Field(ge=1, description="replicas for the given peak load, with burst headroom")
    gpus_total: int


@mcp.tool(title="Memory fit and replicas for one configuration", annotations=READ_ONLY)
async def capacity(model: ModelName, gpu: GpuName,
                   qps: Annotated[float, Field(gt=0, le=1_000_000, description="peak requests/s the deployment must carry")],
                   isl: Annotated[int, Field(gt=0, le=1_000_000)] = 1024, osl: Annotated[int, Field(gt=0, le=1_000_000)] = 256,
                   tp: Annotated[int, Field(ge=1, le=64)] = 1, weight_dtype: WeightDtype | None = None,
                   ttft_p90_ms: Ms | None = 1000, tpot_p90_ms: Ms | None = 100, e2e_p95_ms: Ms | None = None) -> Capacity:
    """Memory fit and replicas for a given model, GPU and TP at a peak load: does it fit (GiB breakdown), how many
    req/s one replica carries within the latency targets (goodput), and how many replicas the peak needs. Targets
    no replica can meet are an error that says which target binds."""
    args = dict(model=model, gpu=gpu, qps=qps, isl=isl, osl=osl, tp=tp, weight_dtype=weight_dtype,
                ttft_p90_ms=ttft_p90_ms, tpot_p90_ms=tpot_p90_ms, e2e_p95_ms=e2e_p95_ms)

    def run(ctx: AppContext) -> Capacity:
        from kb.latency import load_latency_params
        from planner.capacity import goodput, replicas_for
        from planner.catalog import SloTargets
        from planner.memory import deployed_kv_dtype

        m, g = ctx.catalog.model(model), ctx.catalog.gpu(gpu)
        q = PredictQuery(model=m.hf_id, gpu=g.name, tp=tp, isl=isl, osl=osl, qps=qps, weight_dtype=weight_dtype,
                         kv_dtype=deployed_kv_dtype())
        gp = goodput(q, m, g, load_latency_params(), SloTargets(ttft_p90_ms=ttft_p90_ms, tpot_p90_ms=tpot_p90_ms,
                                                                e2e_p95_ms=e2e_p95_ms), ctx.correction(m.hf_id, g.name, tp))
        if gp.qps <= 0:
            raise BadInput(f"no load meets the targets on {tp}x {g.name} with {m.hf_id} ({gp.binding}), so no number of "
                           "replicas helps. Relax that target, or try a faster GPU, more TP or a smaller model.")
        n = replicas_for(qps, qps, gp.qps, 1.0)[0]
        return Capacity(model=m.hf_id, gpu=g.name, tp=tp, weight_dtype=weight_dtype or m.native_dtype,
                        memory=gp.at_goodput.memory, goodput_qps_per_replica=round(gp.qps, 4), binding=gp.binding,
                        replicas=n, gpus_total=n * tp)

    return await _bounded("capacity", run, args)


MAX_CONFIG_JSON = 100_000  # characters of an inline config.json; real ones are 1-10 kB


# Additive only: a new id is stored, the same architecture again changes nothing, and anything that would replace
# an entry (a catalog model, or a different architecture under the same id) is refused. The Hub is the open world.
@mcp.tool(title="Add a model from its config.json",
          annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True))
async def add_model(config: Annotated[dict[str, Any] | None, Field(
                        description="the model's config.json content (read the file on your side)")] = None,
                    hf_id: Annotated[str | None, Field(max_length=96, description="a Hugging Face model id: its "
                                                       "config.json from the server's HF cache, else the Hub")] = None,
                    name: Annotated[str | None, Field(max_length=96, description="org/name to plan with (default: "
                                                      "hf_id, or the config's _name_or_path)")] = None,
                    license: Annotated[str | None, Field(max_length=100)] = None) -> AddedModel:
    """Add your own model (a fine-tune, a new release) to the knowledge base from its Hugging Face config.json,
    given inline as config or fetched by hf_id. Dense, MoE, MLA, sliding-window and hybrid-linear attention are
    read, and the weight format from quantization_config; an unsupported architecture is an error naming the field.
    Returns what was derived; then plan with the model by its id. Never replaces a catalog model or a different
    model stored under the same id (choose another name)."""
    if (config is None) == (hf_id is None):
        raise ToolError("give exactly one of config (the config.json content) or hf_id (a Hugging Face model id)")
    size = len(json.dumps(config)) if config is not None else 0
    if size > MAX_CONFIG_JSON:
        raise ToolError(f"config is over {MAX_CONFIG_JSON:,} characters of JSON: not a config.json")

    def run(ctx: AppContext) -> AddedModel:
        from kb.add_model import config_name, model_from_config, read_hub_config, save_model

        # A server path is never read for a client: the client sends the content, or names a Hub model.
        cfg, source = (config, "a config.json sent by an MCP client") if config is not None else read_hub_config(hf_id)[:2]
        model_id = name or hf_id or config_name(cfg)
        if not model_id:
            raise BadInput("the config has no _name_or_path that is a Hugging Face id; give name as org/name")
        model = model_from_config(cfg, source=source, name=model_id, license=license)
        return added_model_view(*save_model(ctx.kb, model, replace=False), ctx.kb.meta("kb_version") or "")

    return await _bounded("add_model", run, {"config_chars": size, "hf_id": hf_id, "name": name, "license": license})


# --- build_spec: the client's model extracts (sampling), the person answers (elicitation) -------------------

_EXTRACT_PROMPT = (
    "Extract a serving workload from the text below. Answer with ONE JSON object and nothing else, using only "
    "these keys when the text states them: use_case (one of {use_cases}), qps (average requests/s), users, "
    "requests_per_user_per_day, ttft_p90_ms, tpot_p90_ms, e2e_p95_ms, prompt_tokens, output_tokens, "
    "budget_usd_month, priority (latency|cost|balanced|quality), max_gpus, gpus (list), models (list), "
    "open_weights_only (bool). Omit anything not stated.\n\nText: {text}"
)


class SampledSpec(BaseModel):
    """What a client's model may answer; anything else in its reply is ignored, anything invalid rejects it."""

    model_config = ConfigDict(extra="ignore")

    use_case: UseCaseName | None = None
    qps: Annotated[float, Field(gt=0, le=1e6)] | None = None
    users: Annotated[int, Field(gt=0, le=1e9)] | None = None
    requests_per_user_per_day: Annotated[float, Field(gt=0, le=1e6)] | None = None
    ttft_p90_ms: Ms | None = None
    tpot_p90_ms: Ms | None = None
    e2e_p95_ms: Ms | None = None
    prompt_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    budget_usd_month: Annotated[float, Field(gt=0, le=1e9)] | None = None
    priority: Priority | None = None
    max_gpus: Annotated[int, Field(gt=0, le=10_000)] | None = None
    gpus: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=20)
    models: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=20)
    open_weights_only: bool | None = None


def _offers(ctx: Context, capability: str) -> bool:
    caps = ctx.client_capabilities
    return caps is not None and getattr(caps, capability, None) is not None


def ask_model_to_extract(ctx: Context, text: str | None) -> Sample | None:
    """Resolver: the client's model reads the words, when the client offers sampling."""
    if not text or not _offers(ctx, "sampling"):
        return None
    prompt = _EXTRACT_PROMPT.format(use_cases=", ".join(USE_CASES), text=text)
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=400,
                  temperature=0)


def read_sampled(reply: CreateMessageResult | None) -> tuple[dict | None, str | None]:
    """(fields the model extracted, None) or (None, why the reply is unusable). Never raises."""
    if reply is None:
        return None, None
    raw = reply.content.text if isinstance(reply.content, TextContent) else ""
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0 or end < start:
        return None, "the reply held no JSON object"
    try:
        data = SampledSpec.model_validate_json(raw[start:end + 1])
    except ValidationError as exc:
        return None, clip(validation_message(exc) if exc.error_count() and exc.errors()[0]["type"] != "json_invalid"
                          else "the reply was not valid JSON", 200)
    extracted = data.model_dump(exclude_none=True)
    return (extracted, None) if extracted else (None, "the reply stated nothing")


class TrafficAnswer(BaseModel):
    qps: float = Field(gt=0, le=1e6, description="average requests per second the service must carry")


def ask_person_for_traffic(ctx: Context, text: str | None, qps: float | None, users: int | None,
                           sampled: Annotated[CreateMessageResult | None, Resolve(ask_model_to_extract)]) -> Elicit[TrafficAnswer] | None:
    """Resolver: ask the person for the traffic when neither the options, the words nor the model stated it."""
    if qps is not None or users is not None or not _offers(ctx, "elicitation"):
        return None
    from planner.spec import extract

    said = {**(extract(text, app_context().catalog) if text else {}), **(read_sampled(sampled)[0] or {})}
    if "qps" in said or "users" in said:
        return None
    return Elicit("How much traffic should this service carry, in requests per second on average?", TrafficAnswer)


@mcp.tool(title="Build a deployment spec from words", annotations=READ_ONLY)
async def build_spec(ctx: Context, text: Text | None = None,
                     use_case: Annotated[UseCaseName | None, Field(description="workload template; see kb://use-cases")] = None,
                     name: Annotated[str | None, Field(max_length=40, description="deployment name (DNS label)")] = None,
                     qps: Annotated[float | None, Field(gt=0, le=1e6, description="average requests/s")] = None,
                     users: Annotated[int | None, Field(gt=0, le=1_000_000_000)] = None,
                     requests_per_user_per_day: Annotated[float | None, Field(gt=0, le=1e6)] = None,
                     peak_factor: Annotated[float | None, Field(ge=1, le=100, description="peak / average traffic")] = None,
                     prompt_tokens: Annotated[Tokens | None, Field(description="mean prompt (input) tokens")] = None,
                     output_tokens: Annotated[Tokens | None, Field(description="mean output tokens")] = None,
                     ttft_p90_ms: Ms | None = None, tpot_p90_ms: Ms | None = None, e2e_p95_ms: Ms | None = None,
                     priority: Priority | None = None,
                     budget_usd_month: Annotated[float | None, Field(gt=0, le=1e9)] = None,
                     models: Annotated[list[ModelName] | None, Field(max_length=20, description="only these models")] = None,
                     gpus: Annotated[list[GpuName] | None, Field(max_length=20, description="only these GPU types")] = None,
                     quantizations: Annotated[list[WeightDtype] | None, Field(max_length=8)] = None,
                     max_gpus: Annotated[int | None, Field(gt=0, le=10_000)] = None,
                     open_weights_only: bool | None = None,
                     traffic_mix: Annotated[list[Annotated[str, Field(max_length=80)]] | None, Field(
                         max_length=8, description="request classes name:share:prompt_tokens:output_tokens[:"
                                                   "ttft_p90_ms], e.g. ['chat:0.7:300:200', 'rag:0.3:8000:400:2000']")] = None,
                     sampled: Annotated[CreateMessageResult | None, Resolve(ask_model_to_extract)] = None,
                     traffic: Annotated[ElicitationResult[TrafficAnswer], Resolve(ask_person_for_traffic)] = None,
                     ) -> DeploymentSpec:
    """Turn the person's words (text) and/or explicit options into a DeploymentSpec. Options win over words; every
    value not stated is filled from the use-case template and listed in assumptions. Uses your model through MCP
    sampling when the client offers it (extracted_by says who read the words) and asks the person for missing
    traffic through elicitation when the client offers it. Remaining questions come back in `questions`: ask the
    person, then call again with the answers as options (e.g. qps). recommend refuses a spec with open questions."""
    options = dict(text=text, use_case=use_case, name=name, qps=qps, users=users,
                   requests_per_user_per_day=requests_per_user_per_day, peak_factor=peak_factor,
                   prompt_tokens=prompt_tokens, output_tokens=output_tokens, ttft_p90_ms=ttft_p90_ms,
                   tpot_p90_ms=tpot_p90_ms, e2e_p95_ms=e2e_p95_ms, priority=priority, budget_usd_month=budget_usd_month,
                   models=models, gpus=gpus, quantizations=quantizations, max_gpus=max_gpus,
                   open_weights_only=open_weights_only, traffic_mix=traffic_mix)
    extracted, unusable = read_sampled(sampled)
    answered = traffic.data if isinstance(traffic, AcceptedElicitation) and traffic.data else None
    if answered:
        options["qps"] = answered.qps

    def run(app: AppContext) -> DeploymentSpec:
        from planner.contracts import Assumption
        from planner.spec import build_spec as build

        notes: list[Assumption] = []
        if unusable:
            notes.append(Assumption(field="extracted_by", value="rules",
                                    source=f"the client's model answered, but {unusable}; servewise's rules read the words"))
        try:
            spec = build(app.catalog, extracted=extracted, extracted_by="sampling" if extracted else None, **options)
        except BadInput as exc:
            if not extracted:
                raise
            # The model named something servewise does not know (e.g. a model id): its reading is dropped, not the call.
            notes.append(Assumption(field="extracted_by", value="rules",
                                    source=clip(f"the client's model extraction was refused ({exc.message}); "
                                                "servewise's rules read the words", 300)))
            spec = build(app.catalog, **options)
        if answered:
            notes.append(Assumption(field="traffic.qps", value=f"{answered.qps:g}", source="answered by the person (elicitation)"))
        elif traffic is not None and not isinstance(traffic, AcceptedElicitation):
            notes.append(Assumption(field="traffic.qps", value="unanswered",
                                    source=f"the person was asked for the traffic and chose {traffic.action}"))
        spec.assumptions = [*notes, *spec.assumptions]
        return spec

    return await _bounded("build_spec", run, {k: v for k, v in options.items() if v is not None})


def _open_questions(spec: DeploymentSpec) -> list[str]:
    placeholder = any(a.field == "traffic.qps" and "placeholder" in a.source for a in spec.assumptions)
    questions = list(spec.questions)
    if placeholder and not any("traffic" in q.lower() for q in questions):
        questions.append("How much traffic? The spec's traffic is a placeholder, not a stated figure.")
    return questions


@mcp.tool(title="Recommend deployments for a spec",
          annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False))
async def recommend(spec: DeploymentSpec | None = None, text: Text | None = None,
                    use_case: UseCaseName | None = None,
                    qps: Annotated[float | None, Field(gt=0, le=1e6)] = None,
                    users: Annotated[int | None, Field(gt=0, le=1_000_000_000)] = None,
                    top: Annotated[int, Field(ge=1, le=10)] = 3, detail: Detail = False) -> Annotated[CallToolResult, PlanView]:
    """Recommend model x GPU x TP x replicas x vLLM settings for a DeploymentSpec (from build_spec), or directly
    from text / use_case + qps. Refuses a spec with open questions or placeholder traffic (ask the person first).
    Returns a compact plan: candidates best first with p90 latencies against the targets, monthly cost and the
    binding constraint; chosen is null when nothing meets the SLOs (infeasible says why). The plan is saved: pass
    its id to whatif, render or propose_pr; the full plan is the resource kb://plans/{id}."""
    if spec is None and not (text or use_case or qps or users):
        raise ToolError("give a spec from build_spec, or text / use_case with qps or users")
    if spec is not None and (len(spec.description) > 2000 or len(spec.model_dump_json()) > MAX_SPEC_JSON):
        # Whatever a plan holds is stored and shown again; build_spec never makes a spec this large.
        raise ToolError(f"the spec is too large (description at most 2,000 characters, the whole spec at most "
                        f"{MAX_SPEC_JSON:,}); build it with build_spec")
    args = {"spec": spec.model_dump(mode="json") if spec else None, "text": text, "use_case": use_case, "qps": qps,
            "users": users, "top": top}

    def run(ctx: AppContext) -> Plan:
        from planner.spec import build_spec as build

        the_spec = spec or build(ctx.catalog, text=text, use_case=use_case, qps=qps, users=users)
        if questions := _open_questions(the_spec):
            raise BadInput("the spec has open questions; ask the person, then call build_spec again with the answers "
                           "(e.g. qps=...) and recommend on that spec: " + " | ".join(clip(q, 300) for q in questions))
        return actions.make_plan(ctx, the_spec, top)

    plan = await _bounded("recommend", run, args)
    view = plan_view(plan)
    link = ResourceLink(type="resource_link", uri=view.uri, name=f"plan {plan.id}", title=f"Full plan {plan.id}",
                        mime_type="application/json", size=len(plan.model_dump_json(indent=1)))
    embedded = [_embedded(view.uri, plan.model_dump_json(indent=1), "application/json")] if detail else []
    return _result(view, _compact_json(view), [link], embedded)


@mcp.tool(title="Compare a plan with what-if changes", annotations=READ_ONLY)
async def whatif(plan_id: PlanId,
                 changes: Annotated[list[Annotated[str, Field(max_length=100)]], Field(
                     min_length=1, max_length=10,
                     description="key=value changes. Spec keys: traffic=x2, qps=40, users=5000, prompt_tokens=x2, "
                                 "output_tokens=800, ttft_p90_ms=200, tpot_p90_ms=30, e2e_p95_ms=4000, priority=cost. "
                                 "Configuration keys: gpu=L40S, tp=2, pp=1, quantization=fp8, model=qwen3-8b")],
                 detail: Detail = False) -> Annotated[CallToolResult, WhatIfView]:
    """Compare a plan's chosen deployment with a changed one, side by side: cost, GPUs, replicas, TTFT/TPOT/E2E
    percentiles against the SLOs, and what the recommender would pick after spec changes. A change that cannot be
    served at all is an error that says why."""
    def run(ctx: AppContext):
        from kb.latency import load_latency_params
        from planner.whatif import parse_change, whatif as compare

        w = compare(actions.plan_from(ctx, plan_id=plan_id), [parse_change(c) for c in changes], ctx.catalog,
                    load_latency_params(), provider=ctx.settings.provider, corrections=ctx.corrections)
        if w.after is None and w.replanned is None:
            raise BadInput(f"the changed deployment cannot be served: {w.after_error or w.replan_error}")
        return w

    w = await _bounded("whatif", run, {"plan_id": plan_id, "changes": changes})
    view = whatif_view(plan_id, w)
    embedded = [_embedded(f"{plan_uri(plan_id)}/whatif", w.model_dump_json(indent=1), "application/json")] if detail else []
    return _result(view, _compact_json(view), embedded=embedded)


_VALIDATED = "CRD schemas + Kubernetes 1.31 (strict)"


@mcp.tool(title="Render validated KServe + vLLM manifests",
          annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False))
async def render(plan_id: PlanId, namespace: Annotated[str | None, Field(max_length=63)] = None,
                 name: Annotated[str | None, Field(max_length=40)] = None,
                 autoscaler: Literal["keda", "hpa"] = "keda",
                 monitor: Literal["podmonitor", "servicemonitor"] = "podmonitor",
                 write: Annotated[bool, Field(description="also write the bundle to <workspace>/<namespace>/<name> "
                                                          "(the server's workspace setting)")] = False,
                 target: Annotated[Literal["isvc", "llmisvc"], Field(
                     description="isvc: KServe InferenceService + ServingRuntime; llmisvc: LLMInferenceService")] = "isvc",
                 detail: Detail = False) -> Annotated[CallToolResult, RenderView]:
    """Render the plan's chosen deployment as KServe + vLLM manifests (ServingRuntime, InferenceService, KEDA or
    HPA, PodMonitor/ServiceMonitor, SLO PrometheusRule, Grafana dashboard, SLO-report CronJob;
    Argo CD's ApplicationSet makes the Application), validated against the real CRD schemas and Kubernetes 1.31. Returns the file list with sizes, the
    validation summary and one resource link per file (detail=true embeds the files)."""
    args = dict(plan_id=plan_id, namespace=namespace, name=name, autoscaler=autoscaler, monitor=monitor, write=write,
                target=target)

    def run(ctx: AppContext):
        from gitops.bundle import write_bundle

        bundle = actions.valid_bundle(ctx, actions.plan_from(ctx, plan_id=plan_id), namespace=namespace, name=name,
                                      autoscaler=autoscaler, monitor=monitor, target=target)
        written = None
        if write:
            written = actions.workspace_dir(ctx, bundle)
            write_bundle(bundle, written)
        return bundle, written

    bundle, written = await _bounded("render", run, args)
    options = dict(namespace=namespace, name=name, autoscaler=autoscaler, monitor=monitor, target=target)
    files = [ManifestFile(name=f, bytes=len(body.encode()), uri=manifest_uri(plan_id, f, options))
             for f, body in sorted(bundle.files.items())]
    view = RenderView(plan_id=plan_id, namespace=bundle.namespace, name=bundle.name, files=files, validated=_VALIDATED,
                      written_to=str(written) if written else None)
    links = [ResourceLink(type="resource_link", uri=f.uri, name=f.name, mime_type=_mime(f.name), size=f.bytes)
             for f in files]
    embedded = [_embedded(f.uri, bundle.files[f.name], _mime(f.name)) for f in files] if detail else []
    text = (f"Rendered {len(files)} files for {bundle.namespace}/{bundle.name}, valid against {_VALIDATED}: "
            + ", ".join(f"{f.name} ({f.bytes} B)" for f in files) + ". Read a file through its resource link.")
    return _result(view, text, links, embedded)


def _mime(file: str) -> str:
    return {"json": "application/json", "yaml": "application/yaml", "yml": "application/yaml",
            "md": "text/markdown"}.get(file.rsplit(".", 1)[-1], "text/plain")


class Proposed(BaseModel):
    number: int | None = Field(description="None when an empty repository's main was initialized instead")
    url: str | None
    branch: str
    commit: str
    created: bool = Field(description="false when an open pull request for this deployment was updated")
    forge: str
    deployment: str = Field(default="", description="NAMESPACE/NAME the pull request deploys")
    service: str = Field(default="", description="the service (spec name) the deployment now carries")
    replace_allowed: bool = Field(default=False, description="whether replacing another service was permitted")


# replace=true overwrites another service's deployment of the same name, so the tool is marked destructive.
@mcp.tool(title="Open a GitOps pull request (refuses to replace another service unless replace=true)",
          annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=True))
async def propose_pr(plan_id: PlanId, namespace: Annotated[str | None, Field(max_length=63)] = None,
                     name: Annotated[str | None, Field(max_length=40)] = None,
                     replace: Annotated[bool, Field(description="replace the different service a deployment of this "
                                                                "name carries; ask the person first")] = False) -> Proposed:
    """Render, validate and open a GitOps pull request for the plan on the configured forge (local git by
    default). Calling it again for the same service updates the same branch and pull request. The deployment
    name defaults to the spec's name; if that deployment already carries a different service (open pull request or
    main), the call is refused and names both, unless replace=true."""
    def run(ctx: AppContext) -> Proposed:
        from gitops.propose import propose

        plan = actions.plan_from(ctx, plan_id=plan_id)
        bundle = actions.valid_bundle(ctx, plan, **actions.deployment_options(ctx, plan, namespace=namespace, name=name))
        forge = ctx.forge()
        r = propose(bundle, forge, replace=replace)
        return Proposed(number=r.pr.number, url=r.pr.url, branch=r.branch, commit=r.commit, created=r.created,
                        forge=forge.name, deployment=f"{bundle.namespace}/{bundle.name}", service=plan.spec.name,
                        replace_allowed=replace)

    return await _bounded("propose_pr", run, {"plan_id": plan_id, "namespace": namespace, "name": name,
                                              "replace": replace})


@mcp.tool(title="Observed SLOs of a deployment against its plan",
          annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True))
async def slo_report(plan_id: PlanId,
                     deployment: Annotated[str | None, Field(max_length=120, description="NAMESPACE/NAME; default from the plan")] = None,
                     pr_number: Annotated[int | None, Field(ge=1, le=10_000_000, description="post/update the sticky comment on this pull request")] = None,
                     window: Annotated[str, Field(max_length=10, description="Prometheus window: 30m, 1h, 1d")] = "1h",
                     ) -> ReportView:
    """Observed SLOs of a running deployment (from Prometheus: TTFT/TPOT/E2E percentiles, traffic) beside what the
    plan predicted at the observed load: verdict (meets, at risk, violated, insufficient data, unreachable), cost
    observed vs planned, and right-sizing advice with its predicted effect. With pr_number the report is the pull
    request's sticky comment. Complete reports store outcomes that correct later predictions. Prometheus is the
    server's prometheus setting: a client cannot point it (or its token) elsewhere."""
    def run(ctx: AppContext) -> ReportView:
        plan = actions.plan_from(ctx, plan_id=plan_id)
        dep = deployment or f"{ctx.settings.namespace}/{plan.spec.name}"
        return report_view(actions.slo_report(ctx, plan, deployment=dep, window=window,
                                              forge=ctx.forge() if pr_number else None, pr_number=pr_number))

    return await _bounded("slo_report", run, dict(plan_id=plan_id, deployment=deployment, pr_number=pr_number,
                                                  window=window))


@mcp.tool(title="Observed-vs-predicted outcomes and corrections", annotations=READ_ONLY)
async def list_outcomes(limit: Annotated[int, Field(ge=1, le=200)] = 50,
                        offset: Annotated[int, Field(ge=0, le=10_000_000, description="first row (newest first)")] = 0) -> OutcomesPage:
    """Observed-vs-predicted outcomes from SLO reports (per metric and configuration, newest first, paged), the
    prediction error over time, and the corrections the planner now applies per model x GPU x TP."""
    def run(ctx: AppContext) -> OutcomesPage:
        from kb.outcomes import load_outcomes
        from planner.feedback import error_over_time, listed

        outcomes = load_outcomes(ctx.kb)[::-1]
        page = outcomes[offset:offset + limit]
        return OutcomesPage(outcomes=page, total=len(outcomes), offset=offset,
                            next_offset=offset + limit if offset + limit < len(outcomes) else None,
                            error_over_time=error_over_time(outcomes[::-1])[-PAGE:],
                            corrections=listed(ctx.corrections)[:PAGE])

    return await _bounded("list_outcomes", run, {"limit": limit, "offset": offset})


@mcp.tool(title="Read-only look at the Kubernetes cluster",
          annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True))
async def cluster_status(deployment: Annotated[str | None, Field(max_length=120, description="NAME or NAMESPACE/NAME to follow after merge")] = None,
                         context: Annotated[str | None, Field(max_length=200, description="kubeconfig context")] = None) -> dict:
    """Read-only look at the Kubernetes cluster: GPUs free per type, quotas, whether KServe/KEDA/prometheus-operator/
    Argo CD are installed, the Kubernetes version; with a deployment, its Argo CD sync/health and InferenceService
    readiness and URL. Never writes to the cluster."""
    def run(ctx: AppContext) -> dict:
        from gitops.cluster import deployment_status, read_inventory
        from gitops.propose import parse_deployment

        if deployment:
            ns, name = parse_deployment(deployment, ctx.settings.namespace)
            return deployment_status(ns, name, context=context or ctx.settings.kube_context).model_dump(mode="json")
        return read_inventory(ctx.catalog, context=context or ctx.settings.kube_context,
                              namespace=ctx.settings.namespace).model_dump(mode="json")

    return await _bounded("cluster_status", run, {"deployment": deployment, "context": context})


# --- resources ---------------------------------------------------------------------------------------------

def _json_resource(fn) -> str:
    try:
        return json.dumps(fn(app_context()), indent=1, default=str)
    except ServewiseError as exc:
        raise ResourceNotFoundError(exc.message) from None


@mcp.resource("kb://models", name="models", title="Models servewise knows", mime_type="application/json",
              description="Model architectures with licences, quality scores and sources")
def models_resource() -> str:
    return _json_resource(lambda ctx: [m.model_dump(mode="json") for m in ctx.catalog.models])


@mcp.resource("kb://gpus", name="gpus", title="GPUs and prices", mime_type="application/json",
              description="GPU datasheet figures and prices per provider")
def gpus_resource() -> str:
    return _json_resource(lambda ctx: [g.model_dump(mode="json") for g in ctx.catalog.gpus])


@mcp.resource("kb://use-cases", name="use-cases", title="Workload templates", mime_type="application/json",
              description="Use-case templates with SLO targets, token lengths and sources")
def use_cases_resource() -> str:
    return _json_resource(lambda ctx: [u.model_dump(mode="json") for u in ctx.catalog.use_cases])


_BENCH_COLS = ("id", "engine", "model", "gpu", "weight_dtype", "tp", "isl", "osl", "concurrency", "ttft_mean_ms",
               "tpot_mean_ms", "source_ref")


@mcp.resource("kb://benchmarks", name="benchmarks", title="Calibration benchmarks (summary)",
              mime_type="application/json",
              description=f"Counts of the measured runs used for calibration, per engine, model and GPU; the rows "
                          f"are paged at kb://benchmarks/page/{{page}} ({PAGE} per page)")
def benchmarks_resource() -> str:
    def summary(ctx: AppContext) -> dict:
        db = ctx.kb.db
        total = db.execute("SELECT count(*) FROM benchmarks").fetchone()[0]
        groups = db.execute("SELECT engine, model, gpu, count(*) FROM benchmarks GROUP BY engine, model, gpu "
                            "ORDER BY count(*) DESC").fetchall()
        return {"rows": total, "pages": -(-total // PAGE), "page_uri": "kb://benchmarks/page/{page}",
                "by_engine_model_gpu": [dict(zip(("engine", "model", "gpu", "rows"), g)) for g in groups]}

    return _json_resource(summary)


@mcp.resource("kb://benchmarks/page/{page}", name="benchmark-rows", title="Calibration benchmark rows, one page",
              mime_type="application/json", description=f"{PAGE} measured runs per page, oldest first; page 1 is the first")
def benchmark_page_resource(page: str) -> str:
    if not page.isdigit() or int(page) < 1:
        raise ResourceNotFoundError(f"page must be a positive integer (got {clip(page, 20)!r})")

    def rows(ctx: AppContext) -> dict:
        start = (int(page) - 1) * PAGE
        data = ctx.kb.db.execute(f"SELECT {', '.join(_BENCH_COLS)} FROM benchmarks ORDER BY rowid LIMIT ? OFFSET ?",
                                 [PAGE, start]).fetchall()
        total = ctx.kb.db.execute("SELECT count(*) FROM benchmarks").fetchone()[0]
        return {"page": int(page), "pages": -(-total // PAGE), "rows": [dict(zip(_BENCH_COLS, r)) for r in data]}

    return _json_resource(rows)


@mcp.resource("kb://accuracy", name="accuracy", title="Accuracy on your imported runs", mime_type="application/json",
              description="Your imported runs, cross-validated: median error per model x GPU before and after their corrections")
def accuracy_resource() -> str:
    from kb.corrections import accuracy
    from kb.latency import load_latency_params

    return _json_resource(lambda ctx: {k: [x.model_dump(mode="json") for x in v] if isinstance(v, list) else v
                                       for k, v in accuracy(ctx.kb, ctx.catalog, load_latency_params()).items()})


@mcp.resource("kb://plans/{plan_id}", name="plan", title="A saved plan", mime_type="application/json",
              description="The full plan JSON saved by recommend (what plan.json in a pull request holds)")
def plan_resource(plan_id: str) -> str:
    from kb.plans import get_plan

    return _json_resource(lambda ctx: get_plan(ctx.kb, unquote(plan_id)).model_dump(mode="json"))


@mcp.resource("kb://plans/{plan_id}/manifests/{file}{?namespace,name,autoscaler,monitor,target}", name="manifest",
              title="One rendered manifest of a plan", mime_type="text/plain",
              description="A file of the plan's validated bundle, rendered with the given options (as render links it)")
def manifest_resource(plan_id: str, file: str, namespace: str | None = None, name: str | None = None,
                      autoscaler: str = "keda", monitor: str = "podmonitor", target: str = "isvc") -> str:
    if autoscaler not in ("keda", "hpa") or monitor not in ("podmonitor", "servicemonitor") or target not in ("isvc", "llmisvc"):
        raise ResourceNotFoundError("autoscaler must be keda|hpa, monitor podmonitor|servicemonitor, target isvc|llmisvc")
    try:
        ctx = app_context()
        bundle = actions.valid_bundle(ctx, actions.plan_from(ctx, plan_id=unquote(plan_id)), namespace=namespace,
                                      name=name, autoscaler=autoscaler, monitor=monitor, target=target)
    except ServewiseError as exc:
        raise ResourceNotFoundError(exc.message) from None
    body = bundle.files.get(unquote(file))
    if body is None:
        raise ResourceNotFoundError(f"the bundle has no file {clip(unquote(file), 80)!r}; files: {', '.join(sorted(bundle.files))}")
    return body


# --- completions --------------------------------------------------------------------------------------------

@mcp.completion()
async def complete(ref: PromptReference | ResourceTemplateReference, argument, context) -> Completion | None:
    """Completions for plan ids (saved plans, newest first), models, GPUs and use cases."""
    values = await anyio.to_thread.run_sync(functools.partial(_completion_values, argument.name))
    if values is None:
        return None
    prefix = (argument.value or "").lower()
    matches = [v for v in values if v.lower().startswith(prefix)] or [v for v in values if prefix in v.lower()]
    return Completion(values=matches[:100], total=len(matches), has_more=len(matches) > 100)


def _completion_values(argument: str) -> list[str] | None:
    ctx = app_context()
    if argument == "plan_id":
        from kb.plans import list_plans

        return [p["id"] for p in list_plans(ctx.kb)]
    if argument == "model":
        return sorted({a for m in ctx.catalog.models for a in (m.hf_id, *m.aliases)})
    if argument == "gpu":
        return sorted({a for g in ctx.catalog.gpus for a in (g.name, *g.aliases)})
    if argument == "use_case":
        return [u.name for u in ctx.catalog.use_cases]
    return None


# --- prompts ------------------------------------------------------------------------------------------------

@mcp.prompt(name="plan-deployment", title="Plan an LLM deployment step by step")
def plan_deployment(need: str) -> str:
    """Plan a deployment in four stages: business context, recommendations, what-if, deploy."""
    return (f"Help me deploy an LLM service on Kubernetes. What I need: {clip(need, MAX_TEXT)}\n\n"
            "Work in four stages and show me the numbers with their assumptions at each one:\n"
            "1. Business context: call build_spec with my words; if it returns questions, ask me them and call "
            "build_spec again with my answers as options (qps, prompt_tokens, ttft_p90_ms, ...).\n"
            "2. Recommendations: call recommend with the spec; explain the top pick, its binding constraint and why "
            "it beats the runner-up, with predicted p90 TTFT/TPOT and monthly cost.\n"
            "3. What-if: offer whatif scenarios (traffic=x2, gpu=L40S, quantization=fp8) and compare them side by side.\n"
            "4. Deploy: when I agree, call render to list the manifests, then propose_pr to open the pull request.")


def _plan_or_error(plan_id: str) -> Plan:
    from kb.plans import get_plan

    try:
        return get_plan(app_context().kb, plan_id)
    except ServewiseError as exc:
        raise MCPError(code=INVALID_PARAMS, message=exc.message) from None


@mcp.prompt(name="review-pr", title="Review a deployment plan before merging")
def review_pr(plan_id: str) -> list[UserMessage]:
    """Review a servewise deployment plan before merging its pull request; the plan is embedded."""
    plan = _plan_or_error(plan_id)
    top = plan.model_copy(update={"candidates": plan.candidates[:3],
                                  "chosen": plan.chosen if plan.chosen is None or plan.chosen < 3 else 0})
    return [UserMessage(_embedded(plan_uri(plan.id), top.model_dump_json(indent=1), "application/json")),
            UserMessage(f"Review the deployment plan {plan.id} above (its top {len(top.candidates)} candidates) as a "
                        "platform engineer: check the memory breakdown, the SLO margins at the predicted p90/p95, the "
                        "binding constraint, the assumptions that matter most, and the alternatives that lost. Call "
                        f"render with plan_id={plan.id} to list the manifests and read the ones that matter. End with "
                        "approve / request changes and why.")]


@mcp.prompt(name="right-size", title="Right-size a running deployment from what it observes")
def right_size(plan_id: str) -> str:
    """Right-size a running deployment: observed SLOs first, then what-if changes that whatif accepts."""
    plan = _plan_or_error(plan_id)
    return (f"Right-size the deployment of plan {plan.id}.\n"
            f"1. Call slo_report with plan_id={plan.id} to see the observed TTFT/TPOT/E2E and traffic beside the "
            "prediction, the verdict and its right-sizing advice. If the verdict is 'insufficient data' or "
            "'unreachable', tell me and stop.\n"
            f"2. Call whatif with plan_id={plan.id} and changes built from what was observed, one scenario per call, "
            "e.g. ['qps=<observed req/s>'], ['qps=<observed req/s>', 'gpu=L40S'], ['qps=<observed req/s>', "
            "'quantization=fp8'] (keys whatif accepts: traffic, qps, users, prompt_tokens, output_tokens, "
            "ttft_p90_ms, tpot_p90_ms, e2e_p95_ms, priority, gpu, tp, quantization, model).\n"
            "3. Report the cheapest configuration that still meets every SLO at the observed load, with its predicted "
            "effect and monthly saving, and call list_outcomes if you want to show how accurate past predictions were.")


def run_stdio() -> None:
    mcp.run()


def run_http(host: str, port: int, token: str | None, allowed_hosts: list[str] | None = None,
             allowed_origins: list[str] | None = None) -> None:
    """Streamable HTTP on /mcp (see server.mcp_http for the limits that keep it usable under abuse)."""
    from server.mcp_http import serve_http

    serve_http(mcp, host, port, token, allowed_hosts=allowed_hosts or [], allowed_origins=allowed_origins or [])
