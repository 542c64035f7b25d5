"""Observed outcomes (predicted vs observed per metric) and SLO-report history in the knowledge base."""

from __future__ import annotations

import json

from kb.store import KnowledgeBase
from planner.contracts import Correction
from planner.feedback import Outcome
from planner.feedback import corrections as shrunk_corrections


def store_report(kb: KnowledgeBase, deployment: str, pr_id: int | None, created_at: str, verdict: str, data: dict,
                 outcomes: list[Outcome]) -> None:
    """One report's history row and its outcomes (none from incomplete data) in one transaction."""
    with kb.transaction() as db:
        db["reports"].insert({"deployment": deployment, "pr_id": pr_id, "created_at": created_at,
                              "verdict": verdict, "data": json.dumps(data)})
        if outcomes:
            db["outcomes"].insert_all({**o.model_dump(), "data": o.model_dump_json()} for o in outcomes)


def load_outcomes(kb: KnowledgeBase) -> list[Outcome]:
    return [Outcome.model_validate_json(r[0]) for r in kb.db.execute("SELECT data FROM outcomes ORDER BY id")]


def corrections(kb: KnowledgeBase) -> dict[tuple[str, str, int], Correction]:
    return shrunk_corrections(load_outcomes(kb))


def report_history(kb: KnowledgeBase, deployment: str, limit: int = 5) -> list[dict]:
    rows = kb.db.execute("SELECT created_at, verdict FROM reports WHERE deployment = ? ORDER BY id DESC LIMIT ?",
                         [deployment, limit])
    return [{"created_at": r[0], "verdict": r[1]} for r in rows]


def import_outcomes(kb: KnowledgeBase, outcomes: list[Outcome]) -> int:
    """Store outcomes read from elsewhere (a forge's report comments), skipping those already here: one report's
    metric is identified by deployment, plan, metric and the report's time. Returns how many were new."""
    with kb.transaction() as db:
        have = {tuple(r) for r in db.execute("SELECT deployment, plan_id, metric, created_at FROM outcomes")}
        new = []
        for o in outcomes:
            key = (o.deployment, o.plan_id, o.metric, o.created_at)
            if key not in have:
                have.add(key)
                new.append(o)
        if new:
            db["outcomes"].insert_all({**o.model_dump(), "data": o.model_dump_json()} for o in new)
    return len(new)
