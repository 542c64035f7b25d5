"""Plans in the knowledge base: every recommendation is kept, so reports can compare later."""

from __future__ import annotations

from kb.store import KnowledgeBase
from planner.contracts import Plan
from planner.errors import BadInput


def save_plan(kb: KnowledgeBase, plan: Plan) -> None:
    chosen = plan.candidates[plan.chosen] if plan.chosen is not None else None
    with kb.transaction() as db:
        db["plans"].upsert({"id": plan.id, "created_at": plan.created_at, "name": plan.spec.name,
                            "use_case": plan.spec.use_case, "model": chosen.model if chosen else None,
                            "gpu": chosen.gpu if chosen else None, "kb_version": plan.kb_version,
                            "data": plan.model_dump_json()}, pk="id")


def get_plan(kb: KnowledgeBase, plan_id: str) -> Plan:
    row = kb.db.execute("SELECT data FROM plans WHERE id = ?", [plan_id]).fetchone()
    if not row:
        known = [r[0] for r in kb.db.execute("SELECT id FROM plans ORDER BY created_at DESC LIMIT 10")]
        raise BadInput(f"no plan {plan_id!r} in the knowledge base; recent plans: {', '.join(known) or 'none'}")
    return Plan.model_validate_json(row[0])


def list_plans(kb: KnowledgeBase) -> list[dict]:
    return [dict(zip(("id", "created_at", "name", "use_case", "model", "gpu"), r)) for r in
            kb.db.execute("SELECT id, created_at, name, use_case, model, gpu FROM plans ORDER BY created_at DESC")]
