"""Propose, roll back and tear down deployments as pull requests, idempotently.

One deterministic branch per deployment (`servewise/<namespace>/<name>`): running propose again for
the same deployment updates that branch and its open pull request instead of opening another.
"""

from __future__ import annotations

from pydantic import BaseModel

from gitops.bundle import Bundle
from gitops.forges.base import Forge, PullRequest
from gitops.markdown import md_text
from gitops.render import render_bundle
from planner.contracts import Plan
from planner.errors import BadInput

LABELS = ["servewise", "deploy"]


class ProposeResult(BaseModel):
    pr: PullRequest
    created: bool
    branch: str
    commit: str


def branch_name(namespace: str, name: str, action: str = "deploy") -> str:
    return f"servewise/{namespace}/{name}" if action == "deploy" else f"servewise/{action}/{namespace}/{name}"


def parse_deployment(deployment: str, default_namespace: str) -> tuple[str, str]:
    ns, _, name = deployment.rpartition("/")
    if not name:
        raise BadInput(f"deployment {deployment!r} must be NAME or NAMESPACE/NAME")
    return ns or default_namespace, name


def pr_body(bundle: Bundle, headline: str = "") -> str:
    plan = bundle.plan
    c = plan.candidates[plan.chosen]
    p, s = c.predicted, plan.spec.slos
    lines = [f"## {headline or 'Deploy'} {md_text(f'{bundle.namespace}/{bundle.name}', 'code')}", "",
             f"**{md_text(c.model)}** ({md_text(c.weight_dtype)}) on **{c.replicas} replica(s) of {c.tp}x "
             f"{md_text(c.gpu)}** (autoscaling {c.min_replicas}–{c.max_replicas} replicas), "
             f"**${c.monthly_cost_usd:,.0f}/month** at {md_text(plan.provider)} on-demand prices. "
             f"Plan {md_text(plan.id, 'code')}, knowledge base {md_text(plan.kb_version, 'code')}.", "",
             md_text(plan.rationale), "", "### SLO targets and predictions", "",
             "| metric | target | p50 | p90 | p95 | p99 |", "|---|---|---|---|---|---|"]
    for label, target, v in (("TTFT ms", s.ttft_p90_ms and f"p90 ≤ {s.ttft_p90_ms:g}", p.ttft_ms),
                             ("TPOT ms", s.tpot_p90_ms and f"p90 ≤ {s.tpot_p90_ms:g}", p.tpot_ms),
                             ("E2E ms", s.e2e_p95_ms and f"p95 ≤ {s.e2e_p95_ms:g}", p.e2e_ms)):
        lines.append(f"| {label} | {target or '—'} | {v.p50:,.1f} | {v.p90:,.1f} | {v.p95:,.1f} | {v.p99:,.1f} |")
    lines += ["", f"Throughput at peak: {p.output_tok_s:,.0f} output tok/s. Binding: {md_text(c.binding_constraint)}.",
              f"Calibration: {md_text(p.calibration)} (±{p.uncertainty_pct:g} %).", "", "### Assumptions", ""]
    lines += [f"- {md_text(a.field)} = {md_text(a.value)} — {md_text(a.source)}" for a in plan.spec.assumptions]
    lines += [f"- {md_text(a)}" for a in p.assumptions]
    others = [x for i, x in enumerate(plan.candidates) if i != plan.chosen]
    if others:
        lines += ["", "### Alternatives considered", "", "| model | GPUs | $/month | why it lost |", "|---|---|---|---|"]
        for x in others:
            why = (f"${x.monthly_cost_usd - c.monthly_cost_usd:,.0f}/month more" if x.monthly_cost_usd > c.monthly_cost_usd
                   else f"ranked lower under '{md_text(plan.spec.priority)}' (TPOT p90 {x.predicted.tpot_ms.p90:.1f} ms, "
                        f"quality {x.quality or '—'})")
            lines.append(f"| {md_text(x.model)} ({md_text(x.weight_dtype)}) | {x.gpus_total}x {md_text(x.gpu)} | "
                         f"{x.monthly_cost_usd:,.0f} | {why} |")
    lines += ["", "### Files", "", *[f"- {md_text(f'{bundle.repo_path}/{f}', 'code')}" for f in bundle.files], "",
              "### Roll back", "", f"{md_text(f'servewise rollback {bundle.namespace}/{bundle.name}', 'code')} opens a "
              "pull request restoring "
              "the previous plan; reverting this pull request's merge commit does the same by hand.",
              "", "<!-- servewise:propose -->"]
    return "\n".join(lines) + "\n"


def _open(forge: Forge, bundle: Bundle, branch: str, files: dict[str, str | None], title: str, body: str,
          message: str) -> ProposeResult:
    existing = forge.find_pr(branch)
    commit = forge.commit_files(branch, files, message)
    pr = forge.open_pr(branch, title, body, LABELS)
    return ProposeResult(pr=pr, created=existing is None, branch=branch, commit=commit)


def propose(bundle: Bundle, forge: Forge, *, base: str = "main") -> ProposeResult:
    """Commit the bundle under deployments/<ns>/<name>/ on the deployment's branch and open (or update) its PR."""
    files: dict[str, str | None] = {f"{bundle.repo_path}/{k}": v for k, v in bundle.files.items()}
    for stale in forge.list_files(bundle.repo_path, base):
        files.setdefault(stale, None)
    c = bundle.plan.candidates[bundle.plan.chosen]
    title = md_text(f"servewise: deploy {bundle.namespace}/{bundle.name} — {c.model.split('/')[-1]} on {c.gpus_total}x "
                    f"{c.gpu}", "title")
    return _open(forge, bundle, branch_name(bundle.namespace, bundle.name), files, title, pr_body(bundle),
                 f"Deploy {bundle.namespace}/{bundle.name} (plan {bundle.plan.id})")


def rollback(deployment: str, forge: Forge, *, default_namespace: str, gpu_labels: list[str] | None = None,
             repo_url: str | None = None) -> ProposeResult:
    """Open a pull request restoring the plan that main held before the current one."""
    ns, name = parse_deployment(deployment, default_namespace)
    path = f"deployments/{ns}/{name}/plan.json"
    versions = forge.file_versions(path)
    if len(versions) < 2:
        raise BadInput(f"{ns}/{name} has {'no' if not versions else 'only one'} plan on main; nothing to roll back to")
    previous = Plan.model_validate_json(forge.read_file(path, versions[1]) or "{}")
    bundle = render_bundle(previous, namespace=ns, name=name, gpu_labels=gpu_labels, repo_url=repo_url)
    files: dict[str, str | None] = {f"{bundle.repo_path}/{k}": v for k, v in bundle.files.items()}
    for stale in forge.list_files(bundle.repo_path):
        files.setdefault(stale, None)
    return _open(forge, bundle, branch_name(ns, name, "rollback"), files,
                 md_text(f"servewise: roll back {ns}/{name} to plan {previous.id}", "title"), pr_body(bundle, "Roll back"),
                 f"Roll back {ns}/{name} to plan {previous.id}")


def teardown(deployment: str, forge: Forge, *, default_namespace: str) -> ProposeResult:
    """Open a pull request removing deployments/<ns>/<name>/ (Argo CD prunes the objects on merge)."""
    ns, name = parse_deployment(deployment, default_namespace)
    prefix = f"deployments/{ns}/{name}"
    present = forge.list_files(prefix)
    if not present:
        raise BadInput(f"{ns}/{name} is not deployed (nothing under {prefix}/ on main)")
    branch = branch_name(ns, name, "teardown")
    existing = forge.find_pr(branch)
    commit = forge.commit_files(branch, {p: None for p in present}, f"Tear down {ns}/{name}")
    body = (f"## Tear down {md_text(f'{ns}/{name}', 'code')}\n\nRemoves {len(present)} files under "
            f"{md_text(prefix + '/', 'code')}; Argo CD prunes the deployment's objects when this merges.\n\n"
            "<!-- servewise:teardown -->\n")
    pr = forge.open_pr(branch, md_text(f"servewise: tear down {ns}/{name}", "title"), body, ["servewise", "teardown"])
    return ProposeResult(pr=pr, created=existing is None, branch=branch, commit=commit)
