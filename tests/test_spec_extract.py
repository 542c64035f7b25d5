"""Spec builder: words and options to a DeploymentSpec, assumptions and questions, bad input."""

from __future__ import annotations

import pytest

from planner.errors import BadInput
from planner.spec import average_qps, build_spec, extract, peak_qps


def test_words_become_a_spec_with_assumptions(cat):
    s = build_spec(cat, text="customer support chatbot, 5,000 daily users, peaks at lunch, p90 first token under "
                             "300 ms, budget $8k a month, prefer open models")
    assert s.use_case == "chatbot" and s.traffic.users == 5000 and s.slos.ttft_p90_ms == 300
    assert s.budget_usd_month == 8000 and s.constraints.open_weights_only and s.extracted_by == "rules"
    assumed = {a.field: a for a in s.assumptions}
    assert {"traffic.requests_per_user_per_day", "traffic.peak_factor", "tpot_p90_ms", "e2e_p95_ms"} <= set(assumed)
    assert "chatbot" in assumed["tpot_p90_ms"].source
    assert "ttft_p90_ms" not in assumed and not s.questions
    template = cat.use_case("chatbot")
    # users x requests/user/day over the active hours, times the peak factor
    rate = 5000 * template.requests_per_user_per_day / (8 * 3600)
    assert average_qps(s) == pytest.approx(rate)
    assert peak_qps(s) == pytest.approx(rate * template.peak_factor)


@pytest.mark.parametrize("text,field,value", [
    ("20 req/s", "qps", 20), ("1,200 requests per minute", "qps", 20), ("72k requests per hour", "qps", 20),
    ("3k users", "users", 3000), ("e2e under 4 s", "e2e_p95_ms", 4000), ("time per token below 40 ms", "tpot_p90_ms", 40),
    ("first token within 0.5 s", "ttft_p90_ms", 500), ("2000-token prompts", "prompt_tokens", 2000),
    ("answers of about 600 tokens", "output_tokens", 600), ("at most 4 GPUs", "max_gpus", 4),
    ("budget of $12,000", "budget_usd_month", 12000), ("$8k a month", "budget_usd_month", 8000),
    ("peaks of 3x at noon", "peak_factor", 3), ("800 users sending 25 requests a day", "requests_per_user_per_day", 25),
])
def test_extractor_reads_numbers_with_units(cat, text, field, value):
    assert extract(text, cat)[field] == pytest.approx(value)


@pytest.mark.parametrize("text,field,value", [
    ("the cheapest setup that holds", "priority", "cost"), ("latency-critical voice agent", "priority", "latency"),
    ("we want the best quality answers", "priority", "quality"), ("open-source models only", "open_weights_only", True),
    ("run it on L40S", "gpus", ["L40S"]), ("serve with fp8 weights", "quantizations", ["fp8"]),
    ("summarize support tickets", "use_case", "summarization"),
])
def test_extractor_reads_priorities_constraints_and_use_case(cat, text, field, value):
    assert extract(text, cat)[field] == value


def test_options_override_words_and_words_are_not_guessed(cat):
    s = build_spec(cat, text="chatbot at 20 req/s, first token under 300 ms", qps=5, ttft_p90_ms=200)
    assert s.traffic.qps == 5 and s.slos.ttft_p90_ms == 200
    assert not extract("lorem ipsum dolor sit amet", cat)


def test_missing_traffic_becomes_a_question_and_a_stated_placeholder(cat):
    s = build_spec(cat, text="a translation service")
    assert s.use_case == "translation"
    assert any("traffic" in q.lower() for q in s.questions)
    assert any(a.field == "traffic.qps" for a in s.assumptions)


def test_unknown_workload_is_asked_not_silently_guessed(cat):
    s = build_spec(cat, text="something for 10 req/s")
    assert any("workload" in q.lower() for q in s.questions)
    assert any(a.field == "use_case" for a in s.assumptions)


def test_stated_prompt_length_keeps_template_spread_and_says_so(cat):
    s = build_spec(cat, use_case="chatbot", qps=1, prompt_tokens=1500)
    assert s.prompt_tokens.mean == 1500 and s.prompt_tokens.cv == cat.use_case("chatbot").prompt_tokens.cv
    assert s.prompt_tokens.max > 1500
    assert any(a.field == "prompt_tokens.cv" for a in s.assumptions)


@pytest.mark.parametrize("kwargs,field", [
    ({"qps": -3}, "qps"), ({"gpus": ["h10"]}, "GPU"), ({"models": ["llama-9000"]}, "model"),
    ({"ttft_p90_ms": 500, "e2e_p95_ms": 100}, "e2e_p95_ms"), ({"priority": "speed"}, "priority"),
    ({"peak_factor": 0.5}, "peak_factor"), ({"burstiness": 0.2}, "burstiness"),
    ({"quantizations": ["int3"]}, "quantization"), ({"use_case": "telepathy"}, "use case"),
])
def test_bad_spec_input_names_the_field(cat, kwargs, field):
    with pytest.raises(BadInput, match=field):
        build_spec(cat, **{"use_case": "chatbot", "qps": 1, **kwargs})


def test_name_is_a_dns_label(cat):
    s = build_spec(cat, use_case="chatbot", qps=1, name="Support Bot (EU) / v2!")
    assert s.name == "support-bot-eu-v2"
