"""How the command line speaks: JSON on stdout for scripts, rich tables for people, one-line errors.

Every failure goes through `classify()` and `fail()`: a ServewiseError keeps its message and code,
anything else a layer let escape (an OverflowError from a huge number, a locked database, a
directory where a file was expected) becomes the contract's error for what caused it. The result is
one clear line on stderr, or `{"error": {...}}` on stdout with `--json`, and the contract's exit
code; the traceback is printed only in debug mode (`--debug` or SERVEWISE_DEBUG=1).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from planner.errors import BadInput, ServewiseError, Unreachable

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


class InternalError(ServewiseError):
    """A failure no layer anticipated: a bug to report, not something the person did."""

    code = "internal"
    exit_code = 1


_debug = bool(os.environ.get("SERVEWISE_DEBUG"))


def set_debug(on: bool) -> None:
    global _debug
    _debug = on or bool(os.environ.get("SERVEWISE_DEBUG"))


def _oneline(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def classify(exc: BaseException) -> ServewiseError:
    """The contract's error for any exception: 2 for what the input caused, 4 for the outside world."""
    if isinstance(exc, ServewiseError):
        return exc
    if isinstance(exc, ValidationError):
        return BadInput(validation_message(exc))
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return Unreachable("the knowledge base is locked by another servewise run that did not finish in time; "
                           "try again in a moment")
    if isinstance(exc, sqlite3.DatabaseError):
        return BadInput(f"the knowledge base cannot be used: {_oneline(exc)}; check SERVEWISE_KB")
    if isinstance(exc, yaml.YAMLError):
        return BadInput(f"not valid YAML: {_oneline(exc, 200)}")
    if isinstance(exc, RecursionError):
        return BadInput("the input is nested too deeply to read")
    if isinstance(exc, MemoryError):
        return BadInput("the input is too large to read into memory")
    if isinstance(exc, UnicodeError):
        return BadInput("the input is not UTF-8 text (a binary file?)")
    if isinstance(exc, OverflowError):
        return BadInput(f"a number is out of range ({_oneline(exc)})")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or _oneline(exc)
        if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOENT, errno.EACCES, errno.EPERM, errno.EEXIST,
                         errno.ENAMETOOLONG, errno.EROFS, errno.ELOOP, errno.EINVAL, errno.ENOSPC, errno.EXDEV):
            return BadInput(f"{where}{reason}")
        return Unreachable(f"{where}{reason}")
    if isinstance(exc, (ValueError, ArithmeticError)):
        # Raised below the front door from a value the input carried (a parse, a conversion).
        return BadInput(f"invalid input: {_oneline(exc) or type(exc).__name__}")
    return InternalError(f"internal error ({type(exc).__name__}: {_oneline(exc)}); please report it"
                         + ("" if _debug else " with the output of --debug"))


def fail(json_out: bool, exc: BaseException) -> int:
    """Print one error (stderr line, or JSON on stdout) and return the exit code it carries."""
    err = classify(exc)
    if _debug and not isinstance(exc, ServewiseError):
        traceback.print_exception(exc, file=sys.stderr)
    if json_out:
        print_json(error_payload(err))
    else:
        err_console.print(f"[bold red]error:[/] {escape(_oneline(err.message, 2000))}", highlight=False,
                          soft_wrap=True)
    return err.exit_code


def run(json_out: bool, action: Callable[[], Any], human: Callable[[Any], None] | None = None) -> None:
    """Run a command body; print its result as JSON or through `human`; map errors to exit codes."""
    try:
        result = action()
    except Exception as exc:  # noqa: BLE001 - every failure becomes the contract's error
        raise typer.Exit(fail(json_out, exc)) from None
    if json_out:
        print_json(result)
    elif human is not None:
        human(result)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> Table:
    t = Table(title=title, caption=caption, header_style="bold", title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t


JSON_OPTION = typer.Option(False, "--json", help="Machine output on stdout (nothing else there).")
