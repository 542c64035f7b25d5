"""Issue 19's acceptance check on the shared calibration data: per model family, import a random half of its
vLLM runs into a fresh knowledge base as a team's own runs, and predict the other half through the real path
(kb import, kb corrections, planner.latency.predict_many). The median TTFT and TPOT error on the scored half
must at least halve for every family with ten or more runs.

Run with `-s` to see the table. The base model's own seed rows never count as corrections (origin 'seed'), so
before the import the predictions are exactly the shipped model's.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from kb.benchmarks import import_benchmarks
from kb.catalog import open_kb
from kb.corrections import corrections
from planner.catalog import BenchmarkRow
from planner.latency import predict_many
from planner.measured import run_query, score_runs, why_unusable

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks" / "calibration.jsonl"
FAMILIES = ("deepseek", "llama-3.1-8b", "llama-3.1-70b", "qwen3-235b", "qwen3.5", "kimi", "minimax", "glm")


def family(model: str) -> str:
    """Checkpoints of one model (Llama-3.1-70B and its FP8 copy) are one family."""
    name = model.split("/")[-1].lower()
    return next((k for k in FAMILIES if k in name), name)


def _median_ape(pred: list[float], meas: list[float]) -> float:
    return float(np.median(np.abs(np.array(pred) - np.array(meas)) / np.array(meas) * 100))


@pytest.fixture(scope="module")
def halves(cat, params, tmp_path_factory) -> list[dict]:
    rows = [BenchmarkRow.model_validate_json(x) for x in SHARED.read_text().splitlines() if x.strip()]
    by_family: dict[str, list[BenchmarkRow]] = defaultdict(list)
    for r in rows:
        if why_unusable(r) is None:
            by_family[family(r.model)].append(r)
    tmp = tmp_path_factory.mktemp("own-runs")
    table = []
    for fam, runs in sorted(by_family.items()):
        # Only runs the model can predict at all (a few do not fit in memory as servewise models them).
        scorable, _ = score_runs([(r, "x") for r in runs], cat, params)
        keep = {s.id for s in scorable}
        runs = sorted((r for r in runs if r.id in keep), key=lambda r: r.id)
        random.Random(19).shuffle(runs)
        imported, scored = runs[: len(runs) // 2], runs[len(runs) // 2:]
        kb = open_kb(tmp / f"{fam}.sqlite")
        mine = tmp / f"{fam}-runs.jsonl"
        # A team's own ids: the seed ids are the base model's rows and may not be reused.
        mine.write_text("\n".join(r.model_copy(update={"id": f"mine-{r.id}"}).model_dump_json() for r in imported) + "\n")
        assert import_benchmarks(kb, mine) == len(imported)
        table_now = corrections(kb, cat, params)
        queries = [(run_query(r, cat), cat.model(r.model), cat.gpu(r.gpu)) for r in scored]
        before = predict_many(queries, params, n_samples=8)
        after = predict_many(queries, params, [table_now.get((m.hf_id, g.name, q.tp)) for q, m, g in queries], n_samples=8)
        informed = sum(p.correction is not None for p in after)
        table.append({
            "family": fam, "runs": len(runs), "imported": len(imported), "scored": len(scored), "informed": informed,
            **{f"{metric}_{when}": _median_ape([getattr(p, f"{metric}_ms").mean for p in preds],
                                               [getattr(r, f"{metric}_ms")["mean"] for r in scored])
               for metric in ("ttft", "tpot") for when, preds in (("before", before), ("after", after))},
        })
        kb.close()
    print("\n| family | runs | imported / scored | TTFT before → after % | TPOT before → after % |")
    print("|---|---|---|---|---|")
    for t in table:
        print(f"| {t['family']} | {t['runs']} | {t['imported']} / {t['scored']} | {t['ttft_before']:.1f} → "
              f"{t['ttft_after']:.1f} | {t['tpot_before']:.1f} → {t['tpot_after']:.1f} |")
    return table


def test_every_scored_run_is_informed_by_the_imported_half(halves):
    assert halves and all(t["informed"] == t["scored"] for t in halves)


def test_median_error_at_least_halves_for_every_family_with_ten_runs(halves):
    big = [t for t in halves if t["runs"] >= 10]
    assert len(big) >= 4
    for t in big:
        assert t["ttft_after"] <= t["ttft_before"] / 2, t
        assert t["tpot_after"] <= t["tpot_before"] / 2, t
