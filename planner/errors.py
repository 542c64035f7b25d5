"""The error types every layer raises and every front door turns into an exit code or tool error.

The codes are the command-line contract of DESIGN.md: 2 bad input, 3 does not fit or infeasible,
4 an outside service (forge, Prometheus, cluster) unreachable.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ServewiseError(Exception):
    """An error a person can act on: one clear message, a stable code, an exit status."""

    code: str = "error"
    exit_code: int = 1

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadInput(ServewiseError):
    """The request itself is wrong: unknown name, impossible number, malformed file."""

    code = "bad_input"
    exit_code = 2


class Infeasible(ServewiseError):
    """The request is well formed but cannot be met: does not fit in memory, no SLO-meeting plan."""

    code = "infeasible"
    exit_code = 3


class Unreachable(ServewiseError):
    """An outside service (forge, Prometheus, Kubernetes API) did not answer or refused us."""

    code = "unreachable"
    exit_code = 4


def unknown_name(kind: str, name: str, known: Iterable[str], aliases: dict[str, str] | None = None) -> BadInput:
    """A BadInput for an unknown model/GPU/use case, naming the closest known names.

    `aliases` maps extra spellings (short names) to canonical names, so "h10" can suggest H100.
    """
    known = sorted(set(known))
    spellings = {k.lower(): k for k in known}
    spellings.update({a.lower(): canon for a, canon in (aliases or {}).items()})
    needle = name.strip().lower()
    close = [spellings[s] for s in spellings if needle and (s.startswith(needle) or needle.startswith(s))]
    close += [spellings[c] for c in difflib.get_close_matches(needle, list(spellings), n=5, cutoff=0.5)]
    suggestions = list(dict.fromkeys(close))[:3]
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    return BadInput(
        f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known[:40])}"
        + (" …" if len(known) > 40 else ""),
        details={"kind": kind, "name": name, "suggestions": suggestions},
    )
