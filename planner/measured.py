"""A team's own measured runs as evidence for `planner.feedback`, and what their corrections did.

`run_evidence` predicts every run's configuration with the base model (no correction) and turns the
measured means into log ratios; `cross_validated` scores each run with the corrections learned from the
other runs only, beside the base model, so a team sees what its data did.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from planner.catalog import BenchmarkRow, Catalog
from planner.contracts import EvidenceRef, PredictQuery
from planner.errors import ServewiseError
from planner.feedback import DEPLOYED_RELEASE, Evidence, corrections, resolve
from planner.latency import LatencyParams, predict_many

# Only the means are used, and they do not depend on the sampled percentiles.
_SAMPLES = 8
_FOLDS = 10


class ScoredRun(BaseModel):
    """One usable run: what it measured and what the base model predicted for its configuration."""

    id: str
    source: str
    model: str
    gpu: str
    weight_dtype: str
    release: str = Field(description="vLLM release the run measured (the deployed one when the run does not say)")
    tp: int
    isl: int
    osl: int
    inflight: float
    kv_share: float = Field(description="share of the base TPOT spent reading the KV cache")
    prefill_share: float = Field(description="share of the base TPOT that other requests' prefill adds")
    measured_ttft_ms: float | None
    measured_tpot_ms: float | None
    base_ttft_ms: float
    base_tpot_ms: float


class Skipped(BaseModel):
    id: str
    reason: str


def why_unusable(row: BenchmarkRow) -> str | None:
    """Why a run cannot correct vLLM predictions, or None when it can."""
    if row.engine != "vllm":
        return "servewise predicts vLLM; runs of other engines are kept for comparison only"
    if row.dp > 1:
        return "attention data-parallel runs are not a layout servewise predicts"
    if row.expert_parallel():
        return ("expert-parallel runs are predicted (predict --expert-parallel) but do not correct predictions: the "
                "correction has no layout coordinate, and they would pull the plain-TP one toward another layout's errors")
    if int(row.extra.get("moe_tp") or 1) > row.tp:
        # vLLM shards MoE layers over TP x DP ranks when expert parallelism is off (FusedMoEParallelConfig.make in
        # vllm/model_executor/layers/fused_moe/config.py, vllm-project/vllm@002d6073): a MoE TP above the attention
        # TP means attention data parallel on moe_tp GPUs, whatever the run's dp field says. Such runs of
        # Qwen3-235B on H200 (moe_tp 4 at TP 2) measure TPOT 15-25 % below, and long-prompt TTFT up to 2.3x above,
        # the plain TP runs beside them.
        return (f"MoE layers span {row.extra['moe_tp']} GPUs while attention is TP {row.tp}: attention data parallel, "
                "a layout servewise does not predict")
    if not (row.concurrency or row.request_rate):
        return "needs a concurrency or a request rate"
    if not row.ttft_ms.get("mean") and not row.tpot_ms.get("mean"):
        return "needs mean TTFT or mean TPOT"
    return None


def run_query(row: BenchmarkRow, catalog: Catalog) -> PredictQuery:
    """The query that reproduces a run's configuration, release and load."""
    sent = row.num_prompts()
    load = ({"qps": row.request_rate} if row.request_rate else
            {"concurrency": row.concurrency, "num_prompts": max(sent, row.concurrency) if sent else None})
    return PredictQuery(model=catalog.model(row.model).hf_id, gpu=catalog.gpu(row.gpu).name, tp=row.tp, pp=row.pp,
                        isl=row.isl, osl=row.osl, weight_dtype=row.weight_dtype, engine_version=row.engine_version,
                        kv_dtype="fp8" if (row.kv_dtype or "").startswith("fp8") else "auto",
                        async_scheduling=True if row.asks_async_scheduling() else None,
                        expert_parallel=row.expert_parallel(), **load)


def score_runs(runs: Sequence[tuple[BenchmarkRow, str]], catalog: Catalog, params: LatencyParams
               ) -> tuple[list[ScoredRun], list[Skipped]]:
    """Base-model predictions for each (run, source file); runs that cannot be predicted are skipped with why."""
    kept, skipped = [], []
    for row, source in runs:
        reason = why_unusable(row)
        if reason is None:
            try:
                q = run_query(row, catalog)
            except ServewiseError as exc:
                reason = exc.message
            except ValueError as exc:  # pydantic: a TP or length PredictQuery does not accept
                reason = str(exc).splitlines()[-1].strip()
        if reason:
            skipped.append(Skipped(id=row.id, reason=reason))
        else:
            kept.append((row, source, (q, catalog.model(q.model), catalog.gpu(q.gpu))))
    try:
        preds = predict_many([k[2] for k in kept], params, n_samples=_SAMPLES)
    except ServewiseError:  # some run does not fit as servewise models it: find which, predict the rest
        ok = []
        for item in kept:
            try:
                predict_many([item[2]], params, n_samples=1)
                ok.append(item)
            except ServewiseError as exc:
                skipped.append(Skipped(id=item[0].id, reason=exc.message))
        kept = ok
        preds = predict_many([k[2] for k in kept], params, n_samples=_SAMPLES)
    scored = []
    for (row, source, (q, _, _)), p in zip(kept, preds):
        inflight = float(row.concurrency) if q.concurrency else p.request_s * p.e2e_ms.mean / 1e3
        scored.append(ScoredRun(id=row.id, source=source, model=q.model, gpu=q.gpu, weight_dtype=row.weight_dtype,
                                release=row.engine_version or DEPLOYED_RELEASE, tp=row.tp, isl=row.isl, osl=row.osl,
                                inflight=inflight, kv_share=p.tpot_shares.kv_reads, prefill_share=p.tpot_shares.prefill,
                                measured_ttft_ms=row.ttft_ms.get("mean"), measured_tpot_ms=row.tpot_ms.get("mean"),
                                base_ttft_ms=p.ttft_ms.mean, base_tpot_ms=p.tpot_ms.mean))
    return scored, skipped


def evidence(scored: Sequence[ScoredRun], rows: dict[str, BenchmarkRow] | None = None) -> list[Evidence]:
    """Log ratios of measured to base-predicted TTFT and TPOT, and (for closed-loop runs that report it) of the
    measured throughput to what the run's own latencies imply (client gaps, ramp-up: what latency cannot show)."""
    out = []
    for s in scored:
        common = dict(ref=EvidenceRef(id=s.id, source=s.source, kind="run"), model=s.model, gpu=s.gpu,
                      weight_dtype=s.weight_dtype, tp=s.tp, inflight=s.inflight, isl=s.isl, osl=s.osl,
                      kv_share=s.kv_share, prefill_share=s.prefill_share, release=s.release)
        if s.measured_ttft_ms:
            out.append(Evidence(metric="ttft", log_ratio=math.log(s.measured_ttft_ms / s.base_ttft_ms), **common))
        if s.measured_tpot_ms:
            out.append(Evidence(metric="tpot", log_ratio=math.log(s.measured_tpot_ms / s.base_tpot_ms), **common))
        row = (rows or {}).get(s.id)
        if row and row.output_tok_s and row.concurrency and not row.request_rate and s.measured_ttft_ms and s.measured_tpot_ms:
            implied = row.concurrency * s.osl / ((s.measured_ttft_ms + (s.osl - 1) * s.measured_tpot_ms) / 1e3)
            out.append(Evidence(metric="throughput", log_ratio=math.log(row.output_tok_s / implied), **common))
    return out


class AccuracyRow(BaseModel):
    """Cross-validated error of one model x GPU's own runs: each run predicted with corrections from the others."""

    model: str
    gpu: str
    runs: int
    ttft_before_pct: float | None = Field(description="median |error| of mean TTFT, base model")
    ttft_after_pct: float | None = Field(description="the same with the corrections the other runs give")
    tpot_before_pct: float | None
    tpot_after_pct: float | None


def _median(xs: list[float]) -> float | None:
    return round(float(np.median(xs)), 1) if xs else None


def cross_validated(scored: Sequence[ScoredRun], rows: dict[str, BenchmarkRow] | None = None) -> list[AccuracyRow]:
    """Per model x GPU, each run predicted with the corrections learned from the runs of the other folds (leave
    one out up to `_FOLDS` runs, else `_FOLDS` folds by id): the corrected means are the base means times those
    factors (the physics floors that `predict` also applies rarely bind at measured loads)."""
    groups: dict[tuple[str, str], list[ScoredRun]] = defaultdict(list)
    for s in scored:
        groups[(s.model, s.gpu)].append(s)
    out = []
    for (model, gpu), runs in sorted(groups.items()):
        runs = sorted(runs, key=lambda r: r.id)
        points = evidence(runs, rows)
        fold = {r.id: i % _FOLDS for i, r in enumerate(runs)}
        errs: dict[str, list[float]] = defaultdict(list)
        for k in range(min(_FOLDS, len(runs))):
            table = corrections(evidence=[p for p in points if fold[p.ref.id] != k])
            for s in (r for r in runs if fold[r.id] == k):
                app = resolve(table.get((model, gpu, s.tp)), weight_dtype=s.weight_dtype, tp=s.tp, inflight=s.inflight,
                              isl=s.isl, osl=s.osl, kv_share=s.kv_share, prefill_share=s.prefill_share,
                              release=s.release)
                for metric, measured, base, factor in (
                        ("ttft", s.measured_ttft_ms, s.base_ttft_ms, app.ttft_factor if app else 1.0),
                        ("tpot", s.measured_tpot_ms, s.base_tpot_ms, app.tpot_factor if app else 1.0)):
                    if measured:
                        errs[f"{metric}_before"].append(abs(base - measured) / measured * 100)
                        errs[f"{metric}_after"].append(abs(base * factor - measured) / measured * 100)
        out.append(AccuracyRow(model=model, gpu=gpu, runs=len(runs),
                               **{f"{k}_pct": _median(errs[k]) for k in ("ttft_before", "ttft_after", "tpot_before", "tpot_after")}))
    return out
