"""Issue 19's acceptance check on the shared calibration data: per model family, import a random half of its
vLLM runs into a fresh knowledge base as a team's own runs, and predict the other half through the real path
(kb import, kb corrections, planner.latency.predict_many), at ten split seeds rather than one chosen split.
The median TTFT and TPOT error on the scored half must at least halve for every family with ten or more runs.

Run with `-s` to see the table. The base model's own seed rows never count as corrections (origin 'seed'), so
before the import the predictions are exactly the shipped model's; no base figure is written here, so the
check holds whatever the base model predicts.
"""

from __future__ import annotations

import math
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
from planner.feedback import MAX_DOUBLINGS
from planner.measured import run_query, score_runs, why_unusable

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks" / "calibration.jsonl"
FAMILIES = ("deepseek", "llama-3.1-8b", "llama-3.1-70b", "qwen3-235b", "qwen3.5", "kimi", "minimax", "glm")
SEEDS = range(10)


def family(model: str) -> str:
    """Checkpoints of one model (Llama-3.1-70B and its FP8 copy) are one family."""
    name = model.split("/")[-1].lower()
    return next((k for k in FAMILIES if k in name), name)


def _doublings(a: BenchmarkRow, b: BenchmarkRow) -> float:
    return sum(abs(math.log2(x / y)) for x, y in ((a.tp, b.tp), (a.concurrency, b.concurrency), (a.isl, b.isl), (a.osl, b.osl)))


def _median_ape(pred: list[float], meas: list[float]) -> float:
    return float(np.median(np.abs(np.array(pred) - np.array(meas)) / np.array(meas) * 100))


@pytest.fixture(scope="module")
def halves(cat, params, tmp_path_factory) -> list[dict]:
    """One row per family and split seed: the scored half's median error before and after the import."""
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
        base = {s.id: s for s in scorable}
        runs = sorted((r for r in runs if r.id in base), key=lambda r: r.id)
        for seed in SEEDS:
            order = list(runs)
            random.Random(seed).shuffle(order)
            imported, scored = order[: len(order) // 2], order[len(order) // 2:]
            kb = open_kb(tmp / f"{fam}-{seed}.sqlite")
            mine = tmp / f"{fam}-{seed}-runs.jsonl"
            # A team's own ids: the seed ids are the base model's rows and may not be reused.
            mine.write_text("\n".join(r.model_copy(update={"id": f"mine-{r.id}"}).model_dump_json() for r in imported) + "\n")
            assert import_benchmarks(kb, mine) == len(imported)
            table_now = corrections(kb, cat, params)
            kb.close()
            queries = [(run_query(r, cat), cat.model(r.model), cat.gpu(r.gpu)) for r in scored]
            after = predict_many(queries, params, [table_now.get((m.hf_id, g.name, q.tp)) for q, m, g in queries],
                                 n_samples=8)
            group = lambda r: (cat.model(r.model).hf_id, cat.gpu(r.gpu).name, r.weight_dtype)  # noqa: E731
            # Doublings (TP, clients, prompt, output) from each scored run to the nearest imported run of its
            # model x GPU x dtype; infinite when the split left that whole group to the scored half.
            reach = [min((_doublings(r, i) for i in imported if group(i) == group(r)), default=math.inf) for r in scored]
            table.append({
                "family": fam, "seed": seed, "runs": len(runs), "imported": len(imported), "scored": len(scored),
                "informed": [p.correction is not None for p in after], "reach": reach,
                "unchanged": [(p.ttft_ms.mean, p.tpot_ms.mean) == (base[r.id].base_ttft_ms, base[r.id].base_tpot_ms)
                              for r, p in zip(scored, after)],
                "ttft_before": _median_ape([base[r.id].base_ttft_ms for r in scored], [r.ttft_ms["mean"] for r in scored]),
                "ttft_after": _median_ape([p.ttft_ms.mean for p in after], [r.ttft_ms["mean"] for r in scored]),
                "tpot_before": _median_ape([base[r.id].base_tpot_ms for r in scored], [r.tpot_ms["mean"] for r in scored]),
                "tpot_after": _median_ape([p.tpot_ms.mean for p in after], [r.tpot_ms["mean"] for r in scored]),
            })
    print("\n| family | runs | seed | TTFT before → after % | TPOT before → after % |")
    print("|---|---|---|---|---|")
    for t in table:
        print(f"| {t['family']} | {t['runs']} | {t['seed']} | {t['ttft_before']:.1f} → {t['ttft_after']:.1f} | "
              f"{t['tpot_before']:.1f} → {t['tpot_after']:.1f} |")
    return table


def _big(halves: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for t in halves:
        if t["runs"] >= 10:
            out[t["family"]].append(t)
    return out


def test_imported_runs_inform_what_is_within_reach_and_nothing_else(halves):
    """A scored run with an imported run of its model x GPU x dtype within three doublings is corrected; one
    without any (another dtype, or the split left the whole group to the scored half) keeps the base model's
    prediction to the last digit. Between the two lies the share rule's edge (the range's box, not a run)."""
    cases = [(d, i, u) for t in halves for d, i, u in zip(t["reach"], t["informed"], t["unchanged"])]
    assert all(i for d, i, _ in cases if d <= MAX_DOUBLINGS)
    assert all(u and not i for d, i, u in cases if d == math.inf)
    assert all(u for _, i, u in cases if not i)
    assert any(not i for _, i, _ in cases)  # some split left runs out of reach: the last-digit check ran


def _median_ratios(halves: list[dict]) -> dict[tuple[str, str], float]:
    """(family, metric) -> median over the splits of the scored half's error after / before the import."""
    return {(fam, metric): float(np.median([t[f"{metric}_after"] / t[f"{metric}_before"] for t in splits]))
            for fam, splits in _big(halves).items() for metric in ("ttft", "tpot")}


def test_imported_runs_cut_every_familys_error_by_at_least_a_third_over_ten_splits(halves):
    """A regression guard below the issue's bar (next test): on the typical split, the corrections remove at least a
    third of both errors of every family with ten or more runs (the weakest, Llama-3.1-70B's TPOT, keeps 0.48)."""
    ratios = _median_ratios(halves)
    assert len({fam for fam, _ in ratios}) >= 4
    assert all(r <= 0.65 for r in ratios.values()), ratios


def test_median_error_at_least_halves_for_every_family_with_ten_runs_over_ten_splits(halves):
    """The issue's bar: over the ten splits, the typical split halves both errors of every family. The closest is
    Llama-3.1-70B's TPOT (0.48 of the error stays; 0.51 while TPOT was corrected over prompt and output lengths
    rather than the KV-read and prefill shares of the step, planner.feedback)."""
    for (fam, metric), ratio in _median_ratios(halves).items():
        assert ratio <= 0.5, (fam, metric, ratio)


@pytest.mark.xfail(reason="not yet at every split (benchmarks/results/own_runs.md): Qwen3-235B's TTFT (20 runs in five "
                          "TP x prompt cells) when a split leaves a whole cell, such as every 1,000-token prompt or both "
                          "48-client runs, to the scored half (no kernel shape, even one picked afterwards on the scored "
                          "halves, halves it at all of 30 splits); the 15 runs of Llama-3.1-8B; Kimi-K2.5's TTFT; "
                          "Llama-3.1-70B's TPOT, where the shape chosen from 20 runs per GPU by leave-one-out is the "
                          "limit (a shape picked afterwards would halve it at all ten splits)", strict=False)
def test_median_error_halves_at_every_split(halves):
    for fam, splits in _big(halves).items():
        for t in splits:
            assert t["ttft_after"] <= t["ttft_before"] / 2, t
            assert t["tpot_after"] <= t["tpot_before"] / 2, t
