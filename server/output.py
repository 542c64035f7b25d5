"""How the command line speaks: JSON on stdout for scripts, rich tables for people, one-line errors.

Every command goes through `run()`, which turns a ServewiseError (or a validation error) into
one clear line on stderr, or `{"error": {...}}` with `--json`, and the contract's exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from planner.errors import BadInput, ServewiseError

console = Console()
err_console = Console(stderr=True)


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, default=str) + "\n")


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "input"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def error_payload(exc: ServewiseError) -> dict:
    return {"error": {"code": exc.code, "message": exc.message, **({"details": exc.details} if exc.details else {})}}


def run(json_out: bool, action: Callable[[], Any], human: Callable[[Any], None] | None = None) -> None:
    """Run a command body; print its result as JSON or through `human`; map errors to exit codes."""
    try:
        result = action()
    except ValidationError as exc:
        _fail(json_out, BadInput(validation_message(exc)))
    except ServewiseError as exc:
        _fail(json_out, exc)
    else:
        if json_out:
            print_json(result)
        elif human is not None:
            human(result)


def _fail(json_out: bool, exc: ServewiseError) -> None:
    if json_out:
        print_json(error_payload(exc))
    else:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> Table:
    t = Table(title=title, caption=caption, header_style="bold", title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t


JSON_OPTION = typer.Option(False, "--json", help="Machine output on stdout (nothing else there).")
