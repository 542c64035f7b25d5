"""What both front doors do the same way: load facts from the kb, call the planner or gitops, save results.

The CLI commands and the MCP tools are thin wrappers over these, so both doors give the same answers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gitops.bundle import Bundle
from gitops.validate import ValidationIssue
from planner.contracts import DeploymentSpec, Plan, Prediction, PredictQuery
from planner.errors import BadInput
from server.context import AppContext


def predict_query(ctx: AppContext, query: PredictQuery) -> Prediction:
    """Resolve names, look up the fitted parameters and any learned correction, predict."""
    from kb.latency import load_latency_params
    from planner.latency import predict

    model, gpu = ctx.catalog.model(query.model), ctx.catalog.gpu(query.gpu)
    return predict(query, model, gpu, load_latency_params(), ctx.correction(model.hf_id, gpu.name, query.tp))


def make_plan(ctx: AppContext, spec: DeploymentSpec, top: int = 5, gpu_budget: dict[str, int] | None = None) -> Plan:
    """Recommend for a spec with the kb's facts, fit and learned corrections; save the plan in the kb."""
    from kb.latency import load_latency_params
    from kb.plans import save_plan
    from planner import __version__
    from planner.recommend import recommend

    plan = recommend(spec, ctx.catalog, load_latency_params(), provider=ctx.settings.provider, top=top,
                     gpu_budget=gpu_budget, corrections=ctx.corrections, servewise_version=__version__,
                     created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    save_plan(ctx.kb, plan)
    return plan


def render_plan(ctx: AppContext, plan: Plan, **options) -> tuple[Bundle, list[ValidationIssue]]:
    """Render and validate a plan's chosen candidate; returns (bundle, issues)."""
    from gitops.outbound import outbound_url, redact
    from gitops.render import render_bundle
    from gitops.validate import SUPPORTED_K8S, validate_bundle

    if options.get("prometheus_url"):
        url = outbound_url(options["prometheus_url"], "the bundle's Prometheus URL")
        if redact(url) != url:
            raise BadInput("the bundle's Prometheus URL carries credentials (user:password@); a bundle is committed to "
                           "git, so give KEDA and the report job Prometheus credentials through a Secret instead")
    k8s = options.pop("k8s_version", "1.31")
    if k8s not in SUPPORTED_K8S:
        raise BadInput(f"k8s version {k8s} is not supported; choose one of {', '.join(SUPPORTED_K8S)}")
    if plan.chosen is not None:
        gpu = ctx.catalog.gpu(plan.candidates[plan.chosen].gpu)
        options.setdefault("gpu_labels", gpu.k8s_product_labels)
        options.setdefault("gpu_vendor", gpu.vendor)
        model = ctx.catalog.model(plan.candidates[plan.chosen].model)
        options.setdefault("gated", model.gated.value if model.gated else None)
    options["namespace"] = options.get("namespace") or ctx.settings.namespace
    bundle = render_bundle(plan, k8s_version=k8s, **options)
    return bundle, validate_bundle(bundle, k8s)


def deployment_options(ctx: AppContext, plan: Plan, *, namespace: str | None = None, name: str | None = None,
                       k8s_version: str | None = None, autoscaler: str | None = None, monitor: str | None = None,
                       repo_url: str | None = None, storage_uri: str | None = None, storage_class: str | None = None,
                       pull_gb_s: float | None = None, target: str | None = None, kserve_version: str | None = None,
                       prometheus_url: str | None = None, servewise_image: str | None = None,
                       monitor_label: list[str] | None = None,
                       cluster: bool = False, context: str | None = None, forge: str | None = None,
                       forge_repo: str | None = None, forge_url: str | None = None) -> dict:
    """render_bundle's options: what was given, else the plan's deployment record (a bundle's plan.json says how
    it was deployed), else the settings and defaults."""
    from gitops.bootstrap import clone_url
    from gitops.render import check_labels

    s = ctx.settings
    record = {k: v for k, v in (plan.render.model_dump() if plan.render else {}).items() if v not in (None, [], {})}
    given = {k: v for k, v in dict(namespace=namespace, name=name, k8s_version=k8s_version, autoscaler=autoscaler,
                                   monitor=monitor, repo_url=repo_url, storage_uri=storage_uri,
                                   storage_class=storage_class, pull_gb_s=pull_gb_s, target=target,
                                   kserve_version=kserve_version, prometheus_url=prometheus_url,
                                   servewise_image=servewise_image).items() if v}
    if monitor_label:
        given["monitor_labels"] = check_labels(monitor_label)
    if cluster or context:
        from gitops.cluster import read_inventory, render_choices

        inventory = read_inventory(ctx.catalog, context=context or s.kube_context,
                                   namespace=namespace or record.get("namespace") or s.namespace)
        given["autoscaler"], given["monitor"] = render_choices(inventory)
        if not monitor_label and inventory.monitor_labels:
            given["monitor_labels"] = inventory.monitor_labels
    kind = forge or s.forge
    if kind in ("github", "gitlab"):  # where the report CronJob finds the pull requests; a local path means nothing there
        given.update({k: v for k, v in (("forge", kind), ("forge_repo", forge_repo or s.repo),
                                        ("forge_url", forge_url or s.forge_url)) if v})
    options = {**record, **given}
    options.setdefault("namespace", s.namespace)
    options.setdefault("monitor_labels", s.monitor_labels)
    if "repo_url" not in options and (url := clone_url(options.get("forge"), options.get("forge_repo"),
                                                       options.get("forge_url"))):
        options["repo_url"] = url
    return options


def valid_bundle(ctx: AppContext, plan: Plan, **options) -> Bundle:
    bundle, issues = render_plan(ctx, plan, **options)
    if issues:
        raise BadInput(f"the rendered bundle failed validation ({len(issues)} issue(s)); nothing was written: "
                       + "; ".join(map(str, issues[:5])), details={"issues": [i.model_dump() for i in issues]})
    return bundle


def workspace_dir(ctx: AppContext, bundle: Bundle) -> Path:
    """Where a bundle written on a client's behalf goes: <workspace>/<namespace>/<name>, names derived (DNS-1123
    labels), never a path a client chose, so no call reaches outside the workspace."""
    root = ctx.settings.workspace
    if root is None:
        raise BadInput("this server writes no files: set the workspace setting (SERVEWISE_WORKSPACE) to a directory "
                       "for rendered bundles")
    root = root.expanduser().resolve()
    target = (root / bundle.namespace / bundle.name).resolve()
    if not target.is_relative_to(root) or target == root:
        raise BadInput(f"bundle {bundle.namespace}/{bundle.name} would leave the workspace {root}")
    return target


def plan_from(ctx: AppContext, plan_file: Path | None = None, plan_id: str | None = None) -> Plan:
    from kb.plans import get_plan
    from planner.plan_check import check_plan
    from server.files import load_plan

    if plan_file:
        return load_plan(plan_file, ctx.catalog)
    if plan_id:
        return check_plan(get_plan(ctx.kb, plan_id), ctx.catalog)
    raise BadInput("give a plan: a plan file (--plan) or a plan id from `recommend`")


def slo_report(ctx: AppContext, plan: Plan, *, deployment: str, prometheus_url: str | None = None, window: str = "1h",
               forge=None, pr_number: int | None = None):
    """Observe, compare, store outcomes (complete data only) and history, and upsert the sticky PR comment.
    Prometheus unreachable gives a report that says so (and the caller's exit code 4), never an outcome."""
    from gitops.prometheus import Prometheus, observe, parse_window
    from gitops.report import MARKER, build_report, comment_body
    from kb.latency import load_latency_params
    from kb.outcomes import report_history, store_report
    from planner.errors import Unreachable

    if plan.chosen is None:
        raise BadInput(f"plan {plan.id} has no chosen candidate; nothing was deployed to report on")
    window_s = parse_window(window)
    c = plan.candidates[plan.chosen]
    ns = deployment.split("/")[0] if "/" in deployment else None
    # a rendered deployment serves under --served-model-name namespace/name (gitops.render.served_model_name)
    model_name = deployment if ns else c.model
    observed, unreachable = None, None
    try:
        prom = Prometheus(prometheus_url or ctx.settings.prometheus, ctx.settings.prometheus_token_env,
                          token_url=ctx.settings.prometheus)
        observed = observe(prom, model_name, ns, window)
    except Unreachable as exc:
        unreachable = exc.message
    report = build_report(plan, observed, ctx.catalog, load_latency_params(), deployment=deployment,
                          correction=ctx.correction(c.model, c.gpu, c.tp), unreachable=unreachable,
                          window_s=window_s)
    report.history = report_history(ctx.kb, deployment)
    store_report(ctx.kb, deployment, pr_number, report.created_at, report.verdict,
                 report.model_dump(mode="json", exclude={"history"}), report.outcomes)
    if forge is not None and pr_number is not None:
        from gitops.outcome_sync import sticky_comment

        forge.upsert_comment(pr_number, MARKER, sticky_comment(forge, pr_number, MARKER, comment_body(report),
                                                               report.outcomes))
    return report
