"""The MCP server: servewise's planning capabilities as tools, its knowledge as resources, and prompts
that walk a person through a deployment. Thin translation over server.actions, planner, gitops and kb.

Every tool call is bounded in time, turns bad input into a tool error that says what to change,
and leaves one row in the knowledge base's audit log.
"""

import functools
import json
import time
import warnings
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import SamplingMessage, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from gitops.report import Report
from kb.audit import record_call
from planner import __version__
from planner.contracts import DeploymentSpec, MemoryBreakdown, Plan, Prediction, PredictQuery
from planner.errors import ServewiseError
from planner.feedback import ErrorPoint, Outcome, error_over_time, listed
from planner.whatif import WhatIf
from server import actions
from server.context import AppContext, app_context
from server.output import validation_message

CALL_TIMEOUT_S = 60.0
SAMPLING_TIMEOUT_S = 20.0
MAX_TEXT = 4000

INSTRUCTIONS = (
    "servewise plans LLM serving on Kubernetes with vLLM + KServe. Typical flow: build_spec (from the person's "
    "words) -> recommend (ranked, explained plan with predicted latency and monthly cost; returns a plan id) -> "
    "whatif (alternatives) -> render (validated manifests) -> propose_pr (GitOps pull request). Use predict or "
    "capacity for one configuration. Every number carries its calibration and assumptions: show them to the person."
)

mcp = MCPServer("servewise", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
LOCAL_WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False)
FORGE_WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True)


def _call(tool: str, fn, args: dict) -> Any:
    """Run one tool body with its own kb handle (in the worker thread), audit it, map errors."""
    ctx = app_context()
    started = time.monotonic()
    outcome, message = "ok", ""
    try:
        return fn(ctx)
    except ServewiseError as exc:
        outcome, message = f"error:{exc.code}", exc.message
        raise ToolError(exc.message) from None
    except ValidationError as exc:
        outcome, message = "error:bad_input", validation_message(exc)
        raise ToolError(f"invalid arguments: {message}") from None
    finally:
        record_call(ctx.kb, actor="mcp", tool=tool, args=args, duration_ms=(time.monotonic() - started) * 1e3,
                    outcome=outcome, message=message)


async def _bounded(tool: str, fn, args: dict) -> Any:
    try:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return await anyio.to_thread.run_sync(functools.partial(_call, tool, fn, args), abandon_on_cancel=True)
    except TimeoutError:
        raise ToolError(f"{tool} took longer than {CALL_TIMEOUT_S:g} s and was stopped; narrow the request "
                        "(fewer models/GPUs, a smaller top)") from None


Text = Annotated[str, Field(max_length=MAX_TEXT)]
ModelName = Annotated[str, Field(max_length=200, description="HF id or alias, e.g. 'llama-3.1-8b', 'Qwen/Qwen3-8B'")]
GpuName = Annotated[str, Field(max_length=100, description="GPU name or alias, e.g. 'h100', 'L40S', 'A10G'")]
PlanId = Annotated[str, Field(max_length=100, description="id of a plan returned by recommend")]


@mcp.tool(annotations=READ_ONLY)
async def predict(model: ModelName, gpu: GpuName,
                  isl: Annotated[int, Field(gt=0, le=1_000_000, description="prompt tokens per request")],
                  osl: Annotated[int, Field(gt=0, le=1_000_000, description="output tokens per request")],
                  tp: Annotated[int, Field(ge=1, le=64, description="tensor-parallel GPUs per replica")] = 1,
                  pp: Annotated[int, Field(ge=1, le=16)] = 1,
                  concurrency: Annotated[int | None, Field(gt=0, description="closed loop of C clients (benchmark style)")] = None,
                  qps: Annotated[float | None, Field(gt=0, description="Poisson arrivals, requests/s over the deployment")] = None,
                  replicas: Annotated[int, Field(ge=1, le=1000)] = 1,
                  weight_dtype: Annotated[str | None, Field(description="bf16, fp16, fp8, fp8_block, int8, int4, nvfp4, mxfp4; default native")] = None,
                  ) -> Prediction:
    """Predict what vLLM does for ONE configuration under ONE load: TTFT, TPOT and E2E (mean, p50, p90, p95,
    p99, in ms), output tokens/s, and the per-GPU memory breakdown. Give exactly one of concurrency or qps.
    The result names its calibration and lists its assumptions. To pick a configuration, call recommend instead."""
    args = {k: v for k, v in dict(model=model, gpu=gpu, isl=isl, osl=osl, tp=tp, pp=pp, concurrency=concurrency,
                                  qps=qps, replicas=replicas, weight_dtype=weight_dtype).items() if v is not None}
    return await _bounded("predict", lambda ctx: actions.predict_query(ctx, PredictQuery.model_validate(args)), args)


class Capacity(BaseModel):
    model: str
    gpu: str
    tp: int
    weight_dtype: str
    memory: MemoryBreakdown
    goodput_qps_per_replica: float = Field(description="largest req/s one replica sustains within the SLOs")
    binding: str
    replicas: int = Field(description="replicas for the given peak load, with burst headroom")
    gpus_total: int


@mcp.tool(annotations=READ_ONLY)
async def capacity(model: ModelName, gpu: GpuName,
                   qps: Annotated[float, Field(gt=0, description="peak requests/s the deployment must carry")],
                   isl: Annotated[int, Field(gt=0, le=1_000_000)] = 1024, osl: Annotated[int, Field(gt=0, le=1_000_000)] = 256,
                   tp: Annotated[int, Field(ge=1, le=64)] = 1, weight_dtype: str | None = None,
                   ttft_p90_ms: Annotated[float | None, Field(gt=0)] = 1000, tpot_p90_ms: Annotated[float | None, Field(gt=0)] = 100,
                   e2e_p95_ms: Annotated[float | None, Field(gt=0)] = None) -> Capacity:
    """Memory fit and replicas for a given model, GPU and TP at a peak load: does it fit (GiB breakdown), how many
    req/s one replica carries within the latency targets (goodput), and how many replicas the peak needs."""
    args = dict(model=model, gpu=gpu, qps=qps, isl=isl, osl=osl, tp=tp, weight_dtype=weight_dtype,
                ttft_p90_ms=ttft_p90_ms, tpot_p90_ms=tpot_p90_ms, e2e_p95_ms=e2e_p95_ms)

    def run(ctx: AppContext) -> Capacity:
        from kb.latency import load_latency_params
        from planner.capacity import goodput, replicas_for
        from planner.catalog import SloTargets

        m, g = ctx.catalog.model(model), ctx.catalog.gpu(gpu)
        q = PredictQuery(model=m.hf_id, gpu=g.name, tp=tp, isl=isl, osl=osl, qps=qps, weight_dtype=weight_dtype)
        gp = goodput(q, m, g, load_latency_params(), SloTargets(ttft_p90_ms=ttft_p90_ms, tpot_p90_ms=tpot_p90_ms,
                                                                e2e_p95_ms=e2e_p95_ms), ctx.correction(m.hf_id, g.name, tp))
        n = replicas_for(qps, qps, gp.qps, 1.0)[0] if gp.qps > 0 else 0
        return Capacity(model=m.hf_id, gpu=g.name, tp=tp, weight_dtype=weight_dtype or m.native_dtype,
                        memory=gp.at_goodput.memory, goodput_qps_per_replica=round(gp.qps, 4), binding=gp.binding,
                        replicas=n, gpus_total=n * tp)

    return await _bounded("capacity", run, args)


_EXTRACT_PROMPT = (
    "Extract a serving workload from the text below. Answer with ONE JSON object and nothing else, using only "
    "these keys when the text states them: use_case (one of {use_cases}), qps (average requests/s), users, "
    "requests_per_user_per_day, ttft_p90_ms, tpot_p90_ms, e2e_p95_ms, prompt_tokens, output_tokens, "
    "budget_usd_month, priority (latency|cost|balanced|quality), max_gpus, gpus (list), models (list), "
    "open_weights_only (bool). Omit anything not stated.\n\nText: {text}"
)
_EXTRACT_KEYS = {"use_case", "qps", "users", "requests_per_user_per_day", "ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms",
                 "prompt_tokens", "output_tokens", "budget_usd_month", "priority", "max_gpus", "gpus", "models",
                 "open_weights_only"}


async def _sample_intent(ctx: Context, text: str, use_cases: list[str]) -> dict | None:
    """Ask the client's model to extract the spec; None when the client cannot or the answer is unusable."""
    caps = ctx.client_capabilities
    if not caps or not getattr(caps, "sampling", None):
        return None
    prompt = _EXTRACT_PROMPT.format(use_cases=", ".join(use_cases), text=text)
    try:
        with anyio.fail_after(SAMPLING_TIMEOUT_S), warnings.catch_warnings():
            # Sampling is deprecated in the 2026-07-28 protocol but still what older clients offer.
            warnings.simplefilter("ignore")
            reply = await ctx.session.create_message(
                messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=400)
        raw = reply.content.text if isinstance(reply.content, TextContent) else ""
        data = json.loads(raw[raw.find("{"): raw.rfind("}") + 1])
    except Exception:  # noqa: BLE001 - any failure of the client's model falls back to the rule extractor
        return None
    return {k: v for k, v in data.items() if k in _EXTRACT_KEYS} if isinstance(data, dict) else None


class TrafficAnswer(BaseModel):
    qps: float = Field(gt=0, description="average requests per second")


@mcp.tool(annotations=READ_ONLY)
async def build_spec(ctx: Context, text: Text | None = None,
                     use_case: Annotated[str | None, Field(max_length=60, description="template name, see resource kb://use-cases")] = None,
                     qps: Annotated[float | None, Field(gt=0)] = None, users: Annotated[int | None, Field(gt=0)] = None,
                     ttft_p90_ms: Annotated[float | None, Field(gt=0)] = None,
                     tpot_p90_ms: Annotated[float | None, Field(gt=0)] = None,
                     e2e_p95_ms: Annotated[float | None, Field(gt=0)] = None,
                     priority: Literal["latency", "cost", "balanced", "quality"] | None = None,
                     budget_usd_month: Annotated[float | None, Field(gt=0)] = None) -> DeploymentSpec:
    """Turn the person's words (text) and/or explicit options into a DeploymentSpec. Uses your model through MCP
    sampling when available, else servewise's rule extractor (field extracted_by says which). Values guessed from a
    use-case template are listed in assumptions; missing essentials come back in questions — ask the person, then
    call again with the answers (e.g. qps). Pass the spec to recommend."""
    catalog = app_context().catalog
    extracted = await _sample_intent(ctx, text, [u.name for u in catalog.use_cases]) if text else None
    options = dict(text=text, use_case=use_case, qps=qps, users=users, ttft_p90_ms=ttft_p90_ms,
                   tpot_p90_ms=tpot_p90_ms, e2e_p95_ms=e2e_p95_ms, priority=priority, budget_usd_month=budget_usd_month)

    def run(app: AppContext, **extra) -> DeploymentSpec:
        from planner.spec import build_spec as build

        return build(app.catalog, extracted=extracted, extracted_by="sampling" if extracted else None,
                     **{**options, **extra})

    spec = await _bounded("build_spec", run, options)
    caps = ctx.client_capabilities
    if spec.questions and qps is None and users is None and caps and getattr(caps, "elicitation", None):
        try:
            with anyio.fail_after(SAMPLING_TIMEOUT_S):
                answer = await ctx.elicit("How much traffic should this serve, in requests per second?", TrafficAnswer)
            if answer.action == "accept" and answer.data:
                spec = await _bounded("build_spec", functools.partial(run, qps=answer.data.qps), options)
        except Exception:  # noqa: BLE001 - no answer: the questions stay in the spec for the caller to ask
            pass
    return spec


@mcp.tool(annotations=LOCAL_WRITE)
async def recommend(spec: DeploymentSpec | None = None, text: Text | None = None,
                    use_case: Annotated[str | None, Field(max_length=60)] = None,
                    qps: Annotated[float | None, Field(gt=0)] = None,
                    top: Annotated[int, Field(ge=1, le=10)] = 5) -> Plan:
    """Recommend model x GPU x TP x replicas x vLLM settings for a DeploymentSpec (from build_spec), or directly
    from text / use_case + qps. Returns a Plan: candidates best first, chosen index, rationale, predicted latency
    percentiles and monthly cost per candidate, and the binding constraint. chosen is null when nothing meets the
    SLOs (infeasible says which SLO). The plan is saved: pass its id to whatif, render or propose_pr."""
    args = {"spec": spec.model_dump() if spec else None, "text": text, "use_case": use_case, "qps": qps, "top": top}

    def run(ctx: AppContext) -> Plan:
        from planner.spec import build_spec as build

        the_spec = spec or build(ctx.catalog, text=text, use_case=use_case, qps=qps)
        return actions.make_plan(ctx, the_spec, top)

    return await _bounded("recommend", run, args)


@mcp.tool(annotations=READ_ONLY)
async def whatif(plan_id: PlanId,
                 changes: Annotated[list[Annotated[str, Field(max_length=100)]], Field(
                     min_length=1, max_length=10,
                     description="key=value changes: traffic=x2, qps=40, gpu=L40S, tp=2, quantization=fp8, "
                                 "model=qwen3-8b, ttft_p90_ms=200, prompt_tokens=x2")]) -> WhatIf:
    """Compare a plan's chosen deployment with a changed one, side by side: cost, GPUs, replicas, TTFT/TPOT/E2E
    percentiles against the SLOs, and what the recommender would pick after spec changes."""
    def run(ctx: AppContext) -> WhatIf:
        from kb.latency import load_latency_params
        from planner.whatif import parse_change, whatif as compare

        return compare(actions.plan_from(ctx, plan_id=plan_id), [parse_change(c) for c in changes], ctx.catalog,
                       load_latency_params(), provider=ctx.settings.provider, corrections=ctx.corrections)

    return await _bounded("whatif", run, {"plan_id": plan_id, "changes": changes})


class Rendered(BaseModel):
    namespace: str
    name: str
    files: dict[str, str]
    written_to: str | None = None
    validated: str


@mcp.tool(annotations=LOCAL_WRITE)
async def render(plan_id: PlanId, namespace: Annotated[str | None, Field(max_length=63)] = None,
                 name: Annotated[str | None, Field(max_length=40)] = None,
                 autoscaler: Literal["keda", "hpa"] = "keda",
                 monitor: Literal["podmonitor", "servicemonitor"] = "podmonitor",
                 write: Annotated[bool, Field(description="also write the bundle to <workspace>/<namespace>/<name> "
                                                          "(the server's workspace setting)")] = False,
                 target: Annotated[Literal["isvc", "llmisvc"], Field(
                     description="isvc: KServe InferenceService + ServingRuntime; llmisvc: LLMInferenceService")] = "isvc",
                 ) -> Rendered:
    """Render the plan's chosen deployment as KServe + vLLM manifests (ServingRuntime, InferenceService, KEDA or
    HPA, PodMonitor/ServiceMonitor, SLO PrometheusRule, Grafana dashboard, SLO-report CronJob; Argo CD's
    ApplicationSet makes the Application), validated against the real CRD schemas and Kubernetes 1.31. Returns the files' contents."""
    args = dict(plan_id=plan_id, namespace=namespace, name=name, autoscaler=autoscaler, monitor=monitor, write=write,
                target=target)

    def run(ctx: AppContext) -> Rendered:
        from gitops.bundle import write_bundle

        bundle = actions.valid_bundle(ctx, actions.plan_from(ctx, plan_id=plan_id), namespace=namespace, name=name,
                                      autoscaler=autoscaler, monitor=monitor, target=target)
        written = None
        if write:
            written = actions.workspace_dir(ctx, bundle)
            write_bundle(bundle, written)
        return Rendered(namespace=bundle.namespace, name=bundle.name, files=bundle.files,
                        written_to=str(written) if written else None, validated="CRD schemas + Kubernetes 1.31 (strict)")

    return await _bounded("render", run, args)


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
PROPOSE = ToolAnnotations(title="Open a GitOps pull request (refuses to replace another service unless replace=true)",
                          readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=True)


@mcp.tool(annotations=PROPOSE)
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


class Outcomes(BaseModel):
    outcomes: list[Outcome]
    error_over_time: list[ErrorPoint]
    corrections: list[dict]


@mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True))
async def slo_report(plan_id: PlanId,
                     deployment: Annotated[str | None, Field(max_length=120, description="NAMESPACE/NAME; default from the plan")] = None,
                     pr_number: Annotated[int | None, Field(ge=1, description="post/update the sticky comment on this pull request")] = None,
                     window: Annotated[str, Field(max_length=10, description="Prometheus window: 30m, 1h, 1d")] = "1h"
                     ) -> Report:
    """Observed SLOs of a running deployment (from Prometheus: TTFT/TPOT/E2E percentiles, traffic, tokens/s, queue,
    KV cache, preemptions) beside what the plan predicted: verdict (meets, at risk, violated), cost observed vs
    planned, and right-sizing advice with its predicted effect. With pr_number the report is the pull request's
    sticky comment. Complete reports store outcomes that correct later predictions. Prometheus is the server's
    prometheus setting: a client cannot point it (or its token) elsewhere."""
    def run(ctx: AppContext) -> Report:
        plan = actions.plan_from(ctx, plan_id=plan_id)
        dep = deployment or f"{ctx.settings.namespace}/{plan.spec.name}"
        return actions.slo_report(ctx, plan, deployment=dep, window=window,
                                  forge=ctx.forge() if pr_number else None, pr_number=pr_number)

    return await _bounded("slo_report", run, dict(plan_id=plan_id, deployment=deployment, pr_number=pr_number,
                                                  window=window))


@mcp.tool(annotations=READ_ONLY)
async def list_outcomes(limit: Annotated[int, Field(ge=1, le=500)] = 50) -> Outcomes:
    """Observed-vs-predicted outcomes from SLO reports (per metric and configuration), the prediction error over
    time, and the corrections the planner now applies per model x GPU x TP."""
    def run(ctx: AppContext) -> Outcomes:
        from kb.outcomes import load_outcomes

        outcomes = load_outcomes(ctx.kb)
        return Outcomes(outcomes=outcomes[-limit:], error_over_time=error_over_time(outcomes),
                        corrections=listed(ctx.corrections))

    return await _bounded("list_outcomes", run, {"limit": limit})


@mcp.tool(annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True))
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


def _json_resource(fn) -> str:
    ctx = app_context()
    return json.dumps(fn(ctx), indent=1, default=str)


@mcp.resource("kb://models", mime_type="application/json", description="Model architectures with licences and sources")
def models_resource() -> str:
    return _json_resource(lambda ctx: [m.model_dump(mode="json") for m in ctx.catalog.models])


@mcp.resource("kb://gpus", mime_type="application/json", description="GPU datasheet figures and prices per provider")
def gpus_resource() -> str:
    return _json_resource(lambda ctx: [g.model_dump(mode="json") for g in ctx.catalog.gpus])


@mcp.resource("kb://use-cases", mime_type="application/json", description="Workload templates with SLO targets and sources")
def use_cases_resource() -> str:
    return _json_resource(lambda ctx: [u.model_dump(mode="json") for u in ctx.catalog.use_cases])


@mcp.resource("kb://benchmarks", mime_type="application/json", description="Measured vLLM/TRT-LLM/SGLang runs used for calibration (summary)")
def benchmarks_resource() -> str:
    def rows(ctx: AppContext) -> list[dict]:
        cols = ("id", "engine", "model", "gpu", "weight_dtype", "tp", "isl", "osl", "concurrency", "ttft_mean_ms",
                "tpot_mean_ms", "source_ref")
        return [dict(zip(cols, r)) for r in ctx.kb.db.execute(f"SELECT {', '.join(cols)} FROM benchmarks ORDER BY rowid")]

    return _json_resource(rows)


@mcp.resource("kb://accuracy", mime_type="application/json",
              description="Your imported runs, cross-validated: median error per model x GPU before and after their corrections")
def accuracy_resource() -> str:
    from kb.corrections import accuracy
    from kb.latency import load_latency_params

    return _json_resource(lambda ctx: {k: [x.model_dump(mode="json") for x in v] if isinstance(v, list) else v
                                       for k, v in accuracy(ctx.kb, ctx.catalog, load_latency_params()).items()})


@mcp.resource("kb://plans/{plan_id}", mime_type="application/json", description="A saved plan (from recommend)")
def plan_resource(plan_id: str) -> str:
    from kb.plans import get_plan

    return _json_resource(lambda ctx: get_plan(ctx.kb, plan_id).model_dump(mode="json"))


@mcp.prompt(name="plan-deployment")
def plan_deployment(need: str) -> str:
    """Plan a deployment in four stages: business context, recommendations, what-if, deploy."""
    return (f"Help me deploy an LLM service on Kubernetes. What I need: {need}\n\n"
            "Work in four stages and show me the numbers with their assumptions at each one:\n"
            "1. Business context: call build_spec with my words; if it returns questions, ask me them.\n"
            "2. Recommendations: call recommend with the spec; explain the top pick, its binding constraint and why "
            "it beats the runner-up, with predicted p90 TTFT/TPOT and monthly cost.\n"
            "3. What-if: offer whatif scenarios (traffic x2, another GPU, fp8) and compare them side by side.\n"
            "4. Deploy: when I agree, call render to show the manifests, then propose_pr to open the pull request.")


@mcp.prompt(name="review-pr")
def review_pr(plan_id: str) -> str:
    """Review a servewise deployment plan before merging its pull request."""
    return (f"Review the deployment plan {plan_id} (read resource kb://plans/{plan_id}) as a platform engineer: "
            "check the memory breakdown, the SLO margins at the predicted p90/p95, the binding constraint, the "
            "assumptions that matter most, and the alternatives that lost. Call render to inspect the manifests. "
            "End with approve / request changes and why.")


@mcp.prompt(name="right-size")
def right_size(plan_id: str) -> str:
    """Right-size a running deployment from what it observes."""
    return (f"Right-size deployment plan {plan_id}: call list_outcomes to see observed vs predicted latency, then "
            "whatif with fewer replicas, a smaller GPU or fp8 to find the cheapest configuration that still meets "
            "the SLOs with the observed traffic. Report the predicted effect of each change.")


def run_stdio() -> None:
    mcp.run()


def run_http(host: str, port: int, token: str | None) -> None:
    """Streamable HTTP on /mcp; with a token every request needs `Authorization: Bearer <token>`."""
    import uvicorn

    app = mcp.streamable_http_app()
    if token:
        app = _BearerAuth(app, token)
    uvicorn.run(app, host=host, port=port, log_level="warning")


class _BearerAuth:
    """ASGI middleware refusing HTTP requests without the bearer token (compared in constant time)."""

    def __init__(self, app, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send) -> None:
        import hmac

        if scope["type"] == "http":
            auth = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(auth, b"Bearer " + self.token):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b'{"error": "missing or wrong bearer token"}'})
                return
        await self.app(scope, receive, send)
