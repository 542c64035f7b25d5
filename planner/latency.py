"""Predicted TTFT, TPOT, E2E and throughput of a vLLM deployment, and where each number came from.

`predict` answers one PredictQuery; `predict_many` and `predict_load_sweep` answer thousands at once
through the same vectorised path (planner.steptime for step times, planner.batching for the steady
state and percentiles). Nothing here touches files: fitted LatencyParams come in as an argument.
"""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import numpy as np
from pydantic import TypeAdapter

from planner.batching import DEFAULT_ROUNDS, Load, async_by_default, rounds_per_client, sample, solve
from planner.catalog import Gpu, ModelArch
from planner.contracts import Correction, MemoryBreakdown, Prediction, PredictQuery, TrafficClass
from planner.errors import BadInput, Infeasible
from planner.feedback import resolve
from planner.memory import ASSUMPTIONS as MEMORY_ASSUMPTIONS
from planner.memory import default_max_num_batched_tokens, default_max_num_seqs, kv_capacity_dtype, memory_fit
from planner.mix import class_latencies
from planner.steptime import LatencyParams, StepFeatures, features, physics_floor_tpot, physics_floor_ttft

__all__ = ["LatencyParams", "predict", "predict_many", "predict_load_sweep", "predict_loads", "prepare", "Prepared", "check_query",
           "without_cycle_collection"]

_SAMPLES = 400


_P = ParamSpec("_P")
_R = TypeVar("_R")


def without_cycle_collection(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `fn` with CPython's cyclic garbage collector paused. A batch of 10,000 predictions allocates some 10^5
    dicts, lists and models that live until the batch returns, and no reference cycles: each allocation burst made
    the collector walk the whole heap again, 30-45 % of predict_many's time and a quarter of a recommendation's on
    this project's 2-core machine (benchmarks/speed.py). Reference counting still frees everything as before;
    the collector resumes when the call returns (and stays paused only if it already was, as in a nested call)."""
    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return paused


@dataclass
class Prepared:
    query: PredictQuery
    model: ModelArch
    gpu: Gpu
    memory: MemoryBreakdown
    features: StepFeatures
    max_num_seqs: int
    chunk: int
    assumptions: list[str]
    classes: tuple[TrafficClass, ...] = ()  # a traffic mix: each class is also predicted at the mix's operating point


def check_query(query: PredictQuery, model: ModelArch) -> None:
    """Reject what vLLM itself would refuse, with what is allowed."""
    if model.num_attention_heads % query.tp:
        allowed = [t for t in (1, 2, 4, 8, 16, 32, 64) if model.num_attention_heads % t == 0]
        raise BadInput(f"tp={query.tp} does not divide {model.hf_id}'s {model.num_attention_heads} attention heads; "
                       f"allowed tp: {allowed}")
    if query.pp > model.num_layers:
        raise BadInput(f"pp={query.pp} exceeds {model.hf_id}'s {model.num_layers} layers")
    if query.expert_parallel and not model.is_moe:
        raise BadInput(f"expert_parallel splits a MoE model's routed experts over GPUs; {model.hf_id} is dense. "
                       "Drop expert_parallel, or pick a MoE model (see `servewise kb models`)")
    if query.expert_parallel and query.tp < 2:
        raise BadInput("expert_parallel splits the routed experts over the tensor-parallel GPUs, so it needs tp >= 2 "
                       f"(got tp={query.tp}); vLLM runs a single GPU's MoE layers unsplit")
    if query.isl + query.osl > model.max_position_embeddings:
        raise BadInput(f"isl + osl = {query.isl + query.osl} tokens exceeds {model.hf_id}'s context of "
                       f"{model.max_position_embeddings:,} tokens")


def _prepare(query: PredictQuery, model: ModelArch, gpu: Gpu, shared: dict | None = None) -> Prepared:
    """Validate and compute memory and step features; `shared` reuses features of identical configurations."""
    check_query(query, model)
    dtype = query.weight_dtype or model.native_dtype
    assumptions = list(MEMORY_ASSUMPTIONS)
    per_replica_clients = math.ceil(query.concurrency / query.replicas) if query.concurrency else 0
    if query.max_num_seqs:
        max_seqs = query.max_num_seqs
    else:
        default = default_max_num_seqs(gpu)
        max_seqs = max(default, per_replica_clients)
        assumptions.append(f"max-num-seqs {max_seqs} (vLLM's default on this GPU)" if max_seqs == default else
                           f"max-num-seqs {max_seqs} (vLLM's default on this GPU is {default}; raised to the clients per "
                           "replica as benchmark harnesses do)")
    chunk = query.max_num_batched_tokens or default_max_num_batched_tokens(gpu)
    if not query.max_num_batched_tokens:
        assumptions.append(f"max-num-batched-tokens {chunk} (vLLM's default on this GPU), chunked prefill on")
    if query.weight_dtype is None:
        assumptions.append(f"weights in the model's native dtype ({dtype})")
    if kv_capacity_dtype(query.kv_dtype, dtype) != query.kv_dtype:
        assumptions.append(f"KV cache holds fp8 entries under --kv-cache-dtype auto, as vLLM does for an {dtype} "
                           "checkpoint that sets its KV quantization (and as the calibration sweeps ran); for a checkpoint "
                           "without one, ask with KV dtype bf16. Attention reads are priced as fitted")
    context = query.isl + query.osl
    cache = shared if shared is not None else {}
    placed = (model.hf_id, gpu.name, query.tp, query.pp, dtype, query.kv_dtype)
    # Expert parallelism moves the same bytes to other GPUs: the memory fit does not depend on it, the step time does.
    key = (*placed, query.expert_parallel)
    mem_key = (*placed, query.gpu_memory_utilization, context, max_seqs, chunk)
    if mem_key not in cache:
        cache[mem_key] = memory_fit(model, gpu, tp=query.tp, pp=query.pp, weight_dtype=dtype, kv_dtype=query.kv_dtype,
                                    gpu_memory_utilization=query.gpu_memory_utilization, context_tokens=context,
                                    max_num_seqs=max_seqs, max_num_batched_tokens=chunk)
    if key not in cache:
        cache[key] = features(model, gpu, tp=query.tp, pp=query.pp, weight_dtype=dtype, kv_dtype=query.kv_dtype,
                              expert_parallel=query.expert_parallel)
    mem, feats = cache[mem_key], cache[key]
    if query.concurrency is not None:
        sent = query.num_prompts or int(DEFAULT_ROUNDS * query.concurrency)
        assumptions.append(f"closed loop: each client sends its next request when the last one ends; {sent} requests in "
                           f"all{'' if query.num_prompts else f' ({DEFAULT_ROUNDS:g} per client, as the calibration sweeps ran)'}, the "
                           f"clients' first ones at once: that queued first round is {query.concurrency / sent:.2g} of "
                           "the requests the means average")
    else:
        assumptions.append("Poisson arrivals, spread evenly over replicas")
    if query.expert_parallel:
        assumptions.append(f"expert parallel: each GPU holds 1/{query.tp} of the routed experts whole, and the MoE layers "
                           "wait for the GPU with the most routed tokens (uniform routing; skewed routing loads it more)")
    if query.isl_cv == 0 and query.osl_cv == 0:
        assumptions.append("fixed prompt and output lengths (give isl_cv/osl_cv for a spread)")
    return Prepared(query, model, gpu, mem, feats, max_seqs, chunk, assumptions)


def _in_range(params: LatencyParams, prep: Prepared) -> bool:
    seen = params.calibrated
    dtype = prep.query.weight_dtype or prep.model.native_dtype
    return (prep.gpu.name in seen.get("gpus", []) and prep.model.hf_id in seen.get("models", [])
            and dtype in seen.get("dtypes", []))


def _percentiles(mean: float, q: list[float]) -> dict:
    """`q` holds the p50, p90, p95 and p99 of one configuration's samples (already rounded)."""
    return {"mean": mean, "p50": q[0], "p90": q[1], "p95": q[2], "p99": q[3]}


# Validating all results in one call is about twice as fast as building them one by one.
_PREDICTIONS = TypeAdapter(list[Prediction])


def _solve_prepared(items: list[Prepared], params: LatencyParams, corrections: Sequence[Correction | None],
                    n_samples: int) -> list[Prediction]:
    feats = _stack_shared([p.features for p in items])
    q = [p.query for p in items]
    nan = float("nan")
    isl = np.array([x.isl for x in q], float)
    osl = np.array([x.osl for x in q], float)
    context_seqs = np.array([max(p.memory.kv_cache_tokens, 1) / (x.isl + x.osl / 2) for p, x in zip(items, q)])
    load = Load(
        isl=isl, osl=osl,
        clients=np.array([x.concurrency / x.replicas if x.concurrency else nan for x in q]),
        qps=np.array([x.qps / x.replicas if x.qps else nan for x in q]),
        max_running=np.maximum(np.minimum(np.array([p.max_num_seqs for p in items], float), np.floor(context_seqs)), 1.0),
        chunk=np.array([p.chunk for p in items], float),
        rounds=np.array([rounds_per_client(x.num_prompts, x.concurrency or 1) for x in q]),
        async_scheduling=np.array([async_by_default(x.engine_version) if x.async_scheduling is None else x.async_scheduling
                                   for x in q]),
    )
    state = solve(params, feats, load)
    draws = sample(state, load, np.array([x.isl_cv for x in q]), np.array([x.osl_cv for x in q]), n=n_samples)
    in_ranges = [_in_range(params, p) for p in items]
    base_unc = [_uncertainty(params, r) for r in in_ranges]
    # Corrections depend on the requests in flight per replica: the clients of a closed loop, or Little's law on
    # the base model's latency for Poisson arrivals.
    inflight = np.where(np.isnan(load.clients), state.rate * (state.ttft + (osl - 1) * state.tpot), load.clients)
    applied = [resolve(c, weight_dtype=p.query.weight_dtype or p.model.native_dtype, tp=p.query.tp,
                       inflight=float(inflight[i]), isl=float(isl[i]), osl=float(osl[i]),
                       kv_share=float(state.kv_share[i]), prefill_share=float(state.prefill_share[i]),
                       release=p.query.engine_version, base_uncertainty_pct=base_unc[i])
               if c else None for i, (p, c) in enumerate(zip(items, corrections))]
    ttft_f = np.array([a.ttft_factor if a else 1.0 for a in applied])
    tpot_f = np.array([a.tpot_factor if a else 1.0 for a in applied])
    floor_tpot = physics_floor_tpot(feats, np.minimum(state.rate * (osl - 1) * state.tpot, load.max_running), isl + osl / 2)
    floor_ttft = physics_floor_ttft(feats, isl)
    ttft_s = np.maximum(draws.ttft * ttft_f[:, None], floor_ttft[:, None])
    tpot_s = np.maximum(draws.tpot * tpot_f[:, None], floor_tpot[:, None])
    e2e_s = ttft_s + (draws.e2e - draws.ttft) / np.maximum(draws.tpot, 1e-12) * tpot_s
    levels = [50, 90, 95, 99]
    ttft_q, tpot_q, e2e_q = (np.round(_percentiles_rows(x * 1e3, levels), 3).tolist() for x in (ttft_s, tpot_s, e2e_s))
    ttft_mean = np.maximum(state.ttft * ttft_f, floor_ttft)
    tpot_mean = np.maximum(state.tpot * tpot_f, floor_tpot)
    e2e_mean = ttft_mean + (osl - 1) * tpot_mean
    ttft_ms, tpot_ms, e2e_ms = (np.round(x * 1e3, 3).tolist() for x in (ttft_mean, tpot_mean, e2e_mean))
    per_class = class_latencies(state, load, feats, [p.classes for p in items], ttft_f, tpot_f, floor_tpot, n_samples)
    set_constants = [
        f"engine step overhead {params.step_overhead_s * 1e3:g} ms, set not fitted: the calibration models all have "
        "61-80 layers, so per-step and per-layer costs cannot be told apart there; chosen as the value whose fit best "
        "predicts published runs of 32-36-layer models",
        f"attention at {params.attn_flops_eff:g} of the datasheet bf16 FLOPs, set not fitted: FlashAttention-3's "
        "measured share on H100 at 1k-8k tokens",
        f"per-request time outside the engine {params.request_overhead_s * 1e3:g} ms + "
        f"{params.request_token_s * 1e6:g} µs per prompt token, set not fitted: the calibration campaigns measure one "
        "configuration's TTFT 2-3x apart; chosen on published low-load runs and held-out families",
    ]
    output_path = (f"a first token leaves through one API-server process that serves every running request in turn "
                   f"({params.output_per_stream_s * 1e3:.2f} ms each, fitted): vLLM's --api-server-count default "
                   "without data parallelism")
    out = []
    for i, prep in enumerate(items):
        x = prep.query
        in_range = in_ranges[i]
        uncertainty = base_unc[i]
        assumptions = [*prep.assumptions, *set_constants, output_path]
        if prep.gpu.architecture == "blackwell":
            assumptions.append(f"GEMMs on Blackwell reach {params.blackwell_gemm_ratio:g} of the datasheet share they "
                               "reach on Hopper, set not fitted (chosen on held-out model families)")
        calibration = params.label
        corr, app = corrections[i], applied[i]
        rate = float(state.rate[i]) * x.replicas
        if app:
            counts = [f"{corr.n_outcomes} observed outcome(s)"] if corr.n_outcomes or not corr.n_runs else []
            counts += [f"{corr.n_runs} measured run(s)"] if corr.n_runs else []
            calibration += f"; corrected by {' and '.join(counts)}"
            calibration += f" (share {app.share:.2g}): {corr.source}" if app.share < 1 else f": {corr.source}"
            uncertainty = app.uncertainty_pct if app.uncertainty_pct is not None else uncertainty
            if x.concurrency:  # a closed loop completes requests as fast as the corrected latency allows
                base_e2e = float(state.ttft[i] + (osl[i] - 1) * state.tpot[i])
                rate *= base_e2e / float(ttft_mean[i] + (osl[i] - 1) * tpot_mean[i]) * app.throughput_factor
        if not in_range:
            assumptions.append(f"outside the calibrated range ({prep.gpu.name}, {prep.model.hf_id}, "
                               f"{x.weight_dtype or prep.model.native_dtype} not all measured): transferred through "
                               "datasheet bandwidth/FLOPs; the uncertainty is the error measured where the fit transfers "
                               "(an architecture class held out, published runs of other labs)")
        out.append(dict(
            ttft_ms=_percentiles(ttft_ms[i], ttft_q[i]), tpot_ms=_percentiles(tpot_ms[i], tpot_q[i]),
            e2e_ms=_percentiles(e2e_ms[i], e2e_q[i]),
            output_tok_s=round(rate * x.osl, 2), request_s=round(rate, 4), memory=prep.memory, fits=prep.memory.fits,
            saturated=bool(state.saturated[i]), calibration=calibration, in_calibrated_range=in_range,
            tpot_shares={"kv_reads": round(float(state.kv_share[i]), 4), "prefill": round(float(state.prefill_share[i]), 4)},
            uncertainty_pct=round(uncertainty, 1), correction=app, assumptions=assumptions,
            sources=[f"{prep.gpu.name}: {prep.gpu.source}", f"{prep.model.hf_id}: {prep.model.source}"],
            classes=per_class[i],
        ))
    return _PREDICTIONS.validate_python(out)


def _stack_shared(per_item: list[StepFeatures]) -> StepFeatures:
    """Stack per-configuration features; items that share one features object (same model, GPU, TP, PP, dtypes:
    `_prepare` caches them) are stacked once and repeated by index, which is much cheaper than stacking each."""
    slots: dict[int, int] = {}
    unique: list[StepFeatures] = []
    index = []
    for feats in per_item:
        slot = slots.get(id(feats))
        if slot is None:
            slot = slots[id(feats)] = len(unique)
            unique.append(feats)
        index.append(slot)
    return StepFeatures.stack(unique).take(np.array(index))


def _percentiles_rows(x: np.ndarray, levels: list[int]) -> np.ndarray:
    """Per row of `x`, the given percentiles, as numpy's default (linear) np.percentile computes them, from one sort
    (several times faster than np.percentile's partitions over many short rows); shape (rows, len(levels)).
    Sorts `x` in place (callers pass a temporary): a copy of 10,000 x 200 samples costs as much as the sort."""
    x.sort(axis=1)
    position = np.asarray(levels, float) / 100 * (x.shape[1] - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, x.shape[1] - 1)
    t = position - below
    low, high = x[:, below], x[:, above]
    diff = high - low
    # numpy's _lerp: from the lower neighbour below the midpoint, from the upper one above it (same rounding).
    return np.where(t >= 0.5, high - diff * (1 - t), low + diff * t)


def _uncertainty(params: LatencyParams, in_range: bool) -> float:
    """Median error to expect, in %: the held-out-family error inside the calibrated range; outside it the error
    measured where the fit transfers (never below the in-range figure); without stored figures, a wide guess."""
    inside = params.cv_median_ape or {"ttft": 30.0, "tpot": 15.0}
    band = max(inside.get("ttft", 30.0), inside.get("tpot", 15.0))
    if in_range:
        return band
    if params.transfer_ape:
        return max(band, params.transfer_ape.get("ttft", band), params.transfer_ape.get("tpot", band))
    return 2 * band


@without_cycle_collection
def predict_many(queries: Sequence[tuple[PredictQuery, ModelArch, Gpu]], params: LatencyParams,
                 corrections: Sequence[Correction | None] | None = None, n_samples: int = _SAMPLES,
                 ) -> list[Prediction]:
    """Predict many configurations in one vectorised pass. Raises on the first bad or non-fitting query;
    callers that want per-item errors call `predict` per item."""
    items = []
    shared: dict[tuple, StepFeatures] = {}
    for query, model, gpu in queries:
        prep = _prepare(query, model, gpu, shared)
        _require_fit(prep)
        items.append(prep)
    if not items:
        return []
    return _solve_prepared(items, params, list(corrections or [None] * len(items)), n_samples)


def _require_fit(prep: Prepared) -> None:
    if not prep.memory.fits:
        m = prep.memory
        raise Infeasible(
            f"{prep.model.hf_id} ({prep.query.weight_dtype or prep.model.native_dtype}) does not fit on "
            f"{prep.query.tp * prep.query.pp} x {prep.gpu.name}: {m.reason}. Per GPU: weights {m.weights_gib:.1f} GiB, "
            f"activations {m.activations_gib:.1f} GiB, overhead {m.overhead_gib:.1f} GiB, usable {m.usable_gib:.1f} GiB",
            details={"memory": m.model_dump()},
        )


def predict(query: PredictQuery, model: ModelArch, gpu: Gpu, params: LatencyParams,
            correction: Correction | None = None) -> Prediction:
    """Predict one configuration under one load. BadInput for impossible queries, Infeasible when it
    does not fit in memory (the message carries the breakdown)."""
    return predict_many([(query, model, gpu)], params, [correction])[0]


def prepare(query: PredictQuery, model: ModelArch, gpu: Gpu, classes: tuple[TrafficClass, ...] = ()) -> Prepared:
    """Validate a configuration and compute its memory and step features once, for many loads. With `classes`
    (a traffic mix whose mixture the query's lengths are), every prediction also gives each class's latencies."""
    prep = _prepare(query.model_copy(update={"qps": query.qps or 1.0, "concurrency": None}), model, gpu)
    _require_fit(prep)
    prep.classes = classes
    return prep


@without_cycle_collection
def predict_loads(configs: Sequence[tuple[Prepared, float, Correction | None]], params: LatencyParams,
                  n_samples: int = 200) -> list[Prediction]:
    """Many prepared configurations, each at a Poisson load (deployment-wide req/s), in one vectorised pass."""
    items = [Prepared(prep.query.model_copy(update={"qps": float(q)}), prep.model, prep.gpu, prep.memory,
                       prep.features, prep.max_num_seqs, prep.chunk, prep.assumptions, prep.classes)
             for prep, q, _ in configs]
    if not items:
        return []
    return _solve_prepared(items, params, [c for _, _, c in configs], n_samples)


def predict_load_sweep(query: PredictQuery, loads_qps: Sequence[float], model: ModelArch, gpu: Gpu,
                       params: LatencyParams, correction: Correction | None = None,
                       n_samples: int = 200) -> list[Prediction]:
    """The same configuration at many Poisson loads (deployment-wide req/s); memory and features are
    computed once."""
    if len(loads_qps) == 0:
        return []
    prep = prepare(query, model, gpu)
    return predict_loads([(prep, q, correction) for q in loads_qps], params, n_samples)
