"""Spec builder, recommender and what-if: extraction, sanity properties, explanations, bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.catalog import load_catalog, open_kb
from kb.latency import load_latency_params
from planner.errors import BadInput
from planner.memory import memory_fit
from planner.recommend import recommend
from planner.spec import build_spec, peak_qps
from planner.whatif import parse_change, whatif


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    return load_catalog(open_kb(tmp_path_factory.mktemp("kb") / "kb.sqlite"))


@pytest.fixture(scope="module")
def params():
    return load_latency_params()


def test_words_become_a_spec_with_assumptions(cat):
    s = build_spec(cat, text="customer support chatbot, 5,000 daily users, peaks at lunch, p90 first token under "
                             "300 ms, budget $8k a month, prefer open models")
    assert s.use_case == "chatbot" and s.traffic.users == 5000 and s.slos.ttft_p90_ms == 300
    assert s.budget_usd_month == 8000 and s.constraints.open_weights_only and s.extracted_by == "rules"
    assumed = {a.field for a in s.assumptions}
    assert {"traffic.requests_per_user_per_day", "traffic.peak_factor", "tpot_p90_ms"} <= assumed
    assert "ttft_p90_ms" not in assumed and not s.questions
    # users x requests/user/day over the active hours, times the peak factor
    assert peak_qps(s) == pytest.approx(5000 * 10 / (8 * 3600) * 2)


@pytest.mark.parametrize("text,field,value", [
    ("20 req/s", "qps", 20), ("1,200 requests per minute", "qps", 20), ("3k users", "users", 3000),
    ("e2e under 4 s", "e2e_p95_ms", 4000), ("time per token below 40 ms", "tpot_p90_ms", 40),
    ("2000-token prompts", "prompt_tokens", 2000), ("at most 4 GPUs", "max_gpus", 4),
])
def test_extractor_units(cat, text, field, value):
    from planner.spec import extract

    assert extract(text, cat)[field] == pytest.approx(value)


def test_missing_traffic_becomes_a_question(cat):
    s = build_spec(cat, text="a translation service")
    assert s.use_case == "translation"
    assert any("traffic" in q.lower() for q in s.questions)


@pytest.mark.parametrize("kwargs,field", [({"qps": -3}, "qps"), ({"gpus": ["h10"]}, "GPU"),
                                          ({"ttft_p90_ms": 500, "e2e_p95_ms": 100}, "e2e_p95_ms"),
                                          ({"priority": "speed"}, "priority")])
def test_bad_spec_input_names_the_field(cat, kwargs, field):
    with pytest.raises(BadInput, match=field):
        build_spec(cat, use_case="chatbot", **{"qps": 1, **kwargs})


@pytest.mark.parametrize("use_case,qps", [("chatbot", 20), ("summarization", 5), ("code-generation", 10)])
def test_original_use_cases_get_modest_feasible_plans(cat, params, use_case, qps):
    plan = recommend(build_spec(cat, use_case=use_case, qps=qps), cat, params, provider="aws")
    top = plan.candidates[plan.chosen]
    assert top.meets_slos and top.fits and 1 <= top.gpus_total <= 4
    slos = plan.spec.slos
    assert top.predicted.ttft_ms.p90 <= slos.ttft_p90_ms and top.predicted.tpot_ms.p90 <= slos.tpot_p90_ms
    assert top.predicted.e2e_ms.p95 <= slos.e2e_p95_ms
    assert top.binding_constraint and "beats the runner-up" in plan.rationale
    for c in plan.candidates:
        fit = memory_fit(cat.model(c.model), cat.gpu(c.gpu), tp=c.tp, weight_dtype=c.weight_dtype,
                         context_tokens=c.vllm.max_model_len)
        assert fit.fits


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qps=st.floats(min_value=0.5, max_value=40), use_case=st.sampled_from(["chatbot", "code-generation", "rag"]))
def test_more_traffic_or_tighter_slo_never_costs_less(cat, params, qps, use_case):
    def cost(**kw):
        spec = build_spec(cat, use_case=use_case, priority="cost", gpus=["L40S", "H100-SXM-80GB", "A100-80GB"], **kw)
        plan = recommend(spec, cat, params, provider="aws", top=1)
        return plan.candidates[0].monthly_cost_usd if plan.chosen is not None else float("inf")

    base = cost(qps=qps)
    assert cost(qps=2 * qps) >= base
    tpot = cat.use_case(use_case).slos.tpot_p90_ms
    assert cost(qps=qps, tpot_p90_ms=tpot * 0.6) >= base


def test_impossible_slo_is_infeasible_with_reason(cat, params):
    plan = recommend(build_spec(cat, use_case="chatbot", qps=5, tpot_p90_ms=0.5), cat, params, provider="aws")
    assert plan.chosen is None and "TPOT p90" in plan.infeasible


def test_cluster_gpu_budget_blocks_and_says_so(cat, params):
    spec = build_spec(cat, use_case="chatbot", qps=20, gpus=["L40S", "H100-SXM-80GB"])
    plan = recommend(spec, cat, params, provider="aws", gpu_budget={"L40S": 8, "H100-SXM-80GB": 0})
    assert all(c.gpu == "L40S" for c in plan.candidates)
    assert "cluster has 0 free" in plan.rationale or plan.chosen is None


def test_whatif_compares_side_by_side(cat, params):
    plan = recommend(build_spec(cat, use_case="code-generation", qps=10), cat, params, provider="aws")
    w = whatif(plan, [parse_change("traffic=x2"), parse_change("gpu=L40S")], cat, params, provider="aws")
    assert w.after is not None and w.after.gpu == "L40S"
    cost = next(d for d in w.deltas if d.metric == "monthly cost $")
    assert cost.before == pytest.approx(plan.candidates[0].monthly_cost_usd, rel=1e-6)
    assert w.replanned is not None
    with pytest.raises(BadInput, match="allowed"):
        parse_change("colour=blue")


def test_cli_recommend_json_and_whatif(cli, tmp_path):
    out = tmp_path / "plan.json"
    r = cli("recommend", "--use-case", "chatbot", "--qps", "20", "--json", "--out", str(out))
    assert r.exit_code == 0, r.stdout
    plan = json.loads(r.stdout)
    top = plan["candidates"][plan["chosen"]]
    assert top["meets_slos"] and top["fits"] and set(top["predicted"]["ttft_ms"]) >= {"p50", "p90", "p95", "p99"}
    assert json.loads(out.read_text())["id"] == plan["id"]
    w = cli("whatif", "--plan", str(out), "--set", "traffic=x2", "--json")
    assert w.exit_code == 0 and json.loads(w.stdout)["deltas"]
    bad = cli("recommend", "--use-case", "chatbot", "--qps", "5", "--tpot-p90-ms", "0.5", "--json")
    assert bad.exit_code == 3 and json.loads(bad.stdout)["chosen"] is None
