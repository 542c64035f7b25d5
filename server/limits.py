"""Physical bounds of every number a person can type, checked where it enters (CLI options, batch lines).

A value outside them is a typo or an attack, never a deployment: `inf` requests/s, a 1e308-token
prompt or a 1e-7 ms target would otherwise travel into the planner and come back as an overflow,
a silently empty plan or a nonsense answer. The bounds are generous on purpose: each is wider
than anything a real deployment asks for, and narrow enough that arithmetic on it stays finite.
"""

from __future__ import annotations

import math
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from planner.errors import BadInput

# name: (lowest, highest, unit, why the edge is where it is)
LIMITS: dict[str, tuple[float, float, str, str]] = {
    "qps": (0.001, 1e6, "req/s", "from about 86 requests a day to a million requests a second"),
    "users": (1, 1e10, "users", "more than there are people"),
    "requests_per_user_per_day": (0.01, 86_400, "requests", "at most one a second around the clock"),
    "active_hours": (0.1, 24, "hours", "a day has 24 hours"),
    "peak_factor": (1, 100, "x", "the peak is at least the average"),
    "burstiness": (1, 100, "", "1 is Poisson arrivals"),
    "prompt_tokens": (1, 10_000_000, "tokens", "the longest context windows hold 10M tokens"),
    "output_tokens": (1, 1_000_000, "tokens", "far beyond any model's output limit"),
    "ttft_p90_ms": (1, 3_600_000, "ms", "one forward pass takes at least a millisecond; an hour is no SLO"),
    "tpot_p90_ms": (0.1, 60_000, "ms", "no GPU decodes a token in under 0.1 ms"),
    "e2e_p95_ms": (1, 86_400_000, "ms", "from a millisecond to a day"),
    "budget": (1, 1e10, "USD/month", "more than any GPU fleet costs"),
    "max_gpus": (1, 100_000, "GPUs", "the largest clusters"),
    "top": (1, 100, "candidates", "a plan compares at most 100"),
    "limit": (1, 10_000_000, "rows", ""),
    "tp": (1, 64, "GPUs", "tensor parallelism beyond 64 GPUs is not served by vLLM"),
    "pp": (1, 16, "stages", ""),
    "isl": (1, 10_000_000, "tokens", "the longest context windows hold 10M tokens"),
    "osl": (1, 1_000_000, "tokens", "far beyond any model's output limit"),
    "concurrency": (1, 1_000_000, "clients", ""),
    "num_prompts": (1, 1_000_000_000, "requests", ""),
    "replicas": (1, 1000, "replicas", ""),
    "max_num_seqs": (1, 1_000_000, "sequences", ""),
    "max_num_batched_tokens": (1, 10_000_000, "tokens", ""),
    "gpu_memory_utilization": (0.1, 0.99, "", "vLLM's fraction of GPU memory"),
    "length_cv": (0, 10, "", "std/mean of a length distribution"),
    "pr_number": (1, 2**63 - 1, "", "SQLite's largest integer"),
    "timeout": (0.1, 3600, "s", ""),
}


def problem(name: str, value: Any) -> str | None:
    """Why `value` is not acceptable for `name`, or None when it is."""
    lo, hi, unit, why = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number (got {value!r})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number (got {value!r})"
    if not lo <= value <= hi:
        reason = f"; {why}" if why else ""
        return f"must be between {_fmt(lo)} and {_fmt(hi)}{' ' + unit if unit else ''} (got {_fmt(value)}){reason}"
    return None


def _fmt(x: float) -> str:
    if isinstance(x, int):
        return str(x) if abs(x) < 10**20 else f"a {len(str(abs(x)))}-digit number"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e7:
        return str(int(x))
    return f"{x:g}"


def check(name: str, value: Any, label: str | None = None) -> None:
    """BadInput when `value` is outside the bounds of `name` (None passes: not given)."""
    if value is None:
        return
    why = problem(name, value)
    if why:
        raise BadInput(f"{label or name} {why}")


def bounded(name: str) -> Callable[[Any], Any]:
    """A typer option callback that refuses a value outside the bounds of `name` as a usage error (exit 2)."""

    def callback(value: Any) -> Any:
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and (why := problem(name, v)):
                raise typer.BadParameter(why)
        return value

    return callback


MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024


def input_file(what: str, max_bytes: int = MAX_INPUT_FILE_BYTES) -> Callable[[Any], Any]:
    """A typer callback for a file servewise reads whole: a regular file of bounded size. A device
    (`/dev/zero`), a FIFO or a directory would otherwise be read forever or fail half way."""

    def callback(value: Path | None) -> Path | None:
        if value is None:
            return value
        try:
            st = Path(value).stat()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {what} {value}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise typer.BadParameter(f"{value} is not a regular file; give the {what}")
        if st.st_size > max_bytes:
            raise typer.BadParameter(f"{value} is larger than {max_bytes // (1024 * 1024)} MiB; not a {what}")
        return value

    return callback


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def dns_label(value: str | None) -> str | None:
    """A typer callback for a Kubernetes namespace or name (RFC 1123 label)."""
    if value is not None and not _DNS_LABEL.match(value):
        raise typer.BadParameter(f"{value!r} is not a Kubernetes name: lowercase letters, digits and '-', "
                                 "starting and ending with a letter or digit, at most 63")
    return value


def one_of(*choices: str) -> Callable[[Any], Any]:
    """A typer callback for a closed set of words (an empty string is not 'the default')."""

    def callback(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return callback
