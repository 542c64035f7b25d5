"""The fitted latency parameters shipped in `kb/data/latency_fit.json` (written by benchmarks/fit.py)."""

from __future__ import annotations

from functools import lru_cache

from kb.catalog import DATA_DIR
from planner.steptime import LatencyParams

FIT_FILE = DATA_DIR / "latency_fit.json"


@lru_cache(maxsize=1)
def load_latency_params() -> LatencyParams:
    """The shipped fit; falls back to documented priors (and says so) if the file is missing."""
    if not FIT_FILE.exists():
        return LatencyParams(method="uncalibrated priors (kb/data/latency_fit.json missing)")
    return LatencyParams.model_validate_json(FIT_FILE.read_text())
