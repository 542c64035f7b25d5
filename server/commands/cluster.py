"""`servewise cluster`, `servewise cluster rbac` and `servewise status`: read a cluster, never write to it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
import yaml

from gitops.cluster import (ARGOCD_NAMESPACE, DEFAULT_TIMEOUT_S, ClusterInventory, DeploymentStatus,
                            deployment_status, parse_deployment, rbac_manifest, read_inventory)
from server.context import app_context
from server.limits import bounded, dns_label, input_file
from server.output import JSON_OPTION, console, run, table

CONTEXT_OPTION = typer.Option(None, "--context", help="kubeconfig context (default: config kube_context, else the "
                                                      "kubeconfig's current context).")
_kubeconfig_size = input_file("kubeconfig file", 16 * 1024 * 1024)


def kubeconfig_file(value: Path | None) -> Path | None:
    """A kubeconfig: a bounded regular file holding a YAML mapping (the loader assumes one and fails obscurely)."""
    if _kubeconfig_size(value) is None:
        return None
    try:
        doc = yaml.safe_load(value.read_bytes())
    except (yaml.YAMLError, UnicodeError, RecursionError) as exc:
        raise typer.BadParameter(f"{value} is not valid YAML ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise typer.BadParameter(f"{value} is not a kubeconfig (expected a YAML mapping with clusters, users, contexts)")
    return value


KUBECONFIG_OPTION = typer.Option(None, "--kubeconfig", callback=kubeconfig_file, help="kubeconfig file (default: $KUBECONFIG, else "
                                                            "~/.kube/config; inside a pod, its service account).")
TIMEOUT_OPTION = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", callback=bounded("timeout"), help="seconds to wait for each API answer.")

cluster_app = typer.Typer()


@cluster_app.callback(invoke_without_command=True)
def cluster(
    ctx: typer.Context,
    context: str = CONTEXT_OPTION,
    kubeconfig: Path = KUBECONFIG_OPTION,
    namespace: str = typer.Option(None, "--namespace", "-n", callback=dns_label, help="deployment namespace whose GPU quota and "
                                                                  "limit ranges count (default: config namespace)."),
    timeout: float = TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """What the cluster offers a deployment: free GPUs per GPU type, namespace quota, installed components.

    Free GPUs: nvidia.com/gpu allocatable on Ready, uncordoned nodes minus what running pods request.
    The GPU type comes from the GPU operator's nvidia.com/gpu.product label, matched to the catalog.
    Only GET requests are made. A refused one names the missing permission; `servewise cluster rbac` prints the rules.

    Example:  servewise cluster --context prod-gpu -n llm-serving
    """
    if ctx.invoked_subcommand:
        return

    def action() -> ClusterInventory:
        app = app_context()
        return read_inventory(app.catalog, context=context or app.settings.kube_context, kubeconfig=kubeconfig,
                              namespace=namespace or app.settings.namespace, timeout=timeout)

    run(json_out, action, _show_inventory)


def _show_inventory(inv: ClusterInventory) -> None:
    i = inv.installed
    console.print(f"[bold]{inv.context}[/] ({inv.server}) · Kubernetes {inv.k8s_version} · namespace {inv.namespace}",
                  highlight=False)
    console.print(table(
        "GPU nodes by nvidia.com/gpu.product", ["product", "GPU", "nodes", "alloc", "used", "free", "max/node"],
        [(p.product or "(no label)", p.gpu or "not in catalog", p.nodes, p.allocatable, p.requested, p.free,
          p.max_free_on_one_node) for p in inv.gpus.pools],
        caption="no GPU nodes found" if not inv.gpus.pools else None,
    ))
    quota_rows = [(q.name, q.gpu_hard if q.gpu_hard is not None else "—", q.gpu_used if q.gpu_used is not None else "—",
                   ", ".join(f"{k}={v}" for k, v in sorted(q.hard.items()))) for q in inv.quotas]
    quota_rows += [(f"LimitRange {lr.name}", "", "", "; ".join(
        f"{item.type} max " + ", ".join(f"{k}={v}" for k, v in sorted(item.max.items())) for item in lr.limits))
        for lr in inv.limit_ranges]
    allowed = "no GPU quota" if inv.gpu_quota_remaining is None else f"{inv.gpu_quota_remaining} more GPUs"
    per_pod = f" · at most {inv.gpu_max_per_pod} GPUs per pod" if inv.gpu_max_per_pod is not None else ""
    if quota_rows:
        console.print(table(f"Quotas in {inv.namespace}", ["object", "GPU hard", "GPU used", "limits"], quota_rows,
                            caption=f"quota allows: {allowed}{per_pod}"))
    else:
        console.print(f"Quotas in {inv.namespace}: none (no ResourceQuota or LimitRange)", highlight=False)
    console.print(table("Installed", ["component", "installed"], [
        (name, "yes" if present else "no") for name, present in
        (("KServe", i.kserve), ("KEDA", i.keda), ("prometheus-operator", i.prometheus_operator), ("Argo CD", i.argocd))]))
    if inv.gpus.unknown_products:
        console.print(f"GPU products not in the catalog (not counted as free): {', '.join(inv.gpus.unknown_products)}",
                      highlight=False)
    if inv.monitor_labels:
        flags = " ".join(f"--monitor-label {k}={v}" for k, v in sorted(inv.monitor_labels.items()))
        console.print(f"monitor labels: {flags}  (from {inv.monitor_labels_source})", highlight=False)
    elif inv.monitor_labels == {}:
        console.print(f"monitor labels: none needed ({inv.monitor_labels_source} selects everything)", highlight=False)
    else:
        console.print(f"monitor labels: not suggested: {inv.monitor_labels_source}", highlight=False)
    for note in inv.assumptions:
        console.print(f"[dim]assumed: {note}[/]", highlight=False)


@cluster_app.command("rbac")
def rbac(
    namespace: str = typer.Option(None, "--namespace", "-n", callback=dns_label, help="deployment namespace (default: config namespace)."),
    argocd_namespace: str = typer.Option(ARGOCD_NAMESPACE, "--argocd-namespace", help="namespace of Argo CD's "
                                                                                      "Applications."),
    user: str = typer.Option(None, "--user", help="bind to this user (as your kubeconfig authenticates); "
                                                  "default: a `servewise` service account in the namespace."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Print the read-only RBAC manifest servewise needs (ClusterRole, Roles, bindings): get/list only.

    Example:  servewise cluster rbac -n llm-serving --user alice@example.com | kubectl apply -f -
    """

    def action() -> dict:
        ns = namespace or app_context().settings.namespace
        return {"namespace": ns, "manifest": rbac_manifest(ns, argocd_namespace=argocd_namespace, user=user)}

    run(json_out, action, lambda r: sys.stdout.write(r["manifest"]))


def status(
    deployment: str = typer.Argument(..., help="NAME or NAMESPACE/NAME of the deployment (the InferenceService)."),
    context: str = CONTEXT_OPTION,
    kubeconfig: Path = KUBECONFIG_OPTION,
    argocd_namespace: str = typer.Option(ARGOCD_NAMESPACE, "--argocd-namespace",
                                         help="namespace of Argo CD's Applications."),
    grafana: str = typer.Option(None, "--grafana", help="Grafana base URL, to print the dashboard link."),
    timeout: float = TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Follow a merged deployment: Argo CD sync and health, InferenceService readiness, replicas and URL.

    Also prints the PromQL (vLLM TTFT / TPOT p90) to watch it, Prometheus links and the bundle's Grafana dashboard.
    The Argo CD Application is assumed to be named like the deployment, as servewise renders it.

    Example:  servewise status llm-serving/support-chat --context prod-gpu
    """

    def action() -> DeploymentStatus:
        app = app_context()
        ns, name = parse_deployment(deployment, app.settings.namespace)
        return deployment_status(ns, name, context=context or app.settings.kube_context, kubeconfig=kubeconfig,
                                 argocd_namespace=argocd_namespace, prometheus_url=app.settings.prometheus,
                                 grafana_url=grafana, timeout=timeout)

    run(json_out, action, _show_status)


def _show_status(st: DeploymentStatus) -> None:
    a, s = st.application, st.inference_service
    verdict = "[green]serving[/]" if st.serving else "[yellow]not serving yet[/]"
    console.print(f"[bold]{st.namespace}/{st.name}[/] on {st.context}: {verdict}", highlight=False)
    console.print(table("Argo CD Application", ["application", "sync", "health", "revision", "last operation"], [
        (f"{a.namespace}/{a.name}", a.sync_status, a.health_status, a.revision,
         f"{a.operation_phase}: {a.message}" if a.operation_phase else "")
        if a.found else (f"{a.namespace}/{a.name}", "not found", "", "", "")]))
    console.print(table("InferenceService", ["name", "ready", "replicas ready/desired", "model", "URL"], [
        (s.name, s.ready, f"{s.ready_replicas}/{s.desired_replicas}" if s.ready_replicas is not None else "—",
         s.model_state, s.url) if s.found else (s.name, "not found", "", "", "")],
        caption=f"last failure: {s.failure}" if s.failure else None))
    if s.conditions:
        console.print(table("Conditions", ["type", "status", "reason", "message"],
                            [(c.type, c.status, c.reason, c.message) for c in s.conditions]))
    console.print(table("Monitoring (PromQL)", ["what", "query"], list(st.monitoring.queries.items())))
    for what, link in st.monitoring.prometheus_links.items():
        if what in ("ttft_p90_s", "tpot_p90_s"):
            console.print(f"Prometheus {what}: {link}", highlight=False, soft_wrap=True)
    if st.monitoring.grafana_dashboard:
        console.print(f"Grafana dashboard: {st.monitoring.grafana_dashboard}", highlight=False, soft_wrap=True)
    else:
        console.print(f"Grafana dashboard uid: {st.monitoring.dashboard_uid} (pass --grafana URL for a link)",
                      highlight=False)
    for note in st.assumptions:
        console.print(f"[dim]assumed: {note}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
    app.command("status")(status)
