"""`servewise render`: a Plan to a validated KServe + vLLM bundle on disk, written atomically."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.tree import Tree

from server.actions import valid_bundle
from server.context import app_context
from server.files import load_plan
from server.output import JSON_OPTION, console, run


def render_cmd(
    plan_file: Path = typer.Option(..., "--plan", help="Plan JSON from `servewise recommend --out`."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the bundle into (replaced atomically)."),
    namespace: str = typer.Option(None, help="Kubernetes namespace (default: the namespace setting)."),
    name: str = typer.Option(None, help="Deployment name, a DNS-1123 label (default: from the spec)."),
    k8s_version: str = typer.Option("1.31", "--k8s-version", help="Kubernetes version core kinds are validated for."),
    autoscaler: str = typer.Option("keda", help="keda (ScaledObject on vLLM queue metrics) or hpa."),
    monitor: str = typer.Option("podmonitor", help="podmonitor or servicemonitor (prometheus-operator)."),
    repo_url: str = typer.Option(None, "--repo-url", help="Git repository Argo CD syncs from (default: a placeholder)."),
    storage_uri: str = typer.Option(None, "--storage-uri",
                                    help="Where KServe gets the weights: hf://, s3://, gs:// (storage initializer), "
                                         "pvc:// (a claim holding them), oci:// (modelcar); default: a "
                                         "PersistentVolumeClaim caches the Hugging Face download across restarts."),
    storage_class: str = typer.Option(None, "--storage-class", help="StorageClass of that cache claim (default: the "
                                      "cluster's default; ReadWriteMany when the deployment scales out)."),
    pull_gb_s: float = typer.Option(0.5, "--pull-gb-s", help="Download bandwidth the startup probe budget assumes, GB/s."),
    target: str = typer.Option("isvc", "--target", help="isvc (InferenceService + ServingRuntime) or llmisvc "
                               "(LLMInferenceService, with a worker spec when a replica spans nodes)."),
    kserve_version: str = typer.Option("0.20", "--kserve-version", help="KServe release of the cluster (0.15-0.20)."),
    prometheus_url: str = typer.Option(None, "--prometheus-url",
                                       help="In-cluster Prometheus for KEDA and the report CronJob "
                                            "(default: http://prometheus-operated.monitoring.svc:9090)."),
    servewise_image: str = typer.Option(None, "--servewise-image",
                                        help="Image of the SLO-report CronJob (default: a pinned ghcr.io/servewise tag)."),
    cluster: bool = typer.Option(False, "--cluster", help="Pick the autoscaler and monitor kinds the cluster "
                                 "supports (keda if KEDA is installed, else hpa; podmonitor if prometheus-operator "
                                 "is, else servicemonitor), overriding --autoscaler/--monitor. Read-only."),
    context: str = typer.Option(None, "--context", help="kubeconfig context for --cluster (implies it)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Render KServe ServingRuntime + InferenceService (vLLM), autoscaling, monitoring, SLO alerts, a Grafana
    dashboard, an Argo CD Application and the SLO-report CronJob; validate every document against the real
    CRD schemas and the Kubernetes OpenAPI; write them atomically.

    Example:  servewise render --plan plan.json --out deploy/chatbot

    Example:  servewise render --plan plan.json --out deploy/chatbot --autoscaler hpa --monitor servicemonitor
    --repo-url https://github.com/acme/deployments.git --k8s-version 1.32
    """
    from gitops.bundle import write_bundle

    def action() -> dict:
        ctx = app_context()
        kinds = (autoscaler, monitor)
        if cluster or context:
            from gitops.cluster import read_inventory, render_choices

            kinds = render_choices(read_inventory(ctx.catalog, context=context or ctx.settings.kube_context,
                                                  namespace=namespace or ctx.settings.namespace))
        defaults_unless_given = {k: v for k, v in (("prometheus_url", prometheus_url),
                                                    ("servewise_image", servewise_image)) if v}
        bundle = valid_bundle(ctx, load_plan(plan_file, ctx.catalog), namespace=namespace, name=name, k8s_version=k8s_version,
                              autoscaler=kinds[0], monitor=kinds[1], repo_url=repo_url, storage_uri=storage_uri,
                              storage_class=storage_class, pull_gb_s=pull_gb_s, target=target,
                              kserve_version=kserve_version, **defaults_unless_given)
        paths = write_bundle(bundle, out)
        return {"out": str(out), "namespace": bundle.namespace, "name": bundle.name,
                "files": [str(p) for p in paths], "validated": f"CRD schemas + Kubernetes {k8s_version} (strict)",
                "autoscaler": kinds[0], "monitor": kinds[1]}

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
