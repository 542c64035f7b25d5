"""The traffic mix: classes of requests (short chat turns beside long RAG prompts) sharing one deployment.

One vLLM instance batches every class together, so the operating point is the mix's: the decode batch, the
context it holds, the prefill load and the queue come from the mixture of the classes' lengths. Each class then
sees that operating point with its own lengths: its own prompt to prefill (TTFT), its own answer to stream
(E2E), the shared decode steps and the other requests' prefills landing in them (TPOT). This module owns the
mixture of lengths, each class's targets (its own, else the spec's) and each class's latencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields, replace

import numpy as np

from planner.batching import Load, SteadyState, sample
from planner.catalog import SloTargets, TokenDist
from planner.contracts import TrafficClass
from planner.steptime import StepFeatures, physics_floor_ttft

_TARGETS = ("ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms")
_LEVELS = [50, 90, 95, 99]


def mixture(classes: Sequence[TrafficClass], which: str) -> TokenDist:
    """The token-length distribution of a traffic mix: mean and spread from the classes' moments, p50/p90 from the
    mixture of their log-normals (so one long-prompt class weighs in the tail as it does in reality)."""
    dists = [(c.share, getattr(c, which)) for c in classes]
    mean = sum(w * d.mean for w, d in dists)
    second = sum(w * (d.mean ** 2) * (1 + d.cv ** 2) for w, d in dists)
    cv = math.sqrt(max(second / mean ** 2 - 1, 0.0))

    def cdf(x: float) -> float:
        total = 0.0
        for w, d in dists:
            if d.cv == 0:
                total += w * (x >= d.mean)
                continue
            s2 = math.log(1 + d.cv ** 2)
            mu = math.log(d.mean) - s2 / 2
            total += w * 0.5 * (1 + math.erf((math.log(x) - mu) / math.sqrt(2 * s2)))
        return total

    def quantile(q: float) -> float:
        lo, hi = 1e-3, max(d.max or d.mean * 10 for _, d in dists) * 10
        for _ in range(80):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
        return round(hi, 1)

    return TokenDist(mean=round(mean, 1), p50=quantile(0.5), p90=quantile(0.9), dist="lognormal", cv=round(cv, 3),
                     max=max(d.max or int(d.mean * 4) for _, d in dists))


def targets(c: TrafficClass, slos: SloTargets) -> SloTargets:
    """A class's targets: its own where it states one, else the spec's."""
    return slos.model_copy(update={f: getattr(c, f) for f in _TARGETS if getattr(c, f) is not None})


def tightest(slos: SloTargets, classes: Sequence[TrafficClass]) -> SloTargets:
    """The smallest target of each kind over the classes (the spec's own without a mix): what physics must beat."""
    if not classes:
        return slos
    each = [targets(c, slos) for c in classes]
    return slos.model_copy(update={f: min((v for t in each if (v := getattr(t, f))), default=None) for f in _TARGETS})


def class_latencies(state: SteadyState, load: Load, feats: StepFeatures, classes: Sequence[tuple[TrafficClass, ...]],
                    ttft_factor: np.ndarray, tpot_factor: np.ndarray, floor_tpot: np.ndarray,
                    n_samples: int) -> list[list[dict]]:
    """Per configuration (the rows of `state`, solved for the mixture), each class's latency percentiles in ms
    (dicts of ClassPrediction), with the same corrections and physics floors as the mixture's prediction.

    A class keeps the shared decode step, prefill interference and queue; its own prompt scales the prefill of its
    request and the per-token time outside the engine from the mixture's mean prompt to its own."""
    out: list[list[dict]] = [[] for _ in classes]
    groups: dict[int, list[int]] = {}
    for i, cs in enumerate(classes):
        if cs:
            groups.setdefault(id(cs), []).append(i)
    for rows in groups.values():
        idx = np.array(rows)
        sub = replace(state, **{f.name: getattr(state, f.name)[idx] for f in fields(state)})
        for c in classes[rows[0]]:
            isl = np.full(len(idx), c.prompt_tokens.mean)
            osl = np.full(len(idx), max(c.output_tokens.mean, 2.0))
            mixed = load.isl[idx]
            own = replace(sub, own_prefill=sub.own_prefill * isl / mixed,
                          outside=sub.outside + sub.outside_per_token * (isl - mixed))
            draws = sample(own, replace(load, isl=isl, osl=osl, clients=load.clients[idx], qps=load.qps[idx],
                                        max_running=load.max_running[idx], chunk=load.chunk[idx],
                                        async_scheduling=None if load.async_scheduling is None else load.async_scheduling[idx]),
                           np.full(len(idx), c.prompt_tokens.cv), np.full(len(idx), c.output_tokens.cv), n=n_samples)
            every = load.isl.copy()
            every[idx] = isl
            ttft = np.maximum(draws.ttft * ttft_factor[idx, None], physics_floor_ttft(feats, every)[idx, None])
            tpot = np.maximum(draws.tpot * tpot_factor[idx, None], floor_tpot[idx, None])
            e2e = ttft + (draws.e2e - draws.ttft) / np.maximum(draws.tpot, 1e-12) * tpot
            stats = [(np.round(np.mean(x, axis=1) * 1e3, 3), np.round(np.percentile(x * 1e3, _LEVELS, axis=1).T, 3))
                     for x in (ttft, tpot, e2e)]
            for k, i in enumerate(rows):
                pct = [dict(zip(("mean", "p50", "p90", "p95", "p99"), [float(m[k]), *map(float, q[k])])) for m, q in stats]
                out[i].append({"name": c.name, "share": c.share, "ttft_ms": pct[0], "tpot_ms": pct[1], "e2e_ms": pct[2]})
    return out
