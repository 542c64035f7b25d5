"""Compact views of servewise's results for an MCP client's model.

A plan is 16-40k characters of JSON and a bundle 40k; a model's context holds a few of those at most.
These views keep what a person decides on (model, GPU, replicas, p90 latencies against the targets,
cost, the binding constraint, what was assumed) with every text bounded, and name the resource that
holds the full object (`kb://plans/{id}`, one manifest per link) so a client reads it only when needed.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from pydantic import BaseModel, Field

from gitops.report import Report, SloCheck
from planner.catalog import ModelArch
from planner.contracts import Candidate, DeploymentSpec, Plan, TrafficClass
from planner.feedback import ErrorPoint, Outcome
from planner.spec import average_qps, peak_qps
from planner.whatif import WhatIfComparison, WhatIfChange

MAX_FIELD = 400  # characters of any free text in a view
MAX_ASSUMPTIONS = 16


def clip(text: str | None, limit: int = MAX_FIELD) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def plan_uri(plan_id: str) -> str:
    return f"kb://plans/{quote(plan_id, safe='')}"


def manifest_uri(plan_id: str, file: str, options: dict[str, str | None]) -> str:
    """The resource that re-renders one file of a bundle with the same options (rendering is deterministic)."""
    query = urlencode({k: v for k, v in options.items() if v is not None})
    return f"{plan_uri(plan_id)}/manifests/{quote(file, safe='')}" + (f"?{query}" if query else "")


class ClassView(BaseModel):
    """A traffic class at the operating point of the whole mix."""

    name: str
    share: float
    ttft_p90_ms: float
    tpot_p90_ms: float
    e2e_p95_ms: float
    meets_slos: bool = Field(description="against the class's targets")


class CandidateView(BaseModel):
    rank: int = Field(description="0 = best")
    model: str
    weight_dtype: str
    gpu: str
    tp: int
    pp: int = 1
    replicas: int
    min_replicas: int
    max_replicas: int
    gpus_total: int
    fits: bool
    meets_slos: bool
    monthly_cost_usd: float
    ttft_p90_ms: float
    tpot_p90_ms: float
    e2e_p95_ms: float
    output_tok_s: float = Field(description="total output tokens/s at the planned peak")
    goodput_qps_per_replica: float
    slo_verdicts: dict[str, bool] = Field(default_factory=dict)
    binding_constraint: str | None = None
    explanation: str | None = None
    vllm: dict[str, int | float | str | bool | None] = Field(
        default_factory=dict, description="the vLLM settings that differ between candidates")
    classes: list[ClassView] | None = Field(default=None, description="per class of a traffic mix")


def candidate_view(c: Candidate, rank: int) -> CandidateView:
    p = c.predicted
    return CandidateView(
        rank=rank, model=c.model, weight_dtype=c.weight_dtype, gpu=c.gpu, tp=c.tp, pp=c.pp, replicas=c.replicas,
        min_replicas=c.min_replicas, max_replicas=c.max_replicas, gpus_total=c.gpus_total, fits=c.fits,
        meets_slos=c.meets_slos, monthly_cost_usd=round(c.monthly_cost_usd, 2), ttft_p90_ms=round(p.ttft_ms.p90, 1),
        tpot_p90_ms=round(p.tpot_ms.p90, 2), e2e_p95_ms=round(p.e2e_ms.p95, 1), output_tok_s=round(p.output_tok_s, 1),
        goodput_qps_per_replica=round(c.goodput_qps, 3), slo_verdicts=c.slo_verdicts,
        binding_constraint=clip(c.binding_constraint, 200), explanation=clip(c.explanation),
        vllm={"max_model_len": c.vllm.max_model_len, "max_num_seqs": c.vllm.max_num_seqs,
              "max_num_batched_tokens": c.vllm.max_num_batched_tokens, "kv_cache_dtype": c.vllm.kv_cache_dtype,
              "quantization": c.vllm.quantization},
        classes=[ClassView(name=k.name, share=round(k.share, 3), ttft_p90_ms=round(k.ttft_ms.p90, 1),
                           tpot_p90_ms=round(k.tpot_ms.p90, 2), e2e_p95_ms=round(k.e2e_ms.p95, 1),
                           meets_slos=all(c.class_verdicts.get(k.name, {}).values()))
                 for k in p.classes] or None)


class SpecView(BaseModel):
    name: str
    use_case: str
    average_qps: float
    peak_qps: float = Field(description="what the deployment is sized for: average x peak factor")
    prompt_tokens_mean: float
    output_tokens_mean: float
    ttft_p90_ms: float | None
    tpot_p90_ms: float | None
    e2e_p95_ms: float | None
    priority: str
    budget_usd_month: float | None = None
    assumptions: list[str] = Field(default_factory=list, description="values servewise filled in, with their source")
    traffic_mix: list[str] | None = None


def _class_line(c: TrafficClass) -> str:
    own = [f"{k.removesuffix('_ms').replace('_', ' ')} {v:g} ms" for k in ("ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms")
           if (v := getattr(c, k)) is not None]
    return clip(f"{c.name} {c.share:.0%}: {c.prompt_tokens.mean:g} prompt / {c.output_tokens.mean:g} output tokens"
                + (f"; {', '.join(own)}" if own else ""), 160)


def spec_view(spec: DeploymentSpec) -> SpecView:
    assumed = [clip(f"{a.field} = {a.value} ({a.source})", 240) for a in spec.assumptions[:MAX_ASSUMPTIONS]]
    if len(spec.assumptions) > MAX_ASSUMPTIONS:
        assumed.append(f"… {len(spec.assumptions) - MAX_ASSUMPTIONS} more in the full plan")
    return SpecView(name=spec.name, use_case=spec.use_case, average_qps=round(average_qps(spec), 4),
                    peak_qps=round(peak_qps(spec), 4), prompt_tokens_mean=spec.prompt_tokens.mean,
                    output_tokens_mean=spec.output_tokens.mean, ttft_p90_ms=spec.slos.ttft_p90_ms,
                    tpot_p90_ms=spec.slos.tpot_p90_ms, e2e_p95_ms=spec.slos.e2e_p95_ms, priority=spec.priority,
                    budget_usd_month=spec.budget_usd_month, assumptions=assumed,
                    traffic_mix=[_class_line(c) for c in spec.traffic_mix[:MAX_ASSUMPTIONS]] or None)


class PlanView(BaseModel):
    """A saved plan, compact: the full plan (memory breakdowns, every percentile, sources) is at `uri`."""

    id: str
    uri: str = Field(description="resource holding the full plan JSON")
    chosen: int | None = Field(description="index into candidates; null when nothing meets the SLOs")
    rationale: str | None = None
    infeasible: str | None = None
    spec: SpecView
    candidates: list[CandidateView]
    calibration: str | None = None
    uncertainty_pct: float | None = Field(default=None, description="± band of the chosen median prediction")
    provider: str
    kb_version: str


def plan_view(plan: Plan) -> PlanView:
    best = plan.candidates[plan.chosen if plan.chosen is not None else 0] if plan.candidates else None
    return PlanView(id=plan.id, uri=plan_uri(plan.id), chosen=plan.chosen, rationale=clip(plan.rationale, 600),
                    infeasible=clip(plan.infeasible, 600), spec=spec_view(plan.spec),
                    candidates=[candidate_view(c, i) for i, c in enumerate(plan.candidates)],
                    calibration=clip(best.predicted.calibration, 200) if best else None,
                    uncertainty_pct=best.predicted.uncertainty_pct if best else None,
                    provider=plan.provider, kb_version=plan.kb_version)


class DeltaView(BaseModel):
    metric: str
    before: float
    after: float | None = Field(description="null when the changed configuration cannot be served")
    change_pct: float | None = None
    target: float | None = None
    before_ok: bool | None = None
    after_ok: bool | None = None


class WhatIfView(BaseModel):
    plan_id: str
    changes: list[WhatIfChange]
    before: CandidateView
    after: CandidateView | None = None
    after_error: str | None = Field(default=None, description="why the changed configuration cannot be served")
    replanned: CandidateView | None = Field(default=None, description="what recommend would pick after spec changes")
    replan_error: str | None = None
    deltas: list[DeltaView]


def whatif_view(plan_id: str, w: WhatIfComparison) -> WhatIfView:
    finite = lambda v: v if v == v else None  # noqa: E731 - NaN marks "no after" in planner.whatif
    return WhatIfView(plan_id=plan_id, changes=w.changes, before=candidate_view(w.before, 0),
                      after=candidate_view(w.after, 0) if w.after else None, after_error=clip(w.after_error),
                      replanned=candidate_view(w.replanned, 0) if w.replanned else None,
                      replan_error=clip(w.replan_error),
                      deltas=[DeltaView(**{**d.model_dump(), "after": finite(d.after)}) for d in w.deltas])


class AddedModel(BaseModel):
    """A model added from a config.json: what the planner derived from it (the full entry is in kb://models)."""

    hf_id: str = Field(description="pass as model to predict, capacity, build_spec or recommend")
    added: bool = Field(description="false when the same architecture was already stored under this id")
    architecture: str
    attention: str
    params_total_b: float
    params_active_b: float
    experts: int | None = Field(default=None, description="routed experts (top-k active), for MoE models")
    experts_per_token: int | None = None
    weight_dtype: str = Field(description="native weight format, from quantization_config")
    context_tokens: int
    kv_bytes_per_token_bf16: int | None = None
    source: str
    kb_version: str


def added_model_view(m: ModelArch, added: bool, kb_version: str) -> AddedModel:
    return AddedModel(hf_id=m.hf_id, added=added, architecture=clip(m.architecture, 100), attention=m.attention.kind,
                      params_total_b=m.params_total_b, params_active_b=m.params_active_b,
                      experts=m.num_experts if m.is_moe else None,
                      experts_per_token=m.experts_per_token if m.is_moe else None, weight_dtype=m.native_dtype,
                      context_tokens=m.max_position_embeddings, kv_bytes_per_token_bf16=m.kv_bytes_per_token_bf16,
                      source=clip(m.source, 200), kb_version=kb_version)


class ManifestFile(BaseModel):
    name: str
    bytes: int
    uri: str = Field(description="resource that returns this file")


class RenderView(BaseModel):
    plan_id: str
    namespace: str
    name: str
    files: list[ManifestFile]
    validated: str
    written_to: str | None = None


class OutcomesPage(BaseModel):
    outcomes: list[Outcome]
    total: int
    offset: int
    next_offset: int | None = Field(description="pass as offset for the next page; null on the last page")
    error_over_time: list[ErrorPoint]
    corrections: list[dict]


class ReportView(BaseModel):
    """An SLO report without the raw observation dump (the PR comment and the kb keep the full report)."""

    deployment: str
    plan_id: str
    created_at: str
    verdict: str = Field(description="meets | at risk | violated | insufficient data | unreachable")
    window_s: float
    checks: list[SloCheck]
    traffic_assumed_qps: float
    traffic_observed_qps: float | None
    cost_predicted_usd_month: float
    cost_observed_usd_month: float | None = Field(description="null when no running replica was observed")
    advice: str | None
    missing: list[str]
    outcomes_stored: int
    reports_before: int


def report_view(r: Report) -> ReportView:
    # A cost is observed only when Prometheus saw replicas running; otherwise it would be the plan's own number.
    seen = r.observed is not None and bool(r.observed.replicas_seen)
    return ReportView(deployment=r.deployment, plan_id=r.plan_id, created_at=r.created_at, verdict=r.verdict,
                      window_s=r.window_s, checks=r.checks, traffic_assumed_qps=r.traffic_assumed_qps,
                      traffic_observed_qps=r.traffic_observed_qps, cost_predicted_usd_month=r.cost_predicted_usd_month,
                      cost_observed_usd_month=r.cost_observed_usd_month if seen else None,
                      advice=clip(r.advice, 800), missing=[clip(m) for m in r.missing[:10]],
                      outcomes_stored=len(r.outcomes), reports_before=len(r.history))
