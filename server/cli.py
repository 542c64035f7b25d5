"""The `servewise` command line: one typer app, each command group in `server/commands/`."""

from __future__ import annotations

import typer

from server.commands import cluster as cluster_cmd
from server.commands import config as config_cmd
from server.commands import kb as kb_cmd
from server.commands import plan as plan_cmd
from server.commands import pr as pr_cmd
from server.commands import predict as predict_cmd
from server.commands import render as render_cmd
from server.commands import report as report_cmd
from server.commands import serve as serve_cmd

app = typer.Typer(
    name="servewise",
    help=(
        "Plan LLM serving on Kubernetes: from a workload description to a recommended model × GPU × "
        "parallelism × replicas with predicted latency and cost, KServe + vLLM manifests, a GitOps pull "
        "request, and observed-vs-predicted SLO reports.\n\n"
        "Every command takes --json for scripts. Exit codes: 0 ok, 2 bad input, 3 does not fit or "
        "infeasible, 4 an outside service unreachable.\n\n"
        "Start with:  servewise kb models   ·   servewise predict --help"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (kb_cmd, plan_cmd, predict_cmd, render_cmd, pr_cmd, report_cmd, serve_cmd, config_cmd, cluster_cmd):
    module.register(app)


def main() -> None:
    app()
