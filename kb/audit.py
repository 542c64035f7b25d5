"""The audit log: one row per MCP tool call (tool, digest of the arguments, duration, outcome).

Arguments are stored only as a SHA-256 digest of their canonical JSON: they may hold secrets or
personal text, and the digest still tells two identical calls apart from different ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from kb.store import KnowledgeBase


def args_digest(args: dict) -> str:
    canonical = json.dumps(args, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_call(kb: KnowledgeBase, *, actor: str, tool: str, args: dict, duration_ms: float, outcome: str,
                message: str = "") -> None:
    with kb.transaction() as db:
        db["audit_log"].insert({"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                                "actor": actor, "tool": tool, "args_digest": args_digest(args),
                                "duration_ms": round(duration_ms, 2), "outcome": outcome, "message": message[:500]})


def recent_calls(kb: KnowledgeBase, limit: int = 50) -> list[dict]:
    cols = ("at", "actor", "tool", "args_digest", "duration_ms", "outcome", "message")
    rows = kb.db.execute(f"SELECT {', '.join(cols)} FROM audit_log ORDER BY id DESC LIMIT ?", [limit])
    return [dict(zip(cols, r)) for r in rows]
