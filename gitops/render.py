"""Render a Plan into a deployment bundle: KServe + vLLM, autoscaling, monitoring, Argo CD, report job.

Every value reaches a YAML template through Jinja2's `finalize`, which writes it as JSON (a valid
YAML flow scalar, list or map). So no string from a person or a model can add keys, documents,
anchors or tags: it stays one quoted scalar. Names are DNS-1123 labels, sanitized from the spec or
rejected when given explicitly.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Literal

import jinja2

from gitops.bundle import Bundle
from gitops.markdown import md_text
from gitops.validate import SUPPORTED_K8S
from planner import __version__
from planner.contracts import Candidate, Plan, RenderOptions
from planner.errors import BadInput

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# The vLLM release the calibration rows were measured with (kb/data/benchmarks.jsonl: vllm/vllm-openai:v0.19.0-cu130).
VLLM_IMAGE = "vllm/vllm-openai:v0.19.0"
# The image .github/workflows/release.yml builds from this repository's Dockerfile and pushes on a version tag;
# --servewise-image (or the deployment record) names another registry.
SERVEWISE_IMAGE = f"ghcr.io/servewise/servewise:{__version__}"
# KServe releases render knows: "Standard" replaced "RawDeployment" in 0.16 (pkg/constants/constants.go at v0.20.0:
# LegacyRawDeployment "deprecated: use Standard").
KSERVE_VERSIONS = ("0.15", "0.16", "0.17", "0.18", "0.19", "0.20")
DEFAULT_KSERVE = "0.20"
STORAGE_SCHEMES = ("hf", "s3", "gs", "pvc", "oci")
# Guesses, stated in every bundle's README: how fast weights arrive from the Hub or object store (a setting), how fast
# vLLM reads them from disk into GPU memory, and how long torch.compile plus CUDA-graph capture take before /health.
DEFAULT_PULL_GB_S = 0.5
LOAD_GB_S = 2.0
WARMUP_S = 240
STARTUP_MARGIN = 1.5
PROBE_PERIOD_S = 30  # KServe's kserve-vllmserver.yaml (v0.20.0) startupProbe: periodSeconds 30, timeoutSeconds 10
CACHE_MOUNT = "/models-cache"
PLACEHOLDER_REPO = "https://git.example.com/platform/llm-deployments.git"
DEFAULT_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes label keys ([prefix/]name) and values (apimachinery validation.IsQualifiedName / IsValidLabelValue).
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
_MAX_NAME = 40  # leaves room for KServe's "-predictor" and our "-slo-report" suffixes within 63


def _as_json(value: object) -> str:
    if isinstance(value, jinja2.runtime.Undefined):
        raise BadInput(f"template value {value._undefined_name!r} is missing")  # jinja's own attribute
    return json.dumps(value, ensure_ascii=False)


_yaml_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), finalize=_as_json, autoescape=False,
                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


_md_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), finalize=md_text, autoescape=False,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def dns_label(raw: str, what: str, *, explicit: bool) -> str:
    """A DNS-1123 label: checked as given when the person chose it, sanitized when derived from words."""
    if explicit:
        if not _DNS1123.match(raw) or len(raw) > _MAX_NAME:
            raise BadInput(f"{what} {raw[:80]!r} is not a DNS-1123 label: use at most {_MAX_NAME} lower-case letters, "
                           "digits and '-', starting and ending with a letter or digit")
        return raw
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:_MAX_NAME].strip("-")
    if not name:
        raise BadInput(f"cannot derive a valid {what} from {raw[:80]!r}; pass one explicitly (e.g. --name chatbot)")
    return name


def label_value(raw: str) -> str:
    """A valid Kubernetes label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends) from any string."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw)[:63].strip("-._")


# planner's KV dtype names -> vLLM's --kv-cache-dtype choices (CacheDType, vllm/config/cache.py)
_KV_DTYPE = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp8": "fp8"}


def served_model_name(namespace: str, name: str) -> str:
    """The name clients call and every metric carries (vLLM's model_name label): unique per deployment, so two
    deployments of one model never share a selector."""
    return f"{namespace}/{name}"


def serving_repo(c: Candidate) -> str:
    """The Hugging Face repo vLLM loads: the published quantized checkpoint, else the model itself."""
    return c.checkpoint or c.model


def engine_args(c: Candidate) -> list[str]:
    """vLLM's engine settings for the candidate (no model, name or port: the target supplies those)."""
    v = c.vllm
    args = ["--tensor-parallel-size", str(c.tp), "--pipeline-parallel-size", str(c.pp),
            "--max-model-len", str(v.max_model_len), "--max-num-seqs", str(v.max_num_seqs),
            "--max-num-batched-tokens", str(v.max_num_batched_tokens),
            "--gpu-memory-utilization", f"{v.gpu_memory_utilization:g}", "--kv-cache-dtype", _KV_DTYPE[v.kv_cache_dtype]]
    args.append("--enable-prefix-caching" if v.enable_prefix_caching else "--no-enable-prefix-caching")
    args.append("--enable-chunked-prefill" if v.enable_chunked_prefill else "--no-enable-chunked-prefill")
    if v.quantization:
        args += ["--quantization", v.quantization]
    return args


def vllm_args(c: Candidate, model: str, served_name: str) -> list[str]:
    """`vllm serve` arguments: the model positional (`--model` is deprecated for serve in 0.19), then the name
    clients call, the port KServe routes to, and the engine settings. `model` is the served repo, or /mnt/models
    when KServe's storage initializer or a modelcar provides the weights."""
    return [model, "--served-model-name", served_name, "--port", "8080", *engine_args(c)]


def check_labels(pairs: list[str] | dict[str, str] | None) -> dict[str, str]:
    """KEY=VALUE pairs (or a mapping) as Kubernetes labels, each checked: the labels a Prometheus selects
    PodMonitors, ServiceMonitors and PrometheusRules by (kube-prometheus-stack: release=<helm release>)."""
    items = list(pairs.items()) if isinstance(pairs, dict) else [
        tuple(p.split("=", 1)) if "=" in p else (p, None) for p in pairs or []]
    out: dict[str, str] = {}
    for key, value in items:
        if value is None:
            raise BadInput(f"monitor label {str(key)[:80]!r} is not KEY=VALUE (e.g. release=kube-prometheus-stack)")
        key, value = str(key).strip(), str(value).strip()
        prefix, _, _ = key.rpartition("/")
        if not _LABEL_KEY.match(key) or len(prefix) > 253:
            raise BadInput(f"monitor label key {key[:80]!r} is not a Kubernetes label key ([prefix/]name, name at "
                           "most 63 of letters, digits, '-', '_', '.')")
        if not _LABEL_VALUE.match(value):
            raise BadInput(f"monitor label value {value[:80]!r} (key {key}) is not a Kubernetes label value (at most 63 "
                           "of letters, digits, '-', '_', '.', alphanumeric at both ends)")
        out[key] = value
    return out


def _selector(model_name: str, namespace: str) -> str:
    """PromQL label matchers of one deployment: vLLM's model_name label is the deployment's --served-model-name."""
    return f'model_name={json.dumps(model_name)},namespace={json.dumps(namespace)}'


# vLLM's default histogram buckets in seconds (vllm/v1/metrics/buckets.py, see shared/reference/vllm-metrics.md):
# histogram_quantile interpolates linearly inside a bucket, so an alert threshold is only as sharp as its bucket.
_BUCKETS = {
    "time_to_first_token_seconds": (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5,
                                    7.5, 10, 20, 40, 80, 160, 640, 2560),
    "request_time_per_output_token_seconds": (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5,
                                              5, 7.5, 10, 20, 40, 80),
    "e2e_request_latency_seconds": (0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960,
                                    1920, 7680),
}


def _bracket(seconds: float, buckets: tuple[float, ...]) -> tuple[float, float]:
    """The bucket boundaries either side of a threshold (0 below the first, +Inf above the last)."""
    lo = max((b for b in buckets if b <= seconds), default=0.0)
    hi = min((b for b in buckets if b >= seconds), default=float("inf"))
    return lo, hi


# The SLOs the spec can set: (label, vLLM histogram, quantile); alerts and dashboard use the same queries.
_LATENCY_SLOS = (("TTFT p90", "time_to_first_token_seconds", 0.9, "ttft_p90_ms"),
                 ("TPOT p90", "request_time_per_output_token_seconds", 0.9, "tpot_p90_ms"),
                 ("E2E p95", "e2e_request_latency_seconds", 0.95, "e2e_p95_ms"))
_WINDOW = "5m"
_ALERT_FOR = "10m"
_ERROR_RATIO_LIMIT = 0.01  # servewise's default: more than 1 % failed requests pages someone


def _quantile(q: float, metric: str, sel: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate(vllm:{metric}_bucket{{{sel}}}[{_WINDOW}])))"


def _pod_selector(deployment: str, namespace: str) -> str:
    """The deployment's vLLM pods. The API server's own http_requests_total carries no model_name, only the
    scrape target's labels; KServe names the pods of its Deployment <deployment>-<replicaset hash>-<pod hash>
    (<isvc>-predictor for an InferenceService)."""
    return f'namespace={json.dumps(namespace)},pod=~{json.dumps(deployment + "-[a-z0-9]+-[a-z0-9]+")}'


def _error_ratio(sel: str) -> str:
    """Requests the engine failed. vLLM's finished_reason "abort" means aborted by the client
    (vllm/v1/engine/__init__.py FinishReason), which is no fault of the service."""
    return (f'sum(rate(vllm:request_success_total{{{sel},finished_reason="error"}}[{_WINDOW}])) / '
            f"clamp_min(sum(rate(vllm:request_success_total{{{sel}}}[{_WINDOW}])), 1e-9)")


def _http_5xx_ratio(pods: str) -> str:
    """Server errors vLLM's API server answered (prometheus-fastapi-instrumentator, which vLLM mounts, groups
    status codes into "5xx" by default; the pattern matches grouped and exact codes alike)."""
    return (f'sum(rate(http_requests_total{{{pods},status=~"5.."}}[{_WINDOW}])) / '
            f"clamp_min(sum(rate(http_requests_total{{{pods}}}[{_WINDOW}])), 1e-9)")


def _alerts(plan: Plan, sel: str, pods: str, name: str) -> list[dict]:
    out = []
    for label, metric, q, slo_field in _LATENCY_SLOS:
        target = getattr(plan.spec.slos, slo_field)
        if not target:
            continue
        lo, hi = _bracket(target / 1000, _BUCKETS[metric])
        sharpness = ("The threshold is one of vLLM's bucket boundaries, so the alert is exact." if lo == hi else
                     f"The quantile is interpolated between vLLM's bucket boundaries {lo:g} s and {hi:g} s, so near "
                     "the threshold the alert is approximate.")
        out.append({"name": f"ServewiseSlo{label.replace(' ', '')}", "severity": "warning",
                    "expr": f"{_quantile(q, metric, sel)} > {target / 1000:g}",
                    "summary": f"{name}: {label} above {target:g} ms",
                    "description": f"{label} of vLLM over {_WINDOW} exceeds the SLO of plan {plan.id}. {sharpness}"})
    out.append({"name": "ServewiseEngineErrors", "severity": "critical",
                "expr": f"{_error_ratio(sel)} > {_ERROR_RATIO_LIMIT:g}",
                "summary": f"{name}: more than {_ERROR_RATIO_LIMIT:.0%} of requests fail in the engine",
                "description": ('finished_reason="error" over all finished requests; client aborts '
                                '(finished_reason="abort") are not counted.')})
    out.append({"name": "ServewiseHttpServerErrors", "severity": "critical",
                "expr": f"{_http_5xx_ratio(pods)} > {_ERROR_RATIO_LIMIT:g}",
                "summary": f"{name}: more than {_ERROR_RATIO_LIMIT:.0%} of HTTP requests answered 5xx",
                "description": "HTTP 5xx answers of vLLM's API server over all its answers."})
    return out


def _dashboard(name: str, sel: str, pods: str) -> str:
    def panel(i: int, title: str, unit: str, *exprs: str) -> dict:
        return {"id": i, "type": "timeseries", "title": title, "fieldConfig": {"defaults": {"unit": unit}},
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
                "targets": [{"expr": e, "refId": chr(ord("A") + k)} for k, e in enumerate(exprs)]}

    panels = [panel(i, label, "s", _quantile(q, metric, sel)) for i, (label, metric, q, _) in enumerate(_LATENCY_SLOS)]
    panels += [panel(3, "Requests running / waiting", "short", f"sum(vllm:num_requests_running{{{sel}}})",
                     f"sum(vllm:num_requests_waiting{{{sel}}})"),
               panel(4, "Output tokens/s", "short", f"sum(rate(vllm:generation_tokens_total{{{sel}}}[{_WINDOW}]))"),
               panel(5, "KV-cache usage", "percentunit", f"avg(vllm:kv_cache_usage_perc{{{sel}}})"),
               panel(6, "Failed requests (engine errors, HTTP 5xx)", "percentunit", _error_ratio(sel),
                     _http_5xx_ratio(pods)),
               panel(7, "Preemptions/s", "short", f"sum(rate(vllm:num_preemptions_total{{{sel}}}[{_WINDOW}]))")]
    return json.dumps({"title": f"servewise: {name}", "uid": f"servewise-{name}"[:40], "schemaVersion": 39,
                       "panels": panels, "time": {"from": "now-6h", "to": "now"}}, indent=1)


def _availability(plan: Plan, c: Candidate, name: str) -> dict:
    """Topology spread and a PodDisruptionBudget when the plan carries an availability target (Candidate.spread):
    replicas on distinct nodes (required) and zones (preferred: clusters without zone labels still schedule)."""
    pods = {"serving.kserve.io/inferenceservice": name}
    spread = [{"maxSkew": 1, "topologyKey": key, "labelSelector": {"matchLabels": pods},
               "whenUnsatisfiable": "DoNotSchedule" if key == "kubernetes.io/hostname" else "ScheduleAnyway"}
              for key in c.spread]
    target = plan.spec.reliability_target
    return {"spread": spread, "pod_selector": pods, "pdb_name": f"{name}-pdb" if spread and c.replicas >= 2 else "",
            "reliability_target": f"{target:g}" if target else ""}


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _gib(x: float) -> int:
    return max(1, math.ceil(x))


def _storage(c: Candidate, gpus: int, storage_uri: str | None, storage_class: str | None, pull_gb_s: float,
             nm: str) -> dict:
    """Where the weights live so that restarts and scale-out do not download them into the container's writable
    layer, and the startup-probe budget that follows (download only when the main container downloads)."""
    weights_gb = c.predicted.memory.weights_gib * gpus * 2**30 / 1e9
    size_gib = int(math.ceil((weights_gb * 1.2 + 10) / 10) * 10)
    out = {"weights_gb": weights_gb, "size_gib": size_gib, "storage_uri": storage_uri, "pvc": None,
           "ephemeral": None, "model_path": "/mnt/models" if storage_uri else serving_repo(c)}
    if storage_uri is None:
        out.update(mode="pvc-cache", pvc={"name": f"{nm}-hf-cache", "size": f"{size_gib}Gi",
                                           "access": "ReadWriteMany" if c.max_replicas > 1 else "ReadWriteOnce",
                                           "storage_class": storage_class},
                   download_s=weights_gb / pull_gb_s,
                   how=(f"PersistentVolumeClaim {nm}-hf-cache ({size_gib} GiB = weights x 1.2 + 10 GiB, rounded up "
                        f"to 10) holds the Hugging Face cache at {CACHE_MOUNT}: the first pod downloads "
                        f"{serving_repo(c)}, restarts and new replicas read it from there"))
        return out
    scheme = storage_uri.split("://", 1)[0]
    if scheme in ("hf", "s3", "gs"):
        out.update(mode="storage-initializer", ephemeral=f"{size_gib}Gi", download_s=0.0,
                   how=(f"KServe's storage initializer downloads {storage_uri} into the pod's /mnt/models volume "
                        f"before vLLM starts (ephemeral-storage request {size_gib} GiB, so the node has the room); "
                        "each new pod downloads again, restarts of the container do not"))
    elif scheme == "pvc":
        out.update(mode="pvc", download_s=0.0, how=f"the weights are read from {storage_uri}, mounted at /mnt/models")
    else:
        out.update(mode="modelcar", download_s=0.0,
                   how=(f"OCI modelcar {storage_uri}: the node's container runtime pulls and caches the weights image "
                        "(KServe's enableModelcar, on by default since 0.14)"))
    return out


def _startup(st: dict, pull_gb_s: float) -> dict:
    load_s = st["weights_gb"] / LOAD_GB_S
    budget = (st["download_s"] + load_s + WARMUP_S) * STARTUP_MARGIN
    checks = max(4, math.ceil(budget / PROBE_PERIOD_S))
    parts = ([f"download {st['weights_gb']:.1f} GB at {pull_gb_s:g} GB/s = {st['download_s']:.0f} s"]
             if st["download_s"] else ["no download in the serving container"])
    parts += [f"load {st['weights_gb']:.1f} GB at {LOAD_GB_S:g} GB/s = {load_s:.0f} s",
              f"compile and CUDA-graph capture {WARMUP_S} s"]
    text = (" + ".join(parts) + f", times {STARTUP_MARGIN:g} margin = {budget:.0f} s, so failureThreshold "
            f"{checks} x periodSeconds {PROBE_PERIOD_S} = {checks * PROBE_PERIOD_S} s")
    return {"checks": checks, "seconds": checks * PROBE_PERIOD_S, "text": text}


def _check_storage_uri(uri: str | None) -> None:
    if uri is None:
        return
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in STORAGE_SCHEMES or not rest or re.search(r"\s", uri):
        raise BadInput(f"storage URI {uri[:80]!r} is not one of {', '.join(s + '://...' for s in STORAGE_SCHEMES)} "
                       "(hf, s3 and gs go through KServe's storage initializer, pvc mounts a claim, oci is a modelcar)")


# The vLLM image a fresh node pulls before a new replica starts: guess, vllm/vllm-openai CUDA images are around
# 10 GB compressed (stated in the bundle README).
VLLM_IMAGE_GB = 10.0
# autoscaling/v2 bounds (k8s.io/kubernetes pkg/apis/autoscaling/validation: MaxPeriodSeconds 1800,
# MaxStabilizationWindowSeconds 3600).
_MAX_PERIOD_S, _MAX_WINDOW_S = 1800, 3600


def cold_start_s(c: Candidate, storage_uri: str | None = None, pull_gb_s: float = DEFAULT_PULL_GB_S) -> int:
    """Seconds from a scale-up decision until a new replica serves, on a node that has neither the image nor the
    weights: image pull, the weights fetch a new pod makes (none from a warm cache claim or a mounted PVC), loading
    them onto the GPUs, compile and CUDA-graph warm-up (the startup probe's own figures, without its margin)."""
    st = _storage(c, c.tp * c.pp, storage_uri, None, pull_gb_s, "x")
    fetch = 0.0 if st["mode"] in ("pvc-cache", "pvc") else st["weights_gb"] / pull_gb_s
    return round(VLLM_IMAGE_GB / pull_gb_s + fetch + st["weights_gb"] / LOAD_GB_S + WARMUP_S)


def scaling_behavior(cold_start: int) -> dict:
    """HPA behaviour (also KEDA's advanced.horizontalPodAutoscalerConfig.behavior) for replicas that take
    `cold_start` seconds to serve. Scale up only on load that lasts a quarter of a cold start (a burst shorter than
    that is over long before a new replica could help, and a real rise waits at most 25 % longer), and at most
    double per cold start, so replicas still loading are not piled on while the queue they will drain persists.
    Scale down one replica at a time, after load stayed low for twice a cold start: dropping a replica that is
    needed again costs a whole cold start."""
    up_window = min(max(60, cold_start // 4), 600)
    return {"scaleUp": {"stabilizationWindowSeconds": up_window, "selectPolicy": "Max",
                        "policies": [{"type": "Percent", "value": 100,
                                      "periodSeconds": min(max(60, cold_start), _MAX_PERIOD_S)}]},
            "scaleDown": {"stabilizationWindowSeconds": min(max(600, 2 * cold_start), _MAX_WINDOW_S),
                          "selectPolicy": "Min", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]}}


# The pod metric the HPA reads: prometheus-adapter's chart serves every non-counter series with namespace and pod
# labels under its own name by default (gitops/facts/prometheus_adapter_default_rules.yaml), so vLLM's gauge keeps
# its colon; no adapter rule has to be added. Its pods are the scale target's, so each deployment scales on its own.
HPA_METRIC = "vllm:num_requests_running"


def render_bundle(plan: Plan, *, namespace: str = "llm-serving", name: str | None = None, k8s_version: str = "1.31",
                  autoscaler: Literal["keda", "hpa"] = "keda",
                  monitor: Literal["podmonitor", "servicemonitor"] = "podmonitor", repo_url: str | None = None,
                  prometheus_url: str | None = None, storage_uri: str | None = None,
                  servewise_image: str | None = None, gpu_labels: list[str] | None = None,
                  gpu_vendor: str = "nvidia", target: Literal["isvc", "llmisvc"] = "isvc",
                  kserve_version: str = DEFAULT_KSERVE, storage_class: str | None = None,
                  pull_gb_s: float = DEFAULT_PULL_GB_S, gated: bool | None = None,
                  monitor_labels: list[str] | dict[str, str] | None = None, forge: str | None = None,
                  forge_repo: str | None = None, forge_url: str | None = None) -> Bundle:
    """The bundle of files for the plan's chosen candidate (plan.json and a README included).

    `gpu_labels` and `gpu_vendor` come from the catalog's entry for the chosen GPU (`Gpu.k8s_product_labels`,
    `Gpu.vendor`), `gated` from the model's (`ModelArch.gated`; None, not recorded, requires the token).
    `storage_uri` (hf://, s3://, gs://, pvc://, oci://) is where KServe gets the weights; without it a
    PersistentVolumeClaim of `storage_class` holds the Hugging Face cache. `target` is a KServe InferenceService
    (with its ServingRuntime) or an LLMInferenceService. `monitor_labels` go on the PodMonitor/ServiceMonitor/
    PrometheusRule so the cluster's Prometheus selects them; `forge`, `forge_repo` and `forge_url` tell the report
    CronJob where the deployment's pull requests are. Every option is recorded in plan.json (`Plan.render`), so a
    rollback renders the deployment as it was."""
    if plan.chosen is None:
        raise BadInput(f"plan {plan.id} has no chosen candidate ({plan.infeasible or 'infeasible'}); nothing to render")
    if k8s_version not in SUPPORTED_K8S:
        raise BadInput(f"k8s version {k8s_version} is not supported; choose one of {', '.join(SUPPORTED_K8S)}")
    if kserve_version not in KSERVE_VERSIONS:
        raise BadInput(f"KServe version {kserve_version} is not supported; choose one of {', '.join(KSERVE_VERSIONS)}")
    if autoscaler not in ("keda", "hpa"):
        raise BadInput(f"autoscaler {autoscaler!r} is not supported: choose keda or hpa")
    if monitor not in ("podmonitor", "servicemonitor"):
        raise BadInput(f"monitor {monitor!r} is not supported: choose podmonitor or servicemonitor")
    if target not in ("isvc", "llmisvc"):
        raise BadInput(f"target {target!r} is not supported: choose isvc (InferenceService) or llmisvc (LLMInferenceService)")
    if not (0.01 <= pull_gb_s <= 100):
        raise BadInput(f"pull bandwidth {pull_gb_s:g} GB/s is outside 0.01..100")
    if forge not in (None, "local", "github", "gitlab"):
        raise BadInput(f"forge {forge!r} is not supported: choose local, github or gitlab")
    _check_storage_uri(storage_uri)
    c = plan.candidates[plan.chosen]
    if gpu_vendor != "nvidia":
        raise BadInput(f"the plan's GPU {c.gpu} is a {gpu_vendor} GPU; render writes NVIDIA deployments only (vLLM's CUDA "
                       "image, nvidia.com/gpu); recommend with an NVIDIA GPU or write this deployment by hand")
    if c.vllm.quantization not in (None, "fp8"):
        # plans made before checkpoints were catalog facts: vLLM cannot quantize a bf16 repo to this on load
        raise BadInput(f"the plan serves {c.model} with --quantization {c.vllm.quantization}, which needs a pre-quantized "
                       "checkpoint vLLM would fail to find (get_quant_config); re-run recommend, which names a published "
                       "checkpoint or offers only what vLLM can quantize on load")
    nodes = max(1, int(getattr(c, "nodes", 1) or 1), c.pp)
    if nodes > 1 and target == "isvc":
        raise BadInput(f"the plan's replica spans {nodes} nodes (pipeline parallelism {c.pp}); an InferenceService "
                       "replica is one pod: render it with --target llmisvc (LLMInferenceService with a worker spec)")
    ns = dns_label(namespace, "namespace", explicit=True)
    nm = dns_label(name, "name", explicit=True) if name else dns_label(plan.spec.name, "name", explicit=False)
    served = served_model_name(ns, nm)
    sel = _selector(served, ns)
    workload = f"{nm}-predictor" if target == "isvc" else f"{nm}-kserve"
    pods = _pod_selector(workload, ns)
    labels = {"app.kubernetes.io/name": nm, "app.kubernetes.io/managed-by": "servewise",
              "servewise.io/plan": label_value(plan.id)}
    selected_by = check_labels(monitor_labels)
    clash = sorted(set(selected_by) & set(labels))
    if clash:
        raise BadInput(f"monitor label {clash[0]} is set by servewise itself; choose another key")
    prometheus_url = prometheus_url or DEFAULT_PROMETHEUS
    servewise_image = servewise_image or SERVEWISE_IMAGE
    record = RenderOptions(namespace=ns, name=nm, k8s_version=k8s_version, autoscaler=autoscaler, monitor=monitor,
                           repo_url=repo_url, prometheus_url=prometheus_url, storage_uri=storage_uri,
                           servewise_image=servewise_image, gpu_labels=gpu_labels or [], monitor_labels=selected_by,
                           forge=forge, forge_repo=forge_repo, forge_url=forge_url, target=target,
                           kserve_version=kserve_version, storage_class=storage_class, pull_gb_s=pull_gb_s)
    plan = plan.model_copy(update={"render": record})
    gpus_per_replica = c.tp * c.pp
    gpus_per_pod = gpus_per_replica // nodes
    if target == "llmisvc" and storage_uri is None:
        # an LLMInferenceService needs a model URI: KServe's storage initializer fetches the served repo
        storage_uri = f"hf://{serving_repo(c)}"
    storage = _storage(c, gpus_per_replica, storage_uri, storage_class, pull_gb_s, nm)
    startup = _startup(storage, pull_gb_s)
    # vLLM's multiprocess executor keeps a shared-memory ring (VLLM_MQ_MAX_CHUNK_BYTES_MB x chunks) and NCCL its
    # buffers in /dev/shm; 1 GiB per GPU of the pod, as KServe's data-parallel worker config gives 8 GPUs 8 Gi.
    shm_gib = max(1, gpus_per_pod)
    weights_per_pod_gib = c.predicted.memory.weights_gib * gpus_per_pod
    memory_gib = max(16, 8 * gpus_per_pod + _gib(0.25 * weights_per_pod_gib) + shm_gib)
    token_required = True if gated is None else gated
    cold_start = cold_start_s(c, storage_uri, pull_gb_s)
    report_env = [{"name": "SERVEWISE_PROMETHEUS", "value": prometheus_url},
                  # the image's filesystem is read-only: the throwaway knowledge base lives on an emptyDir
                  {"name": "SERVEWISE_KB", "value": "/var/lib/servewise/kb.sqlite"},
                  {"name": "HOME", "value": "/var/lib/servewise"}]
    report_env += [{"name": var, "value": value} for var, value in (("SERVEWISE_FORGE", forge), ("SERVEWISE_REPO", forge_repo),
                                                                    ("SERVEWISE_FORGE_URL", forge_url)) if value]
    report_env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": "servewise-forge", "key": key, "optional": True}}}
                   for var, key in (("SERVEWISE_FORGE_TOKEN", "token"), ("SERVEWISE_PROMETHEUS_TOKEN", "prometheus-token"))]
    ctx = {
        "namespace": ns, "name": nm, "labels": labels, "monitor_labels": {**labels, **selected_by}, "plan_id": plan.id,
        "runtime_name": f"{nm}-vllm",
        "vllm_image": VLLM_IMAGE, "served_model_name": served, "serving_repo": serving_repo(c),
        "vllm_args": vllm_args(c, storage["model_path"], served),
        # KServe's LLMInferenceServiceConfig already passes the model, name, port and --tensor-parallel-size
        "llmisvc_args": engine_args(c)[2:], "pods": ["leader", "worker"] if nodes > 1 else ["leader"],
        "storage": storage, "storage_uri": storage_uri, "pvc": storage["pvc"], "cache_mount": CACHE_MOUNT,
        "hf_secret": "hf-token", "hf_token_optional": not token_required, "gpus_per_replica": gpus_per_replica,
        "gpus_per_pod": gpus_per_pod, "nodes": nodes, "pp": c.pp, "tp": c.tp,
        "cpu": str(max(4, 4 * gpus_per_pod)), "memory": f"{memory_gib}Gi", "shm": f"{shm_gib}Gi",
        "deployment_mode": "Standard" if _release(kserve_version) >= (0, 16) else "RawDeployment",
        "kserve_version": kserve_version,
        # GPU feature discovery's product labels (kb/data/gpus.json); the catalog name when none is known
        "gpu_products": gpu_labels or [c.gpu],
        "min_replicas": c.min_replicas, "max_replicas": c.max_replicas, "replicas": c.replicas,
        "startup_checks": startup["checks"], "probe_period": PROBE_PERIOD_S,
        "kserve_autoscaler_class": "external", "predictor_deployment": workload,
        "prometheus_url": prometheus_url, "k8s_version": k8s_version,
        # KEDA's default AverageValue divides the query's value by the threshold to get replicas, so both
        # queries are totals over all pods and both thresholds are per replica.
        "queue_query": f"sum(vllm:num_requests_waiting{{{sel}}})", "queue_threshold": "4",
        "running_query": f"sum(vllm:num_requests_running{{{sel}}})",
        "running_threshold": str(max(1, int(c.vllm.max_num_seqs * 0.8))),
        "hpa_metric": HPA_METRIC, "cold_start_s": cold_start, "behavior": scaling_behavior(cold_start),
        "rule_group": f"servewise-{nm}", "alerts": _alerts(plan, sel, pods, nm), "alert_for": _ALERT_FOR,
        "dashboard_file": f"servewise-{nm}.json", "dashboard_json": _dashboard(nm, sel, pods),
        "servewise_image": servewise_image, "forge_secret": "servewise-forge", "report_env": report_env,
        "report_account": f"{nm}-slo-report", "report_args": ["report", "--deployment", f"{ns}/{nm}"],
    }
    manifests: dict[str, str] = {}
    if target == "isvc":
        manifests |= {"servingruntime.yaml": "servingruntime.yaml.j2", "inferenceservice.yaml": "inferenceservice.yaml.j2",
                      f"{'scaledobject' if autoscaler == 'keda' else 'hpa'}.yaml":
                          f"{'scaledobject' if autoscaler == 'keda' else 'hpa'}.yaml.j2",
                      f"{monitor}.yaml": f"{monitor}.yaml.j2"}
    else:
        # KServe merges this spec into its LLMInferenceServiceConfig with a strategic merge (mergeSpecs,
        # pkg/controller/v1alpha2/llmisvc/config_merge.go at v0.20.0): the startup probe keeps the config's handler
        # and HTTPS scheme and takes only the budget; env, volumes (dshm) merge by name.
        # LLMInferenceService runs its own workload (and its own scaling through llm-d's variant autoscaler): the plan's
        # replicas are fixed here. Its pods carry app.kubernetes.io/name=<name> and part-of=llminferenceservice
        # (singleNodeLabels, pkg/controller/v1alpha2/llmisvc/workload_single_node.go at v0.20.0) and serve on 8000.
        manifests |= {"llminferenceservice.yaml": "llminferenceservice.yaml.j2", "podmonitor.yaml": "llmisvc-podmonitor.yaml.j2"}
    if storage["pvc"]:
        manifests["persistentvolumeclaim.yaml"] = "persistentvolumeclaim.yaml.j2"
    manifests |= {"prometheusrule.yaml": "prometheusrule.yaml.j2", "dashboard-configmap.yaml": "dashboard-configmap.yaml.j2",
                  "cronjob-slo-report.yaml": "cronjob-slo-report.yaml.j2",
                  "serviceaccount-slo-report.yaml": "serviceaccount-slo-report.yaml.j2"}
    ctx.update(_availability(plan, c, nm))
    if ctx["pdb_name"] and target == "isvc":
        manifests["pdb.yaml"] = "pdb.yaml.j2"
    files = {path: _yaml_env.get_template(t).render(ctx) for path, t in manifests.items()}
    files["kustomization.yaml"] = _yaml_env.get_template("kustomization.yaml.j2").render({**ctx, "resources": list(manifests)})
    files["plan.json"] = plan.model_dump_json(indent=2) + "\n"
    files["README.md"] = _readme(plan, c, ctx, autoscaler, monitor, sorted([*files, "README.md"]), startup, target)
    return Bundle(namespace=ns, name=nm, plan=plan, files=dict(sorted(files.items())))


def _readme(plan: Plan, c: Candidate, ctx: dict, autoscaler: str, monitor: str, files: list[str], startup: dict,
            target: str) -> str:
    s, p = plan.spec.slos, c.predicted
    rows = [(label, f"{t:g} ms", f"{v:,.0f} ms") for label, t, v in (("TTFT p90", s.ttft_p90_ms, p.ttft_ms.p90),
                                                                     ("TPOT p90", s.tpot_p90_ms, p.tpot_ms.p90),
                                                                     ("E2E p95", s.e2e_p95_ms, p.e2e_ms.p95)) if t]
    st = ctx["storage"]
    assumptions = [f"{a.field} = {a.value} ({a.source})" for a in plan.spec.assumptions] + p.assumptions + [
        (f"vLLM image {VLLM_IMAGE}: the release most calibration benchmarks were measured on (their -cu130 build "
         "needs a CUDA 13 driver, so the default CUDA 12 build is used)"),
        (f"vLLM serves {ctx['serving_repo']}" + (f", the published {c.weight_dtype} checkpoint of {c.model} (seen at "
         f"{c.checkpoint_source}); vLLM reads its quantization method from the checkpoint's config.json"
                                                 if c.checkpoint else "")),
        f"clients call the model {ctx['served_model_name']!r} (--served-model-name); alerts, autoscaling, the dashboard "
        "and the SLO report select on that name",
        f"weights: {st['how']}",
        f"startup probe budget: {startup['text']} (pull bandwidth is the pull_gb_s setting; load speed and warm-up are guesses)",
        (f"report CronJob image {ctx['servewise_image']}: built from servewise's Dockerfile and pushed by its release "
         "workflow on a version tag; it runs as a non-root user with a read-only root filesystem"),
        (f"forge and Prometheus tokens from Secret {ctx['forge_secret']} keys token and prometheus-token (optional, none "
         "rendered here)"),
        (f"memory {ctx['memory']} per pod is a guess: 8 GiB per GPU for vLLM's processes, a quarter of the pod's "
         f"{c.predicted.memory.weights_gib * ctx['gpus_per_pod']:.0f} GiB of weights for loading, plus the {ctx['shm']} "
         f"/dev/shm (memory-backed, counted against the limit); CPU {ctx['cpu']} cores requested (4 per GPU) with no "
         "CPU limit, so vLLM's busy loops are never throttled"),
        (f"GPU nodes carry label nvidia.com/gpu.product in {', '.join(ctx['gpu_products'])} (GPU feature discovery) "
         "and may carry the taint nvidia.com/gpu:NoSchedule"),
        ("Argo CD creates this deployment's Application from the repository's ApplicationSet (`servewise gitops init`) "
         "and deletes it, pruning every object, when a pull request removes this directory"),
        ("the namespace is created by Argo CD (CreateNamespace=true) and never deleted by it: other deployments may "
         "share it"),
    ]
    if target == "isvc":
        assumptions += [
            (f"KServe {ctx['kserve_version']}, deploymentMode {ctx['deployment_mode']}; probes as KServe's own "
             "kserve-vllmserver.yaml at v0.20.0 (timeouts 10 s startup, 5 s readiness)"),
            (f"scale-out thresholds per replica are guesses: {ctx['queue_threshold']} waiting requests, or running requests "
             f"at 80 % of max-num-seqs ({ctx['running_threshold']}); Prometheus at {ctx['prometheus_url']}"),
            (f"a new replica serves after about {ctx['cold_start_s']} s on a fresh node (the vLLM image, guessed at "
             f"{VLLM_IMAGE_GB:g} GB, and any weights download at the pull bandwidth, then load and warm-up as for the "
             f"startup probe), so scale-up waits for load lasting {ctx['behavior']['scaleUp']['stabilizationWindowSeconds']} s "
             f"and at most doubles every {ctx['behavior']['scaleUp']['policies'][0]['periodSeconds']} s; scale-down "
             f"removes one replica per 5 min after {ctx['behavior']['scaleDown']['stabilizationWindowSeconds']} s of "
             "low load")]
        if ctx["monitor_labels"] == ctx["labels"]:
            assumptions.append("no monitor labels given: a Prometheus that selects monitors and rules by label "
                               "(kube-prometheus-stack: release=<release>) ignores them; pass --monitor-label KEY=VALUE")
        if monitor == "servicemonitor":
            assumptions.append("the ServiceMonitor finds KServe's predictor Service by its label "
                               "serving.kserve.io/inferenceservice and scrapes the container port named http, whatever "
                               "KServe names the Service port")
        if autoscaler == "hpa":
            assumptions.append(f"the HPA reads the pod metric {ctx['hpa_metric']} from prometheus-adapter, which its Helm "
                               "chart serves under that name with its default rules (rules.default: true)")
    else:
        assumptions += [
            (f"LLMInferenceService (serving.kserve.io/v1alpha2, KServe {ctx['kserve_version']}) with KServe's default "
             f"LLMInferenceServiceConfig, which runs `vllm serve /mnt/models --served-model-name NAME --port 8000` and "
             f"appends these arguments; {ctx['replicas']} replica(s) fixed (autoscaling an LLMInferenceService goes "
             "through llm-d's workload-variant-autoscaler, not rendered); a PodMonitor scrapes port 8000 over HTTPS without "
             "verifying KServe's self-signed certificate (set scheme http if the cluster disables LLMInferenceService TLS)")]
        if ctx["nodes"] > 1:
            assumptions.append(f"one replica spans {ctx['nodes']} nodes of {ctx['gpus_per_pod']} GPUs (pipeline "
                               f"parallelism {ctx['pp']} x tensor {ctx['tp']}): a LeaderWorkerSet, so the LWS "
                               "controller must be installed and the nodes need a fast interconnect")
    if st["mode"] == "storage-initializer" and str(st["storage_uri"]).startswith("hf://") and not ctx["hf_token_optional"]:
        assumptions.append("the storage initializer downloading a gated hf:// repo reads HF_TOKEN from a Secret attached "
                           "to the pod's ServiceAccount (KServe docs/samples/storage/hf/hf_secret.yaml at v0.20.0); "
                           "attach it to the namespace's default ServiceAccount or download into a claim (pvc://)")
    token = ("required: the model's repository is gated, so the pod does not start until the Secret exists"
             if not ctx["hf_token_optional"] else "optional: the model's repository is not gated")
    return _md_env.get_template("bundle-README.md.j2").render(
        name=ctx["name"], namespace=ctx["namespace"], model=c.model, gpus_total=c.gpus_total, gpu=c.gpu,
        version=__version__, plan_id=plan.id, kb_version=plan.kb_version, replicas=c.replicas, weight_dtype=c.weight_dtype,
        tp=c.tp, min_replicas=c.min_replicas if target == "isvc" else c.replicas,
        max_replicas=c.max_replicas if target == "isvc" else c.replicas,
        autoscaler=autoscaler.upper() if target == "isvc" else "nothing (fixed replicas)",
        vllm_image=VLLM_IMAGE, k8s_version=ctx["k8s_version"], monthly_cost=f"{c.monthly_cost_usd:,.0f}", provider=plan.provider,
        rationale=plan.rationale, slo_rows=rows, binding=c.binding_constraint, assumptions=assumptions, files=files,
        kserve=f"KServe {ctx['kserve_version']} ({'InferenceService, ' + ctx['deployment_mode'] if target == 'isvc' else 'LLMInferenceService'})",
        hf_secret=ctx["hf_secret"], token=token, startup=startup["text"])
