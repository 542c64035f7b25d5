"""`servewise propose`, `pr list|show|merge|close`, `rollback`, `teardown`: deployments as pull requests."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import typer

from planner.errors import BadInput
from server.actions import deployment_options, valid_bundle
from server.commands import render as R
from server.files import load_plan
from server.context import app_context
from server.limits import bounded, one_of
from server.output import JSON_OPTION, console, run, table

FORGE = typer.Option(None, "--forge", callback=one_of("local", "github", "gitlab"), help="local (default: a bare git repo), github or gitlab.")
REPO = typer.Option(None, "--repo", help="owner/name on GitHub, group/project on GitLab, the bare repository's path "
                                         "for the local forge (wins over the settings).")
def url_arg(value: str | None) -> str | None:
    """An http(s) URL with a host, or a usage error (before any forge client sees it)."""
    if value is None:
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise typer.BadParameter("must be an http:// or https:// URL with a host, e.g. https://github.example.com/api/v3")
    return value


URL = typer.Option(None, "--forge-url", callback=url_arg, help="GitHub Enterprise API URL or self-hosted GitLab URL.")
PR_NUMBER = typer.Argument(..., callback=bounded("pr_number"), help="Pull request number (see `servewise pr list`).")

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def deployment_arg(value: str) -> str:
    """NAME or NAMESPACE/NAME, each a Kubernetes DNS-1123 label (so it can name nothing outside deployments/)."""
    parts = value.split("/")
    if len(parts) > 2 or not all(_LABEL.match(p) for p in parts):
        raise typer.BadParameter(f"{value!r} is not NAME or NAMESPACE/NAME (lowercase letters, digits and '-', "
                                 "at most 63 each, as Kubernetes names them)")
    return value


DEPLOYMENT = typer.Argument(..., callback=deployment_arg, help="NAME or NAMESPACE/NAME.")

pr_app = typer.Typer(help="List, show, merge or close servewise pull requests.", no_args_is_help=True)


def _result(r) -> dict:
    if r.pr is None:  # an empty repository's main, committed directly
        return {"number": None, "url": None, "branch": r.branch, "commit": r.commit, "created": True,
                "state": "committed", "title": f"initialized {r.branch} with a README and the Argo CD bootstrap"}
    return {"number": r.pr.number, "url": r.pr.url, "branch": r.branch, "commit": r.commit, "created": r.created,
            "state": r.pr.state, "title": r.pr.title}


def _say(r: dict) -> None:
    if r["number"] is None:
        console.print(f"[green]✔[/] {r['title']} (commit {r['commit'][:10]})")
        return
    verb = "opened" if r["created"] else "updated"
    console.print(f"[green]✔[/] {verb} pull request #{r['number']}: {r['title']}\n  {r['url']}  (branch {r['branch']}, "
                  f"commit {r['commit'][:10]})")
    console.print(f"next: servewise pr show {r['number']}   ·   servewise pr merge {r['number']}")


def propose_cmd(plan_file: Path = R.PLAN,
                namespace: str = R.NAMESPACE, name: str = R.NAME, forge: str = FORGE, repo: str = REPO,
                forge_url: str = URL, k8s_version: str = R.K8S, autoscaler: str = R.AUTOSCALER,
                monitor: str = R.MONITOR, repo_url: str = R.REPO_URL, storage_uri: str = R.STORAGE,
                storage_class: str = R.STORAGE_CLASS, pull_gb_s: float = R.PULL_GB_S, target: str = R.TARGET,
                kserve_version: str = R.KSERVE, prometheus_url: str = R.PROMETHEUS, servewise_image: str = R.IMAGE,
                monitor_label: list[str] = R.MONITOR_LABEL, cluster: bool = R.CLUSTER, context: str = R.CONTEXT,
                replace: bool = typer.Option(False, "--replace", help="Replace the service a deployment of the same "
                                             "name already carries (otherwise refused, exit 2)."),
                json_out: bool = JSON_OPTION) -> None:
    """Render the plan with every option `render` takes, validate it, commit it under deployments/<namespace>/<name>/
    and open a pull request. Running it again for the same service updates the same branch and pull request; a
    different service whose name collides is refused (exit 2, naming both) unless --replace. The first pull request
    to a repository carries Argo CD's ApplicationSet (an empty repository gets main with it first).

    Example:  servewise propose --plan plan.json --monitor-label release=kube-prometheus-stack

    Example:  servewise propose --plan plan.json --forge local --repo ~/gitops.git
    """
    from gitops.propose import propose

    def action() -> dict:
        ctx = app_context()
        plan = load_plan(plan_file, ctx.catalog)
        f = ctx.forge(forge, repo, forge_url)
        options = deployment_options(ctx, plan, namespace=namespace, name=name, k8s_version=k8s_version,
                                       autoscaler=autoscaler, monitor=monitor, repo_url=repo_url, storage_uri=storage_uri,
                                       storage_class=storage_class, pull_gb_s=pull_gb_s, target=target,
                                       kserve_version=kserve_version, prometheus_url=prometheus_url,
                                       servewise_image=servewise_image,
                                       monitor_label=monitor_label, cluster=cluster, context=context, forge=forge,
                                       forge_repo=repo, forge_url=forge_url)
        return _result(propose(valid_bundle(ctx, plan, **options), f, replace=replace))

    run(json_out, action, _say)


def gitops_init_cmd(forge: str = FORGE, repo: str = REPO, forge_url: str = URL, repo_url: str = R.REPO_URL,
                    json_out: bool = JSON_OPTION) -> None:
    """Propose the Argo CD bootstrap: an ApplicationSet whose git directory generator makes one Application per
    deployments/<namespace>/<name>/ on main and deletes it (pruning its objects) when the directory is removed.
    An empty repository gets main with a README and the bootstrap directly. Apply it once per cluster after merging:
    kubectl apply -n argocd -k bootstrap/

    Example:  servewise gitops init --forge github --repo acme/deployments
    """
    from gitops.bootstrap import clone_url
    from gitops.propose import gitops_init

    def action() -> dict:
        ctx = app_context()
        s = ctx.settings
        f = ctx.forge(forge, repo, forge_url)
        url = repo_url or clone_url(forge or s.forge, repo or s.repo, forge_url or s.forge_url)
        r = gitops_init(f, url)
        if r is None:
            return {"number": None, "url": None, "branch": "main", "commit": "", "created": False, "state": "present",
                    "title": "main already holds the Argo CD bootstrap; nothing to propose"}
        return _result(r)

    def human(r: dict) -> None:
        if r["state"] == "present":
            console.print(r["title"])
        else:
            _say(r)

    run(json_out, action, human)


def rollback_cmd(deployment: str = DEPLOYMENT, forge: str = FORGE,
                 repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Open a pull request restoring the deployment's previous plan (from the history of main).

    Example:  servewise rollback llm-serving/chatbot
    """
    from gitops.propose import rollback

    def action() -> dict:
        ctx = app_context()
        f = ctx.forge(forge, repo, forge_url)
        return _result(rollback(deployment, f, default_namespace=ctx.settings.namespace, catalog=ctx.catalog))

    run(json_out, action, _say)


def teardown_cmd(deployment: str = DEPLOYMENT,
                 yes: bool = typer.Option(False, "--yes", help="Confirm: open a pull request deleting the deployment."),
                 forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Open a pull request removing the deployment (Argo CD prunes it on merge). Requires --yes.

    Example:  servewise teardown llm-serving/chatbot --yes
    """
    from gitops.propose import teardown

    def action() -> dict:
        if not yes:
            raise BadInput(f"teardown removes {deployment} from the cluster once merged; add --yes to open that pull request")
        ctx = app_context()
        return _result(teardown(deployment, ctx.forge(forge, repo, forge_url), default_namespace=ctx.settings.namespace))

    run(json_out, action, _say)


@pr_app.command("list")
def pr_list(state: str = typer.Option(None, help="open, merged or closed."), forge: str = FORGE, repo: str = REPO,
            forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Pull requests servewise opened on the forge.

    Example:  servewise pr list --state open
    """
    def action():
        if state not in (None, "open", "merged", "closed"):
            raise BadInput("--state must be open, merged or closed")
        return app_context().forge(forge, repo, forge_url).list_prs(state)

    run(json_out, action, lambda prs: console.print(table("Pull requests", ["#", "state", "branch", "title"],
                                                         [(p.number, p.state, p.branch, p.title) for p in prs])))


@pr_app.command("show")
def pr_show(number: int = PR_NUMBER, forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """One pull request with its body.

    Example:  servewise pr show 1
    """
    def human(p) -> None:
        console.print(f"[bold]#{p.number} {p.title}[/]  ({p.state}, branch {p.branch})\n{p.url}\n")
        console.print(p.body, markup=False, highlight=False)

    run(json_out, lambda: app_context().forge(forge, repo, forge_url).get_pr(number), human)


@pr_app.command("merge")
def pr_merge(number: int = PR_NUMBER, forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Merge a pull request into main (Argo CD syncs from there).

    Example:  servewise pr merge 1
    """
    run(json_out, lambda: app_context().forge(forge, repo, forge_url).merge_pr(number),
        lambda p: console.print(f"[green]✔[/] merged #{p.number} into main ({p.head_sha[:10]})"))


@pr_app.command("close")
def pr_close(number: int = PR_NUMBER, forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Close a pull request without merging.

    Example:  servewise pr close 2
    """
    run(json_out, lambda: app_context().forge(forge, repo, forge_url).close_pr(number),
        lambda p: console.print(f"closed #{p.number}"))


gitops_app = typer.Typer(help="The GitOps repository's Argo CD bootstrap.", no_args_is_help=True)
gitops_app.command("init")(gitops_init_cmd)


def register(app: typer.Typer) -> None:
    app.command("propose")(propose_cmd)
    app.add_typer(gitops_app, name="gitops")
    app.add_typer(pr_app, name="pr")
    app.command("rollback")(rollback_cmd)
    app.command("teardown")(teardown_cmd)
