"""`servewise spec`, `recommend`, `whatif`: JSON contract, plan file and kb row, exit codes, readable tables."""

from __future__ import annotations

import json
import os
import re

import pytest

from kb.plans import get_plan, list_plans
from kb.store import KnowledgeBase


def test_spec_from_words_json(cli):
    r = cli("spec", "support chatbot for 2,000 users, p90 first token under 250 ms", "--json")
    assert r.exit_code == 0, r.stdout
    spec = json.loads(r.stdout)
    assert spec["use_case"] == "chatbot" and spec["traffic"]["users"] == 2000
    assert spec["slos"]["ttft_p90_ms"] == 250 and {"ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms"} <= set(spec["slos"])
    assert any(a["field"] == "tpot_p90_ms" for a in spec["assumptions"])


def test_spec_traffic_and_constraint_options(cli):
    r = cli("spec", "--use-case", "chatbot", "--users", "3000", "--requests-per-user-per-day", "12", "--active-hours", "10",
            "--burstiness", "2", "--quantization", "fp8", "--open-weights-only", "--json")
    assert r.exit_code == 0, r.stdout
    spec = json.loads(r.stdout)
    assert spec["traffic"] == {**spec["traffic"], "users": 3000, "requests_per_user_per_day": 12, "active_hours_per_day": 10,
                               "burstiness": 2}
    assert spec["constraints"]["quantizations"] == ["fp8"] and spec["constraints"]["open_weights_only"]


def test_spec_human_lists_assumptions_and_questions(cli):
    r = cli("spec", "a translation service")
    assert r.exit_code == 0
    assert "Assumed" in r.stdout and "How much traffic?" in r.stdout


def test_recommend_json_plan_file_kb_row_and_whatif(cli, tmp_path):
    out = tmp_path / "plans" / "plan.json"
    r = cli("recommend", "--use-case", "chatbot", "--qps", "20", "--json", "--out", str(out))
    assert r.exit_code == 0, r.stdout
    plan = json.loads(r.stdout)
    top = plan["candidates"][plan["chosen"]]
    assert top["meets_slos"] and top["fits"]
    for key in ("model", "gpu", "tp", "replicas", "gpus_total", "monthly_cost_usd"):
        assert key in top
    for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
        assert {"p50", "p90", "p95", "p99"} <= set(top["predicted"][metric])
    slos = plan["spec"]["slos"]
    assert top["predicted"]["ttft_ms"]["p90"] <= slos["ttft_p90_ms"]
    assert top["predicted"]["tpot_ms"]["p90"] <= slos["tpot_p90_ms"]
    assert slos["e2e_p95_ms"] is None, "a chatbot streams: E2E is no target unless stated"
    assert json.loads(out.read_text())["id"] == plan["id"]
    assert [p.name for p in out.parent.iterdir()] == ["plan.json"], "no temp file left behind"
    kb = KnowledgeBase(os.environ["SERVEWISE_KB"])
    assert get_plan(kb, plan["id"]).candidates[0].model == top["model"]
    assert any(row["id"] == plan["id"] for row in list_plans(kb))
    w = cli("whatif", "--plan", str(out), "--set", "traffic=x2", "--json")
    assert w.exit_code == 0
    deltas = {d["metric"]: d for d in json.loads(w.stdout)["deltas"]}
    assert deltas["output tok/s"]["after"] == 2 * deltas["output tok/s"]["before"]


def test_recommend_from_spec_file_and_from_words(cli, tmp_path):
    spec = cli("spec", "--use-case", "summarization", "--qps", "3", "--json")
    path = tmp_path / "spec.json"
    path.write_text(spec.stdout)
    r = cli("recommend", "--spec", str(path), "--top", "2", "--json")
    assert r.exit_code == 0 and len(json.loads(r.stdout)["candidates"]) <= 2
    assert json.loads(r.stdout)["spec"]["use_case"] == "summarization"
    words = cli("recommend", "code assistant for developers at 5 req/s", "--json")
    assert words.exit_code == 0 and json.loads(words.stdout)["spec"]["use_case"] == "code-generation"


def test_exit_codes_bad_input_and_infeasible(cli, tmp_path):
    bad = cli("recommend", "--use-case", "chatbot", "--qps", "5", "--tpot-p90-ms", "0.5", "--json")
    assert bad.exit_code == 2 and "tpot_p90_ms" in json.loads(bad.stdout)["error"]["message"]
    neg = cli("spec", "--use-case", "chatbot", "--qps", "-1", "--json")
    assert neg.exit_code == 2 and "qps" in json.loads(neg.stdout)["error"]["message"]
    gpu = cli("recommend", "--use-case", "chatbot", "--qps", "5", "--gpu", "h10", "--json")
    assert gpu.exit_code == 2 and "GPU" in json.loads(gpu.stdout)["error"]["message"]
    inf = cli("recommend", "--use-case", "chatbot", "--qps", "400", "--max-gpus", "1", "--json")
    assert inf.exit_code == 3 and json.loads(inf.stdout)["chosen"] is None
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    w = cli("whatif", "--plan", str(broken), "--set", "traffic=x2", "--json")
    assert w.exit_code == 2 and "not a servewise plan" in json.loads(w.stdout)["error"]["message"]


@pytest.mark.parametrize("columns", [80, 100])
def test_human_tables_fit_the_terminal(servewise_bin, tmp_path, columns):
    out = tmp_path / "plan.json"
    os.environ["COLUMNS"] = str(columns)
    try:
        r = servewise_bin("recommend", "--use-case", "chatbot", "--qps", "20", "--out", str(out))
        w = servewise_bin("whatif", "--plan", str(out), "--set", "gpu=L40S")
    finally:
        os.environ.pop("COLUMNS")
    assert r.returncode == 0 and w.returncode == 0, r.stderr + w.stderr
    for text in (r.stdout, w.stdout):
        assert max(len(line) for line in text.splitlines()) <= columns
    assert "★" in r.stdout and "why:" in r.stdout and "beats the runner-up" in " ".join(r.stdout.split())
    # Each candidate's model and its tightest SLO stay whole on their row, not folded a few letters a line.
    plan = json.loads(out.read_text())
    chosen = plan["candidates"][plan["chosen"]]
    star = next(line for line in r.stdout.splitlines() if line.lstrip().startswith("★"))
    short = chosen["model"].split("/")[-1].removesuffix("-Instruct")
    assert short in star and re.search(r"✔ (TTFT|TPOT|E2E)\S* \d+%", star), star


def test_a_plan_written_before_predictions_stated_their_tpot_shares_still_loads(cli, tmp_path):
    """Plans live on in the knowledge base and in GitOps repos (plan.json): one written before `tpot_shares`
    existed (the same JSON without the field) is still a plan whatif, report and propose can read."""
    out = tmp_path / "plan.json"
    assert cli("recommend", "--use-case", "chatbot", "--qps", "20", "--json", "--out", str(out)).exit_code == 0
    plan = json.loads(out.read_text())
    for c in plan["candidates"]:
        assert c["predicted"].pop("tpot_shares")["kv_reads"] >= 0
    out.write_text(json.dumps(plan))
    w = cli("whatif", "--plan", str(out), "--set", "traffic=x2", "--json")
    assert w.exit_code == 0, w.stdout
    result = json.loads(w.stdout)
    # The stored prediction stays as written; the new one states its parts.
    assert result["before"]["predicted"]["tpot_shares"] is None and result["after"]["predicted"]["tpot_shares"]
