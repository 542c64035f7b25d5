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
    return [o for _, o in outcome_rows(kb)]


def outcome_rows(kb: KnowledgeBase) -> list[tuple[int, Outcome]]:
    """Every stored outcome with its id (what `kb outcomes --delete ID` takes)."""
    return [(r[0], Outcome.model_validate_json(r[1])) for r in kb.db.execute("SELECT id, data FROM outcomes ORDER BY id")]


def delete_outcomes(kb: KnowledgeBase, ids: list[int], *, dry_run: bool = False) -> dict:
    """Delete outcomes by id (or, with dry_run, only say what that would change): the rows and, per model x GPU x
    TP they touch, the correction before and after. Unknown ids delete nothing."""
    rows = outcome_rows(kb)
    known = {i for i, _ in rows}
    unknown = sorted(set(ids) - known)
    if unknown:
        from planner.errors import BadInput

        raise BadInput(f"no outcome with id {', '.join(map(str, unknown))}; `servewise kb outcomes --json` lists them")
    gone = [(i, o) for i, o in rows if i in set(ids)]
    before = shrunk_corrections([o for _, o in rows])
    after = shrunk_corrections([o for i, o in rows if i not in set(ids)])
    touched = sorted({(o.model, o.gpu, o.tp) for _, o in gone})
    changes = [{"model": k[0], "gpu": k[1], "tp": k[2],
                "before": before[k].model_dump() if k in before else None,
                "after": after[k].model_dump() if k in after else None} for k in touched]
    if not dry_run:
        with kb.transaction() as db:
            db.execute(f"DELETE FROM outcomes WHERE id IN ({','.join('?' * len(gone))})", [i for i, _ in gone])
    return {"deleted": [] if dry_run else [i for i, _ in gone], "dry_run": dry_run,
            "outcomes": [{"id": i, **o.model_dump()} for i, o in gone], "corrections": changes}


def corrections(kb: KnowledgeBase) -> dict[tuple[str, str, int], Correction]:
    """From outcomes alone (kb.corrections adds the imported runs through the same mechanism)."""
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
