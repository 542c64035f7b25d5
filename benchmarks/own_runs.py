"""What a team's own runs do to the predictions (issue 19): per model family, import a random half of its runs as
the team's own and score the other half, at ten split seeds, and write benchmarks/results/own_runs.md.

    .venv/bin/python benchmarks/own_runs.py [--no-refit]

Three settings, each per family: median |error| of mean TTFT and TPOT on the scored half before -> after the
corrections, as the median over the seeds and its range:
- shipped base: the calibration rows with the shipped latency fit (which saw these rows: the easy case), at
  seeds 0-9 and again at seeds 10-29;
- base refit without the family: the latency model refitted on every other family (planner.calibration.fit), so
  the base is as wrong as on runs it never saw, then the same split;
- published runs the base was never fitted to (benchmarks/public_runs.jsonl, other labs and harnesses).
Corrections are fitted by the same code as `kb corrections` (planner.measured / planner.feedback).
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
from _data import seed_data, split_rows

from kb.latency import load_latency_params
from planner.calibration import build_dataset, family, fit
from planner.catalog import BenchmarkRow, Catalog
from planner.feedback import corrections
from planner.latency import LatencyParams, predict_many
from planner.measured import evidence, run_query, score_runs, why_unusable

SEEDS = range(10)
# Twenty more splits, so that a change is judged on splits it was not developed on as well.
MORE_SEEDS = range(10, 30)
OUT = Path(__file__).resolve().parent / "results" / "own_runs.md"


def _halves(ids: list[str], rows: dict[str, BenchmarkRow], seed: int, by_cell: bool) -> tuple[list[str], list[str]]:
    """A random half of the runs, or (by_cell) a random half of each GPU x dtype x TP x prompt-length cell, as a
    team that ran a sweep and asks about the rest of it would have; odd cells alternate which half gets more."""
    rng = random.Random(seed)
    if not by_cell:
        order = list(ids)
        rng.shuffle(order)
        return order[: len(order) // 2], order[len(order) // 2:]
    cells: dict[tuple, list[str]] = defaultdict(list)
    for i in ids:
        r = rows[i]
        cells[(r.gpu, r.weight_dtype, r.tp, r.isl)].append(i)
    imported, scored, extra = [], [], 0
    for cell in cells.values():
        rng.shuffle(cell)
        k = len(cell) // 2 + (len(cell) % 2) * extra
        extra ^= len(cell) % 2
        imported += cell[:k]
        scored += cell[k:]
    return imported, scored


def splits(runs: list[BenchmarkRow], catalog: Catalog, params: LatencyParams, by_cell: bool = False,
           seeds: range = SEEDS) -> list[dict]:
    """Per seed: the scored half's median |error| (%) of mean TTFT and TPOT, base model and corrected."""
    scored_all, _ = score_runs([(r, "own runs") for r in runs], catalog, params)
    base = {s.id: s for s in scored_all}
    rows = {r.id: r for r in runs if r.id in base}
    ids = sorted(rows)
    out = []
    for seed in seeds:
        imported, scored = _halves(ids, rows, seed, by_cell)
        table = corrections(evidence=evidence([base[i] for i in imported], rows))
        queries = [(run_query(rows[i], catalog), catalog.model(rows[i].model), catalog.gpu(rows[i].gpu)) for i in scored]
        after = predict_many(queries, params, [table.get((m.hf_id, g.name, q.tp)) for q, m, g in queries], n_samples=8)
        res = {"seed": seed}
        for metric in ("ttft", "tpot"):
            meas = np.array([getattr(rows[i], f"{metric}_ms")["mean"] for i in scored])
            before = np.array([getattr(base[i], f"base_{metric}_ms") for i in scored])
            now = np.array([getattr(p, f"{metric}_ms").mean for p in after])
            res[f"{metric}_before"] = float(np.median(np.abs(before - meas) / meas * 100))
            res[f"{metric}_after"] = float(np.median(np.abs(now - meas) / meas * 100))
        out.append(res)
    return out


def line(name: str, n: int, res: list[dict]) -> str:
    cells = []
    for metric in ("ttft", "tpot"):
        b = np.array([r[f"{metric}_before"] for r in res])
        a = np.array([r[f"{metric}_after"] for r in res])
        halved = int(np.sum(a <= b / 2))
        cells.append(f"{np.median(b):.1f} → **{np.median(a):.1f}** ({a.min():.1f}–{a.max():.1f}) | {halved}/{len(res)}")
    return f"| {name} | {n} | {' | '.join(cells)} |"


HEADER = ("| family | runs | TTFT before → after % (after: range over seeds) | TTFT halved | "
          "TPOT before → after % (range) | TPOT halved |\n|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-refit", action="store_true", help="skip the leave-one-family-out base (a refit per family)")
    args = ap.parse_args()
    catalog, rows = seed_data()
    calibration, published = split_rows(rows)
    params = load_latency_params()
    by_family: dict[str, list[BenchmarkRow]] = defaultdict(list)
    for r in calibration:
        if why_unusable(r) is None:
            by_family[family(r.model)].append(r)
    big = {f: runs for f, runs in sorted(by_family.items()) if len(runs) >= 10}
    out = ["# Own runs: import half, score half (ten split seeds)", "",
           "Written by `benchmarks/own_runs.py`. Median |error| of the mean on the scored half, before → after the "
           "imported half's corrections: the median over seeds 0-9, the range of the corrected figure over the seeds, "
           "and at how many seeds the error at least halves. Families with ten or more usable vLLM runs.", "",
           "## Shipped base (fitted on these rows)", "", HEADER]
    out += [line(f, len(runs), splits(runs, catalog, params)) for f, runs in big.items()]
    out += ["", "## Shipped base, seeds 10-29", "", "Twenty other random splits, the same way (median over these seeds).",
            "", HEADER]
    out += [line(f, len(runs), splits(runs, catalog, params, seeds=MORE_SEEDS)) for f, runs in big.items()]
    out += ["", "## Shipped base, half of each GPU x dtype x TP x prompt-length cell imported", "",
            "A random half splits some small families unevenly: all of one cell (every 1,000-token prompt of "
            "Qwen3-235B, say) can land in the scored half, where the correction only extrapolates by the share "
            "rule. Here each cell is split in half instead.", "", HEADER]
    out += [line(f, len(runs), splits(runs, catalog, params, by_cell=True)) for f, runs in big.items()]
    if not args.no_refit:
        data = build_dataset(calibration, catalog)
        out += ["", "## Base refit without the family (as wrong as on unseen runs)", "",
                "Rows of vLLM before 0.15 are scored but never fitted (planner.calibration), so the shipped base "
                "never saw Llama-3.1-8B or Qwen3-235B (all 0.12.0): their rows repeat the shipped-base figures.", "",
                HEADER]
        for f, runs in big.items():
            held = data.subset(np.array([family(r.model) != f for r in data.rows]))
            out.append(line(f, len(runs), splits(runs, catalog, fit(held, params, iterations=40))))
            print(out[-1], flush=True)
    pub: dict[str, list[BenchmarkRow]] = defaultdict(list)
    for r in published:
        if why_unusable(r) is None:
            pub[f"{family(r.model)} ({r.source})"].append(r)
    out += ["", "## Published runs of other labs (never fitted)", "",
            "Too few for the ten-run bar; shown for the direction of the change.", "", HEADER]
    # A family with a single published run has no half to import.
    out += [line(f, len(runs), splits(runs, catalog, params)) for f, runs in sorted(pub.items()) if len(runs) >= 2]
    OUT.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
