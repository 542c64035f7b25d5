"""GitLab forge: the real python-gitlab client against a loopback server answering like GitLab's REST
API v4, with injected failures. After the retries there is exactly one merge request with the right content."""

from __future__ import annotations

import json

import pytest

from gitops.forges import ForgeConfig, open_forge
from gitops.propose import propose, rollback
from gitops.render import render_bundle
from kb.catalog import open_kb
from planner.errors import BadInput
from tests.fakes.gitlab_api import FakeGitLab

TOKEN = "glpat-" + "y" * 20


@pytest.fixture(scope="module")
def plans(chatbot_plans):
    return chatbot_plans


@pytest.fixture
def fake():
    f = FakeGitLab(token=TOKEN)
    yield f
    f.close()


def _forge(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", TOKEN)
    cfg = ForgeConfig(kind="gitlab", repo=fake.path_with_namespace, url=fake.base, local_path=tmp_path, timeout_s=1.0)
    return open_forge(cfg, open_kb(tmp_path / "kb.sqlite"))


def test_propose_update_merge_comment_rollback(fake, tmp_path, monkeypatch, plans, cat):
    forge = _forge(fake, tmp_path, monkeypatch)
    first = propose(render_bundle(plans[0]), forge)
    again = propose(render_bundle(plans[0]), forge)
    assert first.created and not again.created and len(fake.mrs) == 1
    mr = fake.mrs[first.pr.number]
    assert mr["source"] == "servewise/llm-serving/chatbot" and set(mr["labels"]) == {"servewise", "deploy"}
    assert "### Alternatives considered" in mr["description"]
    forge.upsert_comment(first.pr.number, "<!-- r -->", "<!-- r --> v1")
    forge.upsert_comment(first.pr.number, "<!-- r -->", "<!-- r --> v2")
    assert [c.body for c in forge.comments(first.pr.number)] == ["<!-- r --> v2"]
    assert forge.merge_pr(first.pr.number).state == "merged"
    second = propose(render_bundle(plans[1]), forge)
    assert second.created and second.pr.number == 2
    forge.merge_pr(2)
    back = rollback("llm-serving/chatbot", forge, default_namespace="llm-serving", catalog=cat)
    restored = json.loads(fake.files_at(back.branch)["deployments/llm-serving/chatbot/plan.json"])
    assert restored["id"] == plans[0].id


def test_transient_failures_are_retried_to_exactly_one_mr(fake, tmp_path, monkeypatch, plans):
    fake.fail("POST", r"/merge_requests$", "500", "429")
    fake.fail("POST", r"/repository/commits$", "500")
    fake.fail("GET", r"/repository/branches/", "drop")
    forge = _forge(fake, tmp_path, monkeypatch)
    result = propose(render_bundle(plans[0]), forge)
    assert len(fake.mrs) == 1 and not fake.failures
    assert sum(1 for m, p in fake.requests if m == "POST" and p.endswith("/merge_requests")) == 3
    assert "deployments/llm-serving/chatbot/plan.json" in fake.files_at(result.branch)


def test_auth_and_missing_project_errors(fake, tmp_path, monkeypatch, plans):
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", "glpat-wrongwrong")
    forge = open_forge(ForgeConfig(kind="gitlab", repo=fake.path_with_namespace, url=fake.base, local_path=tmp_path),
                       open_kb(tmp_path / "kb.sqlite"))
    with pytest.raises(BadInput) as err:
        forge.find_pr("x")
    assert "$SERVEWISE_FORGE_TOKEN" in err.value.message and "wrongwrong" not in err.value.message
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", TOKEN)
    nope = open_forge(ForgeConfig(kind="gitlab", repo="platform/nope", url=fake.base, local_path=tmp_path),
                      open_kb(tmp_path / "kb.sqlite"))
    with pytest.raises(BadInput, match="platform/nope not found"):
        nope.find_pr("x")
