"""Propose, roll back and tear down deployments as pull requests, idempotently.

One deterministic branch per deployment (`servewise/<namespace>/<name>`): running propose again for
the same deployment updates that branch and its open pull request instead of opening another. A deployment
belongs to one service (the plan's spec name): proposing another service onto it is refused unless asked to
replace it. Every deployment's render options travel in its plan.json, so rollback renders the earlier plan
exactly as it was deployed. The repository's Argo CD ApplicationSet (gitops.bootstrap) arrives with the first
pull request, or on main when the repository is empty.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from pydantic import ValidationError

from gitops.bootstrap import APPSET_PATH, checked_bootstrap, repository_readme
from gitops.bundle import Bundle
from gitops.forges.base import Forge, PullRequest
from gitops.markdown import md_text
from gitops.render import render_bundle
from planner.contracts import Plan, RenderOptions
from planner.catalog import Catalog
from planner.plan_check import check_plan
from planner.errors import BadInput

LABELS = ["servewise", "deploy"]


class ProposeResult(BaseModel):
    pr: PullRequest | None = Field(description="None only when an empty repository's main was committed directly")
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


def _plan_at(forge: Forge, path: str, ref: str) -> Plan | None:
    text = forge.read_file(path, ref)
    try:
        return Plan.model_validate_json(text) if text else None
    except ValidationError:
        return None


def _check_service(bundle: Bundle, forge: Forge, base: str, replace: bool) -> None:
    """Refuse to put one service's plan onto another service's deployment (its open PR, or what runs on main)."""
    path = f"{bundle.repo_path}/plan.json"
    pr = forge.find_pr(branch_name(bundle.namespace, bundle.name))
    where, held = (f"its open pull request #{pr.number}", _plan_at(forge, path, pr.branch)) if pr else ("main", None)
    if held is None:
        where, held = "main", _plan_at(forge, path, base)
    mine = bundle.plan.spec.name
    if held is not None and held.spec.name != mine and not replace:
        raise BadInput(f"deployment {bundle.namespace}/{bundle.name} belongs to service '{held.spec.name}' ({where}, plan "
                       f"{held.id}); this plan is for service '{mine}' (plan {bundle.plan.id}). Give it a deployment of "
                       f"its own with --name, or pass --replace to replace '{held.spec.name}' with it",
                       details={"deployment": f"{bundle.namespace}/{bundle.name}", "existing_service": held.spec.name,
                                "proposed_service": mine, "where": where})


def ensure_base(forge: Forge, repo_url: str | None, base: str = "main") -> str | None:
    """An empty repository gets `base` with a README and the Argo CD bootstrap; returns that commit, if made."""
    if forge.has_branch(base):
        return None
    files: dict[str, str | None] = {"README.md": repository_readme(repo_url), **checked_bootstrap(repo_url)}
    return forge.commit_files(base, files, "Initialize the GitOps repository: README and Argo CD ApplicationSet", base)


def bootstrap_if_missing(forge: Forge, repo_url: str | None, base: str = "main") -> dict[str, str]:
    """The bootstrap files to add to a pull request when `base` does not hold the ApplicationSet yet."""
    return {} if forge.read_file(APPSET_PATH, base) is not None else checked_bootstrap(repo_url)


def gitops_init(forge: Forge, repo_url: str | None, *, base: str = "main") -> ProposeResult | None:
    """Propose the Argo CD bootstrap (ApplicationSet) as a pull request; on an empty repository, commit it to
    `base` directly (there is nothing to review it against). None when `base` already holds the same files."""
    initial = ensure_base(forge, repo_url, base)
    if initial is not None:
        return ProposeResult(pr=None, created=True, branch=base, commit=initial)
    files = {p: c for p, c in checked_bootstrap(repo_url).items() if forge.read_file(p, base) != c}
    if not files:
        return None
    branch = "servewise/bootstrap"
    existing = forge.find_pr(branch)
    commit = forge.commit_files(branch, files, "Argo CD ApplicationSet for servewise deployments")
    body = ("## Argo CD bootstrap\n\nAn ApplicationSet that creates one Application per `deployments/<namespace>/<name>/` "
            "directory on main and deletes it, pruning its objects, when a pull request removes the directory. Apply "
            "once after merging: `kubectl apply -n argocd -k bootstrap/`.\n\n<!-- servewise:bootstrap -->\n")
    pr = forge.open_pr(branch, "servewise: Argo CD ApplicationSet for deployments", body, ["servewise", "bootstrap"])
    return ProposeResult(pr=pr, created=existing is None, branch=branch, commit=commit)


def propose(bundle: Bundle, forge: Forge, *, base: str = "main", replace: bool = False) -> ProposeResult:
    """Commit the bundle under deployments/<ns>/<name>/ on the deployment's branch and open (or update) its PR.
    Refused (BadInput) when the deployment belongs to another service, unless `replace`."""
    repo_url = bundle.plan.render.repo_url if bundle.plan.render else None
    ensure_base(forge, repo_url, base)
    _check_service(bundle, forge, base, replace)
    files: dict[str, str | None] = {f"{bundle.repo_path}/{k}": v for k, v in bundle.files.items()}
    for stale in forge.list_files(bundle.repo_path, base):
        files.setdefault(stale, None)
    files.update(bootstrap_if_missing(forge, repo_url, base))
    c = bundle.plan.candidates[bundle.plan.chosen]
    title = md_text(f"servewise: deploy {bundle.namespace}/{bundle.name} — {c.model.split('/')[-1]} on {c.gpus_total}x "
                    f"{c.gpu}", "title")
    return _open(forge, bundle, branch_name(bundle.namespace, bundle.name), files, title, pr_body(bundle),
                 f"Deploy {bundle.namespace}/{bundle.name} (plan {bundle.plan.id})")


def latest_merged_pr(forge: Forge, deployment: str, default_namespace: str) -> PullRequest:
    """The deployment's most recently merged deploy or rollback pull request: what runs now."""
    ns, name = parse_deployment(deployment, default_namespace)
    branches = {branch_name(ns, name), branch_name(ns, name, "rollback")}
    merged = [p for p in forge.list_prs("merged") if p.branch in branches]
    if not merged:
        raise BadInput(f"{ns}/{name} has no merged servewise pull request to report on")
    return max(merged, key=lambda p: p.number)


def render_options(plan: Plan, fallback: RenderOptions | None = None) -> dict:
    """render_bundle's keyword arguments as the plan was deployed (its own record, else `fallback`'s)."""
    record = plan.render or fallback
    return record.model_dump() if record else {}


def rollback(deployment: str, forge: Forge, *, default_namespace: str, catalog: Catalog,
             gpu_labels: list[str] | None = None, repo_url: str | None = None) -> ProposeResult:
    """Open a pull request restoring the plan that main held before the current one, rendered with the options it
    was deployed with (a plan from before servewise recorded them gets those of the current deployment)."""
    ns, name = parse_deployment(deployment, default_namespace)
    path = f"deployments/{ns}/{name}/plan.json"
    versions = forge.file_versions(path)
    if len(versions) < 2:
        raise BadInput(f"{ns}/{name} has {'no' if not versions else 'only one'} plan on main; nothing to roll back to")
    try:
        previous = Plan.model_validate_json(forge.read_file(path, versions[1]) or "{}")
    except ValidationError:
        raise BadInput(f"the previous {path} (commit {versions[1][:10]}) is not a servewise plan; roll back by "
                       "reverting its pull request instead") from None
    # a plan on main was checked when proposed, but main can be edited by hand: it is re-checked like any plan.json
    previous = check_plan(previous, catalog)
    current = _plan_at(forge, path, "main")
    options = {**render_options(previous, current.render if current else None), "namespace": ns, "name": name}
    if gpu_labels and not options.get("gpu_labels"):
        options["gpu_labels"] = gpu_labels
    if repo_url and not options.get("repo_url"):
        options["repo_url"] = repo_url
    bundle = render_bundle(previous, **options)
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
    deployed = _plan_at(forge, f"{prefix}/plan.json", "main")
    repo_url = deployed.render.repo_url if deployed and deployed.render else None
    # Without the ApplicationSet nothing would delete the Application, so it comes along if main lacks it.
    files: dict[str, str | None] = {p: None for p in present} | bootstrap_if_missing(forge, repo_url)
    commit = forge.commit_files(branch, files, f"Tear down {ns}/{name}")
    body = (f"## Tear down {md_text(f'{ns}/{name}', 'code')}\n\nRemoves {len(present)} files under "
            f"{md_text(prefix + '/', 'code')}. When this merges, Argo CD's "
            f"ApplicationSet (`{APPSET_PATH}`) no longer generates the Application for this directory and deletes it; "
            "its resources finalizer makes Argo CD prune every object the deployment synced first. The namespace "
            "stays.\n\n<!-- servewise:teardown -->\n")
    pr = forge.open_pr(branch, md_text(f"servewise: tear down {ns}/{name}", "title"), body, ["servewise", "teardown"])
    return ProposeResult(pr=pr, created=existing is None, branch=branch, commit=commit)
