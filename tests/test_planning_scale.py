"""Reliability targets, unit economics, multi-node plans and traffic mixes."""

from __future__ import annotations

import json

import pytest
import yaml

from gitops.render import render_bundle
from gitops.validate import validate_bundle
from planner.errors import BadInput
from planner.recommend import evaluate, recommend
from planner.spec import build_spec


def test_reliability_gives_two_spread_replicas_a_pdb_and_its_cost(cat, params):
    base = recommend(build_spec(cat, use_case="chatbot", qps=2), cat, params, provider="aws")
    top = base.candidates[base.chosen]
    assert top.replicas == 1 and not top.spread, "a light load alone needs one replica"
    spec = build_spec(cat, use_case="chatbot", qps=2, reliability=99.9)
    plan = recommend(spec, cat, params, provider="aws")
    c = plan.candidates[plan.chosen]
    assert c.replicas >= 2 and c.min_replicas >= 2 and c.max_replicas > c.replicas
    assert c.reliability_cost_usd_month == pytest.approx(
        c.reliability_replicas * c.tp * c.pp * cat.gpu(c.gpu).price("aws").usd_per_gpu_hour * 730, rel=1e-3)
    # The configuration planned without the target costs one more replica with it, and says so.
    same = evaluate(spec, cat, params, provider="aws", model=top.model, gpu=top.gpu, tp=top.tp,
                    weight_dtype=top.weight_dtype)
    assert same.replicas == 2 and same.reliability_replicas == 1
    assert same.reliability_cost_usd_month == pytest.approx(top.monthly_cost_usd, rel=1e-3)
    assert same.monthly_cost_usd == pytest.approx(2 * top.monthly_cost_usd, rel=1e-3)
    assert "kubernetes.io/hostname" in c.spread and "Availability 99.9" in c.explanation
    bundle = render_bundle(plan)
    pdb = yaml.safe_load(bundle.files["pdb.yaml"])
    assert pdb["kind"] == "PodDisruptionBudget" and pdb["spec"]["maxUnavailable"] == 1
    isvc = yaml.safe_load(bundle.files["inferenceservice.yaml"])
    spread = isvc["spec"]["predictor"]["topologySpreadConstraints"]
    assert {s["topologyKey"] for s in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert pdb["spec"]["selector"]["matchLabels"] == spread[0]["labelSelector"]["matchLabels"]
    assert "pdb.yaml" in yaml.safe_load(bundle.files["kustomization.yaml"])["resources"]
    assert not [i for i in validate_bundle(bundle) if "pdb" in i.file or "inferenceservice" in i.file]
    four_nines = evaluate(build_spec(cat, use_case="chatbot", qps=2, reliability=99.99), cat, params, provider="aws",
                          model=top.model, gpu=top.gpu, tp=top.tp, weight_dtype=top.weight_dtype)
    assert four_nines.replicas == top.replicas + 1, "99.99 %: the peak held with one replica lost (N+1)"
    assert "pdb.yaml" not in render_bundle(base).files


@pytest.mark.parametrize("words,target", [("production support chatbot, 10 req/s", 99.9),
                                          ("support chatbot with 99.95% uptime, 10 req/s", 99.95)])
def test_reliability_from_words(cat, words, target):
    spec = build_spec(cat, text=words)
    assert spec.reliability_target == target
    with pytest.raises(BadInput, match="reliability"):
        build_spec(cat, use_case="chatbot", qps=1, reliability=100)


def test_plans_state_cost_per_million_tokens_at_load_and_at_goodput(cat, params, cli):
    plan = recommend(build_spec(cat, use_case="chatbot", qps=20), cat, params, provider="aws")
    for c in plan.candidates:
        u = c.cost_per_m_tokens
        assert c.hourly_cost_usd == pytest.approx(c.monthly_cost_usd / 730, rel=1e-3)
        # at full goodput the same GPUs make at least as many tokens as at the planned average load
        assert 0 < u.output_at_goodput <= u.output_at_load and u.input_at_goodput <= u.input_at_load
        tokens_per_hour = 20 * plan.spec.output_tokens.mean * 3600
        assert u.output_at_load == pytest.approx(c.hourly_cost_usd / tokens_per_hour * 1e6, rel=1e-3)
    assert "per million output tokens" in plan.rationale
    r = cli("recommend", "--use-case", "chatbot", "--qps", "20", "--json")
    top = json.loads(r.stdout)["candidates"][0]
    assert top["cost_per_m_tokens"]["output_at_load"] > 0 and top["hourly_cost_usd"] > 0
    human = cli("recommend", "--use-case", "chatbot", "--qps", "20")
    assert "/Mtok" in human.stdout


def test_hourly_budget_is_read_from_words(cat):
    """Respected like the monthly budget: tests/test_recommend_plans.py::test_budget_is_respected_when_something_fits_it."""
    assert build_spec(cat, text="chatbot, 5 req/s, budget $12 per hour").budget_usd_hour == 12


def test_deepseek_r1_restricted_to_h100_gets_a_multi_node_plan(cat, params):
    spec = build_spec(cat, use_case="reasoning", qps=0.5, models=["deepseek-ai/DeepSeek-R1"], gpus=["H100-SXM-80GB"])
    plan = recommend(spec, cat, params, provider="aws")
    assert plan.chosen is not None, plan.infeasible
    c = plan.candidates[plan.chosen]
    assert c.pp >= 2 and c.nodes_per_replica == c.pp and c.tp == cat.gpu("H100-SXM-80GB").gpus_per_node
    assert c.gpus_total == c.replicas * c.tp * c.pp and c.fits and c.meets_slos
    price = cat.gpu("H100-SXM-80GB").price("aws").usd_per_gpu_hour
    assert c.monthly_cost_usd == pytest.approx(c.gpus_total * price * 730, rel=1e-3)
    assert "Multi-node" in c.explanation and "pipeline parallel" in c.explanation and "GB/s" in c.explanation
    assert "PP" in plan.rationale
    # A model one node holds is never split over nodes.
    small = recommend(build_spec(cat, use_case="chatbot", qps=5, gpus=["H100-SXM-80GB"]), cat, params, provider="aws")
    assert all(x.pp == 1 for x in small.candidates)


def test_pipeline_stages_take_turns_so_latency_is_not_divided_by_stages(cat, params):
    from planner.contracts import PredictQuery
    from planner.latency import predict

    m, g = cat.model("deepseek-ai/DeepSeek-R1"), cat.gpu("H100-SXM-80GB")
    two = predict(PredictQuery(model=m.hf_id, gpu=g.name, tp=8, pp=2, isl=1000, osl=500, concurrency=1), m, g, params)
    three = predict(PredictQuery(model=m.hf_id, gpu=g.name, tp=8, pp=3, isl=1000, osl=500, concurrency=1), m, g, params)
    # One stream: each token crosses every stage in turn, so more stages never make it faster.
    assert three.tpot_ms.mean >= two.tpot_ms.mean * 0.95
    assert g.internode_gb_s and g.internode_source


def test_a_traffic_mix_sets_lengths_and_sizing(cat, params):
    mix = [{"name": "chat", "share": 0.7, "prompt_tokens": 300, "output_tokens": 200},
           {"name": "rag", "share": 0.3, "prompt_tokens": 8000, "output_tokens": 400}]
    spec = build_spec(cat, use_case="chatbot", qps=10, traffic_mix=mix)
    assert [c.name for c in spec.traffic_mix] == ["chat", "rag"]
    assert spec.prompt_tokens.mean == pytest.approx(0.7 * 300 + 0.3 * 8000, rel=1e-3)
    assert spec.prompt_tokens.p90 > 2 * spec.prompt_tokens.mean, "the long class sits in the tail"
    assert spec.prompt_tokens.max >= 8000
    chat_only = build_spec(cat, use_case="chatbot", qps=10, prompt_tokens=300, output_tokens=200)
    mixed = recommend(spec, cat, params, provider="aws")
    plain = recommend(chat_only, cat, params, provider="aws")
    assert mixed.chosen is not None and plain.chosen is not None
    assert mixed.candidates[0].monthly_cost_usd >= plain.candidates[0].monthly_cost_usd
    assert mixed.candidates[0].vllm.max_model_len >= 8000
    worded = build_spec(cat, use_case="chatbot", qps=10, traffic_mix=["chat:7:300:200", "rag:3:8000:400"])
    assert worded.traffic_mix[1].share == pytest.approx(0.3)
    with pytest.raises(BadInput, match="name:share"):
        build_spec(cat, use_case="chatbot", qps=10, traffic_mix=["chat:0.5"])
    with pytest.raises(BadInput, match="not both"):
        build_spec(cat, use_case="chatbot", qps=10, traffic_mix=mix, prompt_tokens=500)
