"""The SLO reporter against a REAL Prometheus (Debian's server on loopback) scraping a vLLM-format
exporter whose latency distributions are known."""

from __future__ import annotations

import bisect
import json
import time

import pytest

from gitops.prometheus import Prometheus, observe
from kb.catalog import load_catalog, open_kb
from kb.latency import load_latency_params
from gitops.render import served_model_name
from tests.fakes.prometheus_server import PrometheusServer
from tests.fakes.vllm_exporter import (
    ITL_BUCKETS,
    REQUEST_BUCKETS,
    TTFT_BUCKETS,
    Truth,
    VllmExporter,
)


@pytest.fixture(scope="module")
def plan(chatbot_plans):
    return chatbot_plans[0]


@pytest.fixture(scope="module")
def stack(plan, tmp_path_factory):
    # the name a rendered deployment llm-serving/chatbot serves under (gitops.render.served_model_name)
    exporter = VllmExporter(served_model_name("llm-serving", "chatbot"))
    prom = PrometheusServer(tmp_path_factory.mktemp("prom"), [f"127.0.0.1:{exporter.port}"])
    try:
        prom.wait_for_samples("vllm:num_requests_running", minimum=12)  # the 10 s window, full
        yield exporter, prom
    finally:
        prom.close()
        exporter.close()


def _bucket(buckets: list[float], value: float) -> tuple[float, float]:
    i = bisect.bisect_left(buckets, value)
    return (buckets[i - 1] if i else 0.0), buckets[min(i, len(buckets) - 1)]


def test_percentiles_match_the_known_truth_within_bucket_resolution(stack, plan):
    exporter, prom = stack
    obs = observe(Prometheus(prom.url), exporter.model_name, "llm-serving", "10s")
    truth = Truth()
    cases = [("ttft", obs.ttft_ms, TTFT_BUCKETS, ("p50", 0.5), ("p90", 0.9), ("p99", 0.99)),
             ("tpot", obs.tpot_ms, ITL_BUCKETS, ("p50", 0.5), ("p90", 0.9), ("p99", 0.99)),
             ("e2e", obs.e2e_ms, REQUEST_BUCKETS, ("p50", 0.5), ("p95", 0.95))]
    cases.append(("itl", {"p90": obs.itl_p90_ms}, ITL_BUCKETS, ("p90", 0.9)))
    for metric, values, buckets, *levels in cases:
        for key, q in levels:
            estimate = values[key] / 1e3
            lo, hi = _bucket(buckets, estimate)
            true = truth.quantile(metric, q)
            # The test's own design: a truth on a boundary could land in either neighbouring bucket.
            assert min(abs(true / edge - 1) for edge in buckets) >= 0.1, (metric, key, true)
            assert lo * 0.999 <= true <= hi * 1.001, (metric, key, estimate, true, (lo, hi))
    assert obs.request_s == pytest.approx(truth.rate_per_s, rel=0.35)
    assert obs.output_tok_s == pytest.approx(truth.rate_per_s * truth.osl, rel=0.35)
    assert obs.kv_cache_usage == pytest.approx(0.35) and obs.error_rate == 0 and obs.replicas_seen == 1
    assert obs.waiting == pytest.approx(2) and obs.gpu_util_pct == pytest.approx(truth.gpu_util_pct)
    assert obs.missing == [] and obs.notes == []


def test_report_posts_one_sticky_comment_and_stores_outcomes(stack, plan, cli, isolated_env):
    _, prom = stack
    plan_file = isolated_env / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    assert cli("propose", "--plan", str(plan_file), "--name", "chatbot", "--json").exit_code == 0
    first = cli("report", "--pr", "1", "--prometheus", prom.url, "--window", "10s", "--json")
    assert first.exit_code == 0, first.stdout
    rep = json.loads(first.stdout)["reports"][0]
    assert rep["verdict"] in ("meets", "at risk", "violated") and rep["outcomes"]
    assert {c["metric"] for c in rep["checks"]} == {"TTFT p90", "TPOT p90", "E2E p95"}
    assert all(c["observed_ms"] and c["predicted_ms"] for c in rep["checks"])
    assert rep["advice"]
    time.sleep(1.1)
    assert cli("report", "--pr", "1", "--prometheus", prom.url, "--window", "10s", "--json").exit_code == 0
    from gitops.forges.local import LocalForge

    comments = LocalForge(isolated_env / "forge.git", open_kb(isolated_env / "kb.sqlite")).comments(1)
    assert len(comments) == 1 and "SLO report" in comments[0].body and "Earlier reports" in comments[0].body
    outcomes = json.loads(cli("kb", "outcomes", "--json").stdout)
    assert len(outcomes["outcomes"]) == 6 and outcomes["corrections"][0]["n_outcomes"] == 2
    c = plan.candidates[plan.chosen]
    pred = json.loads(cli("predict", "-m", c.model, "-g", c.gpu, "--tp", str(c.tp), "--isl", "150", "--osl", "200",
                          "--qps", "2", "--weight-dtype", c.weight_dtype, "--json").stdout)
    assert "corrected by 2 observed outcome" in pred["calibration"]


def test_unreachable_prometheus_says_so_and_stores_nothing(plan, cli, isolated_env):
    plan_file = isolated_env / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    cli("propose", "--plan", str(plan_file), "--json")
    r = cli("report", "--pr", "1", "--prometheus", "http://127.0.0.1:9", "--json")
    assert r.exit_code == 4
    assert json.loads(r.stdout)["reports"][0]["verdict"] == "unreachable"
    from gitops.forges.local import LocalForge

    body = LocalForge(isolated_env / "forge.git", open_kb(isolated_env / "kb.sqlite")).comments(1)[0].body
    assert "did not answer" in body and "no outcome stored" in body
    assert json.loads(cli("kb", "outcomes", "--json").stdout)["outcomes"] == []


def test_short_window_and_counter_reset(stack, plan):
    exporter, prom = stack
    short = observe(Prometheus(prom.url), exporter.model_name, "llm-serving", "1s")
    assert short.window_too_short and any("shorter than two scrape intervals" in m for m in short.notes)
    exporter.reset()
    prom.wait_for_samples("vllm:num_requests_running", minimum=3)
    time.sleep(2)
    # The 10 s window spans the restart: rate() must count the fresh counters from zero, not read the
    # drop as a negative rate nor lose the requests before it.
    after = observe(Prometheus(prom.url), exporter.model_name, "llm-serving", "10s")
    truth = Truth()
    assert after.request_s == pytest.approx(truth.rate_per_s, rel=0.35)
    assert after.output_tok_s == pytest.approx(truth.rate_per_s * truth.osl, rel=0.35)
    lo, hi = _bucket(TTFT_BUCKETS, after.ttft_ms["p90"] / 1e3)
    assert lo * 0.999 <= truth.quantile("ttft", 0.9) <= hi * 1.001
    assert not after.window_too_short and after.missing == []


def test_empty_data_gives_insufficient_data(stack, plan, tmp_path):
    _, prom = stack
    from gitops.report import build_report

    cat = load_catalog(open_kb(tmp_path / "kb.sqlite"))
    obs = observe(Prometheus(prom.url), "no-such-model", "llm-serving", "10s")
    rep = build_report(plan, obs, cat, load_latency_params(), deployment="llm-serving/x")
    assert rep.verdict == "insufficient data" and rep.outcomes == [] and any("ttft p90" in m for m in rep.missing)
