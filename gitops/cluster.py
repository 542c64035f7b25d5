"""What a Kubernetes cluster offers a deployment, and how a merged deployment is doing — read-only.

Owns the connection to the cluster (kubeconfig and its context, or the in-cluster service
account), the inventory (GPU nodes by product with what running pods already hold, the target
namespace's GPU quota and limit ranges, which of KServe / KEDA / prometheus-operator / Argo CD
are installed, the Kubernetes version), the status of one deployment (Argo CD Application and
KServe InferenceService) with its monitoring queries, and the exact read-only RBAC rules all
of that needs. Every call is a GET: servewise never writes to a cluster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from gitops.outbound import redact
from planner.catalog import Catalog, Gpu
from planner.errors import BadInput, ServewiseError, Unreachable, unknown_name

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException

GPU_RESOURCE = "nvidia.com/gpu"
# Label set by NVIDIA GPU feature discovery (part of the GPU operator) on every GPU node.
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# GPU feature discovery appends this to the product when time-slicing renames shared GPUs.
SHARED_SUFFIX = "-SHARED"
GPU_QUOTA_KEY = f"requests.{GPU_RESOURCE}"
# Seconds to connect and to read each answer: a healthy API server lists in well under a second.
DEFAULT_TIMEOUT_S = 10.0
PAGE_SIZE = 500  # the page size kubectl uses (--chunk-size default)
ARGOCD_NAMESPACE = "argocd"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# The CRDs whose presence says a component is installed (names are <plural>.<group>).
COMPONENT_CRDS: dict[str, tuple[str, ...]] = {
    "kserve": ("inferenceservices.serving.kserve.io",),
    "keda": ("scaledobjects.keda.sh",),
    "prometheus_operator": ("podmonitors.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"),
    "argocd": ("applications.argoproj.io",),
}


# ----------------------------------------------------------------------------- permissions


class Permission(BaseModel):
    """One read servewise makes, as an RBAC rule: the verb, the resource and its API group, and where."""

    verb: Literal["get", "list"]
    resource: str
    group: str = ""
    scope: Literal["cluster", "namespace", "argocd"]
    why: str

    @property
    def non_resource(self) -> bool:
        """A URL such as /version rather than an API resource."""
        return self.resource.startswith("/")

    def describe(self, namespace: str | None = None) -> str:
        if self.non_resource:
            return f"{self.verb} {self.resource}"
        where = "cluster-wide" if self.scope == "cluster" else f'in namespace "{namespace}"' if namespace else (
            "in the deployment namespace" if self.scope == "namespace" else "in the Argo CD namespace")
        return f'{self.verb} {self.resource} (API group "{self.group}") {where}'

    def rule(self) -> str:
        """This permission as one RBAC rule, in the YAML flow style of a Role (ClusterRole when cluster-wide)."""
        kind = "ClusterRole" if self.scope == "cluster" else "Role"
        if self.non_resource:
            return f'{kind} rule {{nonResourceURLs: ["{self.resource}"], verbs: ["{self.verb}"]}}'
        return f'{kind} rule {{apiGroups: ["{self.group}"], resources: ["{self.resource}"], verbs: ["{self.verb}"]}}'


VERSION = Permission(verb="get", resource="/version", scope="cluster", why="Kubernetes version")
NODES = Permission(verb="list", resource="nodes", scope="cluster", why="GPU nodes and allocatable GPUs")
PODS = Permission(verb="list", resource="pods", scope="cluster", why="GPUs already requested by running pods")
CRDS = Permission(verb="list", resource="customresourcedefinitions", group="apiextensions.k8s.io",
                  scope="cluster", why="which of KServe, KEDA, prometheus-operator, Argo CD are installed")
QUOTAS = Permission(verb="list", resource="resourcequotas", scope="namespace", why="namespace GPU quota")
LIMIT_RANGES = Permission(verb="list", resource="limitranges", scope="namespace", why="per-pod GPU limits")
ISVCS = Permission(verb="get", resource="inferenceservices", group="serving.kserve.io", scope="namespace",
                   why="InferenceService conditions and URL")
DEPLOYMENTS = Permission(verb="list", resource="deployments", group="apps", scope="namespace",
                         why="ready replicas of the InferenceService")
APPLICATIONS = Permission(verb="get", resource="applications", group="argoproj.io", scope="argocd",
                          why="Argo CD sync and health")
PROMETHEUSES = Permission(verb="list", resource="prometheuses", group="monitoring.coreos.com", scope="cluster",
                          why="the labels the installed Prometheus selects monitors and rules by (--monitor-label)")
PERMISSIONS: tuple[Permission, ...] = (VERSION, NODES, PODS, CRDS, QUOTAS, LIMIT_RANGES, ISVCS, DEPLOYMENTS,
                                       APPLICATIONS, PROMETHEUSES)

RBAC_HINT = "run `servewise cluster rbac` for the read-only Role rules servewise needs"


def rbac_manifest(namespace: str, *, argocd_namespace: str = ARGOCD_NAMESPACE, user: str | None = None,
                  service_account: str = "servewise") -> str:
    """The ClusterRole, Roles and bindings granting exactly the reads of PERMISSIONS, as YAML to apply.

    Bound to `user` when given (a person with a kubeconfig), else to the service account
    `service_account` in `namespace` (servewise running in the cluster).
    """
    import jinja2

    templates = Path(__file__).resolve().parent.parent / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    subject = ({"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"} if user
               else {"kind": "ServiceAccount", "name": service_account, "namespace": namespace})
    cluster = [p for p in PERMISSIONS if p.scope == "cluster"]
    return env.get_template("rbac-reader.yaml.j2").render(
        namespace=namespace, argocd_namespace=argocd_namespace, subject=subject,
        cluster_rules=[p for p in cluster if not p.non_resource],
        non_resource_rules=[p for p in cluster if p.non_resource],
        namespace_rules=[p for p in PERMISSIONS if p.scope == "namespace"],
        argocd_rules=[p for p in PERMISSIONS if p.scope == "argocd"])


# ----------------------------------------------------------------------------- models


class GpuNode(BaseModel):
    """One node with NVIDIA GPUs: its product, allocatable GPUs and what non-terminated pods request."""

    name: str
    product: str | None = Field(description=f"the node's {GPU_PRODUCT_LABEL} label")
    gpu: str | None = Field(description="catalog GPU name, None when the product is not in the catalog")
    allocatable: int
    requested: int
    schedulable: bool = Field(description="Ready and not cordoned")

    @property
    def free(self) -> int:
        return max(self.allocatable - self.requested, 0) if self.schedulable else 0


class GpuNodePool(BaseModel):
    """GPU nodes of one product, summed."""

    product: str | None
    gpu: str | None
    nodes: int
    allocatable: int
    requested: int
    free: int
    max_free_on_one_node: int = Field(description="largest tensor-parallel group that fits on one node now")


class GpuInventory(BaseModel):
    pools: list[GpuNodePool]
    nodes: list[GpuNode]
    unknown_products: list[str] = Field(description="GPU products on nodes that the catalog has no entry for")


class NamespaceQuota(BaseModel):
    """One ResourceQuota of the target namespace; the GPU figures come from `requests.nvidia.com/gpu`."""

    namespace: str
    name: str
    hard: dict[str, str]
    used: dict[str, str]
    gpu_hard: int | None
    gpu_used: int | None

    @property
    def gpu_remaining(self) -> int | None:
        return None if self.gpu_hard is None else max(self.gpu_hard - (self.gpu_used or 0), 0)


class LimitRangeItem(BaseModel):
    type: str
    max: dict[str, str] = Field(default_factory=dict)
    min: dict[str, str] = Field(default_factory=dict)
    default: dict[str, str] = Field(default_factory=dict)
    default_request: dict[str, str] = Field(default_factory=dict)


class LimitRange(BaseModel):
    namespace: str
    name: str
    limits: list[LimitRangeItem]


class InstalledComponents(BaseModel):
    kserve: bool
    keda: bool
    prometheus_operator: bool
    argocd: bool
    crds: list[str] = Field(description="the component CRDs found")


class ClusterInventory(BaseModel):
    """What the cluster behind one kubeconfig context offers a deployment in one namespace."""

    context: str
    server: str
    namespace: str
    k8s_version: str
    gpus: GpuInventory
    free_gpus: dict[str, int] = Field(description="free GPUs on schedulable nodes, keyed by catalog GPU name")
    quotas: list[NamespaceQuota]
    limit_ranges: list[LimitRange]
    gpu_quota_remaining: int | None = Field(description="GPUs the namespace quota still allows (None: no quota)")
    gpu_max_per_pod: int | None = Field(description="largest GPU count one pod may request (None: no limit)")
    installed: InstalledComponents
    assumptions: list[str]
    monitor_labels: dict[str, str] | None = Field(default=None, description="labels that make the installed "
                                                  "Prometheus select servewise's monitors and rules (None: unknown)")
    monitor_labels_source: str = Field(default="", description="which Prometheus and selectors they come from, or why "
                                                              "none could be suggested")


class Condition(BaseModel):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


class ApplicationStatus(BaseModel):
    """The Argo CD Application that syncs the deployment's bundle."""

    namespace: str
    name: str
    found: bool
    sync_status: str | None = None
    health_status: str | None = None
    revision: str | None = None
    operation_phase: str | None = None
    message: str | None = None


class InferenceServiceStatus(BaseModel):
    namespace: str
    name: str
    found: bool
    served_model_name: str
    ready: bool = False
    url: str | None = None
    deployment_mode: str | None = None
    model_state: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    ready_replicas: int | None = None
    desired_replicas: int | None = None
    failure: str | None = None


class MonitoringLinks(BaseModel):
    """PromQL for the deployment's SLOs and, when a Prometheus / Grafana URL is known, links to them."""

    queries: dict[str, str]
    prometheus_links: dict[str, str] = Field(default_factory=dict)
    dashboard_uid: str
    grafana_dashboard: str | None = None


class DeploymentStatus(BaseModel):
    context: str
    namespace: str
    name: str
    application: ApplicationStatus
    inference_service: InferenceServiceStatus
    serving: bool = Field(description="synced, healthy and the InferenceService is Ready")
    monitoring: MonitoringLinks
    assumptions: list[str]


# ----------------------------------------------------------------------------- connection


@dataclass
class _Cluster:
    """An API client bound to one context, with what error messages need to name."""

    api: ApiClient
    context: str
    server: str
    namespace: str
    timeout: float

    def call(self, perm: Permission, fn: Callable[..., Any], *, missing_ok: bool = False, **kwargs: Any) -> dict | None:
        """One GET, its JSON body as a dict; every failure becomes a ServewiseError naming context and permission."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError as Urllib3Timeout

        try:
            resp = fn(_preload_content=False, _request_timeout=(self.timeout, self.timeout), **kwargs)
            return json.loads(resp.data or b"{}")
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise self._api_error(exc, perm, kwargs.get("namespace")) from None
        except NewConnectionError:
            raise Unreachable(f"cannot connect to the Kubernetes API server {self.server} (context {self.context!r})",
                              details={"context": self.context, "reason": "unreachable"}) from None
        except Urllib3Timeout:
            raise Unreachable(f"the Kubernetes API server {self.server} (context {self.context!r}) did not answer "
                              f"within {self.timeout:g} s ({perm.describe(kwargs.get('namespace'))})",
                              details={"context": self.context, "reason": "timeout"}) from None
        except (HTTPError, OSError) as exc:
            raise Unreachable(f"cannot reach the Kubernetes API server {self.server} (context {self.context!r}): "
                              f"{type(exc).__name__}", details={"context": self.context, "reason": "unreachable"}) from None

    def list(self, perm: Permission, fn: Callable[..., Any], **kwargs: Any) -> list[dict]:
        """All items of a list, following `continue` tokens page by page."""
        items: list[dict] = []
        token: str | None = None
        while True:
            page = self.call(perm, fn, limit=PAGE_SIZE, _continue=token, **kwargs) or {}
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def _api_error(self, exc: ApiException, perm: Permission, namespace: str | None) -> ServewiseError:
        where = f"context {self.context!r} ({self.server})"
        if exc.status == 0:  # the client's wrapping of a TLS failure: no HTTP answer at all
            detail = " ".join(str(exc.reason).split())
            return Unreachable(f"cannot reach the Kubernetes API server of {where}: {detail}; check the cluster's "
                               "certificate-authority in the kubeconfig", details={"context": self.context, "reason": "tls"})
        status = _status_message(exc)
        if exc.status == 401:
            return Unreachable(f"the Kubernetes API server refused the credentials of {where} (401 Unauthorized): "
                               "they are missing or expired; log in again or refresh the kubeconfig",
                               details={"context": self.context, "reason": "unauthorized"})
        if exc.status == 403:
            return Unreachable(f"{where} may not {perm.describe(namespace)} (403 Forbidden: {status}); "
                               f"servewise needs it for {perm.why}. Missing {perm.rule()}; {RBAC_HINT}",
                               details={"context": self.context, "reason": "forbidden", "verb": perm.verb,
                                        "resource": perm.resource, "api_group": perm.group,
                                        "namespace": namespace})
        return Unreachable(f"the Kubernetes API server of {where} answered {exc.status} to "
                           f"{perm.verb} {perm.resource}: {status}",
                           details={"context": self.context, "reason": "api_error", "status": exc.status})


def _status_message(exc: ApiException) -> str:
    """The `message` of the Status object the API server sends with an error, else the HTTP reason."""
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def _kubeconfig_paths(kubeconfig: Path | None) -> list[Path]:
    if kubeconfig is not None:
        return [kubeconfig]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _connect(context: str | None, kubeconfig: Path | None, namespace: str | None, timeout: float) -> _Cluster:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    # No silent retries: one clear error within the timeout instead of four attempts.
    cfg.retries = False
    paths = [p for p in _kubeconfig_paths(kubeconfig) if p.exists()]
    if not paths:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                config.load_incluster_config(client_configuration=cfg)
            except ConfigException as exc:
                raise BadInput(f"in-cluster service account not usable: {exc}") from None
            ns_file = SERVICE_ACCOUNT_DIR / "namespace"
            own_ns = ns_file.read_text().strip() if ns_file.exists() else "default"
            return _Cluster(client.ApiClient(cfg), "in-cluster", cfg.host, namespace or own_ns, timeout)
        looked = ", ".join(str(p) for p in _kubeconfig_paths(kubeconfig))
        raise BadInput(f"no kubeconfig found (looked at {looked}) and not running inside a cluster; "
                       "pass --kubeconfig PATH or set KUBECONFIG", details={"reason": "no_kubeconfig"})
    config_file = os.pathsep.join(str(p) for p in paths)
    try:
        contexts, current = config.list_kube_config_contexts(config_file)
    except ConfigException as exc:
        raise BadInput(f"kubeconfig {config_file} is not usable: {exc}") from None
    names = [c["name"] for c in contexts or []]
    chosen = context or (current or {}).get("name")
    if not chosen:
        raise BadInput(f"kubeconfig {config_file} has no current-context; pass --context (known: {', '.join(names)})")
    if chosen not in names:
        raise unknown_name("context", chosen, names)
    entry = next(c for c in contexts if c["name"] == chosen)
    try:
        config.load_kube_config(config_file=config_file, context=chosen, client_configuration=cfg,
                                persist_config=False)
    except ConfigException as exc:
        raise BadInput(f"kubeconfig context {chosen!r} is not usable: {exc}") from None
    ns = namespace or (entry.get("context") or {}).get("namespace") or "default"
    return _Cluster(client.ApiClient(cfg), chosen, cfg.host, ns, timeout)


# ----------------------------------------------------------------------------- inventory


def read_inventory(catalog: Catalog, *, context: str | None = None, kubeconfig: Path | None = None,
                   namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> ClusterInventory:
    """Read what the cluster offers: GPUs free by catalog GPU, the namespace quota, installed components.

    `namespace` is where the deployment would go (default: the context's namespace, else
    `default`); its ResourceQuotas and LimitRanges are read. Every request is a GET with
    `timeout` seconds to connect and to read.
    """
    from kubernetes import client

    cl = _connect(context, kubeconfig, namespace, timeout)
    with cl.api:
        core = client.CoreV1Api(cl.api)
        version = cl.call(VERSION, client.VersionApi(cl.api).get_code) or {}
        nodes = cl.list(NODES, core.list_node)
        pods = cl.list(PODS, core.list_pod_for_all_namespaces,
                       field_selector="status.phase!=Succeeded,status.phase!=Failed")
        quotas = cl.list(QUOTAS, core.list_namespaced_resource_quota, namespace=cl.namespace)
        limit_ranges = cl.list(LIMIT_RANGES, core.list_namespaced_limit_range, namespace=cl.namespace)
        # Metadata only: full CRDs carry their schemas and run to megabytes.
        crds = cl.list(CRDS, client.ApiextensionsV1Api(cl.api).list_custom_resource_definition,
                       _headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                                           "application/json"})
        prometheuses, prometheus_note = None, "prometheus-operator is not installed"
        if "podmonitors.monitoring.coreos.com" in {(c.get("metadata") or {}).get("name") for c in crds}:
            try:
                prometheuses = cl.list(PROMETHEUSES, client.CustomObjectsApi(cl.api).list_cluster_custom_object,
                                       group="monitoring.coreos.com", version="v1", plural="prometheuses")
            except Unreachable as exc:  # a suggestion only: a refused read says so and the rest stands
                if (exc.details or {}).get("reason") != "forbidden":
                    raise
                prometheus_note = f"cannot read Prometheus objects ({PROMETHEUSES.rule()}); no label suggested"
    gpus = gpu_inventory(nodes, pods, catalog)
    quota_models = [_quota(q, cl.namespace) for q in quotas]
    lr_models = [_limit_range(lr, cl.namespace) for lr in limit_ranges]
    remaining = [q.gpu_remaining for q in quota_models if q.gpu_remaining is not None]
    pod_max = [_gpu_count(item.max.get(GPU_RESOURCE)) for lr in lr_models for item in lr.limits
               if item.type in ("Container", "Pod") and GPU_RESOURCE in item.max]
    crd_names = {(c.get("metadata") or {}).get("name") for c in crds}
    found = sorted(n for names in COMPONENT_CRDS.values() for n in names if n in crd_names)
    installed = InstalledComponents(crds=found, **{k: any(n in crd_names for n in v) for k, v in COMPONENT_CRDS.items()})
    free: dict[str, int] = {}
    for pool in gpus.pools:
        if pool.gpu:
            free[pool.gpu] = free.get(pool.gpu, 0) + pool.free
    labels, source = monitor_label_suggestion(prometheuses) if prometheuses is not None else (None, prometheus_note)
    return ClusterInventory(
        monitor_labels=labels, monitor_labels_source=source,
        context=cl.context, server=cl.server, namespace=cl.namespace,
        k8s_version=version.get("gitVersion") or f"{version.get('major', '?')}.{version.get('minor', '?')}",
        gpus=gpus, free_gpus=free, quotas=quota_models, limit_ranges=lr_models,
        gpu_quota_remaining=min(remaining) if remaining else None,
        gpu_max_per_pod=min(pod_max) if pod_max else None, installed=installed,
        assumptions=[
            f"free GPUs = {GPU_RESOURCE} allocatable on Ready, uncordoned nodes minus what non-terminated pods "
            "request there; taints and node selectors are not checked",
            f"GPU product from the {GPU_PRODUCT_LABEL} label of NVIDIA GPU feature discovery; "
            "nodes without it are counted as an unknown product",
            "a replica with tensor parallelism N needs N free GPUs on one node (see max_free_on_one_node)",
        ],
    )


def monitor_label_suggestion(prometheuses: list[dict]) -> tuple[dict[str, str] | None, str]:
    """Labels that put a PodMonitor, ServiceMonitor and PrometheusRule in view of the installed Prometheus: the
    matchLabels its podMonitorSelector, serviceMonitorSelector and ruleSelector share (kube-prometheus-stack sets
    all three to release=<release>). prometheus-operator reads an absent selector as "select none" and an empty
    one as "select all"; a selector with matchExpressions is not turned into labels."""
    if not prometheuses:
        return None, "no Prometheus object found"
    for prom in prometheuses:
        meta, spec = prom.get("metadata") or {}, prom.get("spec") or {}
        where = f"Prometheus {meta.get('namespace', '?')}/{meta.get('name', '?')}"
        selectors = {k: spec.get(k) for k in ("podMonitorSelector", "serviceMonitorSelector", "ruleSelector")}
        if any(v is None for v in selectors.values()):
            continue
        if any(v.get("matchExpressions") for v in selectors.values()):
            return None, f"{where} selects by matchExpressions; choose --monitor-label by hand"
        need: dict[str, str] = {}
        for value in selectors.values():
            for key, label in (value.get("matchLabels") or {}).items():
                if need.get(key, label) != label:
                    return None, f"{where} asks for {key}={need[key]} and {key}={label}; no one label set fits"
                need[key] = label
        return need, f"{where} ({', '.join(sorted(selectors))})"
    return None, "no Prometheus selects PodMonitors, ServiceMonitors and PrometheusRules all at once"


def gpu_inventory(nodes: list[dict], pods: list[dict], catalog: Catalog) -> GpuInventory:
    """GPU nodes grouped by product, with the GPUs that non-terminated pods on them request."""
    requested: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            requested[node] = requested.get(node, 0) + pod_gpu_request(pod)
    labels = {label.lower(): g for g in catalog.gpus for label in g.k8s_product_labels}
    gpu_nodes: list[GpuNode] = []
    for n in nodes:
        meta, spec, status = n.get("metadata") or {}, n.get("spec") or {}, n.get("status") or {}
        allocatable = _gpu_count((status.get("allocatable") or {}).get(GPU_RESOURCE))
        if not allocatable:
            continue
        product = (meta.get("labels") or {}).get(GPU_PRODUCT_LABEL)
        gpu = _catalog_gpu(product, labels)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        gpu_nodes.append(GpuNode(name=meta.get("name", "?"), product=product, gpu=gpu.name if gpu else None,
                                 allocatable=allocatable, requested=requested.get(meta.get("name"), 0),
                                 schedulable=ready and not spec.get("unschedulable", False)))
    pools: dict[str | None, list[GpuNode]] = {}
    for node in gpu_nodes:
        pools.setdefault(node.product, []).append(node)
    return GpuInventory(
        pools=[GpuNodePool(product=product, gpu=members[0].gpu, nodes=len(members),
                           allocatable=sum(m.allocatable for m in members),
                           requested=sum(m.requested for m in members), free=sum(m.free for m in members),
                           max_free_on_one_node=max(m.free for m in members))
               for product, members in sorted(pools.items(), key=lambda kv: kv[0] or "")],
        nodes=gpu_nodes,
        unknown_products=sorted({n.product or "(no label)" for n in gpu_nodes if n.gpu is None}),
    )


def _catalog_gpu(product: str | None, labels: dict[str, Gpu]) -> Gpu | None:
    if not product:
        return None
    key = product.lower()
    return labels.get(key) or labels.get(key.removesuffix(SHARED_SUFFIX.lower()))


def pod_gpu_request(pod: dict) -> int:
    """GPUs a pod holds, as the scheduler counts it.

    max(app containers + restartable init (sidecar) containers, largest plain init container);
    an extended resource's request equals its limit, so a limit alone counts too.
    """
    spec = pod.get("spec") or {}
    init = spec.get("initContainers") or []
    sidecars = sum(_container_gpus(c) for c in init if c.get("restartPolicy") == "Always")
    plain_init = max((_container_gpus(c) for c in init if c.get("restartPolicy") != "Always"), default=0)
    return max(sum(_container_gpus(c) for c in spec.get("containers") or []) + sidecars, plain_init)


def _container_gpus(container: dict) -> int:
    res = container.get("resources") or {}
    return _gpu_count((res.get("requests") or {}).get(GPU_RESOURCE) or (res.get("limits") or {}).get(GPU_RESOURCE))


def _gpu_count(quantity: str | int | None) -> int:
    if quantity in (None, ""):
        return 0
    from kubernetes.utils import parse_quantity

    return int(parse_quantity(quantity))


def _quota(obj: dict, namespace: str) -> NamespaceQuota:
    status = obj.get("status") or {}
    hard = status.get("hard") or (obj.get("spec") or {}).get("hard") or {}
    used = status.get("used") or {}
    return NamespaceQuota(
        namespace=namespace, name=(obj.get("metadata") or {}).get("name", "?"),
        hard={k: str(v) for k, v in hard.items()}, used={k: str(v) for k, v in used.items()},
        gpu_hard=_gpu_count(hard[GPU_QUOTA_KEY]) if GPU_QUOTA_KEY in hard else None,
        gpu_used=_gpu_count(used.get(GPU_QUOTA_KEY)) if GPU_QUOTA_KEY in hard else None,
    )


def _limit_range(obj: dict, namespace: str) -> LimitRange:
    def strs(d: dict | None) -> dict[str, str]:
        return {k: str(v) for k, v in (d or {}).items()}

    return LimitRange(namespace=namespace, name=(obj.get("metadata") or {}).get("name", "?"), limits=[
        LimitRangeItem(type=i.get("type", "?"), max=strs(i.get("max")), min=strs(i.get("min")),
                       default=strs(i.get("default")), default_request=strs(i.get("defaultRequest")))
        for i in (obj.get("spec") or {}).get("limits") or []])


# ----------------------------------------------------------------------------- what planning and rendering use


def gpu_budget(inventory: ClusterInventory) -> dict[str, int]:
    """GPUs a new deployment may use per catalog GPU: free on the nodes, capped by the namespace GPU quota.

    The quota is one number across GPU types; a candidate uses one GPU type, so capping each
    type by it is exact for any single candidate.
    """
    cap = inventory.gpu_quota_remaining
    return {gpu: free if cap is None else min(free, cap) for gpu, free in inventory.free_gpus.items()}


def render_choices(inventory: ClusterInventory) -> tuple[Literal["keda", "hpa"], Literal["podmonitor", "servicemonitor"]]:
    """The autoscaler and monitor kinds this cluster can run: KEDA if its CRDs exist, else the built-in HPA;
    a PodMonitor when prometheus-operator is installed, else a ServiceMonitor."""
    return ("keda" if inventory.installed.keda else "hpa",
            "podmonitor" if inventory.installed.prometheus_operator else "servicemonitor")


# ----------------------------------------------------------------------------- deployment status


def slo_queries(model_name: str, namespace: str, window: str = "5m") -> dict[str, str]:
    """PromQL for the deployment's p90 TTFT and TPOT (vLLM V1 metric names, seconds) and its throughput.

    Selects series by vLLM's `model_name` label and the scrape target's `namespace`, the same
    selector the rendered alerts and dashboard use.
    """
    sel = f"model_name={json.dumps(model_name)},namespace={json.dumps(namespace)}"

    def quantile(q: str, metric: str) -> str:
        return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{sel}}}[{window}])))"

    return {
        "ttft_p90_s": quantile("0.90", "vllm:time_to_first_token_seconds"),
        "tpot_p90_s": quantile("0.90", "vllm:request_time_per_output_token_seconds"),
        "e2e_p95_s": quantile("0.95", "vllm:e2e_request_latency_seconds"),
        "output_tok_s": f"sum(rate(vllm:generation_tokens_total{{{sel}}}[{window}]))",
        "kv_cache_usage": f"max(vllm:kv_cache_usage_perc{{{sel}}})",
        "requests_waiting": f"sum(vllm:num_requests_waiting{{{sel}}})",
    }


def monitoring_links(name: str, namespace: str, model_name: str, *, prometheus_url: str | None = None,
                     grafana_url: str | None = None) -> MonitoringLinks:
    """The SLO queries, their Prometheus graph links and the bundle's Grafana dashboard link."""
    queries = slo_queries(model_name, namespace)
    # Printed to a person: without any credentials the configured URL carries.
    prom = {k: f"{redact(prometheus_url).rstrip('/')}/graph?g0.expr={quote(q)}&g0.tab=0" for k, q in queries.items()} \
        if prometheus_url else {}
    uid = f"servewise-{name}"[:40]  # the uid gitops/render.py gives the bundle's dashboard
    return MonitoringLinks(queries=queries, prometheus_links=prom, dashboard_uid=uid,
                           grafana_dashboard=f"{grafana_url.rstrip('/')}/d/{uid}" if grafana_url else None)


def served_model_name(isvc: dict | None, name: str) -> str:
    """vLLM's `model_name` metric label: the first `--served-model-name` in the InferenceService's model args,
    else the InferenceService name (what KServe's vLLM runtimes pass: `--served-model-name={{.Name}}`)."""
    args = (((isvc or {}).get("spec") or {}).get("predictor") or {}).get("model", {}).get("args") or []
    for i, arg in enumerate(args):
        if arg == "--served-model-name" and i + 1 < len(args):
            return str(args[i + 1])
        if str(arg).startswith("--served-model-name="):
            return str(arg).split("=", 1)[1]
    return name


def parse_deployment(ref: str, default_namespace: str) -> tuple[str, str]:
    """`name` or `namespace/name` -> (namespace, name)."""
    parts = ref.strip().split("/")
    if len(parts) == 1 and parts[0]:
        return default_namespace, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise BadInput(f"deployment {ref!r}: expected NAME or NAMESPACE/NAME")


def deployment_status(namespace: str, name: str, *, context: str | None = None, kubeconfig: Path | None = None,
                      argocd_namespace: str = ARGOCD_NAMESPACE, prometheus_url: str | None = None,
                      grafana_url: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> DeploymentStatus:
    """Follow one deployment: its Argo CD Application (sync, health) and KServe InferenceService (ready, URL).

    The Application is looked up as `<name>` in `argocd_namespace`, the name servewise renders.
    A missing object is reported as not found, not as an error.
    """
    from kubernetes import client

    cl = _connect(context, kubeconfig, namespace, timeout)
    with cl.api:
        custom = client.CustomObjectsApi(cl.api)
        app = cl.call(APPLICATIONS, custom.get_namespaced_custom_object, missing_ok=True,
                      group="argoproj.io", version="v1alpha1", namespace=argocd_namespace, plural="applications",
                      name=name)
        isvc = cl.call(ISVCS, custom.get_namespaced_custom_object, missing_ok=True,
                       group="serving.kserve.io", version="v1beta1", namespace=namespace,
                       plural="inferenceservices", name=name)
        deployments = cl.list(DEPLOYMENTS, client.AppsV1Api(cl.api).list_namespaced_deployment,
                              namespace=namespace, label_selector=f"serving.kserve.io/inferenceservice={name}") \
            if isvc is not None else []
    application = _application(app, argocd_namespace, name)
    service = _inference_service(isvc, deployments, namespace, name)
    return DeploymentStatus(
        context=cl.context, namespace=namespace, name=name, application=application, inference_service=service,
        serving=service.ready and application.sync_status == "Synced" and application.health_status == "Healthy",
        monitoring=monitoring_links(name, namespace, service.served_model_name, prometheus_url=prometheus_url,
                                    grafana_url=grafana_url),
        assumptions=[
            f"the Argo CD Application is named {name!r} in namespace {argocd_namespace!r} (as servewise renders it)",
            "the Prometheus label model_name is the InferenceService's --served-model-name, else its name",
            "ready replicas are summed over Deployments labelled serving.kserve.io/inferenceservice",
        ],
    )


def _application(obj: dict | None, namespace: str, name: str) -> ApplicationStatus:
    if obj is None:
        return ApplicationStatus(namespace=namespace, name=name, found=False)
    status = obj.get("status") or {}
    sync, op = status.get("sync") or {}, status.get("operationState") or {}
    return ApplicationStatus(namespace=namespace, name=name, found=True, sync_status=sync.get("status"),
                             health_status=(status.get("health") or {}).get("status"), revision=sync.get("revision"),
                             operation_phase=op.get("phase"), message=op.get("message"))


def _inference_service(obj: dict | None, deployments: list[dict], namespace: str, name: str) -> InferenceServiceStatus:
    if obj is None:
        return InferenceServiceStatus(namespace=namespace, name=name, found=False, served_model_name=name)
    status = obj.get("status") or {}
    conditions = [Condition(type=c.get("type", "?"), status=c.get("status", "Unknown"), reason=c.get("reason"),
                            message=c.get("message"), last_transition_time=c.get("lastTransitionTime"))
                  for c in status.get("conditions") or []]
    model = status.get("modelStatus") or {}
    failure = (model.get("lastFailureInfo") or {}).get("message")
    dstat = [d.get("status") or {} for d in deployments]
    return InferenceServiceStatus(
        namespace=namespace, name=name, found=True, url=status.get("url"),
        served_model_name=served_model_name(obj, name),
        ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
        deployment_mode=status.get("deploymentMode"), model_state=(model.get("states") or {}).get("activeModelState"),
        conditions=conditions, failure=failure,
        ready_replicas=sum(s.get("readyReplicas", 0) for s in dstat) if deployments else None,
        desired_replicas=sum((d.get("spec") or {}).get("replicas", 0) for d in deployments) if deployments else None,
    )
