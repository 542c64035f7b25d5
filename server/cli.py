"""The `servewise` command line: one typer app, each command group in `server/commands/`.

`ServewiseGroup.main` is the one top-level handler: whatever escapes a command (a usage error,
an exception no layer mapped) ends as one line on stderr, or `{"error": ...}` on stdout under
`--json`, with the contract's exit code. `--debug` anywhere on the line adds the traceback.
"""

from __future__ import annotations

import errno
import inspect
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer._click import exceptions as click_errors  # typer vendors click: its exceptions live here
from typer._click import utils as click_utils
from typer.core import TyperGroup

from server.commands import cluster as cluster_cmd
from server.commands import config as config_cmd
from server.commands import kb as kb_cmd
from server.commands import plan as plan_cmd
from server.commands import pr as pr_cmd
from server.commands import predict as predict_cmd
from server.commands import render as render_cmd
from server.commands import report as report_cmd
from server.commands import serve as serve_cmd
from server.output import fail, print_json, set_debug

DEBUG_FLAG = "--debug"


def _one_line_summaries(group: TyperGroup) -> None:
    """Typer's rich help keeps a docstring's line breaks in a group's command list (not in the command's own
    --help), so a wrapped first paragraph showed there as broken lines; each command gets it as one line."""
    for command in group.commands.values():
        if command.short_help is None and command.help:
            command.short_help = " ".join(inspect.cleandoc(command.help).split("\n\n")[0].split())
        if isinstance(command, TyperGroup):
            _one_line_summaries(command)


class ServewiseGroup(TyperGroup):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        _one_line_summaries(self)
        argv = list(sys.argv[1:] if args is None else args)
        set_debug(DEBUG_FLAG in argv)
        argv = [a for a in argv if a != DEBUG_FLAG]
        json_out = "--json" in argv
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            code = 2
        except click_errors.UsageError as exc:
            code = _usage_error(exc, json_out)
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = 1
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                code = fail(json_out, exc)
            else:  # the reader went away (`| head`): nothing more to say
                sys.stdout = click_utils.PacifyFlushWrapper(sys.stdout)
                code = 1
        except Exception as exc:  # noqa: BLE001 - the one place every unexpected failure is mapped
            code = fail(json_out, exc)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: click_errors.UsageError, json_out: bool) -> int:
    command = exc.ctx.command_path if exc.ctx else "servewise"
    message = f"{exc.format_message()} (see `{command} --help`)"
    if json_out:
        print_json({"error": {"code": "bad_input", "message": message}})
    else:
        typer.echo(f"error: {message}", err=True)
    return 2


app = typer.Typer(
    name="servewise",
    help=(
        "Plan LLM serving on Kubernetes: from a workload description to a recommended model × GPU × "
        "parallelism × replicas with predicted latency and cost, KServe + vLLM manifests, a GitOps pull "
        "request, and observed-vs-predicted SLO reports.\n\n"
        "Every command but serve takes --json for scripts. Exit codes: 0 ok, 2 bad input, 3 does not fit or "
        "infeasible, 4 an outside service unreachable. --debug (anywhere) adds the traceback of an "
        "unexpected error.\n\n"
        "Start with:  servewise kb models   ·   servewise predict --help"
    ),
    no_args_is_help=True,
    cls=ServewiseGroup,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (kb_cmd, plan_cmd, predict_cmd, render_cmd, pr_cmd, report_cmd, serve_cmd, config_cmd, cluster_cmd):
    module.register(app)


def main() -> None:
    app()
