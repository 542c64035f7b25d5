"""What-if: apply changes to a plan and compare the chosen deployment before and after, side by side.

Changes are `key=value` strings:
  traffic=x2 | qps=40 | users=10000          load (x multiplies the current value)
  prompt_tokens=x2 | output_tokens=800       workload lengths
  slo.ttft_p90_ms=200 | tpot_p90_ms=30 | e2e_p95_ms=4000 | priority=cost
  gpu=L40S | tp=2 | pp=1 | quantization=fp8 | model=qwen3-8b
Spec changes re-size the same configuration and also ask the recommender what it would pick now;
configuration changes size the changed configuration for the same spec. What is not changed is kept,
including the pipeline stages of a multi-node replica (its nodes are priced as its GPUs are).
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from planner.catalog import WEIGHT_DTYPES, Catalog, TokenDist
from planner.contracts import Candidate, Correction, DeploymentSpec, Plan
from planner.errors import BadInput, ServewiseError
from planner.latency import LatencyParams
from planner.recommend import evaluate, recommend

_SPEC_KEYS = {"traffic", "qps", "users", "prompt_tokens", "output_tokens", "ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms",
              "priority"}
_CONFIG_KEYS = {"gpu", "tp", "pp", "quantization", "weight_dtype", "model"}


class WhatIfChange(BaseModel):
    """One `key=value` change; the value keeps its text (`x2` multiplies, a number replaces)."""

    key: str
    value: str


def parse_change(text: str) -> WhatIfChange:
    """`key=value` (keys listed in the module docstring; `slo.` prefix optional) or BadInput naming the allowed keys."""
    key, sep, value = text.partition("=")
    key = key.strip().lower().removeprefix("slo.").replace("-", "_")
    if not sep or not value.strip():
        raise BadInput(f"change {text!r} must look like key=value, e.g. traffic=x2 or gpu=L40S")
    if key not in _SPEC_KEYS | _CONFIG_KEYS:
        raise BadInput(f"unknown what-if key {key!r}; allowed: {', '.join(sorted(_SPEC_KEYS | _CONFIG_KEYS))}")
    return WhatIfChange(key=key, value=value.strip())


# Beyond any deployment, and small enough that the planner's arithmetic on it stays finite.
MAX_SCALED = 1e12


def _scaled(current: float, value: str, key: str) -> float:
    try:
        out = current * float(value[1:]) if value.lower().startswith("x") else float(value)
    except ValueError:
        raise BadInput(f"{key}={value!r}: give a number or a multiplier such as x2") from None
    if not math.isfinite(out) or out <= 0 or out > MAX_SCALED:
        raise BadInput(f"{key} must stay a positive number below {MAX_SCALED:g} (got {out:g})")
    return out


def _stretched(d: TokenDist, ratio: float) -> TokenDist:
    mean = d.mean * ratio
    return d.model_copy(update={"mean": mean, "p50": d.p50 and d.p50 * ratio, "p90": d.p90 and d.p90 * ratio,
                                "max": d.max and max(int(d.max * ratio), int(mean) + 1)})


def apply_to_spec(spec: DeploymentSpec, changes: list[WhatIfChange]) -> DeploymentSpec:
    s = spec.model_copy(deep=True)
    for c in changes:
        if c.key in ("traffic", "qps", "users"):
            t = s.traffic
            if c.key == "users" or (c.key == "traffic" and t.qps is None):
                t.users = int(_scaled(float(t.users or 1), c.value, c.key))
            else:
                t.qps = _scaled(float(t.qps or 1), c.value, c.key)
        elif c.key in ("prompt_tokens", "output_tokens"):
            d = getattr(s, c.key)
            ratio = _scaled(d.mean, c.value, c.key) / d.mean
            setattr(s, c.key, _stretched(d, ratio))
            # A mix's lengths are the mixture of its classes': every class stretches alike, the mixture with them.
            s.traffic_mix = [k.model_copy(update={c.key: _stretched(getattr(k, c.key), ratio)}) for k in s.traffic_mix]
        elif c.key in ("ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms"):
            setattr(s.slos, c.key, _scaled(getattr(s.slos, c.key) or 1.0, c.value, c.key))
        elif c.key == "priority":
            if c.value not in ("latency", "cost", "balanced", "quality"):
                raise BadInput("priority must be one of latency, cost, balanced, quality")
            s.priority = c.value
    return s


class Delta(BaseModel):
    metric: str
    before: float
    after: float
    change_pct: float | None
    target: float | None = None
    before_ok: bool | None = None
    after_ok: bool | None = None


class WhatIfComparison(BaseModel):
    """The chosen deployment before and after the changes, metric by metric with SLO ticks; `replanned` is
    what the recommender would pick for the changed spec (spec changes only)."""

    changes: list[WhatIfChange]
    before: Candidate
    after: Candidate | None
    after_error: str | None = None
    replanned: Candidate | None = None
    replan_error: str | None = None
    deltas: list[Delta]


def _deltas(spec_before: DeploymentSpec, spec_after: DeploymentSpec, a: Candidate, b: Candidate | None) -> list[Delta]:
    rows = [("monthly cost $", lambda c: c.monthly_cost_usd, None),
            ("GPUs", lambda c: c.gpus_total, None),
            ("replicas", lambda c: c.replicas, None),
            ("TTFT p90 ms", lambda c: c.predicted.ttft_ms.p90, "ttft_p90_ms"),
            ("TPOT p90 ms", lambda c: c.predicted.tpot_ms.p90, "tpot_p90_ms"),
            ("E2E p95 ms", lambda c: c.predicted.e2e_ms.p95, "e2e_p95_ms"),
            ("output tok/s", lambda c: c.predicted.output_tok_s, None)]
    out = []
    for name, get, slo in rows:
        before = float(get(a))
        after = float(get(b)) if b else float("nan")
        t_before = getattr(spec_before.slos, slo) if slo else None
        t_after = getattr(spec_after.slos, slo) if slo else None
        out.append(Delta(metric=name, before=round(before, 2), after=round(after, 2),
                         change_pct=round((after - before) / before * 100, 1) if b and before else None,
                         target=t_after, before_ok=(before <= t_before) if t_before else None,
                         after_ok=(after <= t_after) if (t_after and b) else None))
    return out


WhatIf = WhatIfComparison  # the name the MCP server's tool signature uses


def whatif(plan: Plan, changes: list[WhatIfChange], catalog: Catalog, params: LatencyParams, *, provider: str,
           corrections: dict[tuple[str, str, int], Correction] | None = None) -> WhatIfComparison:
    """Size the plan's chosen configuration again under the changed spec and/or configuration and compare.
    A change that cannot be served (does not fit, no price) is reported in `after_error`, not raised."""
    if plan.chosen is None:
        raise BadInput("the plan has no chosen candidate (it was infeasible); relax the spec and recommend again")
    if not changes:
        raise BadInput("give at least one change, e.g. --set traffic=x2")
    before = plan.candidates[plan.chosen]
    spec = apply_to_spec(plan.spec, [c for c in changes if c.key in _SPEC_KEYS])
    # A multi-node replica keeps its pipeline stages: at pp=1 the model would not fit where it was planned.
    config = {"model": before.model, "gpu": before.gpu, "tp": before.tp, "pp": before.pp,
              "weight_dtype": before.weight_dtype}
    for c in changes:
        if c.key in ("quantization", "weight_dtype"):
            if c.value not in WEIGHT_DTYPES:
                raise BadInput(f"quantization must be one of {', '.join(WEIGHT_DTYPES)}")
            config["weight_dtype"] = c.value
        elif c.key in ("tp", "pp"):
            if not c.value.isdigit() or int(c.value) < 1:
                raise BadInput(f"{c.key} must be a positive integer")
            config[c.key] = int(c.value)
        elif c.key == "model":
            config["model"] = catalog.model(c.value).hf_id
            if not any(x.key in ("quantization", "weight_dtype") for x in changes):
                config["weight_dtype"] = catalog.model(c.value).native_dtype
        elif c.key == "gpu":
            config["gpu"] = catalog.gpu(c.value).name
    after, error = None, None
    try:
        after = evaluate(spec, catalog, params, provider=provider, corrections=corrections, **config)
    except ServewiseError as exc:
        error = exc.message
    replanned, replan_error = None, None
    if any(c.key in _SPEC_KEYS for c in changes):
        try:
            new_plan = recommend(spec, catalog, params, provider=provider, top=1, corrections=corrections)
        except ServewiseError as exc:  # e.g. the changed SLO is below physics for every model
            replan_error = exc.message
        else:
            replanned = new_plan.candidates[0] if new_plan.chosen is not None else None
            replan_error = new_plan.infeasible if new_plan.chosen is None else None
    return WhatIfComparison(changes=changes, before=before, after=after, after_error=error, replanned=replanned,
                            replan_error=replan_error, deltas=_deltas(plan.spec, spec, before, after))
