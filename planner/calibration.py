"""Fitting LatencyParams to measured vLLM benchmark rows, and measuring the error on rows held out.

Least squares on log(predicted / measured) of mean TTFT and mean TPOT (Levenberg-Marquardt with a
numeric Jacobian, soft-L1 weights so a few odd rows cannot dominate). Efficiencies are fitted through a
logistic map so they stay in (0, 1): no fitted model can beat the datasheet. Pure numpy, reproducible.

servewise predicts vLLM, so only vLLM rows are fitted and scored; TensorRT-LLM and SGLang rows stay in
the knowledge base for comparison. Rows from vLLM releases before 0.15 are scored but not fitted: their
TPOT stays near 50 ms whatever the concurrency (Qwen3-235B) or sits below the decode-only step time
(Llama-3.1-8B), the mark of a harness that measured something else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.batching import Load, async_by_default, release_at_least, rounds_per_client, solve
from planner.catalog import BenchmarkRow, Catalog, ModelArch
from planner.errors import ServewiseError
from planner.memory import default_max_num_batched_tokens, memory_fit
from planner.steptime import FREE, LatencyParams, StepFeatures, features

# Upper bounds of the fitted fractions: no kernel streams HBM or runs tensor cores at 100 % of the
# datasheet (STREAM-like copies reach ~90 % of HBM3 bandwidth), so efficiencies stay below 0.95.
_BOUNDED = {"bw_eff": 0.95, "flops_eff": 0.95, "moe_flops_eff": 0.95, "sync": 0.5}


@dataclass
class Dataset:
    rows: list[BenchmarkRow]
    features: StepFeatures
    load: Load
    ttft: np.ndarray  # measured mean seconds
    tpot: np.ndarray
    fitted: np.ndarray  # bool: the row may be fitted (else only scored)

    def subset(self, mask: np.ndarray) -> Dataset:
        idx = np.flatnonzero(mask)
        return Dataset([self.rows[i] for i in idx], self.features.take(idx), Load(**{k: None if v is None else v[idx] for k, v in vars(self.load).items()}),
                       self.ttft[idx], self.tpot[idx], self.fitted[idx])


def usable(row: BenchmarkRow) -> str | None:
    """Why a row is neither fitted nor scored, or None when it is."""
    if row.engine != "vllm":
        return "servewise predicts vLLM; other engines' rows are kept for comparison only"
    if row.dp > 1:
        return "attention data-parallel rows (DP-attention + expert parallel) are not a layout servewise plans"
    if row.tp * row.pp > 8:
        return "more than 8 GPUs per replica (multi-node / NVL72 wide-EP) is outside what servewise plans"
    if not row.concurrency or not row.ttft_ms.get("mean") or not row.tpot_ms.get("mean"):
        return "needs closed-loop concurrency and both mean TTFT and TPOT"
    return None


def fittable(row: BenchmarkRow) -> bool:
    """Whether a usable row may be fitted (rows of vLLM before 0.15 are only scored, see module doc)."""
    return release_at_least(row.engine_version, 0, 15)


def async_scheduling(row: BenchmarkRow) -> bool:
    """Whether the run's server scheduled one step ahead: asked for with --async-scheduling, or by its release's
    default (planner.batching.async_by_default)."""
    return row.asks_async_scheduling() or async_by_default(row.engine_version)


def build_dataset(rows: Sequence[BenchmarkRow], catalog: Catalog) -> Dataset:
    kept, feats, isl, osl, clients, running, chunk, lookahead, rounds = [], [], [], [], [], [], [], [], []
    for row in rows:
        if usable(row):
            continue
        try:
            model, gpu = catalog.model(row.model), catalog.gpu(row.gpu)
            # The sources do not record the KV dtype: runs of fp8/fp4 checkpoints hold fp8 KV entries
            # (planner.memory.kv_capacity_dtype). Step times read the KV cache at the dtype a query that names none
            # gets ("auto", priced at bf16). Fitted with fp8 reads at the fp8 / bf16 time ratio vLLM 0.19.0's decode
            # attention kernels measure (0.73 on H200, 0.55 on B200: AIConfigurator's generation_attention_perf
            # tables), the held-out errors are 14.8 / 8.5 / 8.5 % against 14.4 / 9.0 / 9.5 %, but the fitted
            # per-sequence cost doubles (11 -> 24 us) and every bf16 cache (gpt-oss, dense bf16 models) predicts
            # slower with it: the published runs' TPOT 3.3 -> 6.7 %.
            mem = memory_fit(model, gpu, tp=row.tp, pp=row.pp, weight_dtype=row.weight_dtype, kv_dtype="auto",
                             context_tokens=row.isl + row.osl, max_num_seqs=row.concurrency)
        except ServewiseError:
            continue
        if not mem.fits:
            continue
        kept.append(row)
        feats.append(features(model, gpu, tp=row.tp, pp=row.pp, weight_dtype=row.weight_dtype,
                              expert_parallel=row.expert_parallel()))
        isl.append(row.isl)
        osl.append(row.osl)
        clients.append(row.concurrency)
        # Benchmark harnesses set max-num-seqs to the concurrency; the KV cache may still cap it.
        running.append(max(1.0, min(row.concurrency, mem.kv_cache_tokens // (row.isl + row.osl / 2))))
        chunk.append(default_max_num_batched_tokens(gpu))
        lookahead.append(async_scheduling(row))
        rounds.append(rounds_per_client(row.num_prompts(), row.concurrency))
    f = lambda xs: np.array(xs, float)  # noqa: E731
    load = Load(isl=f(isl), osl=f(osl), clients=f(clients), qps=np.full(len(kept), np.nan), max_running=f(running), chunk=f(chunk),
                async_scheduling=np.array(lookahead, bool), rounds=f(rounds))
    return Dataset(kept, StepFeatures.stack(feats), load, f([r.ttft_ms["mean"] / 1e3 for r in kept]),
                   f([r.tpot_ms["mean"] / 1e3 for r in kept]), np.array([fittable(r) for r in kept], bool))


def data_version(rows: Sequence[BenchmarkRow]) -> str:
    return hashlib.sha256("\n".join(sorted(r.id for r in rows)).encode()).hexdigest()[:12]


def _to_params(theta: np.ndarray, base: LatencyParams, free: Sequence[str] = FREE) -> LatencyParams:
    values = {}
    # Clipped: a parameter pressed against its bound (e.g. an overhead the data says is nil) must not overflow.
    for name, t in zip(free, np.clip(theta, -40.0, 40.0)):
        values[name] = float(_BOUNDED[name] / (1 + np.exp(-t))) if name in _BOUNDED else float(np.exp(t))
    return base.model_copy(update=values)


def _from_params(p: LatencyParams, free: Sequence[str] = FREE) -> np.ndarray:
    def logit(name: str) -> float:
        x = min(getattr(p, name) / _BOUNDED[name], 0.999)
        return float(np.log(x / (1 - x)))

    return np.array([logit(n) if n in _BOUNDED else np.log(getattr(p, n)) for n in free], float)


def predict_means(p: LatencyParams, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Mean TTFT and TPOT (seconds) the model gives for each row's configuration."""
    state = solve(p, data.features, data.load)
    return state.ttft, state.tpot


def _residuals(theta: np.ndarray, base: LatencyParams, data: Dataset, free: Sequence[str] = FREE) -> np.ndarray:
    ttft, tpot = predict_means(_to_params(theta, base, free), data)
    r = np.concatenate([np.log(ttft / data.ttft), np.log(tpot / data.tpot)])
    return np.where(np.isfinite(r), r, 10.0)


# Extra starting points for a robustness check of held-out errors: the soft-L1 objective has several local minima
# (an efficiency against its bound traded for an overhead, say), and which one a descent reaches can move the
# held-out error as much as a change of the model does. Each start offsets every free parameter by a fixed draw
# (sd 1 in its logit/log coordinate); the stored fit is one descent from the generic start (LatencyParams()).
RESTARTS = 4


def fit(data: Dataset, start: LatencyParams | None = None, iterations: int = 60,
        free: Sequence[str] = FREE, restarts: int = 0) -> LatencyParams:
    """Levenberg-Marquardt on soft-L1-weighted log residuals of the rows that may be fitted, from `start` and from
    `restarts` fixed offsets of it, keeping the lowest objective; `free` names the parameters fitted (the others
    keep their values in `start`)."""
    data = data.subset(data.fitted)
    base = start or LatencyParams()
    theta0 = _from_params(base, free)
    rng = np.random.default_rng(0)
    starts = [theta0] + [theta0 + rng.normal(0.0, 1.0, theta0.size) for _ in range(restarts)]
    best = min((_descend(t, base, data, free, iterations) for t in starts), key=lambda x: x[0])
    return _to_params(best[1], base, free)


def _soft_l1_weights(r: np.ndarray) -> np.ndarray:
    """Soft-L1 weights of log residuals: rows far off (beyond a factor of about 1.3) count less."""
    return 1 / np.sqrt(1 + (r / 0.25) ** 2)


def _robust_cost(r: np.ndarray) -> float:
    return float(np.sum((r * _soft_l1_weights(r)) ** 2))


def _descend(theta: np.ndarray, base: LatencyParams, data: Dataset, free: Sequence[str], iterations: int
             ) -> tuple[float, np.ndarray]:
    """(objective, parameters) where one Levenberg-Marquardt descent from `theta` stops."""
    lam = 1e-2
    r = _residuals(theta, base, data, free)
    for _ in range(iterations):
        w = _soft_l1_weights(r)
        jac = np.empty((r.size, theta.size))
        for j in range(theta.size):
            step = np.zeros_like(theta)
            step[j] = 1e-4
            jac[:, j] = (_residuals(theta + step, base, data, free) - r) / 1e-4
        jw, rw = jac * w[:, None], r * w
        g = jw.T @ rw
        h = jw.T @ jw
        improved = False
        for _ in range(8):
            delta = np.linalg.solve(h + lam * np.diag(np.diag(h) + 1e-9), -g)
            cand = _residuals(theta + delta, base, data, free)
            if _robust_cost(cand) < np.sum(rw**2):
                theta, r, lam, improved = theta + delta, cand, max(lam / 3, 1e-7), True
                break
            lam *= 4
        if not improved or np.max(np.abs(delta)) < 1e-5:
            break
    return _robust_cost(r), theta


def ape(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    """Absolute percentage error."""
    return np.abs(pred - meas) / meas * 100


def output_tok_s(ttft: np.ndarray, tpot: np.ndarray, data: Dataset) -> np.ndarray:
    """Closed-loop throughput the data README prescribes: C * osl / (ttft + (osl - 1) * tpot)."""
    return data.load.clients * data.load.osl / (ttft + (data.load.osl - 1) * tpot)


def layout_pairs(data: Dataset) -> list[tuple[tuple, list[int], list[int]]]:
    """Configurations measured both expert parallel and not (same model, GPU, dtype, TP, lengths, clients and
    release), in a stable order: each key with the indices of its expert-parallel rows and of its TP rows."""
    groups: dict[tuple, dict[bool, list[int]]] = {}
    for i, r in enumerate(data.rows):
        key = (r.model, r.gpu, r.weight_dtype, r.tp, r.isl, r.osl, r.concurrency, r.engine_version)
        groups.setdefault(key, {}).setdefault(r.expert_parallel(), []).append(i)
    return [(key, by[True], by[False]) for key, by in sorted(groups.items(), key=lambda kv: str(kv[0])) if len(by) == 2]


@dataclass
class HeldOut:
    """Predictions for every row made by a fit that never saw that row's model."""

    data: Dataset
    ttft: np.ndarray
    tpot: np.ndarray


def _held_out(data: Dataset, groups: np.ndarray, start: LatencyParams | None, iterations: int,
              free: Sequence[str] = FREE, restarts: int = 0) -> HeldOut:
    ttft = np.empty_like(data.ttft)
    tpot = np.empty_like(data.tpot)
    for group in sorted(set(groups)):
        test = groups == group
        params = fit(data.subset(~test), start, iterations, free, restarts)
        t1, t2 = predict_means(params, data.subset(test))
        ttft[test], tpot[test] = t1, t2
    return HeldOut(data, ttft, tpot)


def leave_one_model_out(data: Dataset, start: LatencyParams | None = None, iterations: int = 40,
                        free: Sequence[str] = FREE, restarts: int = 0) -> HeldOut:
    """Each model family predicted by a fit that never saw it. Checkpoints of one family (e.g. Llama-3.1-8B and
    its FP8 copy, DeepSeek V3/R1) are held out together."""
    return _held_out(data, np.array([family(r.model) for r in data.rows]), start, iterations, free, restarts)


def leave_one_class_out(data: Dataset, catalog: Catalog, start: LatencyParams | None = None,
                        iterations: int = 40) -> HeldOut:
    """Each architecture class (dense / MoE / MLA) predicted by a fit that saw none of it: how the fitted
    constants transfer to a kind of model the calibration lacks."""
    return _held_out(data, np.array([arch_class(catalog.model(r.model)) for r in data.rows]), start, iterations)


def arch_class(model: ModelArch) -> str:
    """dense, moe or mla (MLA attention, whatever the MLP): the kinds whose kernels differ most."""
    if model.attention.kind == "mla":
        return "mla"
    return "moe" if model.is_moe else "dense"


def family(model: str) -> str:
    name = model.split("/")[-1].lower()
    for key in ("deepseek", "llama-3.1-8b", "llama-3.1-70b", "qwen3-235b", "qwen3-8b", "qwen3.5", "kimi", "minimax", "glm",
                "gpt-oss"):
        if key in name:
            return key
    return name
