"""Goodput and replicas: how much load one replica carries within the SLOs, and how many replicas a
peak needs.

Goodput is the largest Poisson request rate at which one replica's predicted p90 TTFT, p90 TPOT and
p95 E2E all hold and the queue is stable, found on a geometric load grid refined once around the
edge. Replicas = ceil(peak x (1 + headroom) / goodput), headroom = 10 % + 10 % per unit of
burstiness above Poisson (servewise's default; stated in every plan).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from planner.catalog import Gpu, ModelArch, SloTargets
from planner.contracts import ClassPrediction, Correction, Prediction, PredictQuery, TrafficClass
from planner.latency import LatencyParams, Prepared, predict_loads, prepare
from planner.mix import targets

_GRID = 14
_REFINE = 8


class Goodput(BaseModel):
    qps: float  # per replica; 0 when even a trickle misses an SLO
    binding: str  # the SLO (or limit) that stops more load
    at_goodput: Prediction | None  # prediction at the goodput load (or the lightest load tried)


def _ratios(p: Prediction | ClassPrediction, slos: SloTargets) -> dict[str, float]:
    out = {}
    if slos.ttft_p90_ms:
        out["TTFT p90"] = p.ttft_ms.p90 / slos.ttft_p90_ms
    if slos.tpot_p90_ms:
        out["TPOT p90"] = p.tpot_ms.p90 / slos.tpot_p90_ms
    if slos.e2e_p95_ms:
        out["E2E p95"] = p.e2e_ms.p95 / slos.e2e_p95_ms
    return out


def class_ratios(p: Prediction, slos: SloTargets, classes: Sequence[TrafficClass]) -> dict[str, dict[str, float]]:
    """Per traffic class, predicted / target for each SLO the class has (its own target, else the spec's)."""
    by_name = {c.name: c for c in classes}
    return {cp.name: _ratios(cp, targets(by_name[cp.name], slos)) for cp in p.classes if cp.name in by_name}


def slo_ratios(p: Prediction, slos: SloTargets, classes: Sequence[TrafficClass] = ()) -> dict[str, float]:
    """Predicted / target for each SLO set (<= 1 meets it). With a traffic mix, every class must meet its targets,
    so each ratio is the worst class's (the mixture as a whole then meets them too)."""
    per_class = class_ratios(p, slos, classes) if classes else {}
    if not per_class:
        return _ratios(p, slos)
    out: dict[str, float] = {}
    for ratios in per_class.values():
        for k, v in ratios.items():
            out[k] = max(out.get(k, 0.0), v)
    return out


def worst_slo(p: Prediction, slos: SloTargets, classes: Sequence[TrafficClass] = ()) -> tuple[str, str | None, float]:
    """(SLO, traffic class or None, predicted / target) of the SLO running closest to (or furthest past) its target."""
    per_class = class_ratios(p, slos, classes) if classes else {}
    items = [(k, name, v) for name, r in per_class.items() for k, v in r.items()] or \
        [(k, None, v) for k, v in _ratios(p, slos).items()]
    return max(items, key=lambda x: x[2], default=("", None, 0.0))


def slo_label(slo: str, cls: str | None) -> str:
    return f"{slo} of class '{cls}'" if cls else slo


def _ok(p: Prediction, slos: SloTargets, classes: Sequence[TrafficClass] = ()) -> bool:
    return not p.saturated and all(r <= 1.0 for r in slo_ratios(p, slos, classes).values())


def goodput(query: PredictQuery, model: ModelArch, gpu: Gpu, params: LatencyParams, slos: SloTargets,
            correction: Correction | None = None) -> Goodput:
    """Largest req/s one replica sustains within `slos` (query.qps and replicas are ignored)."""
    return goodputs([(prepare(query.model_copy(update={"replicas": 1}), model, gpu), correction)], params, slos)[0]


def goodputs(configs: Sequence[tuple[Prepared, Correction | None]], params: LatencyParams,
             slos: SloTargets, classes: Sequence[TrafficClass] = ()) -> list[Goodput]:
    """Goodput of many prepared single-replica configurations, each search stage in one vectorised pass. With a
    traffic mix (`classes`, which the configurations were prepared with) every class must hold its targets."""
    light = predict_loads([(prep, 1e-3, corr) for prep, corr in configs], params, n_samples=100)
    result: list[Goodput | None] = [None] * len(configs)
    searching = []
    for i, p in enumerate(light):
        if _ok(p, slos, classes):
            searching.append(i)
        else:
            slo, cls, ratio = worst_slo(p, slos, classes)
            result[i] = Goodput(qps=0.0, binding=f"{slo_label(slo, cls)} is {ratio:.2f}x its target even unloaded",
                                at_goodput=p)
    # Upper end of the search: every running slot busy with requests as fast as a lone request runs.
    grids = {i: np.geomspace(1e-3, 2 * max(light[i].memory.max_batch_at_context, 1) / max(light[i].e2e_ms.mean / 1e3, 1e-3),
                             _GRID)[1:] for i in searching}
    coarse = _sweep(configs, grids, params)
    brackets = {}
    for i in searching:
        ok = [_ok(p, slos, classes) for p in coarse[i]]
        if all(ok):
            result[i] = Goodput(qps=float(grids[i][-1]), binding="KV cache / max-num-seqs", at_goodput=coarse[i][-1])
            continue
        bad = ok.index(False)
        lo, lo_pred = (1e-3, light[i]) if bad == 0 else (float(grids[i][bad - 1]), coarse[i][bad - 1])
        brackets[i] = (lo, lo_pred, float(grids[i][bad]), coarse[i][bad])
    fine_grids = {i: np.linspace(lo, hi, _REFINE + 2)[1:-1] for i, (lo, _, hi, _) in brackets.items()}
    fine = _sweep(configs, fine_grids, params)
    for i, (lo, lo_pred, _, bad_pred) in brackets.items():
        for load, p in zip(fine_grids[i], fine[i]):
            if not _ok(p, slos, classes):
                bad_pred = p
                break
            lo, lo_pred = float(load), p
        binding = "queue saturates" if bad_pred.saturated else slo_label(*worst_slo(bad_pred, slos, classes)[:2])
        result[i] = Goodput(qps=lo, binding=binding, at_goodput=lo_pred)
    return [g for g in result if g is not None]


def _sweep(configs: Sequence[tuple[Prepared, Correction | None]], grids: dict[int, np.ndarray],
           params: LatencyParams) -> dict[int, list[Prediction]]:
    flat = [(configs[i][0], float(q), configs[i][1]) for i, grid in grids.items() for q in grid]
    preds = predict_loads(flat, params)
    out, k = {}, 0
    for i, grid in grids.items():
        out[i], k = preds[k:k + len(grid)], k + len(grid)
    return out


def headroom(burstiness: float) -> float:
    return 0.10 + 0.10 * (burstiness - 1.0)


def replicas_for(peak_qps: float, average_qps: float, goodput_qps: float, burstiness: float) -> tuple[int, int, int]:
    """(replicas for the peak, min replicas for the average, max replicas for bursts beyond the peak)."""
    need = max(1, math.ceil(peak_qps * (1 + headroom(burstiness)) / goodput_qps - 1e-9))
    low = max(1, math.ceil(average_qps / goodput_qps - 1e-9))
    return need, min(low, need), max(need + 1, math.ceil(need * 1.5))
