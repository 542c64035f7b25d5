"""Shared by the benchmark scripts: the catalog and measured rows from the repository's seed data."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kb.benchmarks import load_benchmarks  # noqa: E402
from kb.catalog import load_catalog, open_kb  # noqa: E402
from planner.catalog import BenchmarkRow, Catalog  # noqa: E402

# Published runs from other labs and harnesses (benchmarks/public_runs.jsonl, also in the seed data). They are
# transfer checks: never fitted, scored apart from the calibration rows. Told apart by id, whatever their source, so
# a row added from a new lab can never slip into the fit.
PUBLIC_RUNS = Path(__file__).resolve().parent / "public_runs.jsonl"
TRANSFER_IDS = frozenset(BenchmarkRow.model_validate_json(x).id for x in PUBLIC_RUNS.read_text().splitlines() if x.strip())


def seed_data() -> tuple[Catalog, list[BenchmarkRow]]:
    """Built in a throwaway knowledge base that is removed once loaded."""
    with tempfile.TemporaryDirectory(prefix="servewise-bench-") as tmp:
        kb = open_kb(Path(tmp) / "kb.sqlite")
        try:
            return load_catalog(kb), load_benchmarks(kb)
        finally:
            kb.close()


def split_rows(rows: list[BenchmarkRow]) -> tuple[list[BenchmarkRow], list[BenchmarkRow]]:
    """(calibration rows, published transfer-check rows)."""
    return ([r for r in rows if r.id not in TRANSFER_IDS], [r for r in rows if r.id in TRANSFER_IDS])


def replace_source_rows(path: Path, source: str, rows: list[BenchmarkRow]) -> None:
    """`path` (a JSONL of rows) with its rows of `source` replaced by `rows`: ids kept stay in place, new ones go after
    the last row of that source (or at the end); rows of other sources are left as they are."""
    new = {r.id: r.model_dump_json(exclude_none=False) for r in rows}
    out, placed = [], set()
    for raw in path.read_text().splitlines():
        if not raw.strip():
            continue
        old = json.loads(raw)
        if old["source"] != source:
            out.append(raw)
        elif old["id"] in new:
            out.append(new[old["id"]])
            placed.add(old["id"])
    last = max((i for i, raw in enumerate(out) if json.loads(raw)["source"] == source), default=len(out) - 1)
    out[last + 1:last + 1] = [line for rid, line in new.items() if rid not in placed]
    path.write_text("\n".join(out) + "\n")
