"""The corrections the planner applies: a team's imported runs and its SLO-report outcomes, one mechanism.

Seed rows (origin 'seed') are what the base model was fitted on, so they never count as corrections; every
other origin ('import:<file>') is a user's own measurement.
"""

from __future__ import annotations

from kb.outcomes import load_outcomes
from kb.store import KnowledgeBase
from planner.catalog import BenchmarkRow, Catalog
from planner.contracts import Correction
from planner.feedback import corrections as fitted_corrections
from planner.measured import AccuracyRow, ScoredRun, Skipped, cross_validated, evidence, score_runs
from planner.steptime import LatencyParams


def user_runs(kb: KnowledgeBase) -> list[tuple[BenchmarkRow, str]]:
    """Imported (non-seed) rows with the file each came from."""
    rows = kb.db.execute("SELECT data, origin FROM benchmarks WHERE origin != 'seed' ORDER BY rowid")
    return [(BenchmarkRow.model_validate_json(data), origin.removeprefix("import:")) for data, origin in rows]


def scored_user_runs(kb: KnowledgeBase, catalog: Catalog, params: LatencyParams
                     ) -> tuple[list[ScoredRun], list[Skipped], dict[str, BenchmarkRow]]:
    runs = user_runs(kb)
    scored, skipped = score_runs(runs, catalog, params)
    return scored, skipped, {row.id: row for row, _ in runs}


def corrections(kb: KnowledgeBase, catalog: Catalog, params: LatencyParams) -> dict[tuple[str, str, int], Correction]:
    """Corrections keyed by (model hf_id, GPU name, TP), from imported runs and SLO outcomes together."""
    scored, _, rows = scored_user_runs(kb, catalog, params)
    return fitted_corrections(load_outcomes(kb), evidence(scored, rows))


def accuracy(kb: KnowledgeBase, catalog: Catalog, params: LatencyParams) -> dict:
    """Cross-validated error of the user's own runs before and after their corrections, per model x GPU."""
    scored, skipped, rows = scored_user_runs(kb, catalog, params)
    table: list[AccuracyRow] = cross_validated(scored, rows)
    return {"accuracy": table, "runs_used": len(scored), "skipped": skipped}
