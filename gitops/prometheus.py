"""Reading what a deployment really does from Prometheus (prometheus-api-client), by vLLM's own metrics.

Latency percentiles come from `histogram_quantile` over the exact `vllm:` histograms (so they are only
as precise as vLLM's bucket boundaries), rates from `rate()` (which handles counter resets). A query
that returns nothing is reported as missing, never as zero.
"""

from __future__ import annotations

import json
import math
import os
import time

from pydantic import BaseModel, Field

from gitops.outbound import outbound_url, redact, same_origin
from planner.errors import Unreachable

# One deadline for a whole report (some 18 queries), under the MCP server's 60 s per call, so a slow Prometheus
# gives the report's own message rather than a stopped call.
REPORT_DEADLINE_S = 45.0
# metric key -> (vLLM histogram, quantiles reported). TPOT is vLLM's per-request mean (the benchmark
# definition the plan predicts); ITL, one sample per token gap, is shown beside it.
_HISTOGRAMS = {"ttft": ("vllm:time_to_first_token_seconds", (0.5, 0.9, 0.99)),
               "tpot": ("vllm:request_time_per_output_token_seconds", (0.5, 0.9, 0.99)),
               "e2e": ("vllm:e2e_request_latency_seconds", (0.5, 0.9, 0.95, 0.99)),
               "itl": ("vllm:inter_token_latency_seconds", (0.9,)),
               "queue": ("vllm:request_queue_time_seconds", (0.9,))}


class Observed(BaseModel):
    """Observed SLO metrics over a window; a None value means Prometheus had no data for it."""

    window_s: float
    ttft_ms: dict[str, float | None] = Field(default_factory=dict)  # p50, p90, p99
    tpot_ms: dict[str, float | None] = Field(default_factory=dict)
    e2e_ms: dict[str, float | None] = Field(default_factory=dict)  # p50, p90, p95, p99
    queue_p90_ms: float | None = None
    itl_p90_ms: float | None = None
    waiting: float | None = Field(default=None, description="mean requests queued over the window, all replicas")
    request_s: float | None = None
    output_tok_s: float | None = None
    error_rate: float | None = None
    kv_cache_usage: float | None = None
    preemptions_per_s: float | None = None
    replicas_seen: int | None = None
    gpu_util_pct: float | None = None
    missing: list[str] = Field(default_factory=list, description="metrics Prometheus had no samples of")
    notes: list[str] = Field(default_factory=list, description="why the data may be unsound")
    window_too_short: bool = Field(default=False, description="under two scrape intervals: rates are unreliable")


def selector(model_name: str, namespace: str | None) -> str:
    """Label matchers; values JSON-quoted (PromQL strings take the same escapes) so no name changes the query."""
    parts = [f"model_name={json.dumps(model_name)}"]
    if namespace:
        parts.append(f"namespace={json.dumps(namespace)}")
    return ",".join(parts)


class Prometheus:
    """A Prometheus server; the bearer token (if any) comes from an environment variable, never logged, and is
    sent only when `url` is on the host the token is configured for (`token_url`, default `url` itself)."""

    def __init__(self, url: str, token_env: str = "SERVEWISE_PROMETHEUS_TOKEN", timeout_s: float = 10.0, *,
                 token_url: str | None = None, deadline_s: float = REPORT_DEADLINE_S) -> None:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        url = outbound_url(url, "Prometheus URL")
        token = os.environ.get(token_env) if token_url is None or same_origin(url, token_url) else None
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._headers = headers or {}
        self.token_sent = bool(token)
        self.url = redact(url)  # for messages; the connection keeps the userinfo it may authenticate with
        self.token_env = token_env
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self._deadline = time.monotonic() + deadline_s
        # One quick retry of a 502-504, not the client's default three with 1-2-4 s back-off, and none of a
        # timeout (that would double it): a scheduled report that finds Prometheus down says so and runs
        # again on its next tick.
        retry = Retry(total=1, read=0, backoff_factor=0.2, status_forcelist=[502, 503, 504], allowed_methods=["GET"])
        self._conn = PrometheusConnect(url=url, headers=headers, disable_ssl=False, retry=retry, timeout=timeout_s)

    def _time_left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise Unreachable(f"Prometheus at {self.url} did not answer every query within the report's "
                              f"{self.deadline_s:g} s deadline; check its load or the network path")
        return min(self.timeout_s, left)

    def value(self, query: str) -> float | None:
        """The single value of an instant query, or None when it returns no (finite) sample. An answer that
        is not a Prometheus instant-query result is Unreachable (exit 4), never a crash or a number."""
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException

        timeout = self._time_left()
        try:
            # Prometheus takes a timeout in float seconds (its parseDuration tries ParseFloat first).
            result = self._conn.custom_query(query, params={"timeout": f"{timeout:.3f}"}, timeout=timeout)
        except PrometheusApiClientException as exc:
            # The message is "HTTP Status Code N (body)"; only the code is repeated, never headers.
            status = str(exc).split("(")[0].removeprefix("HTTP Status Code").strip() or "error"
            hint = "check the URL"
            if status in ("401", "403"):
                hint = (f"check the token in ${self.token_env}" if self.token_sent else
                        f"the token in ${self.token_env} is sent only to the configured prometheus setting's host, "
                        "so set that setting to this URL")
            raise Unreachable(f"Prometheus at {self.url} refused the query (HTTP {status}); {hint}") from None
        except (requests.JSONDecodeError, KeyError, TypeError) as exc:
            raise Unreachable(f"Prometheus at {self.url} answered something that is not a Prometheus API response "
                              f"({type(exc).__name__}); check that the URL is Prometheus's") from None
        except Exception as exc:  # noqa: BLE001 - requests/urllib3 errors of every kind mean "unreachable"
            self._time_left()  # the deadline, if that is what cut the query short
            raise Unreachable(f"Prometheus at {self.url} did not answer ({type(exc).__name__}); check the URL "
                              "and the network path") from None
        return self._sample(result)

    def _sample(self, result: object) -> float | None:
        # An instant vector: [{"metric": {...}, "value": [<unix time>, "<number>"]}, ...]
        if result == []:
            return None
        try:
            sample = result[0]["value"]  # type: ignore[index]
            if not isinstance(sample, list) or len(sample) != 2 or not isinstance(sample[1], str):
                raise TypeError
            v = float(sample[1])
        except (TypeError, KeyError, IndexError, ValueError):
            raise Unreachable(f"Prometheus at {self.url} answered something that is not an instant-query result "
                              f"({json.dumps(result, default=str)[:80]}); check that the URL is Prometheus's") from None
        return v if math.isfinite(v) else None

    def scrape_interval_s(self) -> float | None:
        """The global scrape interval Prometheus runs with (to check the window holds two samples)."""
        import httpx
        import yaml

        try:
            r = httpx.get(f"{self._conn.url.rstrip('/')}/api/v1/status/config", headers=self._headers,
                          timeout=self._time_left())
            cfg = yaml.safe_load(r.json()["data"]["yaml"]) or {}
            return _seconds(str((cfg.get("global") or {}).get("scrape_interval", "1m")))
        except Exception:  # noqa: BLE001 - advisory only: without it the window is not checked
            return None


def _seconds(text: str) -> float:
    units = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for unit in ("ms", "s", "m", "h", "d"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(text)


def parse_window(text: str) -> float:
    """'30m' -> 1800.0; Prometheus duration syntax, one unit."""
    try:
        value = _seconds(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        from planner.errors import BadInput

        raise BadInput(f"window {text!r} must be a duration like 30s, 15m, 1h or 1d")
    return value


def observe(prom: Prometheus, model_name: str, namespace: str | None, window: str) -> Observed:
    """Query every SLO metric of one deployment over `window` (e.g. '1h')."""
    seconds = parse_window(window)
    sel = selector(model_name, namespace)
    obs = Observed(window_s=seconds)

    def q(name: str, query: str, scale: float = 1.0) -> float | None:
        v = prom.value(query)
        if v is None:
            obs.missing.append(name)
            return None
        return round(v * scale, 4)

    for key, (metric, levels) in _HISTOGRAMS.items():
        values = {f"p{int(level * 100)}": q(f"{key} p{int(level * 100)}",
                                             f"histogram_quantile({level}, sum by (le) (rate({metric}_bucket{{{sel}}}[{window}])))",
                                             1e3) for level in levels}
        if len(levels) == 1:
            setattr(obs, f"{key}_p90_ms", values["p90"])
        else:
            setattr(obs, f"{key}_ms", values)
    obs.request_s = q("request rate", f"sum(rate(vllm:request_success_total{{{sel}}}[{window}]))")
    obs.output_tok_s = q("output tokens/s", f"sum(rate(vllm:generation_tokens_total{{{sel}}}[{window}]))")
    # No abort/error series at all means no errors, hence `or vector(0)`.
    obs.error_rate = q("error rate", f'(sum(rate(vllm:request_success_total{{{sel},finished_reason=~"abort|error"}}[{window}])) '
                                     f"or vector(0)) / sum(rate(vllm:request_success_total{{{sel}}}[{window}]))")
    obs.kv_cache_usage = q("KV-cache usage", f"avg(avg_over_time(vllm:kv_cache_usage_perc{{{sel}}}[{window}]))")
    obs.preemptions_per_s = q("preemptions", f"sum(rate(vllm:num_preemptions_total{{{sel}}}[{window}]))")
    replicas = q("replicas", f"count(count by (pod, instance) (vllm:num_requests_running{{{sel}}}))")
    obs.replicas_seen = int(replicas) if replicas else None
    obs.waiting = q("queued requests", f"sum(avg_over_time(vllm:num_requests_waiting{{{sel}}}[{window}]))")
    # Only where NVIDIA's DCGM exporter runs, so not "missing" otherwise. Assumed: its Kubernetes mapping
    # puts the GPU's pod namespace in `namespace` (honorLabels, as the GPU Operator's monitor sets it).
    dcgm = f"{{namespace={json.dumps(namespace)}}}" if namespace else ""
    gpu = prom.value(f"avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL{dcgm}[{window}]))")
    obs.gpu_util_pct = round(gpu, 1) if gpu is not None else None
    interval = prom.scrape_interval_s()
    if interval and seconds < 2 * interval:
        obs.window_too_short = True
        obs.notes.append(f"window {window} is shorter than two scrape intervals ({interval:g} s): rates need two samples")
    return obs
