"""Shared by the benchmark scripts: the catalog and measured rows from the repository's seed data."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kb.benchmarks import load_benchmarks  # noqa: E402
from kb.catalog import load_catalog, open_kb  # noqa: E402
from planner.catalog import BenchmarkRow, Catalog  # noqa: E402


def seed_data() -> tuple[Catalog, list[BenchmarkRow]]:
    kb = open_kb(Path(tempfile.mkdtemp(prefix="servewise-bench-")) / "kb.sqlite")
    return load_catalog(kb), load_benchmarks(kb)
