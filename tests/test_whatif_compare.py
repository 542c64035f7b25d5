"""What-if: changed plans side by side with deltas and SLO ticks; bad changes named."""

from __future__ import annotations

import pytest

from planner.errors import BadInput
from planner.recommend import recommend
from planner.spec import build_spec
from planner.whatif import parse_change, whatif


@pytest.fixture(scope="module")
def plan(cat, params):
    return recommend(build_spec(cat, use_case="code-generation", qps=10), cat, params, provider="aws")


def _delta(w, metric):
    return next(d for d in w.deltas if d.metric == metric)


def test_traffic_and_gpu_change_side_by_side(cat, params, plan):
    w = whatif(plan, [parse_change("traffic=x2"), parse_change("gpu=L40S")], cat, params, provider="aws")
    assert w.after is not None and w.after.gpu == "L40S" and w.after.model == plan.candidates[0].model
    cost = _delta(w, "monthly cost $")
    assert cost.before == pytest.approx(plan.candidates[0].monthly_cost_usd, rel=1e-6)
    assert cost.after == pytest.approx(w.after.monthly_cost_usd, rel=1e-6)
    assert cost.change_pct == pytest.approx((cost.after - cost.before) / cost.before * 100, abs=0.1)
    assert _delta(w, "output tok/s").after == pytest.approx(2 * _delta(w, "output tok/s").before, rel=1e-3)
    assert w.replanned is not None  # a spec change also asks what the recommender would pick now


def test_tighter_slo_moves_the_target_and_ticks(cat, params, plan):
    before = plan.candidates[0].predicted.ttft_ms.p90
    w = whatif(plan, [parse_change(f"slo.ttft_p90_ms={before / 2:.3f}")], cat, params, provider="aws")
    row = _delta(w, "TTFT p90 ms")
    assert row.target == pytest.approx(before / 2, rel=1e-3) and row.before_ok is True
    assert row.after_ok is (row.after <= row.target)
    assert w.after is not None
    assert not w.after.meets_slos or w.after.monthly_cost_usd >= plan.candidates[0].monthly_cost_usd
    assert (w.replanned is None) == bool(w.replan_error)  # the re-plan either answers or says why not


def test_config_changes_tp_quantization_model(cat, params, plan):
    chosen = plan.candidates[0]
    w = whatif(plan, [parse_change("tp=2")], cat, params, provider="aws")
    assert w.after.tp == 2 and w.after.gpus_total == 2 * w.after.replicas and w.replanned is None
    w = whatif(plan, [parse_change("model=llama-3.1-8b"), parse_change("quantization=fp8"), parse_change("gpu=H100")],
               cat, params, provider="aws")
    assert (w.after.model, w.after.weight_dtype, w.after.gpu) == ("meta-llama/Llama-3.1-8B-Instruct", "fp8", "H100-SXM-80GB")
    w = whatif(plan, [parse_change("prompt_tokens=x2")], cat, params, provider="aws")
    assert (w.after.model, w.after.gpu, w.after.tp) == (chosen.model, chosen.gpu, chosen.tp)
    assert w.after.predicted.ttft_ms.p90 > chosen.predicted.ttft_ms.p90


def test_unservable_change_is_reported_not_raised(cat, params, plan):
    w = whatif(plan, [parse_change("model=Qwen/Qwen3-235B-A22B"), parse_change("gpu=L4"), parse_change("tp=1")],
               cat, params, provider="aws")
    assert w.after is None and w.after_error


@pytest.mark.parametrize("text,match", [("colour=blue", "allowed"), ("traffic", "key=value"), ("traffic=lots", "traffic"),
                                        ("qps=-2", "positive"), ("gpu=h10", "GPU"), ("priority=speed", "priority"),
                                        ("quantization=int3", "quantization"), ("tp=two", "tp")])
def test_bad_changes_name_the_key(cat, params, plan, text, match):
    with pytest.raises(BadInput, match=match):
        whatif(plan, [parse_change(text)], cat, params, provider="aws")


def test_infeasible_plan_has_nothing_to_compare(cat, params, plan):
    with pytest.raises(BadInput, match="no chosen candidate"):
        whatif(plan.model_copy(update={"chosen": None}), [parse_change("traffic=x2")], cat, params, provider="aws")


@pytest.fixture(scope="module")
def r1_plan(cat, params):
    spec = build_spec(cat, use_case="reasoning", qps=0.5, models=["deepseek-ai/DeepSeek-R1"], gpus=["H100-SXM-80GB"])
    return recommend(spec, cat, params, provider="aws")


def test_whatif_on_a_multi_node_plan_keeps_its_pipeline_stages_and_prices_every_node(cat, params, r1_plan):
    before = r1_plan.candidates[r1_plan.chosen]
    assert (before.tp, before.pp, before.nodes_per_replica) == (8, 2, 2)
    price = cat.gpu("H100-SXM-80GB").price("aws").usd_per_gpu_hour
    w = whatif(r1_plan, [parse_change("traffic=x3")], cat, params, provider="aws")
    after = w.after
    assert after is not None, w.after_error  # at pp=1 R1 does not fit one 8x H100 node
    assert (after.tp, after.pp, after.nodes_per_replica) == (before.tp, before.pp, before.nodes_per_replica)
    assert after.replicas > before.replicas  # three times the load on the same replica shape
    assert after.gpus_total == after.replicas * 8 * 2
    assert after.monthly_cost_usd == pytest.approx(after.gpus_total * price * 730, rel=1e-3)
    assert _delta(w, "GPUs").after == after.gpus_total and "Multi-node" in after.explanation
    # The stages can be set explicitly: one node cannot hold the model, and a GPU with no inter-node figure is refused.
    one = whatif(r1_plan, [parse_change("pp=1")], cat, params, provider="aws")
    assert one.after is None and "does not fit" in one.after_error
    unlinked = cat.model_copy(update={"gpus": [g.model_copy(update={"internode_gb_s": None}) for g in cat.gpus]})
    other = whatif(r1_plan, [parse_change("traffic=x2")], unlinked, params, provider="aws")
    assert other.after is None and "inter-node bandwidth" in other.after_error and "pp=1" in other.after_error
    with pytest.raises(BadInput, match="pp must be a positive integer"):
        whatif(r1_plan, [parse_change("pp=two")], cat, params, provider="aws")
