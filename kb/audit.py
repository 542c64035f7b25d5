"""The audit log: one row per MCP tool call (tool, shape and digest of the arguments, duration, outcome).

Argument values are never stored: they may hold secrets or personal text. A row keeps the argument
names and kinds (`model:str,qps:float`), a SHA-256 digest of their canonical JSON (which still
tells two identical calls apart from different ones) and the error message with every argument
value and every quoted string taken out.

Auditing must never change what a call returns: `record_call` swallows its own failures (a locked
or unusable knowledge base) and reports them on the `servewise.audit` logger instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

from kb.store import KnowledgeBase

log = logging.getLogger("servewise.audit")

MESSAGE_CHARS = 300
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
REDACTED = "…"


def args_digest(args: dict) -> str:
    canonical = json.dumps(args, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def args_shape(args: dict) -> str:
    return ",".join(f"{k}:{_kind(v)}" for k, v in sorted(args.items(), key=lambda kv: str(kv[0])))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, str)):
        return type(value).__name__
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return "other"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def scrub(message: str, args: dict) -> str:
    """The message without the call's argument values or any quoted text (where names and paths appear)."""
    text = message
    # Top-level keys are the tool's parameter names, not user text; everything below them is.
    values = {s for v in args.values() for s in _strings(v) if len(s.strip()) >= 3}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _QUOTED.sub(REDACTED, text)
    return text[:MESSAGE_CHARS]


def record_call(kb: KnowledgeBase | Callable[[], KnowledgeBase], *, actor: str, tool: str, args: dict,
                duration_ms: float, outcome: str, message: str = "") -> bool:
    """Add one audit row; True when it was written. Never raises: an audit failure is logged, not returned."""
    try:
        handle = kb() if callable(kb) else kb
        row = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), "actor": actor,
               "tool": tool, "args_digest": args_digest(args), "args_shape": args_shape(args),
               "duration_ms": round(duration_ms, 2), "outcome": outcome, "message": scrub(message, args)}
        with handle.transaction() as db:
            db["audit_log"].insert(row)
        return True
    except Exception as exc:  # noqa: BLE001 - the call already finished; its answer must not change
        log.warning("audit row for %s not written: %s", tool, type(exc).__name__)
        return False


def recent_calls(kb: KnowledgeBase, limit: int = 50) -> list[dict]:
    cols = ("at", "actor", "tool", "args_shape", "args_digest", "duration_ms", "outcome", "message")
    rows = kb.db.execute(f"SELECT {', '.join(cols)} FROM audit_log ORDER BY id DESC LIMIT ?", [limit])
    return [dict(zip(cols, r)) for r in rows]
