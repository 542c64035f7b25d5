"""Facts people state in the words a spec must keep: token counts with a `k`, "context / answer" pairs,
a batch's size over its window, and an explicit "X matters most" ranking (issue 17, item 3)."""

from __future__ import annotations

import pytest

from planner.spec import build_spec, extract


@pytest.mark.parametrize("text,field,value", [
    ("RAG over our docs with 8k tokens prompts", "prompt_tokens", 8000),
    ("RAG with 8k-token prompts", "prompt_tokens", 8000),
    ("prompts of 8k tokens", "prompt_tokens", 8000),
    ("~2k-token context / ~64 tokens", "prompt_tokens", 2000),
    ("~2k-token context / ~64 tokens", "output_tokens", 64),
    ("a reasoning service with ~4,000-token answers", "output_tokens", 4000),
    ("summaries of about 300 tokens", "output_tokens", 300),
    ("100k-token prompts", "prompt_tokens", 100_000),
    ("2 million documents within a 6-hour window", "qps", 2e6 / (6 * 3600)),
    ("30,000 tickets over 2 hours", "qps", 30_000 / 7200),
])
def test_stated_numbers_are_read(cat, text, field, value):
    assert extract(text, cat)[field] == pytest.approx(value)


@pytest.mark.parametrize("text,priority", [
    ("quality matters most", "quality"), ("for us latency matters most", "latency"),
    ("cheapest setup, but accuracy comes first", "quality"), ("prioritize cost", "cost"),
])
def test_an_explicit_ranking_sets_the_priority(cat, text, priority):
    assert extract(text, cat)["priority"] == priority


def test_code_completion_is_named_by_its_words_and_keeps_the_lengths(cat):
    s = build_spec(cat, text="code completion for 500 developers, ~2k-token context / ~64 tokens")
    assert s.use_case == "code-completion" and s.traffic.users == 500
    assert (s.prompt_tokens.mean, s.output_tokens.mean) == (2000, 64)
    assumed = {a.field for a in s.assumptions}
    assert "prompt_tokens" not in assumed and "output_tokens" not in assumed


def test_a_batch_window_is_traffic_not_a_question(cat):
    s = build_spec(cat, text="Nightly batch summarization of 2 million documents within a 6-hour window")
    assert s.traffic.qps == pytest.approx(92.59, rel=1e-3) and not s.questions
