"""Continuous batching in steady state, and latency percentiles from the workload's distributions.

Given step times (planner.steptime), this finds the operating point vLLM settles into:
- closed loop of C clients (how benchmark tools measure: the next request leaves when the last ends),
- Poisson arrivals at Q req/s (how production traffic arrives),
with chunked prefill sharing steps with decodes, queueing for prefill (Kingman's approximation:
wait = c * (1 + ca^2)/2 * rho/(1-rho) * service, ca^2 = 0 closed loop, 1 Poisson) and for a running
slot when max-num-seqs or the KV cache is full. Closed-loop clients that start together stay partly
phase-locked (fixed output lengths end together), so their prefills bunch: a delay growing with the
time to prefill every client's prompt, fitted as sync * T_all^e * T_step^(1-e) (measured rows show
TTFT growing about as the square root of concurrency x prompt length). Poisson arrivals have no such
locking.
Percentiles come from sampling prompt/output lengths, step phase, prefill interference and queue waits,
never from fixed multipliers. Everything is vectorised over configurations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.steptime import LatencyParams, StepFeatures, step_time

_ITERATIONS = 16
_RHO_CAP = 0.98


@dataclass
class Load:
    """Per-replica workload of N configurations (arrays of length N)."""

    isl: np.ndarray
    osl: np.ndarray
    clients: np.ndarray  # closed-loop clients per replica (nan for Poisson)
    qps: np.ndarray  # Poisson arrivals per replica (nan for closed loop)
    max_running: np.ndarray  # min(max-num-seqs, sequences the KV cache holds)
    chunk: np.ndarray  # max-num-batched-tokens


@dataclass
class SteadyState:
    ttft: np.ndarray  # mean seconds
    tpot: np.ndarray
    decode_only: np.ndarray  # step time without prefill interference
    prefill_service: np.ndarray  # marginal seconds of one request's prefill
    own_prefill: np.ndarray  # seconds from a request's first chunk to its first token
    queue_wait: np.ndarray  # mean prefill queueing
    bunching: np.ndarray  # mean closed-loop phase-locking delay
    slot_wait: np.ndarray  # mean wait for a running slot (closed loop over capacity)
    rho: np.ndarray  # share of time spent on prefill
    rate: np.ndarray  # completed requests/s per replica
    saturated: np.ndarray  # bool: offered Poisson load beyond capacity


def solve(p: LatencyParams, f: StepFeatures, load: Load) -> SteadyState:
    closed = np.isfinite(load.clients)
    ca2 = np.where(closed, 0.0, 1.0)
    ctx = load.isl + load.osl / 2
    n_dec = np.where(closed, np.minimum(load.clients, load.max_running), np.minimum(1.0, load.max_running))
    tpot = step_time(p, f, n_dec, ctx, np.zeros_like(ctx), load.isl / 2)
    ttft = tpot + step_time(p, f, np.zeros_like(ctx), ctx, load.isl, load.isl / 2)
    for _ in range(_ITERATIONS):
        e2e = ttft + (load.osl - 1) * tpot
        rate = np.where(closed, np.minimum(load.clients, load.max_running) / np.maximum(e2e, 1e-9), load.qps)
        n_dec = np.minimum(rate * (load.osl - 1) * tpot, load.max_running)
        n_dec = np.maximum(n_dec, np.where(closed, 0.0, 1.0))
        prefill_tokens = rate * load.isl * tpot
        new_tpot = step_time(p, f, n_dec, ctx, prefill_tokens, load.isl / 2)
        decode_only = step_time(p, f, n_dec, ctx, np.zeros_like(ctx), load.isl / 2)
        service = step_time(p, f, n_dec, ctx, prefill_tokens + load.isl, load.isl / 2) - new_tpot
        rho = np.minimum(rate * service, _RHO_CAP)
        queue = p.queue_factor * (1 + ca2) / 2 * rho / (1 - rho) * service
        chunks = np.ceil(load.isl / np.maximum(load.chunk - n_dec, 1.0))
        own = chunks * new_tpot + service
        slot = np.where(closed, np.maximum(load.clients - load.max_running, 0.0) / np.maximum(rate, 1e-9), 0.0)
        all_prefill = np.minimum(load.clients, load.max_running) * service
        bunching = np.where(closed, p.sync * all_prefill**p.sync_exp * new_tpot ** (1 - p.sync_exp), 0.0)
        new_ttft = new_tpot / 2 + own + queue + slot + bunching
        tpot = 0.5 * tpot + 0.5 * new_tpot
        ttft = 0.5 * ttft + 0.5 * new_ttft
    e2e = ttft + (load.osl - 1) * tpot
    rate = np.where(closed, np.minimum(load.clients, load.max_running) / e2e, load.qps)
    capacity = load.max_running / np.maximum(e2e, 1e-9)
    saturated = ~closed & ((load.qps > capacity) | (rate * service >= _RHO_CAP))
    return SteadyState(ttft=ttft, tpot=tpot, decode_only=decode_only, prefill_service=service, own_prefill=own,
                       queue_wait=queue, bunching=bunching, slot_wait=slot, rho=rho, rate=rate, saturated=saturated)


def _lengths(rng: np.random.Generator, mean: np.ndarray, cv: np.ndarray, n: int) -> np.ndarray:
    """Log-normal lengths with the given mean and coefficient of variation (fixed where cv = 0)."""
    sigma = np.sqrt(np.log1p(cv**2))[:, None]
    z = rng.standard_normal((mean.size, n))
    return np.maximum(1.0, mean[:, None] * np.exp(sigma * z - sigma**2 / 2))


@dataclass
class Samples:
    ttft: np.ndarray  # (N, S) seconds
    tpot: np.ndarray
    e2e: np.ndarray


def sample(state: SteadyState, load: Load, isl_cv: np.ndarray, osl_cv: np.ndarray, n: int = 512,
           seed: int = 0) -> Samples:
    """Per-request latencies of N configurations, n requests each (reproducible for a seed)."""
    rng = np.random.default_rng(seed)
    isl = _lengths(rng, load.isl, isl_cv, n)
    osl = np.maximum(_lengths(rng, load.osl, osl_cv, n), 2.0)
    col = lambda a: a[:, None]  # noqa: E731 - broadcast a per-config value over samples
    u_wait, u_bunch, u_phase = rng.random((3, load.isl.size, n))
    # Waiting time of a queue: zero with probability 1 - rho, else exponential (the M/G/1 heavy-traffic shape).
    conditional_wait = col(state.queue_wait / np.maximum(state.rho, 1e-9))
    share = np.minimum(u_wait / np.maximum(col(state.rho), 1e-12), 0.999999)  # uniform on [0, 1) where waiting
    queue = np.where(u_wait < col(state.rho), -np.log1p(-share) * conditional_wait, 0.0)
    own = col(state.own_prefill) * (isl / col(load.isl))
    ttft = u_phase * col(state.tpot) + own + queue + u_bunch * 2 * col(state.bunching) + col(state.slot_wait)
    # Prefills of other requests land in this request's decode steps as a Poisson count.
    mean_prefills = col(state.rate) * (osl - 1) * col(state.tpot)
    prefills = rng.poisson(np.clip(mean_prefills, 0.0, 1e6))
    tpot = col(state.decode_only) + prefills * col(state.prefill_service) / (osl - 1)
    tpot *= col(state.tpot) / np.maximum(col(state.decode_only) + mean_prefills * col(state.prefill_service) / (osl - 1), 1e-12)
    e2e = ttft + (osl - 1) * tpot
    return Samples(ttft=ttft, tpot=tpot, e2e=e2e)
