"""Learning from observed outcomes: per model x GPU x TP corrections, shrunk toward the base model.

An outcome pairs what servewise predicted with what Prometheus observed for one metric of one
deployment. The correction for a configuration is exp(w * mean(log(observed / predicted))) with
w = n / (n + K): with few outcomes the base model (factor 1) dominates, with many the data does.

K is the empirical-Bayes ratio sigma^2 / tau^2 of a normal prior on the log bias of one configuration:
- tau, how far a configuration's true bias spreads: the base model's held-out error
  (benchmarks/results/accuracy.md, vLLM rows: median |error| TTFT 17 %, TPOT 9 %, i.e. a log-normal
  tau of about 0.24 and 0.13, since the median of |N(0, tau)| is 0.674 tau);
- sigma, the noise of one report's log(observed / predicted): histogram_quantile interpolates inside
  vLLM's buckets, which are a factor 1.3-2.5 wide around typical TTFT/TPOT (log(2)/sqrt(12) = 0.2 for a
  factor-2 bucket), plus traffic and token lengths drifting from the plan's (a guess: 0.2-0.3), so
  sigma is about 0.3-0.35.
That gives K of about 2 for TTFT and 5-7 for TPOT. K = 3, one value for both, lies between: three
agreeing reports move a prediction half way (w = 0.5), so one odd week cannot swing a plan, though for
TPOT the estimate says the base model now deserves more weight than that.
"""

from __future__ import annotations

import math
from collections import defaultdict

from pydantic import BaseModel, Field

from planner.contracts import Correction

SHRINKAGE_K = 3.0
# Bound on a learned correction: more than a factor 3 says the base model does not describe the configuration
# (its held-out error is a factor 1.2), and one bad report must not be able to move predictions further. The
# report stores outcomes only within a factor 20 of the prediction (gitops/report.py); this bound also holds
# for outcomes stored before that check existed.
MAX_CORRECTION = 3.0
_TTFT = ("ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms")
_TPOT = ("tpot_p50_ms", "tpot_p90_ms", "tpot_p99_ms")


class Outcome(BaseModel):
    """One metric of one deployment: predicted beside observed."""

    deployment: str
    plan_id: str = ""
    model: str
    gpu: str
    tp: int
    weight_dtype: str = ""
    metric: str = Field(description="e.g. ttft_p90_ms, tpot_p90_ms, e2e_p95_ms, output_tok_s")
    predicted: float = Field(gt=0)
    observed: float = Field(gt=0)
    window_s: float = Field(gt=0)
    created_at: str = ""


def _factor(values: list[float]) -> float:
    if not values:
        return 1.0
    w = len(values) / (len(values) + SHRINKAGE_K)
    return min(max(math.exp(w * sum(values) / len(values)), 1 / MAX_CORRECTION), MAX_CORRECTION)


def corrections(outcomes: list[Outcome]) -> dict[tuple[str, str, int], Correction]:
    """Shrunk TTFT/TPOT correction factors keyed by (model hf_id, GPU name, TP)."""
    logs: dict[tuple[str, str, int], dict[str, list]] = defaultdict(lambda: {"ttft": [], "tpot": [], "reports": set()})
    for o in outcomes:
        key = (o.model, o.gpu, o.tp)
        if o.metric in _TTFT:
            logs[key]["ttft"].append(math.log(o.observed / o.predicted))
        elif o.metric in _TPOT:
            logs[key]["tpot"].append(math.log(o.observed / o.predicted))
        logs[key]["reports"].add((o.deployment, o.created_at))
    out = {}
    for key, d in logs.items():
        n = len(d["reports"])
        out[key] = Correction(
            ttft_factor=round(_factor(d["ttft"]), 4), tpot_factor=round(_factor(d["tpot"]), 4), n_outcomes=n,
            source=f"{n} report(s) of {key[0]} on {key[2]}x {key[1]}, shrunk with K={SHRINKAGE_K:g}",
        )
    return out


class ErrorPoint(BaseModel):
    period: str
    metric: str
    n: int
    median_abs_pct_error: float


def error_over_time(outcomes: list[Outcome]) -> list[ErrorPoint]:
    """Median absolute percentage error of predictions per day and metric."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for o in outcomes:
        groups[(o.created_at[:10], o.metric)].append(abs(o.observed - o.predicted) / o.observed * 100)
    points = []
    for (period, metric), errs in sorted(groups.items()):
        errs.sort()
        mid = len(errs) // 2
        median = errs[mid] if len(errs) % 2 else (errs[mid - 1] + errs[mid]) / 2
        points.append(ErrorPoint(period=period, metric=metric, n=len(errs), median_abs_pct_error=round(median, 1)))
    return points
