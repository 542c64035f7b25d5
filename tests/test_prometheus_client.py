"""The Prometheus client (prometheus-api-client underneath) against a loopback server answering like
Prometheus's documented HTTP API (/api/v1/query, /api/v1/status/config) behind a bearer token: the token
comes from the env var the settings name, is sent, and never appears in output or errors."""

from __future__ import annotations

import json

import pytest

from gitops.prometheus import Prometheus, observe
from kb.catalog import open_kb
from planner.errors import Unreachable
from planner.recommend import recommend
from planner.spec import build_spec
from tests.fakes.prometheus_api import ScriptedPrometheus

TOKEN = "s3cret-prom-token-value"


def guarded(delay_s: float = 0.0) -> ScriptedPrometheus:
    """Empty vectors for every query, a 15 s scrape interval, 401 without the bearer token."""
    return ScriptedPrometheus(delay_s=delay_s, token=TOKEN, scrape_interval="15s")


@pytest.fixture
def prom():
    server = guarded()
    yield server
    server.close()


def test_token_from_the_named_env_var_is_sent_and_empty_data_is_missing_not_zero(prom, monkeypatch):
    monkeypatch.setenv("MY_PROM_TOKEN", TOKEN)
    obs = observe(Prometheus(prom.url, "MY_PROM_TOKEN"), "llama", "llm-serving", "10s")
    assert prom.auth and set(prom.auth) == {f"Bearer {TOKEN}"}
    assert any(q.startswith("histogram_quantile(0.9,") and "vllm:time_to_first_token_seconds_bucket" in q
               and 'model_name="llama"' in q and "[10s]" in q for q in prom.queries)
    assert any("rate(vllm:generation_tokens_total{" in q for q in prom.queries)
    assert obs.ttft_ms["p90"] is None and obs.request_s is None and obs.output_tok_s is None
    assert "ttft p90" in obs.missing and "request rate" in obs.missing
    # 10 s is under two 15 s scrape intervals: flagged so that no outcome is made from it.
    assert obs.window_too_short


def test_wrong_token_is_refused_naming_the_variable_never_the_value(prom, monkeypatch):
    monkeypatch.setenv("MY_PROM_TOKEN", "wrong-" + TOKEN)
    with pytest.raises(Unreachable) as err:
        Prometheus(prom.url, "MY_PROM_TOKEN").value("up")
    assert "HTTP 401" in err.value.message and "$MY_PROM_TOKEN" in err.value.message
    assert TOKEN not in err.value.message


def test_a_server_that_does_not_answer_in_time_is_unreachable(monkeypatch):
    slow = guarded(delay_s=2.0)
    monkeypatch.setenv("MY_PROM_TOKEN", TOKEN)
    try:
        with pytest.raises(Unreachable, match="did not answer"):
            Prometheus(slow.url, "MY_PROM_TOKEN", timeout_s=0.2).value("up")
    finally:
        slow.close()


@pytest.fixture(scope="module")
def plan_json(cat, params) -> str:
    return recommend(build_spec(cat, use_case="chatbot", qps=20), cat, params, provider="aws").model_dump_json()


def test_cli_report_with_a_refused_token_exits_4_prints_no_token_and_stores_nothing(
        prom, plan_json, servewise_bin, isolated_env, monkeypatch):
    plan_file = isolated_env / "plan.json"
    plan_file.write_text(plan_json)
    monkeypatch.setenv("SERVEWISE_PROMETHEUS_TOKEN_ENV", "MY_PROM_TOKEN")
    monkeypatch.setenv("MY_PROM_TOKEN", "wrong-" + TOKEN)
    r = servewise_bin("report", "--plan", str(plan_file), "--prometheus", prom.url, "--json")
    assert r.returncode == 4, r.stderr
    rep = json.loads(r.stdout)["reports"][0]
    assert rep["verdict"] == "unreachable" and rep["outcomes"] == []
    assert any("HTTP 401" in m for m in rep["missing"])
    assert TOKEN not in r.stdout + r.stderr
    human = servewise_bin("report", "--plan", str(plan_file), "--prometheus", prom.url)
    assert human.returncode == 4 and "MY_PROM_TOKEN" in human.stdout and TOKEN not in human.stdout + human.stderr
    outcomes = servewise_bin("kb", "outcomes", "--json")
    assert json.loads(outcomes.stdout)["outcomes"] == []


def test_report_all_covers_every_open_deployment_once_each(plan_json, cli, isolated_env):
    plan_file = isolated_env / "plan.json"
    plan_file.write_text(plan_json)
    for name in ("chat-a", "chat-b"):
        assert cli("propose", "--plan", str(plan_file), "--name", name, "--json").exit_code == 0
    for _ in range(2):
        r = cli("report", "--all", "--prometheus", "http://127.0.0.1:9", "--json")
        assert r.exit_code == 4
        assert sorted(rep["deployment"] for rep in json.loads(r.stdout)["reports"]) == ["llm-serving/chat-a",
                                                                                        "llm-serving/chat-b"]
    from gitops.forges.local import LocalForge

    forge = LocalForge(isolated_env / "forge.git", open_kb(isolated_env / "kb.sqlite"))
    for number in (1, 2):
        comments = forge.comments(number)
        assert len(comments) == 1 and "did not answer" in comments[0].body
        assert "Earlier reports" in comments[0].body


def test_a_quote_in_a_deployment_name_cannot_change_the_query(prom, monkeypatch):
    monkeypatch.setenv("MY_PROM_TOKEN", TOKEN)
    observe(Prometheus(prom.url, "MY_PROM_TOKEN"), 'm"} or vector(1) #', 'ns"x', "10m")
    assert prom.queries and all('model_name="m\\"} or vector(1) #"' in q for q in prom.queries
                                if "vllm:" in q)
    assert all('namespace="ns\\"x"' in q for q in prom.queries)


def test_report_all_reports_what_runs_the_latest_merged_pull_request(plan_json, cli, isolated_env):
    plan_file = isolated_env / "plan.json"
    plan_file.write_text(plan_json)
    assert cli("propose", "--plan", str(plan_file), "--name", "chat", "--json").exit_code == 0
    assert cli("pr", "merge", "1", "--json").exit_code == 0
    changed = json.loads(plan_json)
    changed["id"] = "plan-changed"
    changed["candidates"][changed["chosen"]]["replicas"] += 1
    plan_file.write_text(json.dumps(changed))
    assert cli("propose", "--plan", str(plan_file), "--name", "chat", "--json").exit_code == 0
    reps = json.loads(cli("report", "--all", "--prometheus", "http://127.0.0.1:9", "--json").stdout)["reports"]
    # PR 2 is only proposed; the deployment running is PR 1's plan.
    assert [(r["deployment"], r["plan_id"]) for r in reps] == [("llm-serving/chat", json.loads(plan_json)["id"])]
    from gitops.forges.local import LocalForge

    forge = LocalForge(isolated_env / "forge.git", open_kb(isolated_env / "kb.sqlite"))
    assert forge.get_pr(2).state == "open" and forge.get_pr(2).branch == forge.get_pr(1).branch
    assert len(forge.comments(1)) == 1 and forge.comments(2) == []
