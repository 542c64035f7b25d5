"""Continuous batching in steady state, and latency percentiles from the workload's distributions.

Given step times (planner.steptime), this finds the operating point vLLM settles into:
- closed loop of C clients (how benchmark tools measure: the next request leaves when the last ends),
- Poisson arrivals at Q req/s (how production traffic arrives),
with chunked prefill sharing steps with decodes (each step carries at most max-num-batched-tokens).

A request's TTFT is the per-request time outside the engine (HTTP and hand-off, plus tokenizing that grows
with the prompt), any wait
for the step in progress, queueing behind other prefills, and the step(s) that prefill its prompt
(at most max-num-batched-tokens per step). Its TPOT is the decode step time plus its share of the
other requests' prefills landing in its decode steps.

Closed loop, as benchmark sweeps run it (`vllm bench serve --max-concurrency C --num-prompts N`): all C clients
send their first request at once, so the first round queues behind half the other prompts; later requests leave
as earlier ones end, and queue as a single server would (Kingman) plus a fitted share `sync` of the other
clients' prompts for clients whose requests ended together (fixed output lengths keep them in step). The run's
mean weighs the first round by C / N (`rounds` = N / C, default 10: the calibration sweeps' convention). A
client sends its next request right after a step ends, so it does not wait for a step in progress. A closed
loop over max-num-seqs or the KV cache also waits for a running slot.
Poisson: arrivals land anywhere in a step (half a step's wait on average), rho is the share of time
spent prefilling, and prefill queueing follows Kingman's approximation
(wait = (ca^2 + cs^2)/2 * rho/(1-rho) * service, ca^2 = 1; cs^2 = 1 for spread prompt lengths).
Percentiles come from sampling prompt/output lengths, step phase, prefill interference and queue waits,
never from fixed multipliers. Everything is vectorised over configurations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.steptime import LatencyParams, StepFeatures, kv_read_time, step_time

_ITERATIONS = 16
# Requests per client in a closed-loop run when the query does not say: the convention of the InferenceMAX /
# InferenceX sweeps the calibration rows come from (`--num-prompts $(( $CONC * 10 )) --max-concurrency $CONC`).
DEFAULT_ROUNDS = 10.0
_RHO_CAP = 0.98


def rounds_per_client(num_prompts: int | None, clients: float) -> float:
    """Requests each client sends in a closed-loop run (num_prompts / clients, at least one); DEFAULT_ROUNDS when the
    run does not say how many it sent."""
    return max(1.0, num_prompts / clients) if num_prompts else DEFAULT_ROUNDS


def release_at_least(release: str | None, major: int, minor: int) -> bool:
    """Whether vLLM `release` ("0.19.0") is `major`.`minor` or later. No release (the one servewise deploys) and
    nightly builds are recent."""
    if not release or not release[:1].isdigit():
        return True
    return tuple(int(x) for x in release.split(".")[:2]) >= (major, minor)


def async_by_default(release: str | None) -> bool:
    """Whether vLLM `release` schedules one step ahead unless told otherwise: the default from 0.14 on
    (vllm-project/vllm#27614, the last item of the async scheduling plan #27679)."""
    return release_at_least(release, 0, 14)


@dataclass
class Load:
    """Per-replica workload of N configurations (arrays of length N)."""

    isl: np.ndarray
    osl: np.ndarray
    clients: np.ndarray  # closed-loop clients per replica (nan for Poisson)
    qps: np.ndarray  # Poisson arrivals per replica (nan for closed loop)
    max_running: np.ndarray  # min(max-num-seqs, sequences the KV cache holds)
    chunk: np.ndarray  # max-num-batched-tokens
    # closed loop: requests each client sends in the run (num_prompts / clients); the first round arrives at once
    rounds: np.ndarray | None = None
    # bool per configuration: the engine schedules step N+1 while step N runs (vLLM's default since the async
    # scheduling plan landed, vllm-project/vllm#27614; every calibration row and servewise's pinned release);
    # None = on everywhere
    async_scheduling: np.ndarray | None = None


@dataclass
class SteadyState:
    ttft: np.ndarray  # mean seconds
    tpot: np.ndarray
    decode_only: np.ndarray  # step time without prefill interference
    prefill_service: np.ndarray  # seconds other steps grow by for one request's prefill
    own_prefill: np.ndarray  # seconds of the step(s) that prefill a request's prompt
    outside: np.ndarray  # per-request seconds outside engine steps (HTTP, tokenizing) at the mean prompt
    outside_per_token: np.ndarray  # the part of `outside` that grows with each prompt token
    residual: np.ndarray  # mean wait for the step in progress at arrival
    queue_wait: np.ndarray  # mean prefill queueing (Poisson)
    slot_wait: np.ndarray  # mean wait for a running slot (closed loop over capacity)
    rho: np.ndarray  # share of time spent on prefill
    rate: np.ndarray  # completed requests/s per replica
    saturated: np.ndarray  # bool: offered Poisson load beyond capacity
    kv_share: np.ndarray  # share of the mean TPOT spent streaming the running sequences' KV cache
    prefill_share: np.ndarray  # share of the mean TPOT that other requests' prefill adds to decode steps


def solve(p: LatencyParams, f: StepFeatures, load: Load) -> SteadyState:
    closed = np.isfinite(load.clients)
    ctx = load.isl + load.osl / 2
    zero = np.zeros_like(ctx)
    span = load.isl / 2
    # Decoding sequences: every admitted client (closed loop) or Little's law on the decode phase (Poisson).
    running = np.where(closed, np.minimum(load.clients, load.max_running), 1.0)
    tpot = step_time(p, f, running, ctx, zero, span)
    for _ in range(1 if closed.all() else _ITERATIONS):
        n_dec = np.where(closed, running, np.clip(load.qps * (load.osl - 1) * tpot, 1.0, load.max_running))
        budget = np.maximum(load.chunk - n_dec, 1.0)
        decode_only = step_time(p, f, n_dec, ctx, zero, span)
        per_step = np.minimum(load.isl, budget)
        heavy = step_time(p, f, n_dec, ctx, per_step, span)
        per_token = (heavy - decode_only) / per_step
        # A prompt takes whole budget-sized steps and a last step with the rest (vLLM's chunked prefill),
        # which costs a decode step plus the remaining tokens; a prompt within the budget is one heavy step.
        full_steps = np.floor(load.isl / budget)
        rest = load.isl - full_steps * budget
        own = full_steps * heavy + np.where(rest > 0, decode_only + rest * per_token, 0.0)
        service = load.isl * per_token
        # Prefill tokens of other requests landing in one request's decode steps, per step.
        others = np.where(closed, (running - 1) * load.isl / np.maximum(load.osl - 1, 1.0), 0.0)
        closed_tpot = decode_only + np.minimum(others, budget) * per_token
        rho_open = np.minimum(load.qps * service, _RHO_CAP)
        # Damped: the Poisson decode batch depends on TPOT through Little's law.
        tpot = np.where(closed, closed_tpot, 0.5 * tpot + 0.5 * decode_only / (1 - rho_open))
    # An arrival waits for the step in progress: half a step on average for a Poisson arrival. A closed-loop
    # client sends its next request when its last token is out, which reaches the engine while the other
    # clients' next decode step runs: half a step too, and none for a lone client (the engine is idle).
    residual = np.where(closed, 0.5 * decode_only * np.minimum(np.maximum(running - 1, 0.0), 1.0), 0.5 * tpot)
    # With async scheduling the next step was already scheduled when the request landed: one more step.
    lookahead = 1.0 if load.async_scheduling is None else load.async_scheduling.astype(float)
    # The first token then leaves through the output path, which serves every running stream in turn.
    residual = residual + (p.output_steps + lookahead) * decode_only + p.output_per_stream_s * n_dec
    outside_per_token = np.full_like(ctx, p.request_token_s)
    outside = p.request_overhead_s + outside_per_token * load.isl
    # Closed loop, as a benchmark sweep runs it: every client sends its first request at once, so a first-round
    # request waits behind half the other clients' prompts, in steps beside the decodes of those already served
    # (half the clients on average, their context about the prompt). Later rounds arrive as earlier requests end:
    # spread out (a single-server queue, Kingman as for Poisson arrivals), except that clients whose requests ended
    # in one step come back together (a fitted share `sync` of the other clients' prompts ahead). The run's mean
    # TTFT weighs the first round by 1 / rounds.
    def behind(share: float, decodes: np.ndarray, context: np.ndarray, light: np.ndarray) -> np.ndarray:
        """Wait behind `share` of the other clients' prompts: prefilled in steps that fill the budget beside
        `decodes` decodes at `context` (`light`: a step of those decodes alone), each step beyond the request's
        own also carrying those decodes."""
        room = np.maximum(load.chunk - decodes, 1.0)
        per = (step_time(p, f, decodes, context, room, span) - light) / room
        ahead = share * (running - 1) * load.isl
        extra_steps = np.maximum(1.0, (load.isl + ahead) / room) - np.maximum(1.0, load.isl / room)
        return ahead * per + extra_steps * light

    closed_queue = zero
    if closed.any():  # three more step-time evaluations, of no use to Poisson-only batches (recommend's)
        rounds = np.full_like(ctx, DEFAULT_ROUNDS) if load.rounds is None else np.maximum(load.rounds, 1.0)
        # Only the other clients' prompts can be ahead: a lone client never queues.
        rho_closed = np.minimum((running - 1) / np.maximum(own + (load.osl - 1) * tpot, 1e-9) * service, _RHO_CAP)
        later = p.queue_factor * rho_closed / (1 - rho_closed) * service + behind(p.sync, n_dec, ctx, decode_only)
        served = (running - 1) / 2
        first = behind(0.5, served, load.isl, step_time(p, f, served, load.isl, zero, span))
        closed_queue = (first + (rounds - 1) * later) / rounds
    # Poisson: Kingman's queue.
    queue = np.where(closed, closed_queue, p.queue_factor * rho_open / (1 - rho_open) * service)
    base_ttft = outside + residual + own + queue
    e2e = base_ttft + (load.osl - 1) * tpot
    closed_rate = running / np.maximum(e2e, 1e-9)
    slot = np.where(closed, np.maximum(load.clients - load.max_running, 0.0) / np.maximum(closed_rate, 1e-9), 0.0)
    rate = np.where(closed, closed_rate, load.qps)
    rho = np.where(closed, np.minimum(rate * service, _RHO_CAP), rho_open)
    capacity = load.max_running / np.maximum(e2e, 1e-9)
    saturated = ~closed & ((load.qps > capacity) | (load.qps * service >= _RHO_CAP))
    return SteadyState(ttft=base_ttft + slot, tpot=tpot, decode_only=decode_only, prefill_service=service, own_prefill=own,
                       outside=outside, outside_per_token=outside_per_token, residual=residual, queue_wait=queue, slot_wait=slot, rho=rho, rate=rate, saturated=saturated,
                       kv_share=np.minimum(kv_read_time(p, f, n_dec, ctx) / tpot, 1.0),
                       prefill_share=np.clip(1 - decode_only / tpot, 0.0, 1.0))


def _lengths(z: np.ndarray, mean: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """Log-normal lengths with the given mean and coefficient of variation (fixed where cv = 0)."""
    sigma = np.sqrt(np.log1p(cv**2)).astype(np.float32)[:, None]
    return np.maximum(np.float32(1.0), mean.astype(np.float32)[:, None] * np.exp(sigma * z[None, :] - sigma**2 / 2))


@dataclass
class Samples:
    ttft: np.ndarray  # (N, S) seconds
    tpot: np.ndarray
    e2e: np.ndarray


def sample(state: SteadyState, load: Load, isl_cv: np.ndarray, osl_cv: np.ndarray, n: int = 512,
           seed: int = 0) -> Samples:
    """Per-request latencies of N configurations, n requests each.

    Every configuration sees the same n random draws (common random numbers): a configuration's
    percentiles do not depend on which others are predicted with it, and comparisons between
    configurations (goodput searches, what-ifs) are not blurred by sampling noise.
    """
    # float32 halves the memory traffic of the (configurations x requests) arrays; 7 digits is plenty.
    z_isl, z_osl, z_prefill, u_wait, u_phase = np.random.default_rng(seed).random((5, n), dtype=np.float32)
    z_isl, z_osl, z_prefill = (_normal(u) for u in (z_isl, z_osl, z_prefill))
    isl = _lengths(z_isl, load.isl, isl_cv)
    osl = np.maximum(_lengths(z_osl, load.osl, osl_cv), np.float32(2.0))
    # Broadcast a per-config value over samples; saturated queues can exceed float32, clip them first.
    col = lambda a: np.clip(a, -1e30, 1e30).astype(np.float32)[:, None]  # noqa: E731
    rho = np.maximum(col(state.rho), 1e-12)
    # Waiting time of a queue: zero with probability 1 - rho, else exponential (the M/G/1 heavy-traffic shape).
    conditional_wait = col(state.queue_wait) / rho
    share = np.minimum(u_wait[None, :] / rho, 0.999999)  # uniform on [0, 1) among those who wait
    queue = np.where(u_wait[None, :] < rho, -np.log1p(-share) * conditional_wait, 0.0)
    own = col(state.own_prefill) * (isl / col(load.isl))
    outside = col(state.outside) + col(state.outside_per_token) * (isl - col(load.isl))
    ttft = outside + u_phase[None, :] * 2 * col(state.residual) + own + queue + col(state.slot_wait)
    # Prefills of other requests land in this request's decode steps: a Poisson count, drawn here through
    # its normal approximation so that it uses the shared draw.
    mean_prefills = np.clip(col(state.rate) * (osl - 1) * col(state.tpot), 0.0, 1e6)
    prefills = np.maximum(0.0, mean_prefills + np.sqrt(mean_prefills) * z_prefill[None, :])
    tpot = col(state.decode_only) + prefills * col(state.prefill_service) / (osl - 1)
    tpot *= col(state.tpot) / np.maximum(col(state.decode_only) + mean_prefills * col(state.prefill_service) / (osl - 1), 1e-12)
    e2e = ttft + (osl - 1) * tpot
    return Samples(ttft=ttft, tpot=tpot, e2e=e2e)


def _normal(u: np.ndarray) -> np.ndarray:
    """Standard normal quantiles of uniform draws (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    u = np.clip(u, 1e-12, 1 - 1e-12)
    q = np.minimum(u, 1 - u)
    tail = np.sqrt(-2 * np.log(q))
    z_tail = (((((c[0] * tail + c[1]) * tail + c[2]) * tail + c[3]) * tail + c[4]) * tail + c[5]) / \
             ((((d[0] * tail + d[1]) * tail + d[2]) * tail + d[3]) * tail + 1)
    r = (u - 0.5) ** 2
    z_mid = (u - 0.5) * (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    return np.where(q < 0.02425, np.where(u < 0.5, z_tail, -z_tail), z_mid)
