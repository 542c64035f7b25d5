"""One bad Prometheus answer must not poison later predictions: outcomes are stored only from complete,
physically plausible data; corrections are bounded; a stored outcome can be deleted (dry run first);
malformed answers are an exit 4, never a traceback; a report has one overall deadline."""

from __future__ import annotations

import json
import re

import pytest

from gitops.prometheus import Prometheus, observe
from planner.errors import Unreachable
from planner.feedback import MAX_CORRECTION, Outcome, corrections
from tests.fakes.prometheus_api import Raw, ScriptedPrometheus

_HIST = {"vllm:time_to_first_token_seconds": "ttft_ms", "vllm:request_time_per_output_token_seconds": "tpot_ms",
         "vllm:e2e_request_latency_seconds": "e2e_ms", "vllm:inter_token_latency_seconds": "tpot_ms",
         "vllm:request_queue_time_seconds": "ttft_ms"}


@pytest.fixture(scope="module")
def plan(chatbot_plans):
    return chatbot_plans[0]


def healthy(plan, override=None):
    """Answers like a deployment running close to its plan; `override(metric, level)` may replace any
    latency answer (seconds, None, or Raw)."""
    p = plan.candidates[plan.chosen].predicted

    def answer(query: str):
        if m := re.match(r"histogram_quantile\(([\d.]+), sum by \(le\) \(rate\((vllm:\w+)_bucket", query):
            level, metric = f"p{round(float(m.group(1)) * 100)}", m.group(2)
            if override:
                got = override(metric, level)
                if got != "keep":
                    return got
            return getattr(getattr(p, _HIST[metric]), level if level != "p50" else "p50") * 1.1 / 1e3
        if "request_success_total" in query and "abort" in query:
            return 0
        if "request_success_total" in query:
            return 2.0
        if "generation_tokens_total" in query:
            return 2.0 * 200
        if "kv_cache_usage_perc" in query:
            return 0.3
        if "num_preemptions_total" in query:
            return 0
        if "num_requests_running" in query:
            return 1
        if "num_requests_waiting" in query:
            return 0.5
        return None  # DCGM: not installed

    return answer


def _report(cli, isolated_env, plan, answer, delay_s=0.0):
    plan_file = isolated_env / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    prom = ScriptedPrometheus(answer, delay_s)
    try:
        r = cli("report", "--plan", str(plan_file), "--prometheus", prom.url, "--window", "5m", "--json")
    finally:
        prom.close()
    outcomes = json.loads(cli("kb", "outcomes", "--json").stdout)["outcomes"]
    return r, outcomes


def test_the_scripted_prometheus_gives_a_complete_report_that_stores_outcomes(cli, isolated_env, plan):
    r, outcomes = _report(cli, isolated_env, plan, healthy(plan))
    rep = json.loads(r.stdout)["reports"][0]
    assert r.exit_code == 0 and rep["verdict"] in ("meets", "at risk", "violated") and rep["missing"] == []
    assert len(outcomes) == len(rep["outcomes"]) == 3 and all("id" in o for o in outcomes)


@pytest.mark.parametrize("seconds", [1e300, 1e-300, 0.0, -1.0, 1e9])
def test_impossible_latencies_store_nothing_and_say_why(cli, isolated_env, plan, seconds):
    answer = healthy(plan, lambda metric, level: seconds if metric == "vllm:time_to_first_token_seconds" else "keep")
    r, outcomes = _report(cli, isolated_env, plan, answer)
    rep = json.loads(r.stdout)["reports"][0]
    assert r.exit_code == 0 and outcomes == [] and rep["outcomes"] == []
    assert rep["verdict"] == "insufficient data"
    assert any("TTFT p90" in m and "not a latency this deployment can have" in m for m in rep["missing"])


def test_far_from_the_prediction_is_shown_but_not_learned(cli, isolated_env, plan):
    p = plan.candidates[plan.chosen].predicted
    answer = healthy(plan, lambda metric, level: p.tpot_ms.p90 * 50 / 1e3
                     if metric == "vllm:request_time_per_output_token_seconds" and level == "p90" else "keep")
    r, outcomes = _report(cli, isolated_env, plan, answer)
    rep = json.loads(r.stdout)["reports"][0]
    assert rep["verdict"] == "violated" and outcomes == []
    assert any("more than 20x" in m for m in rep["missing"])


@pytest.mark.parametrize("gone", [
    {("vllm:time_to_first_token_seconds", "p50"), ("vllm:time_to_first_token_seconds", "p99")},
    {("vllm:inter_token_latency_seconds", "p90")},
    "eight"])
def test_partial_data_stores_nothing_and_says_what_is_missing(cli, isolated_env, plan, gone):
    base = healthy(plan)
    if gone == "eight":
        dropped = ("kv_cache_usage", "num_preemptions", "num_requests_waiting", "inter_token", "request_queue",
                   "0.99, sum by (le) (rate(vllm:e2e", "0.5, sum by (le) (rate(vllm:e2e", "0.99, sum by (le) (rate(vllm:time_to")
        answer = lambda q: None if any(d in q for d in dropped) else base(q)  # noqa: E731
    else:
        answer = healthy(plan, lambda metric, level: None if (metric, level) in gone else "keep")
    r, outcomes = _report(cli, isolated_env, plan, answer)
    rep = json.loads(r.stdout)["reports"][0]
    assert r.exit_code == 0 and outcomes == [] and rep["outcomes"] == []
    assert any(m.startswith("no samples in the window for:") for m in rep["missing"])
    if gone != "eight":
        text = " ".join(rep["missing"])
        assert all(f"{'ttft' if 'first' in m else 'itl'} {lv}" in text for m, lv in gone)


MALFORMED = [Raw(200, b"not json"), Raw(200, b'{"status":"success"}'), Raw(200, b'{"data": {"result": {}}}'),
             Raw(200, b'{"data": {"result": [{"metric": {}}]}}'), Raw(200, b'{"data": {"result": [{"value": [1]}]}}'),
             Raw(200, b'{"data": {"result": [{"value": [1, "abc"]}]}}'), Raw(200, b'{"data": {"result": [1, "2"]}}'),
             Raw(200, b'{"data": {"result": [{"value": {"a": 1}}]}}'), Raw(200, b'[]'), Raw(200, b'null')]


@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_answers_are_exit_4_without_traceback_and_store_nothing(cli, isolated_env, plan, raw):
    answer = healthy(plan, lambda metric, level: raw if level == "p90" else "keep")
    r, outcomes = _report(cli, isolated_env, plan, answer)
    assert r.exit_code == 4 and outcomes == []
    rep = json.loads(r.stdout)["reports"][0]
    assert rep["verdict"] == "unreachable" and "Prometheus" in rep["missing"][0]


def test_a_report_has_one_overall_deadline():
    with ScriptedPrometheus(lambda q: 0.1) as quick:
        observe(Prometheus(quick.url), "m", "ns", "5m")
    prom = ScriptedPrometheus(lambda q: 0.1, delay_s=0.3)
    try:
        client = Prometheus(prom.url, timeout_s=5, deadline_s=1.0)
        with pytest.raises(Unreachable, match="deadline"):
            observe(client, "m", "ns", "5m")
        # Each query well within its own timeout, yet the report stopped. Every answer takes at least 0.3 s,
        # so at most 4 queries start within the 1 s deadline however slow the machine (a fixed lower bound
        # would depend on its speed); a report without the deadline sends all of them.
        assert len(prom.queries) <= 4 < len(quick.queries)
    finally:
        prom.close()


def test_corrections_are_bounded_even_for_outcomes_stored_before_the_checks():
    poisoned = [Outcome(deployment=f"d{i}", model="m", gpu="g", tp=1, metric=metric, predicted=100.0, observed=1e303,
                        window_s=3600, created_at=f"2026-01-0{i}") for i in range(1, 9)
                for metric in ("ttft_p90_ms", "tpot_p90_ms")]
    c = corrections(poisoned)[("m", "g", 1)]
    assert c.ttft_factor == MAX_CORRECTION and c.tpot_factor == MAX_CORRECTION
    tiny = [o.model_copy(update={"observed": 1e-297}) for o in poisoned]
    assert corrections(tiny)[("m", "g", 1)].ttft_factor == pytest.approx(1 / MAX_CORRECTION, rel=1e-3)


def test_delete_an_outcome_with_a_dry_run_first(cli, isolated_env, plan):
    _report(cli, isolated_env, plan, healthy(plan))
    listed = json.loads(cli("kb", "outcomes", "--json").stdout)
    ids = [o["id"] for o in listed["outcomes"]]
    dry = cli("kb", "outcomes", "--delete", str(ids[0]), "--dry-run", "--json")
    d = json.loads(dry.stdout)
    assert dry.exit_code == 0 and d["dry_run"] and d["deleted"] == [] and [o["id"] for o in d["outcomes"]] == ids[:1]
    assert d["corrections"][0]["before"]["n_outcomes"] == 1
    assert json.loads(cli("kb", "outcomes", "--json").stdout)["outcomes"] == listed["outcomes"]
    human = cli("kb", "outcomes", "--delete", str(ids[0]), "--dry-run")
    assert "would delete 1 outcome" in human.stdout and "->" in human.stdout
    real = json.loads(cli("kb", "outcomes", "--delete", *[x for i in ids for x in ("--delete", str(i))][1:],
                          "--json").stdout)
    assert real["deleted"] == ids and real["corrections"][0]["after"] is None
    assert json.loads(cli("kb", "outcomes", "--json").stdout) == {"outcomes": [], "error_over_time": [],
                                                                  "corrections": []}
    bad = cli("kb", "outcomes", "--delete", "999", "--json")
    assert bad.exit_code == 2 and "no outcome with id 999" in json.loads(bad.stdout)["error"]["message"]
    assert cli("kb", "outcomes", "--dry-run").exit_code == 2
