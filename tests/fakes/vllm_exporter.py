"""A loopback exporter serving vLLM-format metrics generated from KNOWN latency distributions.

Every scrape the exporter has observed more requests from fixed log-normal distributions, into
histograms with vLLM's default buckets (shared/reference/vllm-metrics.md, vllm/v1/metrics/buckets.py),
so rates are non-zero and histogram_quantile can be checked against the distributions' true quantiles.
Latencies are not pseudo-random draws: request k gets the inverse CDF at the k-th point of a Kronecker
low-discrepancy sequence, so any few seconds of requests cover each distribution evenly (a 400-request
window's p99 is then within about 1 % of the true one, where random draws would scatter by ±10 %).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tests.fakes.loopback import LoopbackServer, QuietHandler

TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560]
ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80]
REQUEST_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680]


@dataclass(frozen=True)
class Truth:
    """Log-normal latency distributions (median seconds, sigma) the exporter follows. Chosen so that every
    quantile the tests check lies at least 10 % from a vLLM bucket boundary (the tests assert it)."""

    ttft: tuple[float, float] = (0.18, 0.5)
    tpot: tuple[float, float] = (0.028, 0.3)
    itl: tuple[float, float] = (0.02, 0.4)
    itl_per_request: int = 8  # token intervals observed per request (vLLM observes every one; a sample suffices)
    gpu_util_pct: float = 63.0
    osl: int = 150
    rate_per_s: float = 40.0

    def quantile(self, metric: str, q: float) -> float:
        """Exact for the log-normals; E2E = TTFT + (osl-1) x TPOT, a sum, from 400k points of the sequence."""
        if metric != "e2e":
            median, sigma = getattr(self, metric)
            return median * math.exp(sigma * NormalDist().inv_cdf(q))
        ttft, tpot = self.sample(np.arange(1, 400_001))
        return float(np.quantile(ttft + (self.osl - 1) * tpot, q))

    def sample(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TTFT and TPOT of requests number k: both log-normals at the k-th Kronecker point."""
        return _lognormal(self.ttft, _frac(k * _ALPHA[0])), _lognormal(self.tpot, _frac(k * _ALPHA[1]))


# Kronecker sequence steps: fractional parts of the golden ratio and of sqrt(2), jointly well spread.
_ALPHA = ((math.sqrt(5) - 1) / 2, math.sqrt(2) - 1, math.sqrt(3) - 1)


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def _lognormal(dist: tuple[float, float], u: np.ndarray) -> np.ndarray:
    inv = np.vectorize(NormalDist().inv_cdf)
    return dist[0] * np.exp(dist[1] * inv(np.clip(u, 1e-12, 1 - 1e-12)))


class VllmExporter(LoopbackServer):
    def __init__(self, model_name: str, truth: Truth = Truth()) -> None:
        self.model_name, self.truth = model_name, truth
        self._k = 0  # requests generated so far: the position in the low-discrepancy sequence
        self._lock = threading.Lock()
        self.reset()
        super().__init__(self._handler())
        self._stop = threading.Event()
        threading.Thread(target=self._generate, daemon=True).start()

    def reset(self) -> None:
        """Start every counter and histogram from zero again, as a restarted vLLM pod would."""
        with self._lock:
            r = CollectorRegistry()
            labels = ["model_name", "engine"]
            self.registry = r
            self.ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT", labels, buckets=TTFT_BUCKETS, registry=r)
            self.tpot = Histogram("vllm:request_time_per_output_token_seconds", "TPOT", labels, buckets=ITL_BUCKETS, registry=r)
            self.itl = Histogram("vllm:inter_token_latency_seconds", "ITL", labels, buckets=ITL_BUCKETS, registry=r)
            self.e2e = Histogram("vllm:e2e_request_latency_seconds", "E2E", labels, buckets=REQUEST_BUCKETS, registry=r)
            self.queue = Histogram("vllm:request_queue_time_seconds", "queue", labels, buckets=REQUEST_BUCKETS, registry=r)
            self.success = Counter("vllm:request_success", "finished", [*labels, "finished_reason"], registry=r)
            self.gen = Counter("vllm:generation_tokens", "generated tokens", labels, registry=r)
            self.prompt = Counter("vllm:prompt_tokens", "prompt tokens", labels, registry=r)
            self.preempt = Counter("vllm:num_preemptions", "preemptions", labels, registry=r)
            self.running = Gauge("vllm:num_requests_running", "running", labels, registry=r)
            self.waiting = Gauge("vllm:num_requests_waiting", "waiting", labels, registry=r)
            # NVIDIA's DCGM exporter, when installed, labels by GPU and pod rather than model_name.
            self.gpu_util = Gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilization", ["gpu", "pod"], registry=r)
            self.kv = Gauge("vllm:kv_cache_usage_perc", "kv", labels, registry=r)

    def _generate(self) -> None:
        t = self.truth
        lab = {"model_name": self.model_name, "engine": "0"}
        started = time.monotonic()
        while not self._stop.is_set():
            # The requests the rate gives for the time elapsed, not a fixed number a tick: a tick that comes
            # late on a loaded machine catches up, so the observed rate is the true one, not this thread's speed.
            n = max(1, round(t.rate_per_s * (time.monotonic() - started)) - self._k)
            k = np.arange(self._k + 1, self._k + n + 1)
            ttft, tpot = t.sample(k)
            gaps = np.arange(self._k * t.itl_per_request + 1, (self._k + n) * t.itl_per_request + 1)
            itl = _lognormal(t.itl, _frac(gaps * _ALPHA[2]))
            self._k += n
            with self._lock:
                for v in itl:
                    self.itl.labels(**lab).observe(v)
                for a, b in zip(ttft, tpot):
                    self.ttft.labels(**lab).observe(a)
                    self.tpot.labels(**lab).observe(b)
                    self.e2e.labels(**lab).observe(a + (t.osl - 1) * b)
                    self.queue.labels(**lab).observe(a * 0.1)
                self.success.labels(**lab, finished_reason="length").inc(n)
                self.gen.labels(**lab).inc(n * t.osl)
                self.prompt.labels(**lab).inc(n * 150)
                self.running.labels(**lab).set(12)
                self.waiting.labels(**lab).set(2)
                self.gpu_util.labels(gpu="0", pod="chatbot-predictor-0").set(t.gpu_util_pct)
                self.kv.labels(**lab).set(0.35)
                self.preempt.labels(**lab)
            time.sleep(0.1)

    def _handler(self):
        exporter = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                with exporter._lock:
                    body = generate_latest(exporter.registry)
                self.send_body(200, body, "text/plain; version=0.0.4")

        return Handler

    def close(self) -> None:
        self._stop.set()
        super().close()
