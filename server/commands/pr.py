"""`servewise propose`, `pr list|show|merge|close`, `rollback`, `teardown`: deployments as pull requests."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import typer

from planner.errors import BadInput
from server.actions import valid_bundle
from server.files import load_plan
from server.context import app_context
from server.limits import bounded, one_of
from server.output import JSON_OPTION, console, run, table

FORGE = typer.Option(None, "--forge", callback=one_of("local", "github", "gitlab"), help="local (default: a bare git repo), github or gitlab.")
REPO = typer.Option(None, "--repo", help="owner/name on GitHub, group/project on GitLab.")
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
    return {"number": r.pr.number, "url": r.pr.url, "branch": r.branch, "commit": r.commit, "created": r.created,
            "state": r.pr.state, "title": r.pr.title}


def _say(r: dict) -> None:
    verb = "opened" if r["created"] else "updated"
    console.print(f"[green]✔[/] {verb} pull request #{r['number']}: {r['title']}\n  {r['url']}  (branch {r['branch']}, "
                  f"commit {r['commit'][:10]})")
    console.print(f"next: servewise pr show {r['number']}   ·   servewise pr merge {r['number']}")


def propose_cmd(plan_file: Path = typer.Option(..., "--plan", help="Plan JSON from `servewise recommend --out`."),
                namespace: str = typer.Option(None, help="Kubernetes namespace (default: the namespace setting)."),
                name: str = typer.Option(None, help="Deployment name (default: from the spec)."),
                forge: str = FORGE, repo: str = REPO, forge_url: str = URL,
                repo_url: str = typer.Option(None, "--repo-url", help="Clone URL Argo CD syncs from (for application.yaml)."),
                autoscaler: str = typer.Option("keda", help="keda or hpa."),
                json_out: bool = JSON_OPTION) -> None:
    """Render the plan, validate it, commit it under deployments/<namespace>/<name>/ and open a pull request.
    Running it again for the same deployment updates the same branch and pull request.

    Example:  servewise propose --plan plan.json
    """
    from gitops.propose import propose

    def action() -> dict:
        ctx = app_context()
        bundle = valid_bundle(ctx, load_plan(plan_file, ctx.catalog), namespace=namespace, name=name, autoscaler=autoscaler,
                              repo_url=repo_url)
        return _result(propose(bundle, ctx.forge(forge, repo, forge_url)))

    run(json_out, action, _say)


def rollback_cmd(deployment: str = DEPLOYMENT, forge: str = FORGE,
                 repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Open a pull request restoring the deployment's previous plan (from the history of main).

    Example:  servewise rollback llm-serving/chatbot
    """
    from gitops.propose import rollback

    def action() -> dict:
        ctx = app_context()
        f = ctx.forge(forge, repo, forge_url)
        return _result(rollback(deployment, f, default_namespace=ctx.settings.namespace))

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
    """Pull requests servewise opened on the forge."""
    def action():
        if state not in (None, "open", "merged", "closed"):
            raise BadInput("--state must be open, merged or closed")
        return app_context().forge(forge, repo, forge_url).list_prs(state)

    run(json_out, action, lambda prs: console.print(table("Pull requests", ["#", "state", "branch", "title"],
                                                         [(p.number, p.state, p.branch, p.title) for p in prs])))


@pr_app.command("show")
def pr_show(number: int = PR_NUMBER, forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """One pull request with its body."""
    def human(p) -> None:
        console.print(f"[bold]#{p.number} {p.title}[/]  ({p.state}, branch {p.branch})\n{p.url}\n")
        console.print(p.body, markup=False, highlight=False)

    run(json_out, lambda: app_context().forge(forge, repo, forge_url).get_pr(number), human)


@pr_app.command("merge")
def pr_merge(number: int = PR_NUMBER, forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Merge a pull request into main (Argo CD syncs from there)."""
    run(json_out, lambda: app_context().forge(forge, repo, forge_url).merge_pr(number),
        lambda p: console.print(f"[green]✔[/] merged #{p.number} into main ({p.head_sha[:10]})"))


@pr_app.command("close")
def pr_close(number: int = PR_NUMBER, forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Close a pull request without merging."""
    run(json_out, lambda: app_context().forge(forge, repo, forge_url).close_pr(number),
        lambda p: console.print(f"closed #{p.number}"))


def register(app: typer.Typer) -> None:
    app.command("propose")(propose_cmd)
    app.add_typer(pr_app, name="pr")
    app.command("rollback")(rollback_cmd)
    app.command("teardown")(teardown_cmd)
