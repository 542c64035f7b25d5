"""The local forge with real git: propose is idempotent, merge really merges, rollback and teardown."""

from __future__ import annotations

import json
import subprocess

import pytest

from gitops.forges import ForgeConfig, open_forge
from gitops.propose import propose, rollback, teardown
from gitops.render import render_bundle
from gitops.validate import validate_bundle
from kb.catalog import open_kb
from planner.errors import BadInput


@pytest.fixture(scope="module")
def plans(chatbot_plans):
    return chatbot_plans


@pytest.fixture
def forge(tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    return open_forge(ForgeConfig(kind="local", local_path=tmp_path / "forge.git"), kb)


def _git(forge, *args):
    return subprocess.run(["git", "--git-dir", str(forge.path), *args], capture_output=True, text=True, check=True).stdout


def test_propose_twice_updates_the_same_pr(forge, plans):
    bundle = render_bundle(plans[0])
    first = propose(bundle, forge)
    again = propose(bundle, forge)
    assert first.created and not again.created and first.pr.number == again.pr.number
    assert len(forge.list_prs()) == 1 and first.branch == "servewise/llm-serving/chatbot"
    assert "### Alternatives considered" in first.pr.body and "servewise rollback" in first.pr.body
    on_branch = forge.read_file("deployments/llm-serving/chatbot/plan.json", first.branch)
    assert json.loads(on_branch)["id"] == plans[0].id
    assert forge.read_file("deployments/llm-serving/chatbot/plan.json", "main") is None


def test_merge_really_merges_and_files_validate(forge, plans):
    pr = propose(render_bundle(plans[0]), forge).pr
    merged = forge.merge_pr(pr.number)
    assert merged.state == "merged"
    assert "Merge pull request #1" in _git(forge, "log", "-1", "--format=%s", "main")
    files = {p: forge.read_file(p) for p in forge.list_files("deployments/llm-serving/chatbot")}
    from gitops.bundle import Bundle
    from planner.contracts import Plan

    rel = {p.split("/")[-1]: v for p, v in files.items()}
    merged_bundle = Bundle(namespace="llm-serving", name="chatbot", plan=Plan.model_validate_json(rel["plan.json"]), files=rel)
    assert validate_bundle(merged_bundle) == []
    with pytest.raises(BadInput, match="only open"):
        forge.merge_pr(pr.number)


def test_rollback_restores_previous_plan_and_teardown_removes(forge, plans, cat):
    forge.merge_pr(propose(render_bundle(plans[0]), forge).pr.number)
    second = propose(render_bundle(plans[1]), forge)
    assert second.created and second.pr.number == 2
    forge.merge_pr(2)
    back = rollback("llm-serving/chatbot", forge, default_namespace="llm-serving", catalog=cat)
    restored = json.loads(forge.read_file("deployments/llm-serving/chatbot/plan.json", back.branch))
    assert restored["id"] == plans[0].id
    down = teardown("chatbot", forge, default_namespace="llm-serving")
    assert forge.list_files("deployments/llm-serving/chatbot", down.branch) == []
    with pytest.raises(BadInput, match="not deployed"):
        teardown("other", forge, default_namespace="llm-serving")


def test_rollback_rechecks_a_previous_plan_edited_by_hand_on_main(forge, plans, cat):
    forge.merge_pr(propose(render_bundle(plans[0]), forge).pr.number)
    path = "deployments/llm-serving/chatbot/plan.json"
    edited = json.loads(forge.read_file(path, "main"))
    edited["chosen"] = 99  # issue 14 finding 6: no index into nothing, on main either
    forge.commit_files("main", {path: json.dumps(edited)}, "hand edit")
    forge.merge_pr(propose(render_bundle(plans[1]), forge).pr.number)
    with pytest.raises(BadInput, match="chosen"):
        rollback("llm-serving/chatbot", forge, default_namespace="llm-serving", catalog=cat)


def test_sticky_comment_is_never_duplicated(forge, plans):
    pr = propose(render_bundle(plans[0]), forge).pr
    forge.upsert_comment(pr.number, "<!-- m -->", "first")
    forge.upsert_comment(pr.number, "<!-- m -->", "second")
    assert [c.body for c in forge.comments(pr.number)] == ["second"]


def test_cli_flow(cli, tmp_path):
    plan = tmp_path / "plan.json"
    cli("recommend", "--use-case", "code-generation", "--qps", "5", "--out", str(plan), "--json")
    r = cli("propose", "--plan", str(plan), "--json")
    assert r.exit_code == 0, r.stdout
    assert json.loads(r.stdout)["created"] is True
    assert json.loads(cli("propose", "--plan", str(plan), "--json").stdout)["created"] is False
    assert cli("pr", "merge", "1", "--json").exit_code == 0
    assert json.loads(cli("pr", "show", "1", "--json").stdout)["state"] == "merged"
    no = cli("teardown", "code-generation", "--json")
    assert no.exit_code == 2 and "--yes" in json.loads(no.stdout)["error"]["message"]
    assert cli("teardown", "code-generation", "--yes", "--json").exit_code == 0
