"""Learning from measurements: imported benchmark runs and SLO-report outcomes correct the base model.

Both sources become `Evidence`: the log of observed / base-predicted for one metric (TTFT, TPOT, or the
throughput a closed-loop run reached beside what its own latencies imply) of one model x GPU x weight dtype,
at a TP and, for runs, a load (requests in flight, prompt and output tokens, and the base model's TPOT by part).
One code path fits them.

Per model x GPU x weight dtype and metric, the log correction is a Gaussian process over coordinates (centred on
the points' mean) and the vLLM release. The coordinates:
- TTFT and throughput: log2 of TP, requests in flight, prompt and output tokens;
- TPOT: log2 of TP and requests in flight, and the shares of the base TPOT spent reading the KV cache and added by
  other requests' prefill chunks (`Prediction.tpot_shares`), SHARE_UNITS per whole TPOT. Prompt and output lengths
  act on TPOT through those two parts, and a part that runs at another speed than modelled (fp8 KV reads on one
  GPU's attention kernel, say) moves the log TPOT by about (its speed ratio - 1) x its share: a linear trend in the
  share, which one slope describes at every length and load. Over log2 of the lengths the same error is an
  interaction of length and load that a few runs cannot pin down (benchmarks/own_runs.py, a random half of a family
  imported, median over ten splits of the other half's TPOT error after / before, on the sixth-pass base:
  Llama-3.1-70B 0.51 -> 0.46, seeds 10-29 0.55 -> 0.52; Kimi-K2.5 0.10 -> 0.09, MiniMax-M2.5 0.20 -> 0.19,
  Qwen3-235B 0.09 -> 0.06; TTFT unchanged). Both shares are of the whole TPOT, so that their first-order effects add. A quarter of TPOT counts
  as a doubling: the slope prior (SLOPE_TAUS per unit) then spans parts 20-60 % off, and shares a quarter apart are
  as far apart as twice the clients. Tried and not kept: log odds of the shares (Llama-3.1-70B 0.52-0.62), 2 units
  (0.51), the KV share of the decode step alone (0.48, seeds 10-29 0.50), the lengths kept beside the shares
  (0.48 / 0.51). TTFT keeps the lengths: the shares beside them moved it both ways (Llama-3.1-70B 0.39 -> 0.41,
  Qwen3-235B 0.42 -> 0.36).

The prior has mean 0, i.e. the base model:
- intercept prior sd `PRIOR_TAU`, how far one configuration's bias spreads: the base model's held-out error
  (benchmarks/results/accuracy.md, vLLM rows: median |error| TTFT 17 %, TPOT 9 %, i.e. a log-normal tau of
  about 0.24 and 0.13, since the median of |N(0, tau)| is 0.674 tau);
- the whole correction (bias and load shape) is split evenly into a part all vLLM releases share and a part of
  each release (half the prior variance each, so within one release the prior is unchanged): a release changes
  kernels and the scheduler (async scheduling became the default in 0.14, vllm-project/vllm#27614), and the
  shared calibration shows it (MiniMax-M2.5 fp8 on B200, the 9 configurations measured on both 0.17.0 and
  0.19.0: median TTFT 24 % and TPOT 13 % lower on 0.19.0, whatever the base model predicts for them).
  Runs of one release therefore move a prediction for another release half as far as their own. A run or
  query that names no release is taken at the release servewise deploys (`DEPLOYED_RELEASE`, the image
  gitops/render.py pins); SLO reports are of such deployments;
- slope prior sd `SLOPE_TAU` per doubling (per unit of a share): the held-out error drifts by a few per cent per
  doubling of load;
- the noise of a run is the spread of the runs around the fit (estimated per group, with a weak prior), so
  a few agreeing runs move a prediction almost all the way and scattered ones move it less;
- the noise of one SLO report is sqrt(K) tau, K = 3: histogram_quantile interpolates inside vLLM's buckets,
  which are a factor 1.3-2.5 wide around typical TTFT/TPOT (log(2)/sqrt(12) = 0.2 for a factor-2 bucket), plus
  traffic and token lengths drifting from the plan's (a guess: 0.2-0.3), so sigma is about 0.3-0.35, which
  gives K of about 2 for TTFT and 5-7 for TPOT. K = 3 lies between: three agreeing reports move a prediction
  half way, so one odd week cannot swing a plan. Reports carry no load, so they inform the intercept only.

The parallel layout is not a coordinate: runs whose MoE layers span more GPUs than attention TP (attention data
parallel, a layout servewise does not predict) or run expert parallel (which the base model predicts) are kept out
by `planner.measured`, since they would pull the plain-TP correction toward another layout's errors.

Where it applies (the stated share rule): a query within three doublings of the range of the coordinates the
points cover (summed over the coordinates, a quarter of TPOT counting as one doubling of a share) gets the
process's own mean there: inside the range, what the runs say; outside, the linear trend goes on and the local
part fades at its length scale, so a trend the runs show throughout carries to the next prompt length or load
while a local bump does not.
Holding the load at the edge and halving the correction per doubling instead (the rule before) did worse on
the shared calibration where runs are sparse, and no better elsewhere (benchmarks/own_runs.py: a random half
of a family imported, the median over ten splits of the other half's error, with the base of 2026-11-30):
Llama-3.1-8B's TTFT 40 % and TPOT 13.7 % against 27 % and 8.5 %, Qwen3-235B's TTFT (its error grows with the
prompt on H200) 8.0 % against 7.0 %; the other families within 0.1 point. Beyond three doublings
nothing is applied; the uncertainty band follows the process's variance, and its blend back to the base
model's band halves per doubling outside the range (`share`). Another weight dtype or GPU gets nothing:
different kernels, different errors. The factor is bounded to [1/MAX_FACTOR, MAX_FACTOR]: a run further off
than that measured something else (wrong GPU, options or harness), and a plan should not follow it blindly;
a correction from SLO reports alone stays within MAX_CORRECTION.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from planner.contracts import AppliedCorrection, Correction, CorrectionTerm, EvidenceRef, RunInfluence

Metric = Literal["ttft", "tpot", "throughput"]

# The vLLM release servewise renders (gitops/render.py VLLM_IMAGE, gitops/vllm_facts VLLM_VERSION; a test keeps
# them equal): what a prediction is for unless its query names another.
DEPLOYED_RELEASE = "0.19.0"

SHRINKAGE_K = 3.0
PRIOR_TAU: dict[str, float] = {"ttft": 0.24, "tpot": 0.13, "throughput": 0.13}
LENGTHS = (1.0, 2.0, 4.0)
LOCAL_TAU_RATIOS = (0.0, 0.5, 1.0, 2.0, 4.0)
SLOPE_TAUS = (0.0, 0.05, 0.15)
DEFAULT_SHAPE = (2.0, 0.05, 1.0)  # (length, slope sd, local sd / bias sd) below MIN_RUNS_TO_SELECT runs
MIN_RUNS_TO_SELECT = 6
# Bound on a learned correction: more than a factor 3 says the base model does not describe the configuration
# (its held-out error is a factor 1.2), and one bad report must not be able to move predictions further. The
# report stores outcomes only within a factor 20 of the prediction (gitops/report.py); this bound also holds
# for outcomes stored before that check existed.
MAX_CORRECTION = 3.0
# Measured runs may move a prediction further (MAX_FACTOR): a benchmark measures the configuration itself, and
# the shared calibration holds whole families 2-7x off the base model (Llama-3.1-8B on vLLM 0.12).
MAX_FACTOR = 8.0
MAX_DOUBLINGS = 3.0
LOAD_DIMS = ("tp", "inflight", "isl", "osl")
SHARE_DIMS = ("kv_share", "prefill_share")
DIMS: dict[str, tuple[str, ...]] = {"ttft": LOAD_DIMS, "throughput": LOAD_DIMS, "tpot": ("tp", "inflight", *SHARE_DIMS)}
SHARE_UNITS = 4.0
# Weak prior on a group's run-to-run spread (sd 0.1 in log, worth two runs) so two runs that happen to
# agree do not claim a perfect fit.
_RUN_SIGMA0, _RUN_NU0 = 0.1, 2.0
_CAUCHY = 2.0
_MAX_LISTED = 10
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


class Evidence(BaseModel):
    """One measured point for one metric, relative to the base model's prediction of the same configuration."""

    ref: EvidenceRef
    model: str
    gpu: str
    weight_dtype: str = ""
    tp: int
    metric: Metric
    log_ratio: float = Field(description="log(observed / base-predicted)")
    inflight: float | None = Field(default=None, description="requests in flight per replica (runs only)")
    isl: float | None = None
    osl: float | None = None
    kv_share: float | None = Field(default=None, description="share of the base TPOT reading the KV cache (runs only)")
    prefill_share: float | None = Field(default=None, description="share of the base TPOT added by prefill (runs only)")
    release: str = Field(default=DEPLOYED_RELEASE, description="vLLM release measured (reports: the deployed one)")

    def x(self, dim: str) -> float | None:
        return coordinate(dim, getattr(self, dim))


def coordinate(dim: str, value: float | None) -> float | None:
    """Where a value lies along one of the process's axes: SHARE_UNITS per whole TPOT for a share, else doublings."""
    if value is None:
        return None
    if dim in SHARE_DIMS:
        return SHARE_UNITS * value
    return math.log2(value) if value > 0 else None


def outcome_evidence(outcomes: Iterable[Outcome]) -> list[Evidence]:
    """TTFT and TPOT percentiles of SLO reports as evidence (one report id per deployment and time)."""
    out = []
    for o in outcomes:
        metric = "ttft" if o.metric in _TTFT else "tpot" if o.metric in _TPOT else None
        if metric is None:
            continue
        ref = EvidenceRef(id=f"{o.deployment}@{o.created_at}", source=f"slo report {o.deployment}", kind="outcome")
        out.append(Evidence(ref=ref, model=o.model, gpu=o.gpu, weight_dtype=o.weight_dtype, tp=o.tp, metric=metric,
                            log_ratio=math.log(o.observed / o.predicted)))
    return out


Parts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _parts(a: np.ndarray, b: np.ndarray, center: np.ndarray, release_a: Sequence[str], release_b: Sequence[str]
           ) -> Parts:
    """(squared distance, linear product, both rows known, same release) between points, for `_kernel`."""
    d2 = np.nansum((a[:, None, :] - b[None, :, :]) ** 2, axis=2)
    known = ~np.isnan(a).any(axis=1)[:, None] & ~np.isnan(b).any(axis=1)[None, :]
    lin = np.nan_to_num(a - center) @ np.nan_to_num(b - center).T
    same = np.array(release_a, object)[:, None] == np.array(release_b, object)[None, :]
    return d2, lin, known, same


def _release_share(parts: Parts) -> np.ndarray:
    """1 between points of one release, 1/2 across releases: half of every part is the release's own."""
    return 0.5 + 0.5 * parts[3]


def _kernel(parts: Parts, tau: Sequence[float], length: float) -> np.ndarray:
    """A bias, a linear trend per doubling and a squared-exponential local part with prior sds tau = (bias,
    slope, local), half shared by all releases and half each release's own; rows with an unknown coordinate
    (NaN: a report without load) share only the bias."""
    d2, lin, known, _ = parts
    bias, slope, local = tau
    shaped = np.where(known, slope**2 * lin + local**2 * np.exp(-d2 / (2 * length**2)), 0.0)
    return (bias**2 + shaped) * _release_share(parts)


def _fit_noise(k: np.ndarray, y: np.ndarray, is_run: np.ndarray, outcome_var: float) -> tuple[float, np.ndarray, float]:
    """(median |leave-one-out residual| of the runs, (K + noise)^-1, run noise variance) for one kernel matrix."""
    run_var = _RUN_SIGMA0**2
    robust = np.ones(len(y))
    score = 0.0
    n = int(is_run.sum())
    for _ in range(6):
        solve = np.linalg.inv(k + np.diag(np.where(is_run, run_var / robust, outcome_var)))
        if not n:
            break
        # Leave-one-out residuals: what the other points predict for each run. Their median absolute value
        # (as a normal sd) is the runs' spread, so one odd run does not widen it; runs far beyond it count
        # less (Cauchy weights), so a wrong or bimodal row cannot drag its neighbours.
        loo = ((solve @ y) / np.diag(solve))[is_run]
        score = float(np.median(np.abs(loo)))
        previous, run_var = run_var, (n * (1.4826 * score) ** 2 + _RUN_NU0 * _RUN_SIGMA0**2) / (n + _RUN_NU0)
        robust[is_run] = 1 / (1 + (loo / (_CAUCHY * math.sqrt(run_var))) ** 2)
        if abs(run_var - previous) < 1e-3 * previous:
            break
    return score, solve, run_var


def fit_term(points: Sequence[Evidence], metric: Metric, weight_dtype: str) -> CorrectionTerm:
    """The shrunk load-dependent correction of one metric from the points of one model x GPU x dtype."""
    dims = [d for d in DIMS[metric] if any(p.x(d) is not None for p in points)]
    x = np.array([[np.nan if p.x(d) is None else p.x(d) for d in dims] for p in points], float).reshape(len(points), len(dims))
    y = np.array([p.log_ratio for p in points])
    bias = PRIOR_TAU[metric]
    is_run = np.array([p.ref.kind == "run" for p in points])
    known = [x[:, j][~np.isnan(x[:, j])] for j in range(len(dims))]
    # A report carries no load: it informs the shared bias only (its TP still sets how far the correction reaches).
    x = np.where(is_run[:, None], x, np.nan)
    center = np.array([np.nanmean(x[:, j]) if is_run.any() else 0.0 for j in range(len(dims))])
    # With enough runs the kernel's shape is chosen from a small grid by how well the runs predict each other
    # (leave one out); with fewer, the prior's default shape stands and the prior alone does the shrinking.
    # (A local part of size 0 has no length: one shape per slope is enough then.)
    grid = sorted({(length if ratio else LENGTHS[0], slope, ratio)
                   for length in LENGTHS for slope in SLOPE_TAUS for ratio in LOCAL_TAU_RATIOS})
    select = int(is_run.sum()) >= MIN_RUNS_TO_SELECT
    releases = [p.release for p in points]
    parts = _parts(x, x, center, releases, releases)
    best = None
    for length, slope, ratio in grid if select else [DEFAULT_SHAPE]:
        tau = (bias, slope, ratio * bias)
        fitted = _fit_noise(_kernel(parts, tau, length), y, is_run, SHRINKAGE_K * bias**2)
        if best is None or fitted[0] < best[0]:
            best = (*fitted, tau, length)
    base_score = float(np.median(np.abs(y[is_run]))) if select else math.inf
    if base_score < best[0] and is_run.all():
        # The runs agree with the base model better than any correction predicts them from each other: keep
        # it, and let their spread around it set the band.
        best = (base_score, np.zeros_like(best[1]), (1.4826 * base_score) ** 2, (bias, 0.0, 0.0), best[4])
    _, solve, run_var, tau, length = best
    sigma = math.sqrt(run_var) if is_run.any() else math.sqrt(SHRINKAGE_K) * bias
    return CorrectionTerm(weight_dtype=weight_dtype, metric=metric, dims=dims, lo=[float(v.min()) for v in known],
                          hi=[float(v.max()) for v in known], x=[[None if np.isnan(v) else float(v) for v in r] for r in x],
                          y=y.tolist(), solve=solve.tolist(), sigma=sigma, tau=list(tau), length=length,
                          center=center.tolist(), releases=releases, refs=[p.ref for p in points])


def corrections(outcomes: Iterable[Outcome] = (), evidence: Iterable[Evidence] = ()
                ) -> dict[tuple[str, str, int], Correction]:
    """Corrections keyed by (model hf_id, GPU name, TP) for every TP within reach of the share rule.

    All TPs of one model x GPU share one Correction: which dtype and load a query has picks the terms."""
    points = [*outcome_evidence(outcomes), *evidence]
    groups: dict[tuple[str, str], dict[tuple[str, str], list[Evidence]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        groups[(p.model, p.gpu)][(p.weight_dtype, p.metric)].append(p)
    out: dict[tuple[str, str, int], Correction] = {}
    for (model, gpu), by_term in groups.items():
        terms = [fit_term(pts, metric, dtype) for (dtype, metric), pts in sorted(by_term.items())]
        refs = {(r.kind, r.id) for t in terms for r in t.refs}
        n_runs = sum(1 for kind, _ in refs if kind == "run")
        n_reports = len(refs) - n_runs
        tps = {p.tp for pts in by_term.values() for p in pts}
        reach = {t * 2**k for t in tps for k in range(-int(MAX_DOUBLINGS), int(MAX_DOUBLINGS) + 1)}
        parts = [f"{n_runs} imported run(s)"] if n_runs else []
        parts += [f"{n_reports} report(s)"] if n_reports else []
        source = (f"{' and '.join(parts)} of {model} on {gpu} (TP {', '.join(map(str, sorted(tps)))}), "
                  f"shrunk toward the base model (K={SHRINKAGE_K:g} for reports)")
        for tp in sorted(t for t in reach if 1 <= t <= 64 and t == int(t)):
            corr = Correction(n_outcomes=n_reports, n_runs=n_runs, measured_tps=sorted(tps), source=source, terms=terms)
            dtype = next((t.weight_dtype for t in terms), "")
            at = resolve(corr, weight_dtype=dtype, tp=tp)
            if at is None:
                continue
            out[(model, gpu, int(tp))] = corr.model_copy(update={"ttft_factor": round(at.ttft_factor, 4),
                                                                 "tpot_factor": round(at.tpot_factor, 4)})
    return out


def listed(table: dict[tuple[str, str, int], Correction]) -> list[dict]:
    """One line per model x GPU x TP that was measured (the other TPs carry the same correction by share)."""
    return [{"model": k[0], "gpu": k[1], "tp": k[2], **v.model_dump()} for k, v in table.items()
            if not v.measured_tps or k[2] in v.measured_tps]


def _arrays(term: CorrectionTerm) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The term's points, (K + noise)^-1, log ratios and centre as arrays, converted once per term."""
    if not term._arrays:
        x = np.array([[np.nan if v is None else v for v in r] for r in term.x], float).reshape(len(term.x), len(term.dims))
        term._arrays.extend([x, np.array(term.solve), np.array(term.y), np.array(term.center)])
    x, solve, y, center = term._arrays
    return x, solve, y, center


def _term_at(term: CorrectionTerm, query: dict[str, float | None], release: str
             ) -> tuple[np.ndarray, float, float] | None:
    """(per-point log contributions, doublings outside the range, predictive sd), or None beyond reach. The
    process's own mean at the query, inside the range or outside it: there its trend goes on and its local part
    fades with distance, as the runs' spread chose."""
    q = [coordinate(d, query.get(d)) for d in term.dims]
    xq = np.array([[np.nan if v is None else v for v in q]], float).reshape(1, len(term.dims))
    outside = float(np.nansum(np.abs(xq - np.clip(xq, term.lo, term.hi))))
    if outside > MAX_DOUBLINGS:
        return None
    x, solve, y, center = _arrays(term)
    kq = _kernel(_parts(xq, x, center, [release], term.releases), term.tau, term.length)[0]
    h = kq @ solve
    prior = _kernel(_parts(xq, xq, center, [release], [release]), term.tau, term.length)[0, 0]
    sd = math.sqrt(max(prior - float(h @ kq), 0.0) + term.sigma**2)
    return h * y, outside, sd


def resolve(correction: Correction | None, *, weight_dtype: str, tp: int, inflight: float | None = None,
            isl: float | None = None, osl: float | None = None, kv_share: float | None = None,
            prefill_share: float | None = None, release: str | None = None,
            base_uncertainty_pct: float | None = None) -> AppliedCorrection | None:
    """The correction for one query (at `release`, default the deployed one; `kv_share` and `prefill_share` are the
    base prediction's `tpot_shares`), or None when nothing measured informs it (the prediction stays the base
    model's to the last digit)."""
    if correction is None:
        return None
    if not correction.terms:  # a plain factor pair (built by hand, or by a caller that has no load)
        return AppliedCorrection(ttft_factor=correction.ttft_factor, tpot_factor=correction.tpot_factor, share=1.0,
                                 n_points=correction.n_outcomes + correction.n_runs)
    query = {"tp": tp, "inflight": inflight, "isl": isl, "osl": osl, "kv_share": kv_share, "prefill_share": prefill_share}
    chosen: dict[str, CorrectionTerm] = {}
    for term in correction.terms:
        if term.weight_dtype == weight_dtype or (term.weight_dtype == "" and term.metric not in chosen):
            chosen[term.metric] = term
    logs, influence, uncertainty = {}, defaultdict(lambda: {"ttft": 0.0, "tpot": 0.0}), {}
    refs: dict[str, EvidenceRef] = {}
    outside_max = 0.0
    for metric, term in chosen.items():
        at = _term_at(term, query, release or DEPLOYED_RELEASE)
        if at is None:
            continue
        contrib, outside, sd = at
        share = 0.5**outside
        outside_max = max(outside_max, outside)
        bound = math.log(MAX_FACTOR if any(r.kind == "run" for r in term.refs) else MAX_CORRECTION)
        logs[metric] = min(max(float(contrib.sum()), -bound), bound)
        if metric in ("ttft", "tpot"):
            for ref, c in zip(term.refs, contrib.tolist()):
                influence[ref.id][metric] += c
                refs[ref.id] = ref
            if base_uncertainty_pct is not None:
                own = (math.exp(0.674 * sd) - 1) * 100
                # At the runs, the runs' band and the base model's band are two independent bounds on one error:
                # combined (inverse variances add) the band is narrower than either, whichever is wider alone.
                near = own * base_uncertainty_pct / math.hypot(own, base_uncertainty_pct)
                uncertainty[metric] = share * near + (1 - share) * max(own, base_uncertainty_pct)
    if not logs:
        return None
    top = sorted(influence.items(), key=lambda kv: -max(abs(kv[1]["ttft"]), abs(kv[1]["tpot"])))[:_MAX_LISTED]
    runs = [RunInfluence(id=i, source=refs[i].source, kind=refs[i].kind, ttft_pct=round((math.exp(v["ttft"]) - 1) * 100, 2),
                         tpot_pct=round((math.exp(v["tpot"]) - 1) * 100, 2)) for i, v in top]
    return AppliedCorrection(
        ttft_factor=math.exp(logs.get("ttft", 0.0)), tpot_factor=math.exp(logs.get("tpot", 0.0)),
        throughput_factor=math.exp(logs.get("throughput", 0.0)), share=0.5**outside_max,
        doublings_outside=round(outside_max, 3), n_points=len(influence), runs=runs,
        uncertainty_pct=round(max(uncertainty.values()), 1) if uncertainty else None,
    )


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
