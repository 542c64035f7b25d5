"""`servewise render`: a Plan to a validated KServe + vLLM bundle on disk, written atomically.

The options here are also `propose`'s: a pull request renders exactly what `render` would."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.tree import Tree

from gitops.validate import SUPPORTED_K8S
from server.actions import deployment_options, valid_bundle
from server.context import app_context
from server.files import load_plan
from server.limits import one_of
from server.output import JSON_OPTION, console, run

PLAN = typer.Option(..., "--plan", help="Plan JSON from `servewise recommend --out` (or a bundle's plan.json).")
NAMESPACE = typer.Option(None, help="Kubernetes namespace (default: the plan's deployment record, else the namespace setting).")
NAME = typer.Option(None, help="Deployment name, a DNS-1123 label (default: the plan's deployment record, else from the "
                               "spec's name).")
K8S = typer.Option(None, "--k8s-version", callback=one_of(*SUPPORTED_K8S), help="Kubernetes version core kinds are validated for (default 1.31).")
AUTOSCALER = typer.Option(None, help="keda (ScaledObject on vLLM queue metrics) or hpa (default keda).")
MONITOR = typer.Option(None, help="podmonitor or servicemonitor (prometheus-operator; default podmonitor).")
REPO_URL = typer.Option(None, "--repo-url", help="Git repository Argo CD syncs from, for the ApplicationSet (default: "
                                                 "derived from a GitHub/GitLab forge, else a placeholder).")
STORAGE = typer.Option(None, "--storage-uri", help="Where KServe gets the weights: hf://, s3://, gs:// (storage "
                                                   "initializer), pvc:// (a claim holding them), oci:// (modelcar); "
                                                   "default: a PersistentVolumeClaim caches the Hugging Face download "
                                                   "across restarts.")
STORAGE_CLASS = typer.Option(None, "--storage-class", help="StorageClass of that cache claim (default: the cluster's "
                                                           "default; ReadWriteMany when the deployment scales out).")
PULL_GB_S = typer.Option(None, "--pull-gb-s", help="Download bandwidth the startup probe budget and the autoscaler's "
                                                   "cold start assume, GB/s (default 0.5).")
TARGET = typer.Option(None, "--target", help="isvc (InferenceService + ServingRuntime; default) or llmisvc "
                                             "(LLMInferenceService, with a worker spec when a replica spans nodes).")
KSERVE = typer.Option(None, "--kserve-version", help="KServe release of the cluster (0.15-0.20; default 0.20).")
PROMETHEUS = typer.Option(None, "--prometheus-url", help="In-cluster Prometheus for KEDA and the report CronJob "
                                                         "(default: http://prometheus-operated.monitoring.svc:9090).")
IMAGE = typer.Option(None, "--servewise-image", help="Image of the SLO-report CronJob (default: the release "
                                                     "workflow's ghcr.io/servewise/servewise:<version>).")
MONITOR_LABEL = typer.Option(None, "--monitor-label", help="KEY=VALUE label (repeatable) on the PodMonitor/"
                             "ServiceMonitor/PrometheusRule, so the cluster's Prometheus selects them (kube-prometheus-"
                             "stack: release=<release>; `servewise cluster` suggests it). Default: the monitor_labels setting.")
CLUSTER = typer.Option(False, "--cluster", help="Pick the autoscaler and monitor kinds the cluster supports (keda if "
                       "KEDA is installed, else hpa; podmonitor if prometheus-operator is, else servicemonitor), "
                       "overriding --autoscaler/--monitor. Read-only.")
CONTEXT = typer.Option(None, "--context", help="kubeconfig context for --cluster (implies it).")


def render_cmd(
    plan_file: Path = PLAN,
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the bundle into (replaced atomically)."),
    namespace: str = NAMESPACE, name: str = NAME, k8s_version: str = K8S, autoscaler: str = AUTOSCALER,
    monitor: str = MONITOR, repo_url: str = REPO_URL, storage_uri: str = STORAGE, storage_class: str = STORAGE_CLASS,
    pull_gb_s: float = PULL_GB_S, target: str = TARGET, kserve_version: str = KSERVE, prometheus_url: str = PROMETHEUS,
    servewise_image: str = IMAGE, monitor_label: list[str] = MONITOR_LABEL, cluster: bool = CLUSTER,
    context: str = CONTEXT, json_out: bool = JSON_OPTION,
) -> None:
    """Render KServe ServingRuntime + InferenceService (vLLM), autoscaling, monitoring, SLO alerts, a Grafana
    dashboard and the SLO-report CronJob; validate every document against the real CRD schemas and the
    Kubernetes OpenAPI; write them atomically. plan.json records every option, so `propose`, `rollback` and a
    later render of that plan.json reproduce this deployment.

    Example:  servewise render --plan plan.json --out deploy/chatbot --monitor-label release=kube-prometheus-stack

    Example:  servewise render --plan plan.json --out deploy/chatbot --autoscaler hpa --monitor servicemonitor
    --k8s-version 1.32
    """
    from gitops.bundle import write_bundle

    def action() -> dict:
        ctx = app_context()
        plan = load_plan(plan_file, ctx.catalog)
        options = deployment_options(ctx, plan, namespace=namespace, name=name, k8s_version=k8s_version,
                                     autoscaler=autoscaler, monitor=monitor, repo_url=repo_url, storage_uri=storage_uri,
                                     storage_class=storage_class, pull_gb_s=pull_gb_s, target=target,
                                     kserve_version=kserve_version, prometheus_url=prometheus_url,
                                     servewise_image=servewise_image, monitor_label=monitor_label, cluster=cluster,
                                     context=context)
        bundle = valid_bundle(ctx, plan, **options)
        paths = write_bundle(bundle, out)
        r = bundle.plan.render
        return {"out": str(out), "namespace": bundle.namespace, "name": bundle.name,
                "files": [str(p) for p in paths], "validated": f"CRD schemas + Kubernetes {r.k8s_version} (strict)",
                "autoscaler": r.autoscaler, "monitor": r.monitor, "monitor_labels": r.monitor_labels}

    def human(r: dict) -> None:
        tree = Tree(f"[bold]{r['out']}[/]  ({r['namespace']}/{r['name']})")
        for f in r["files"]:
            tree.add(Path(f).name)
        console.print(tree)
        console.print(f"[green]✔[/] every document validated: {r['validated']}")
        console.print(f"next: servewise propose --plan {plan_file}")

    run(json_out, action, human)


def register(app: typer.Typer) -> None:
    app.command("render")(render_cmd)
