"""The SLO report: what a deployment observes beside what its plan predicted, a verdict, right-sizing
advice with its predicted effect, the sticky pull-request comment, and the outcomes that calibrate the
next prediction.
"""

from __future__ import annotations

import datetime as dt
import math

from pydantic import BaseModel, Field

from gitops.markdown import md_text
from gitops.prometheus import Observed
from planner.capacity import headroom
from planner.catalog import Catalog
from planner.contracts import Correction, Plan, PredictQuery, Traffic
from planner.errors import ServewiseError
from planner.feedback import Outcome
from planner.latency import LatencyParams, predict
from planner.memory import deployed_kv_dtype
from planner.recommend import HOURS_PER_MONTH, recommend

MARKER = "<!-- servewise:slo-report -->"
AT_RISK = 0.9  # observed above 90 % of a target is "at risk"
# An outcome is stored only when every observed latency lies between these bounds, since one stored outcome
# moves every later prediction for its model x GPU x TP:
# - at least half the physics floor of one engine step (every prefill and decode step streams the weights at
#   no more than datasheet bandwidth); half, because histogram_quantile interpolates linearly inside vLLM's
#   buckets and can land below the true value by up to a bucket's width;
# - at most a day: vLLM's largest histogram bucket is 7,680 s and histogram_quantile never returns more than
#   the highest finite bucket bound, so more is not a measurement;
# - at most MAX_OVER_PREDICTION x the prediction at the observed load. The base model's held-out error is a
#   factor of about 1.2; a factor 20 is a broken deployment or measurement, not a calibration error (the
#   report still shows it and its verdict, it just does not teach the planner).
FLOOR_SHARE = 0.5
_LEARNED = {("TTFT", "p90"), ("TPOT", "p90"), ("E2E", "p95")}
CEILING_MS = 86_400_000.0
MAX_OVER_PREDICTION = 20.0


class SloCheck(BaseModel):
    metric: str
    target_ms: float
    predicted_ms: float | None
    observed_ms: float | None
    status: str  # meets | at risk | violated | no data


class Report(BaseModel):
    deployment: str
    plan_id: str
    created_at: str
    verdict: str  # meets | at risk | violated | insufficient data | unreachable
    window_s: float
    checks: list[SloCheck] = Field(default_factory=list)
    traffic_assumed_qps: float
    traffic_observed_qps: float | None = None
    cost_predicted_usd_month: float
    cost_observed_usd_month: float | None = None
    advice: str = ""
    missing: list[str] = Field(default_factory=list)
    observed: Observed | None = None
    outcomes: list[Outcome] = Field(default_factory=list)
    history: list[dict] = Field(default_factory=list)


def _missing(observed: Observed | None) -> list[str]:
    if observed is None:
        return []
    no_data = [f"no samples in the window for: {', '.join(observed.missing)}"] if observed.missing else []
    return [*observed.notes, *no_data]


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _status(observed: float | None, target: float) -> str:
    if observed is None:
        return "no data"
    if observed > target:
        return "violated"
    return "at risk" if observed > AT_RISK * target else "meets"


def _at_load(plan: Plan, catalog: Catalog, params: LatencyParams, qps: float, replicas: int, gpu: str | None = None,
             correction: Correction | None = None):
    c = plan.candidates[plan.chosen]
    s = plan.spec
    q = PredictQuery(model=c.model, gpu=gpu or c.gpu, tp=c.tp, isl=max(1, round(s.prompt_tokens.mean)),
                     osl=max(2, round(s.output_tokens.mean)), qps=qps, replicas=replicas, weight_dtype=c.weight_dtype,
                     isl_cv=s.prompt_tokens.cv, osl_cv=s.output_tokens.cv, max_num_seqs=c.vllm.max_num_seqs,
                     kv_dtype=deployed_kv_dtype(c.vllm.kv_cache_dtype))
    return predict(q, catalog.model(c.model), catalog.gpu(gpu or c.gpu), params, correction)


def build_report(plan: Plan, observed: Observed | None, catalog: Catalog, params: LatencyParams, *, deployment: str,
                 correction: Correction | None = None, unreachable: str | None = None,
                 created_at: str | None = None, window_s: float = 0.0) -> Report:
    """Compare observations with the plan. Outcomes are produced only from complete data. `window_s`, the
    window asked for, is what the report states when nothing could be observed."""
    from planner.spec import peak_qps

    c = plan.candidates[plan.chosen]
    s = plan.spec.slos
    price = c.monthly_cost_usd / max(c.gpus_total * HOURS_PER_MONTH, 1)
    report = Report(deployment=deployment, plan_id=plan.id, verdict="unreachable" if unreachable else "insufficient data",
                    created_at=created_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    window_s=observed.window_s if observed else window_s, traffic_assumed_qps=round(peak_qps(plan.spec), 3),
                    cost_predicted_usd_month=c.monthly_cost_usd, observed=observed,
                    missing=[unreachable] if unreachable else _missing(observed))
    if observed is None:
        return report
    report.traffic_observed_qps = observed.request_s
    replicas = observed.replicas_seen or c.replicas
    report.cost_observed_usd_month = round(replicas * c.tp * price * HOURS_PER_MONTH, 2)
    fair = None
    if observed.request_s:
        # Compare against a prediction at the load actually observed, not the planned peak.
        try:
            # The base model, without any learned correction: outcomes measure its error, so the
            # corrections learned from them do not compound on themselves.
            fair = _at_load(plan, catalog, params, observed.request_s, replicas)
        except ServewiseError as exc:
            report.missing.append(f"no prediction at the observed load: {exc.message}")
    elif observed.request_s == 0:
        report.missing.append(f"no request finished in the {_duration(observed.window_s)} window: an idle "
                              "deployment has no latency to judge")
    rows = (("TTFT p90", s.ttft_p90_ms, observed.ttft_ms.get("p90"), fair and fair.ttft_ms.p90, "ttft_p90_ms"),
            ("TPOT p90", s.tpot_p90_ms, observed.tpot_ms.get("p90"), fair and fair.tpot_ms.p90, "tpot_p90_ms"),
            ("E2E p95", s.e2e_p95_ms, observed.e2e_ms.get("p95"), fair and fair.e2e_ms.p95, "e2e_p95_ms"))
    for label, target, obs, pred, _ in rows:
        if target:
            report.checks.append(SloCheck(metric=label, target_ms=target, predicted_ms=pred, observed_ms=obs,
                                          status=_status(obs, target)))
    statuses = {ch.status for ch in report.checks}
    impossible, far_off = _implausible(plan, catalog, observed, fair)
    report.missing += impossible
    # Outcomes calibrate every later prediction, so only complete, plausible data over a sound window makes one.
    if "no data" in statuses or not observed.request_s or observed.window_too_short or impossible:
        report.verdict = "insufficient data"
    else:
        report.verdict = "violated" if "violated" in statuses else "at risk" if "at risk" in statuses else "meets"
        report.advice = _advice(plan, catalog, params, observed, replicas, report.verdict, correction)
        report.missing += far_off
        if not observed.missing and not far_off and fair is not None:
            report.outcomes = [
                Outcome(deployment=deployment, plan_id=plan.id, model=c.model, gpu=c.gpu, tp=c.tp,
                        weight_dtype=c.weight_dtype, metric=metric, predicted=pred, observed=obs,
                        window_s=observed.window_s, created_at=report.created_at)
                for _, target, obs, pred, metric in rows if target and obs and pred]
    return report


def _implausible(plan: Plan, catalog: Catalog, observed: Observed, fair) -> tuple[list[str], list[str]]:
    """(values no deployment can produce, learned values too far from the prediction to learn from), each a
    sentence. Every latency is checked against the floor and ceiling; the prediction bound applies to what an
    outcome learns (TTFT p90, TPOT p90, E2E p95)."""
    import numpy as np

    from planner.steptime import features, physics_floor_tpot

    c = plan.candidates[plan.chosen]
    f = features(catalog.model(c.model), catalog.gpu(c.gpu), tp=c.tp, pp=c.pp, weight_dtype=c.weight_dtype,
                 kv_dtype=c.vllm.kv_cache_dtype)
    floor_ms = float(physics_floor_tpot(f, np.array([1.0]), np.array([0.0]))[0]) * 1e3 * FLOOR_SHARE
    impossible, far_off = [], []
    for name, values, predicted in (("TTFT", observed.ttft_ms, fair and fair.ttft_ms),
                                    ("TPOT", observed.tpot_ms, fair and fair.tpot_ms),
                                    ("E2E", observed.e2e_ms, fair and fair.e2e_ms),
                                    ("ITL", {"p90": observed.itl_p90_ms}, None)):
        for level, value in values.items():
            if value is None:
                continue
            if not floor_ms <= value <= CEILING_MS:
                impossible.append(f"{name} {level} of {value:.4g} ms is not a latency this deployment can have (one "
                                  f"engine step streams the weights: at least {floor_ms:.3g} ms; at most a day); "
                                  "Prometheus's answer is wrong, no outcome stored")
            elif (predicted is not None and (name, level) in _LEARNED
                  and value > MAX_OVER_PREDICTION * getattr(predicted, level)):
                far_off.append(f"{name} {level} observed {value:,.0f} ms is more than {MAX_OVER_PREDICTION:g}x the "
                               f"{getattr(predicted, level):,.1f} ms predicted at the observed load: a broken "
                               "deployment or measurement, not a calibration error; no outcome stored")
    return impossible, far_off


def _advice(plan: Plan, catalog: Catalog, params: LatencyParams, observed: Observed, replicas: int, verdict: str,
            correction: Correction | None) -> str:
    c = plan.candidates[plan.chosen]
    load = observed.request_s or 0.0
    need = max(1, math.ceil(load * (1 + headroom(plan.spec.traffic.burstiness)) / c.goodput_qps)) if c.goodput_qps else replicas
    if verdict == "violated" and need <= replicas:
        need = replicas + 1
    if need == replicas:
        return f"keep {replicas} replica(s): observed {load:.2f} req/s is within what they carry ({c.goodput_qps:.2f} req/s each)."
    try:
        effect = _at_load(plan, catalog, params, load, need, correction=correction)
        corrected = f" (corrected by {correction.n_outcomes} earlier report(s))" if correction else ""
        effect_text = (f"predicted{corrected} at the observed load: TTFT p90 {effect.ttft_ms.p90:,.0f} ms, TPOT p90 "
                       f"{effect.tpot_ms.p90:.1f} ms, E2E p95 {effect.e2e_ms.p95:,.0f} ms")
    except ServewiseError as exc:
        effect_text = f"effect not predictable: {exc.message}"
    saving = (replicas - need) * c.tp * c.monthly_cost_usd / max(c.gpus_total, 1)
    verb = "scale down" if need < replicas else "scale up"
    money = f"saves ${saving:,.0f}/month" if saving > 0 else f"costs ${-saving:,.0f}/month more"
    advice = f"{verb} from {replicas} to {need} replica(s) ({money}); {effect_text}."
    if need < replicas:
        advice += _other_gpu(plan, catalog, params, load, c.monthly_cost_usd * need / max(c.replicas, 1), correction)
    return advice


def _other_gpu(plan: Plan, catalog: Catalog, params: LatencyParams, load: float, cost_after: float,
               correction: Correction | None) -> str:
    """When over-provisioned: the planner's own pick for the same model at the observed load, if it is a
    different, cheaper GPU. The model stays, since changing it changes answer quality, not just cost."""
    c = plan.candidates[plan.chosen]
    t = plan.spec.traffic
    spec = plan.spec.model_copy(update={
        "traffic": Traffic(qps=load, peak_factor=1.0, burstiness=t.burstiness),
        "constraints": plan.spec.constraints.model_copy(update={"models": [c.model]})})
    try:
        best = recommend(spec, catalog, params, provider=plan.provider, top=1,
                         corrections={(c.model, c.gpu, c.tp): correction} if correction else None)
    except ServewiseError:
        return ""
    if best.chosen is None:
        return ""
    b = best.candidates[best.chosen]
    if b.gpu == c.gpu or b.monthly_cost_usd >= cost_after or not b.meets_slos:
        return ""
    return (f" Or move to {b.replicas} replica(s) of {b.tp}x {b.gpu} (${b.monthly_cost_usd:,.0f}/month instead of "
            f"${cost_after:,.0f}); predicted at the observed load: TTFT p90 {b.predicted.ttft_ms.p90:,.0f} ms, "
            f"TPOT p90 {b.predicted.tpot_ms.p90:.1f} ms, E2E p95 {b.predicted.e2e_ms.p95:,.0f} ms.")


def comment_body(report: Report) -> str:
    """The sticky pull-request comment; the hidden marker finds it again next run. Every value that is not a
    number goes through md_text: deployment names and plan ids come from files and command lines."""
    icon = {"meets": "✅", "at risk": "⚠️", "violated": "❌"}.get(report.verdict, "❔")
    lines = [MARKER, f"## {icon} SLO report for {md_text(report.deployment, 'code')}: {md_text(report.verdict)}", "",
             f"Plan {md_text(report.plan_id, 'code')}, window {_duration(report.window_s)}, "
             f"{md_text(report.created_at)}.", ""]
    if report.checks:
        lines += ["| SLO | target | predicted at observed load | observed | status |", "|---|---|---|---|---|"]
        fmt = lambda v: "—" if v is None else f"{v:,.1f} ms"
        lines += [f"| {md_text(ch.metric)} | {ch.target_ms:g} ms | {fmt(ch.predicted_ms)} | {fmt(ch.observed_ms)} | "
                  f"{md_text(ch.status)} |" for ch in report.checks]
        lines.append("")
    observed_qps = "—" if report.traffic_observed_qps is None else f"{report.traffic_observed_qps:.2f}"
    observed_cost = "—" if report.cost_observed_usd_month is None else f"${report.cost_observed_usd_month:,.0f}"
    lines.append(f"Traffic: observed {observed_qps} req/s vs {report.traffic_assumed_qps:.2f} req/s planned peak. "
                 f"Cost: {observed_cost}/month running vs ${report.cost_predicted_usd_month:,.0f}/month planned.")
    o = report.observed
    if o:
        extras = [f"ITL p90 {o.itl_p90_ms:,.1f} ms" if o.itl_p90_ms is not None else None,
                  f"queue p90 {o.queue_p90_ms:,.0f} ms" if o.queue_p90_ms is not None else None,
                  f"{o.waiting:.1f} requests waiting on average" if o.waiting is not None else None,
                  f"KV cache {o.kv_cache_usage * 100:.0f} %" if o.kv_cache_usage is not None else None,
                  f"preemptions {o.preemptions_per_s:.3f}/s" if o.preemptions_per_s is not None else None,
                  f"errors {o.error_rate * 100:.2f} %" if o.error_rate is not None else None,
                  f"GPU util {o.gpu_util_pct:.0f} %" if o.gpu_util_pct is not None else None]
        if any(extras):
            lines.append("Also: " + ", ".join(e for e in extras if e) + ".")
    if report.advice:
        lines += ["", f"**Right-sizing:** {md_text(report.advice)}"]
    if report.missing:
        stored = "" if report.outcomes else " (no outcome stored from this run)"
        lines += ["", f"**Missing data**{stored}:", *[f"- {md_text(m)}" for m in report.missing]]
    if report.history:
        lines += ["", "Earlier reports: " + ", ".join(f"{md_text(h['created_at'][:16])} {md_text(h['verdict'])}"
                                                      for h in report.history)]
    return "\n".join(lines) + "\n"
