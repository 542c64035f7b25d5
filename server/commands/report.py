"""`servewise report`: observed SLOs from Prometheus beside the plan's predictions, on the pull request."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from planner.contracts import Plan
from planner.errors import BadInput, Unreachable
from planner.plan_check import check_plan
from server.actions import slo_report
from server.commands.pr import FORGE, REPO, URL
from server.context import app_context
from server.files import load_plan
from server.output import JSON_OPTION, console, run, validation_message


def _plan_of_pr(forge, pr, catalog) -> tuple[Plan, str]:
    ref = pr.branch if pr.state == "open" else "main"
    parts = pr.branch.split("/")
    deployment = "/".join(parts[-2:])
    text = forge.read_file(f"deployments/{deployment}/plan.json", ref) or forge.read_file(
        f"deployments/{deployment}/plan.json", pr.head_sha or ref)
    if not text:
        raise BadInput(f"pull request #{pr.number} carries no deployments/{deployment}/plan.json")
    try:
        plan = Plan.model_validate_json(text)
    except ValidationError as exc:
        raise BadInput(f"pull request #{pr.number}'s plan.json is not a servewise plan: {validation_message(exc)}") from None
    return check_plan(plan, catalog), deployment


def report_cmd(
    pr: int = typer.Option(None, "--pr", help="Report on this pull request's deployment and post/update its sticky comment."),
    plan_file: Path = typer.Option(None, "--plan", help="Report on the deployment of this plan.json and print it (no comment)."),
    all_: bool = typer.Option(False, "--all", help="Every open or merged servewise deployment pull request."),
    deployment: str = typer.Option(None, help="NAMESPACE/NAME: alone, report on what runs (the plan on main) and post on "
                                              "the deployment's latest merged pull request; with --plan, the "
                                              "deployment that plan describes (default: from the settings and spec)."),
    prometheus: str = typer.Option(None, "--prometheus", help="Prometheus base URL (default: the prometheus setting)."),
    window: str = typer.Option("1h", help="Window to observe: 30m, 1h, 1d…"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Observe TTFT, TPOT and E2E percentiles (from vLLM's histograms), traffic, tokens/s, queue time, KV-cache
    use and preemptions in Prometheus; compare them with what the plan predicted; give a verdict (meets, at risk,
    violated) and right-sizing advice with its predicted effect. With --pr, the report becomes one sticky comment
    on the pull request, updated in place on every run; each complete report stores outcomes that correct the
    next predictions (see `servewise kb outcomes`).

    Examples:
      servewise report --plan /plan/plan.json --prometheus http://prom:9090
      servewise report --pr 3 --window 6h      (post/update PR 3's comment)
      servewise report --deployment llm-serving/chatbot   (what the bundle's CronJob runs)
      servewise report --all                   (what the copyable GitHub workflow runs)

    The Prometheus bearer token, if any, is read from the variable the prometheus_token_env setting names (default SERVEWISE_PROMETHEUS_TOKEN) and never printed. Partial data or a window shorter than two scrape intervals gives "insufficient data" and stores no outcome. Exit 4 when Prometheus (or the forge) is unreachable; the report then says what is missing.
    """
    def action() -> dict:
        alone = bool(deployment) and not plan_file
        if sum(bool(x) for x in (pr, plan_file, all_, alone)) != 1:
            raise BadInput("give exactly one of --pr N, --plan FILE, --deployment NAMESPACE/NAME or --all")
        ctx = app_context()
        if plan_file:
            plan = load_plan(plan_file, ctx.catalog)
            dep = deployment or f"{ctx.settings.namespace}/{plan.spec.name}"
            return {"reports": [slo_report(ctx, plan, deployment=dep, prometheus_url=prometheus, window=window)]}
        forge = ctx.forge()
        if alone:
            from gitops.propose import latest_merged_pr

            p = latest_merged_pr(forge, deployment, ctx.settings.namespace)
            plan, dep = _plan_of_pr(forge, p, ctx.catalog)
            return {"reports": [slo_report(ctx, plan, deployment=dep, prometheus_url=prometheus, window=window,
                                           forge=forge, pr_number=p.number)]}
        if pr:
            plan, dep = _plan_of_pr(forge, forge.get_pr(pr), ctx.catalog)
            return {"reports": [slo_report(ctx, plan, deployment=dep, prometheus_url=prometheus, window=window,
                                           forge=forge, pr_number=pr)]}
        # One report per deployment, on the pull request of what runs: its latest merged one (an open one
        # only while nothing is merged yet). One without a plan does not stop the rest.
        latest = {}
        for p in sorted(forge.list_prs(), key=lambda p: (p.state == "merged", p.number)):
            if p.state in ("open", "merged") and p.branch.count("/") == 2:
                latest[p.branch] = p
        reports, skipped = [], []
        for p in latest.values():
            try:
                plan, dep = _plan_of_pr(forge, p, ctx.catalog)
            except BadInput as exc:
                skipped.append(f"#{p.number}: {exc.message}")
                continue
            reports.append(slo_report(ctx, plan, deployment=dep, prometheus_url=prometheus, window=window,
                                      forge=forge, pr_number=p.number))
        return {"reports": reports, "skipped": skipped}

    outcome: dict = {}

    def human(r: dict) -> None:
        from gitops.report import comment_body

        for rep in r["reports"]:
            console.print(comment_body(rep), markup=False, highlight=False)
        for note in r.get("skipped", []):
            console.print(f"skipped {note}", markup=False)
        if not r["reports"] and not r.get("skipped"):
            console.print("no servewise deployment pull requests to report on")

    def act() -> dict:
        outcome.update(action())
        return outcome

    run(json_out, act, human)
    if any(rep.verdict == "unreachable" for rep in outcome.get("reports", [])):
        raise typer.Exit(Unreachable.exit_code)


def sync_outcomes_cmd(forge: str = FORGE, repo: str = REPO, forge_url: str = URL, json_out: bool = JSON_OPTION) -> None:
    """Import the observed outcomes the SLO reports left on the forge (a hidden block in each sticky comment) into
    this knowledge base; ones already here are skipped. The report CronJob's own knowledge base is thrown away
    with its container, so this is how its outcomes reach the predictions.

    Example:  servewise kb sync-outcomes --forge github --repo acme/deployments
    """
    from gitops.outcome_sync import collect
    from gitops.report import MARKER
    from kb.outcomes import import_outcomes

    def action() -> dict:
        ctx = app_context()
        found, comments, skipped = collect(ctx.forge(forge, repo, forge_url), MARKER)
        return {"found": len(found), "imported": import_outcomes(ctx.kb, found), "comments": comments,
                "skipped": skipped}

    run(json_out, action, lambda r: console.print(
        f"imported {r['imported']} of {r['found']} outcomes from {r['comments']} report comment(s)"
        + (f"; {r['skipped']} unreadable row(s) skipped" if r["skipped"] else "")))


def register(app: typer.Typer) -> None:
    from server.commands.kb import kb_app

    app.command("report")(report_cmd)
    kb_app.command("sync-outcomes")(sync_outcomes_cmd)
