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
    """Built in a throwaway knowledge base that is removed once loaded."""
    with tempfile.TemporaryDirectory(prefix="servewise-bench-") as tmp:
        kb = open_kb(Path(tmp) / "kb.sqlite")
        try:
            return load_catalog(kb), load_benchmarks(kb)
        finally:
            kb.close()
