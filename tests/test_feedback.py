"""Corrections learned from outcomes: shrunk toward the base model, keyed by model x GPU x TP."""

from __future__ import annotations

import math

import pytest

from planner.feedback import SHRINKAGE_K, Outcome, corrections, error_over_time


def _o(metric: str, predicted: float, observed: float, dep: str = "ns/a", at: str = "2026-11-01T00:00:00") -> Outcome:
    return Outcome(deployment=dep, model="m", gpu="L4", tp=1, metric=metric, predicted=predicted, observed=observed,
                   window_s=3600, created_at=at)


def test_one_report_moves_little_many_move_more():
    one = corrections([_o("tpot_p90_ms", 10, 20)])[("m", "L4", 1)]
    assert one.tpot_factor == pytest.approx(math.exp(1 / (1 + SHRINKAGE_K) * math.log(2)), rel=1e-3)
    many = corrections([_o("tpot_p90_ms", 10, 20, at=f"2026-11-{d:02d}T00:00:00") for d in range(1, 21)])[("m", "L4", 1)]
    assert one.tpot_factor < many.tpot_factor < 2 and many.n_outcomes == 20
    assert one.ttft_factor == 1.0


def test_error_over_time_is_per_day_and_metric():
    pts = error_over_time([_o("ttft_p90_ms", 100, 120, at="2026-11-01T01:00:00"),
                           _o("ttft_p90_ms", 100, 80, at="2026-11-01T02:00:00"),
                           _o("ttft_p90_ms", 100, 100, at="2026-11-02T01:00:00")])
    assert [(p.period, p.n) for p in pts] == [("2026-11-01", 2), ("2026-11-02", 1)]
    assert pts[1].median_abs_pct_error == 0
