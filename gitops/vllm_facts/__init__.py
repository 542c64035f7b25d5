"""vLLM's command line, OpenAI-server batch defaults and `--kv-cache-dtype auto` rule at the pinned release, as
extracted from its wheel by `extract.py` (vllm-VERSION.json), and the check every rendered `vllm serve` argument list
goes through."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

VLLM_VERSION = "0.19.0"
FACTS = Path(__file__).resolve().parent / f"vllm-{VLLM_VERSION}.json"


@cache
def facts() -> dict:
    return json.loads(FACTS.read_text())


def _where(entry: dict) -> str:
    return f"vllm {VLLM_VERSION} {entry['file']}:{entry['line']}"


def _value_problem(flag: str, entry: dict, value: str) -> str | None:
    kind = entry["kind"]
    if kind == "int":
        try:
            int(value)
        except ValueError:
            return f"{flag} takes an integer, got {value!r} ({_where(entry)})"
    elif kind == "float":
        try:
            float(value)
        except ValueError:
            return f"{flag} takes a number, got {value!r} ({_where(entry)})"
    elif kind == "choice" and not entry.get("open") and value not in entry["choices"]:
        return f"{flag} takes one of {', '.join(entry['choices'])}, got {value!r} ({_where(entry)})"
    return None


def check_args(args: list[str], *, positional_model: bool) -> list[str]:
    """Every problem `vllm serve` would have with `args` (empty: all accepted), each citing the vLLM file and line
    that defines the flag. `positional_model`: the list starts with the model (how `vllm serve MODEL` takes it)."""
    f = facts()
    flags, problems = f["flags"], []
    rest = list(args)
    if positional_model:
        pos = f["positional_model"]
        if not rest or rest[0].startswith("-"):
            problems.append(f"the model must come first, as the positional {pos['name']} "
                            f"(vllm {VLLM_VERSION} {pos['file']}:{pos['line']})")
        else:
            rest = rest[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--"):
            problems.append(f"{token!r} is not a flag and no flag before it takes a value")
            i += 1
            continue
        flag, _, inline = token.partition("=")
        entry = flags.get(flag)
        if entry is None:
            problems.append(f"{flag} is not a `vllm serve` flag in vLLM {VLLM_VERSION} ({FACTS.name})")
            i += 1
            continue
        if flag in f["deprecated_usage"]:
            dep = f["deprecated_usage"][flag]
            problems.append(f"{flag} is deprecated for `vllm serve`: {dep['reason']} "
                            f"(vllm {VLLM_VERSION} {dep['file']}:{dep['line']})")
        if entry.get("deprecated"):
            problems.append(f"{flag} is deprecated ({_where(entry)})")
        if entry["kind"] in ("bool", "negation", "flag"):
            if inline:
                problems.append(f"{flag} takes no value ({_where(entry)})")
            i += 1
            continue
        value = inline if inline else (rest[i + 1] if i + 1 < len(rest) else None)
        if value is None or (not inline and value.startswith("--")):
            problems.append(f"{flag} needs a value ({_where(entry)})")
            i += 1
            continue
        if problem := _value_problem(flag, entry, value):
            problems.append(problem)
        if flag == "--quantization" and value in f["deprecated_quantization_methods"]["values"]:
            dq = f["deprecated_quantization_methods"]
            problems.append(f"--quantization {value} is deprecated (vllm {VLLM_VERSION} {dq['file']}:{dq['line']})")
        i += 1 if inline else 2
    return problems
