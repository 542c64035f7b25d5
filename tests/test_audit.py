"""The audit log: keeps the shape of a call, never its argument text, and never fails the call it records."""

from __future__ import annotations

import sqlite3

import pytest

from kb import store as kb_store
from kb.audit import recent_calls, record_call
from kb.catalog import open_kb


def test_no_argument_text_is_stored(tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    args = {"model": "secret-customer-name-XYZ", "gpu": "h100", "isl": 512, "qps": 2.5,
            "notes": {"path": "/home/alice/acme-merger/plan.json"}}
    message = ("unknown model 'secret-customer-name-XYZ'. Did you mean: Qwen/Qwen3-8B? cannot read plan file "
               "/home/alice/acme-merger/plan.json: No such file; \"quoted user text\"")
    assert record_call(kb, actor="mcp", tool="predict", args=args, duration_ms=1.5, outcome="error:bad_input",
                       message=message)
    row = kb.db.execute("SELECT * FROM audit_log").fetchone()
    stored = " ".join(str(v) for v in row)
    for secret in ("secret-customer-name-XYZ", "acme-merger", "quoted user text", "alice"):
        assert secret not in stored
    call = recent_calls(kb)[0]
    assert call["args_shape"] == "gpu:str,isl:int,model:str,notes:object,qps:float"
    assert len(call["args_digest"]) == 64 and call["outcome"] == "error:bad_input"
    assert call["message"].startswith("unknown model")


def test_an_audit_failure_never_raises(tmp_path, monkeypatch):
    def unusable():
        raise sqlite3.OperationalError("database is locked")

    assert record_call(unusable, actor="mcp", tool="predict", args={}, duration_ms=1, outcome="ok") is False
    path = tmp_path / "kb.sqlite"
    kb = open_kb(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(kb_store, "BUSY_TIMEOUT_MS", 20)
    monkeypatch.setattr(kb_store, "BUSY_RETRIES", 1)
    kb.db.execute("PRAGMA busy_timeout = 20")
    try:
        assert record_call(kb, actor="mcp", tool="predict", args={}, duration_ms=1, outcome="ok") is False
    finally:
        holder.close()
    assert record_call(kb, actor="mcp", tool="predict", args={}, duration_ms=1, outcome="ok") is True


def test_a_finished_mcp_call_stays_finished_when_the_audit_cannot_be_written(monkeypatch):
    """Finding 4: on MCP the audit write in `finally` turned a finished predict into a tool error."""
    from server import mcp_server

    class Ctx:
        @property
        def kb(self):
            raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(mcp_server, "app_context", lambda: Ctx())
    assert mcp_server._call("predict", lambda ctx: {"ttft_ms": 1.0}, {"model": "m"}) == {"ttft_ms": 1.0}
    with pytest.raises(mcp_server.ToolError):
        mcp_server._call("predict", lambda ctx: (_ for _ in ()).throw(mcp_server.ServewiseError("bad")), {})


def test_concurrent_first_calls_all_finish_and_are_all_audited(isolated_env):
    """Finding 4: concurrent MCP calls on a new knowledge base raced its migration and seeding, and the
    audit write in `finally` turned finished calls into errors. Each call here opens its own handle."""
    from concurrent.futures import ThreadPoolExecutor

    from server import mcp_server

    def one(i: int):
        return mcp_server._call("predict", lambda ctx: ctx.catalog.gpu("h100").name, {"i": i})

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(one, range(64)))
    assert answers == ["H100-SXM-80GB"] * 64
    kb = open_kb(isolated_env / "kb.sqlite")
    assert kb.db.execute("SELECT count(*) FROM audit_log WHERE tool = 'predict'").fetchone()[0] == 64
