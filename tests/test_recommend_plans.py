"""Recommender: modest answers at modest load, sanity properties, below-physics input, infeasible plans."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import BadInput
from planner.memory import default_max_num_seqs, memory_fit
from planner.recommend import BATCH_LIMITS, evaluate, recommend
from planner.spec import build_spec

PROPERTY = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("use_case,qps", [("chatbot", 20), ("summarization", 5), ("code-generation", 10)])
def test_original_use_cases_get_modest_feasible_plans(cat, params, use_case, qps):
    plan = recommend(build_spec(cat, use_case=use_case, qps=qps), cat, params, provider="aws")
    top = plan.candidates[plan.chosen]
    # modest: a handful of GPUs (summarization's 4k-token prompts are prefill-bound)
    assert top.meets_slos and top.fits and 1 <= top.gpus_total <= 8
    slos = plan.spec.slos
    assert top.predicted.ttft_ms.p90 <= slos.ttft_p90_ms and top.predicted.tpot_ms.p90 <= slos.tpot_p90_ms
    assert slos.e2e_p95_ms is None or top.predicted.e2e_ms.p95 <= slos.e2e_p95_ms
    assert top.binding_constraint and "beats the runner-up" in plan.rationale
    assert top.min_replicas <= top.replicas < top.max_replicas
    for c in plan.candidates:
        # the KV cache a servewise deployment runs: its checkpoints set no KV quantization, so `auto` is bf16
        fit = memory_fit(cat.model(c.model), cat.gpu(c.gpu), tp=c.tp, weight_dtype=c.weight_dtype, kv_dtype="bf16",
                         context_tokens=c.vllm.max_model_len)
        assert fit.fits and c.fits and c.vllm.kv_cache_dtype == "auto"
        assert c.predicted.memory.kv_bytes_per_token == memory_fit(
            cat.model(c.model), cat.gpu(c.gpu), tp=c.tp, weight_dtype=c.weight_dtype, kv_dtype="bf16",
            context_tokens=round(plan.spec.prompt_tokens.mean) + round(plan.spec.output_tokens.mean)).kv_bytes_per_token
        # vLLM must accept a p90 request; a quantized dtype is served from a published checkpoint (which carries
        # its method), or quantized on load, which only vLLM's --quantization fp8 does
        assert c.vllm.max_model_len >= plan.spec.prompt_tokens.p90 + plan.spec.output_tokens.p90
        quantized = c.weight_dtype != cat.model(c.model).native_dtype
        published = cat.checkpoint(c.model, c.weight_dtype)
        assert c.checkpoint == (published.repo if quantized and published else None)
        assert c.vllm.quantization == ("fp8" if quantized and not published else None)
        assert not (quantized and not published) or (c.weight_dtype == "fp8" and cat.gpu(c.gpu).fp8_tflops)
        # vLLM's default on the GPU (vllm/engine/arg_utils.py get_batch_defaults), or a tighter limit, explained
        default = default_max_num_seqs(cat.gpu(c.gpu))
        assert c.vllm.max_num_seqs in (*(n for n in BATCH_LIMITS if n < default), default)
        assert c.vllm.max_num_seqs == default or f"--max-num-seqs {c.vllm.max_num_seqs}" in c.explanation
        price = cat.gpu(c.gpu).price("aws").usd_per_gpu_hour
        assert c.monthly_cost_usd == pytest.approx(c.gpus_total * price * 730, rel=1e-3)


@PROPERTY
@given(qps=st.floats(min_value=0.5, max_value=40), use_case=st.sampled_from(["chatbot", "code-generation", "rag"]))
def test_more_traffic_never_costs_less(cat, params, qps, use_case):
    def cost(load):
        spec = build_spec(cat, use_case=use_case, qps=load, priority="cost", gpus=["L40S", "H100-SXM-80GB", "A100-80GB"])
        plan = recommend(spec, cat, params, provider="aws", top=1)
        return plan.candidates[0].monthly_cost_usd if plan.chosen is not None else float("inf")

    assert cost(2 * qps) >= cost(qps)


@PROPERTY
@given(qps=st.floats(min_value=0.5, max_value=30), tighter=st.floats(min_value=0.4, max_value=0.95),
       slo=st.sampled_from(["ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms"]),
       config=st.sampled_from([("llama-3.1-8b", "L40S", 1), ("qwen3-8b", "H100-SXM-80GB", 1),
                               ("Qwen/Qwen3-30B-A3B", "A100-80GB", 2)]))
def test_tighter_slo_never_costs_less(cat, params, qps, tighter, slo, config):
    model, gpu, tp = config
    base = build_spec(cat, use_case="chatbot", qps=qps, streaming=False)  # E2E is a target only without streaming
    tight = base.model_copy(update={"slos": base.slos.model_copy(update={slo: getattr(base.slos, slo) * tighter})})

    def sized(spec):
        c = evaluate(spec, cat, params, provider="aws", model=model, gpu=gpu, tp=tp)
        return c.goodput_qps, (c.monthly_cost_usd if c.meets_slos else float("inf"))

    (gp_base, cost_base), (gp_tight, cost_tight) = sized(base), sized(tight)
    assert gp_tight <= gp_base and cost_tight >= cost_base


def test_cheapest_priority_is_never_beaten_on_cost(cat, params):
    plan = recommend(build_spec(cat, use_case="code-generation", qps=10, priority="cost"), cat, params, provider="aws",
                     top=5)
    costs = [c.monthly_cost_usd for c in plan.candidates]
    assert costs == sorted(costs)


@pytest.mark.parametrize("field,value", [("tpot_p90_ms", 0.5), ("ttft_p90_ms", 1.0), ("e2e_p95_ms", 300.0)])
def test_target_below_physics_is_bad_input_naming_the_field(cat, params, field, value):
    spec = build_spec(cat, use_case="chatbot", qps=5, **{field: value})
    with pytest.raises(BadInput, match=f"{field}={value:g} is below physics"):
        recommend(spec, cat, params, provider="aws")


def test_gpu_limit_makes_the_plan_infeasible_with_reason(cat, params):
    plan = recommend(build_spec(cat, use_case="chatbot", qps=400, max_gpus=1), cat, params, provider="aws")
    assert plan.chosen is None and "1-GPU limit" in plan.infeasible
    assert plan.candidates, "the closest candidates are still listed"
    # closest = what meets the SLOs but needs more GPUs than allowed, fewest GPUs first
    assert all(c.meets_slos and c.gpus_total > 1 for c in plan.candidates)
    assert [c.gpus_total for c in plan.candidates] == sorted(c.gpus_total for c in plan.candidates)


def test_cluster_gpu_budget_blocks_and_says_so(cat, params):
    spec = build_spec(cat, use_case="chatbot", qps=5, gpus=["L40S", "H100-SXM-80GB"])
    plan = recommend(spec, cat, params, provider="aws", gpu_budget={"L40S": 16, "H100-SXM-80GB": 0})
    assert plan.chosen is not None and all(c.gpu == "L40S" and c.gpus_total <= 16 for c in plan.candidates)
    assert "cluster has 0 free" in plan.rationale
    none_free = recommend(spec, cat, params, provider="aws", gpu_budget={})
    assert none_free.chosen is None and "cluster has 0 free" in none_free.infeasible


def test_gpu_without_a_price_is_skipped_with_a_reason(cat, params):
    unpriced = next(g.name for g in cat.gpus if not g.price("aws"))
    plan = recommend(build_spec(cat, use_case="chatbot", qps=5), cat, params, provider="aws")
    assert all(c.gpu != unpriced for c in plan.candidates)
    assert f"{unpriced}: no aws price" in plan.rationale


@pytest.mark.parametrize("cost, limit", [("monthly_cost_usd", "budget_usd_month"), ("hourly_cost_usd", "budget_usd_hour")])
def test_budget_is_respected_when_something_fits_it(cat, params, cost, limit):
    free = recommend(build_spec(cat, use_case="chatbot", qps=20, priority="quality"), cat, params, provider="aws")
    budget = min(getattr(c, cost) for c in free.candidates) * 1.01
    capped = recommend(build_spec(cat, use_case="chatbot", qps=20, priority="quality", **{limit: budget}),
                       cat, params, provider="aws")
    assert capped.chosen is not None and all(getattr(c, cost) <= budget for c in capped.candidates)


def test_learned_correction_is_applied(cat, params):
    from planner.contracts import Correction

    spec = build_spec(cat, use_case="summarization", qps=5)
    plain = evaluate(spec, cat, params, provider="aws", model="llama-3.1-8b", gpu="H100-SXM-80GB", tp=1)
    assert plain.goodput_qps > 0
    slower = evaluate(spec, cat, params, provider="aws", model="llama-3.1-8b", gpu="H100-SXM-80GB", tp=1,
                      corrections={(plain.model, plain.gpu, 1): Correction(ttft_factor=1.5, tpot_factor=1.5)})
    assert slower.goodput_qps < plain.goodput_qps


@PROPERTY
@given(qps=st.floats(min_value=0.5, max_value=40), tighter=st.floats(min_value=0.4, max_value=0.95),
       use_case=st.sampled_from(["chatbot", "code-generation", "rag"]))
def test_tighter_slo_never_makes_the_cheapest_plan_cheaper(cat, params, qps, tighter, use_case):
    def cost(**slo):
        spec = build_spec(cat, use_case=use_case, qps=qps, priority="cost", gpus=["L40S", "H100-SXM-80GB", "A100-80GB"],
                          **slo)
        plan = recommend(spec, cat, params, provider="aws", top=1)
        return plan.candidates[0].monthly_cost_usd if plan.chosen is not None else float("inf")

    def tightened():
        try:
            return cost(tpot_p90_ms=cat.use_case(use_case).slos.tpot_p90_ms * tighter)
        except BadInput:  # below physics: nothing can serve it, which is "more expensive" than any plan
            return float("inf")

    assert tightened() >= cost()


@PROPERTY
@given(use_case=st.sampled_from(["chatbot", "rag", "long-document-summarization", "agentic", "offline-batch"]),
       qps=st.floats(min_value=0.2, max_value=30), prompt_scale=st.floats(min_value=0.5, max_value=3))
def test_every_kept_candidate_fits_and_the_top_meets_its_slos(cat, params, use_case, qps, prompt_scale):
    spec = build_spec(cat, use_case=use_case, qps=qps,
                      prompt_tokens=cat.use_case(use_case).prompt_tokens.mean * prompt_scale)
    try:
        plan = recommend(spec, cat, params, provider="aws")
    except BadInput:  # longer prompts can push a target below physics; that is reported, not planned
        return
    for c in plan.candidates:
        assert memory_fit(cat.model(c.model), cat.gpu(c.gpu), tp=c.tp, weight_dtype=c.weight_dtype,
                          context_tokens=c.vllm.max_model_len).fits
    if plan.chosen is not None:
        top, slos = plan.candidates[plan.chosen], plan.spec.slos
        assert top.meets_slos and top.predicted.ttft_ms.p90 <= slos.ttft_p90_ms
        assert top.predicted.tpot_ms.p90 <= slos.tpot_p90_ms
        assert slos.e2e_p95_ms is None or top.predicted.e2e_ms.p95 <= slos.e2e_p95_ms
