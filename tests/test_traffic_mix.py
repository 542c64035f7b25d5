"""A traffic mix (short chat turns beside long RAG prompts) is predicted per class at the operating point the
whole mix sets, each class is held to its own targets, and replicas are sized for the mix."""

from __future__ import annotations

import json

import pytest

from planner.capacity import goodputs
from planner.errors import BadInput
from planner.contracts import PredictQuery
from planner.latency import predict_loads, prepare
from planner.recommend import recommend
from planner.spec import build_spec
from planner.whatif import apply_to_spec, parse_change, whatif

MIX = ["chat:0.7:300:200", "rag:0.3:8000:400"]
ONE = dict(use_case="chatbot", qps=10, models=["meta-llama/Llama-3.1-8B-Instruct"], gpus=["H100-SXM-80GB"],
           quantizations=["bf16"])


def _prepared(cat, spec, classes=None):
    m, g = cat.model("meta-llama/Llama-3.1-8B-Instruct"), cat.gpu("H100-SXM-80GB")
    q = PredictQuery(model=m.hf_id, gpu=g.name, isl=round(spec.prompt_tokens.mean), osl=round(spec.output_tokens.mean),
                     qps=1.0, isl_cv=spec.prompt_tokens.cv, osl_cv=spec.output_tokens.cv)
    return prepare(q, m, g, tuple(spec.traffic_mix if classes is None else classes))


def test_each_class_gets_its_own_latency_at_the_mix_operating_point(cat, params):
    spec = build_spec(cat, traffic_mix=MIX, **ONE)
    mixed = predict_loads([(_prepared(cat, spec), 6.0, None)], params)[0]
    chat, rag = mixed.classes
    assert (chat.name, rag.name) == ("chat", "rag") and chat.share == pytest.approx(0.7)
    assert rag.ttft_ms.p90 > 2 * chat.ttft_ms.p90, "a long prompt takes longer to prefill"
    assert rag.e2e_ms.p95 > chat.e2e_ms.p95, "and a longer answer longer to stream"
    assert rag.tpot_ms.p90 == pytest.approx(chat.tpot_ms.p90, rel=0.1), "both decode in the same steps"
    # The chat turns pay for sharing the engine with RAG prompts: alone at the same rate they are faster.
    alone = build_spec(cat, prompt_tokens=300, output_tokens=200, **ONE)
    solo = predict_loads([(_prepared(cat, alone, classes=()), 6.0, None)], params)[0]
    assert not solo.classes
    assert chat.ttft_ms.p90 > 1.2 * solo.ttft_ms.p90 and chat.tpot_ms.p90 > 1.2 * solo.tpot_ms.p90
    # Two classes of the mixture's own lengths are the mixture: the per-class path adds nothing of its own.
    same = [c.model_copy(update={"name": n, "share": 0.5, "prompt_tokens": spec.prompt_tokens,
                                 "output_tokens": spec.output_tokens}) for n, c in zip("ab", spec.traffic_mix)]
    twin = predict_loads([(_prepared(cat, spec, classes=same), 6.0, None)], params)[0]
    for c in twin.classes:
        assert c.ttft_ms.p90 == pytest.approx(twin.ttft_ms.p90, rel=0.02)
        assert c.e2e_ms.p95 == pytest.approx(twin.e2e_ms.p95, rel=0.02)


def test_a_chat_and_rag_mix_needs_more_replicas_and_the_rag_class_binds(cat, params):
    mixed = recommend(build_spec(cat, traffic_mix=MIX, ttft_p90_ms=600, **ONE), cat, params, provider="aws")
    chat_only = recommend(build_spec(cat, prompt_tokens=300, output_tokens=200, ttft_p90_ms=600, **ONE), cat, params,
                          provider="aws")
    m, c = mixed.candidates[mixed.chosen], chat_only.candidates[chat_only.chosen]
    assert (m.model, m.gpu, m.tp) == (c.model, c.gpu, c.tp)
    assert m.replicas > c.replicas and m.monthly_cost_usd > c.monthly_cost_usd
    chat, rag = m.predicted.classes
    assert rag.ttft_ms.p90 > chat.ttft_ms.p90
    assert "TTFT p90 of class 'rag'" in m.binding_constraint and "class 'rag'" in mixed.rationale
    assert rag.ttft_ms.p90 <= 600 and m.class_verdicts == {"chat": {"TTFT p90": True, "TPOT p90": True},
                                                          "rag": {"TTFT p90": True, "TPOT p90": True}}
    # Sized per class: the mixture's own p90 would hold more load per replica than the RAG class allows.
    spec = mixed.spec
    prep = _prepared(cat, spec)
    per_class = goodputs([(prep, None)], params, spec.slos, spec.traffic_mix)[0]
    as_one = goodputs([(prep, None)], params, spec.slos)[0]
    assert per_class.qps < as_one.qps and "class 'rag'" in per_class.binding or per_class.binding == "queue saturates"


def test_template_targets_adapt_per_class_and_stated_ones_hold_for_every_class(cat):
    spec = build_spec(cat, use_case="chatbot", qps=10, traffic_mix=MIX)
    template = cat.use_case("chatbot")
    assert spec.slos.ttft_p90_ms == template.slos.ttft_p90_ms, "the spec keeps the template's target"
    chat, rag = spec.traffic_mix
    assert chat.ttft_p90_ms is None, "a chat turn is what the template's target was set for"
    assert rag.ttft_p90_ms == pytest.approx(template.slos.ttft_p90_ms * 8000 / template.prompt_tokens.mean, rel=0.01)
    why = next(a for a in spec.assumptions if a.field == "traffic_mix.rag.ttft_p90_ms")
    assert "adapted" in why.source and "8000" in why.source
    stated = build_spec(cat, use_case="chatbot", qps=10, traffic_mix=MIX, ttft_p90_ms=900)
    assert stated.slos.ttft_p90_ms == 900 and all(c.ttft_p90_ms is None for c in stated.traffic_mix)
    own = build_spec(cat, use_case="chatbot", qps=10, traffic_mix=[
        {"name": "chat", "share": 3, "prompt_tokens": 300, "output_tokens": 200},
        {"name": "rag", "share": 1, "prompt_tokens": 8000, "output_tokens": 400, "ttft_p90_ms": 2500}])
    assert own.traffic_mix[1].ttft_p90_ms == 2500 and own.traffic_mix[1].share == pytest.approx(0.25)
    worded = build_spec(cat, use_case="chatbot", qps=10, traffic_mix=["chat:3:300:200", "rag:1:8000:400:2500"])
    assert worded.traffic_mix == own.traffic_mix, "the CLI's words carry the same class and its own target"
    for bad in ("rag:1:8000:400:0", "rag:1:8000:400:soon", "rag:1:nan:400", "rag:1:8000:400:2500:9"):
        with pytest.raises(BadInput, match="traffic class"):
            build_spec(cat, use_case="chatbot", qps=10, traffic_mix=["chat:3:300:200", bad])


def test_plan_json_and_table_show_each_class(cli):
    args = ["recommend", "--use-case", "chatbot", "--qps", "10", "--model", "meta-llama/Llama-3.1-8B-Instruct",
            "--gpu", "H100-SXM-80GB", "--ttft-p90-ms", "600", *[a for c in MIX for a in ("--traffic-class", c)]]
    out = json.loads(cli(*args, "--json").stdout)
    top = out["candidates"][out["chosen"]]
    assert [c["name"] for c in top["predicted"]["classes"]] == ["chat", "rag"]
    assert set(top["class_verdicts"]) == {"chat", "rag"} and top["predicted"]["classes"][1]["ttft_ms"]["p90"] > 0
    human = cli(*args).stdout
    assert "Traffic classes" in human and "rag" in human and "8000/400" in human


def test_whatif_stretches_every_class_with_the_mixture(cat, params):
    plan = recommend(build_spec(cat, traffic_mix=MIX, ttft_p90_ms=600, **ONE), cat, params, provider="aws")
    changed = apply_to_spec(plan.spec, [parse_change("prompt_tokens=x2")])
    assert [c.prompt_tokens.mean for c in changed.traffic_mix] == [600, 16000]
    assert changed.prompt_tokens.mean == pytest.approx(2 * plan.spec.prompt_tokens.mean)
    w = whatif(plan, [parse_change("prompt_tokens=x2")], cat, params, provider="aws")
    assert w.after is not None, w.after_error
    before = {c.name: c for c in w.before.predicted.classes}
    after = {c.name: c for c in w.after.predicted.classes}
    assert after["rag"].ttft_ms.p90 > 600 > before["rag"].ttft_ms.p90, "16,000-token prompts miss 600 ms even unloaded"
    assert not w.after.meets_slos and "class 'rag'" in w.after.binding_constraint
    assert w.after.class_verdicts["chat"]["TTFT p90"] and not w.after.class_verdicts["rag"]["TTFT p90"]
