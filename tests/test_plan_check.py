"""plan.json is checked again whenever it is loaded (render, propose, whatif, report; from a file, the forge or
the kb): a hand-edited plan is exit 2 with one line (`{"error": ...}` under --json), never a bundle or a traceback."""

from __future__ import annotations

import json

import pytest

EDITS = {
    "tp -4": lambda p, c: c.update(tp=-4),
    "tp 0": lambda p, c: c.update(tp=0),
    "tp 1e6": lambda p, c: c.update(tp=1_000_000),
    "tp 11 (does not divide the heads)": lambda p, c: c.update(tp=11),
    "pp 0": lambda p, c: c.update(pp=0),
    "min 10 > max 2": lambda p, c: c.update(min_replicas=10, max_replicas=2),
    "replicas 0": lambda p, c: c.update(replicas=0, min_replicas=0),
    "replicas -3": lambda p, c: c.update(replicas=-3),
    "chosen 99": lambda p, c: p.update(chosen=99),
    "chosen -1": lambda p, c: p.update(chosen=-1),
    "no candidates": lambda p, c: p.update(candidates=[]),
    "unknown model": lambda p, c: c.update(model="acme/secret-model-9000"),
    "unknown gpu": lambda p, c: c.update(gpu="TPU-v9"),
    "70B bf16 on one L4": lambda p, c: c.update(model="meta-llama/Llama-3.1-70B-Instruct", weight_dtype="bf16",
                                                gpu="L4", tp=1, pp=1),
    "gpu_memory_utilization 7": lambda p, c: c["vllm"].update(gpu_memory_utilization=7),
    "max_model_len 0": lambda p, c: c["vllm"].update(max_model_len=0),
    "max_num_seqs -1": lambda p, c: c["vllm"].update(max_num_seqs=-1),
}


@pytest.fixture(scope="module")
def plan_json(chatbot_plans) -> str:
    return chatbot_plans[0].model_dump_json()


def _edited(plan_json: str, edit) -> str:
    p = json.loads(plan_json)
    edit(p, p["candidates"][p["chosen"]])
    return json.dumps(p)


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_a_hand_edited_plan_is_refused_by_every_command(cli, isolated_env, plan_json, edit):
    plan = isolated_env / "plan.json"
    plan.write_text(_edited(plan_json, EDITS[edit]))
    out = isolated_env / "out"
    for args in (("render", "--plan", str(plan), "--out", str(out)), ("propose", "--plan", str(plan)),
                 ("whatif", "--plan", str(plan), "--set", "traffic=x2"),
                 ("report", "--plan", str(plan), "--prometheus", "http://127.0.0.1:9")):
        r = cli(*args, "--json")
        assert r.exit_code == 2, (args[0], r.stdout)
        assert set(json.loads(r.stdout)) == {"error"} and "\n" not in json.loads(r.stdout)["error"]["message"]
        human = cli(*args)
        assert human.exit_code == 2 and human.stderr.count("\n") == 1 and "Traceback" not in human.stderr
    assert not out.exists() and not (isolated_env / "forge.git").exists() or cli("pr", "list", "--json").stdout.strip() == "[]"


def test_a_genuine_plan_still_loads_everywhere(cli, isolated_env, plan_json):
    plan = isolated_env / "plan.json"
    plan.write_text(plan_json)
    assert cli("render", "--plan", str(plan), "--out", str(isolated_env / "out"), "--json").exit_code == 0
    assert cli("whatif", "--plan", str(plan), "--set", "traffic=x2", "--json").exit_code == 0
    assert cli("propose", "--plan", str(plan), "--json").exit_code == 0


def test_a_plan_edited_on_the_forge_is_refused_by_report(cli, isolated_env, plan_json):
    from gitops.forges.local import LocalForge
    from kb.catalog import open_kb

    plan = isolated_env / "plan.json"
    plan.write_text(plan_json)
    assert cli("propose", "--plan", str(plan), "--name", "chat", "--json").exit_code == 0
    forge = LocalForge(isolated_env / "forge.git", open_kb(isolated_env / "kb.sqlite"))
    forge.commit_files("servewise/llm-serving/chat", {
        "deployments/llm-serving/chat/plan.json": _edited(plan_json, EDITS["chosen 99"])}, "hand edit")
    r = cli("report", "--pr", "1", "--prometheus", "http://127.0.0.1:9", "--json")
    assert r.exit_code == 2 and "chosen is 99" in json.loads(r.stdout)["error"]["message"]
    r = cli("report", "--all", "--prometheus", "http://127.0.0.1:9", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["skipped"] and json.loads(r.stdout)["reports"] == []
