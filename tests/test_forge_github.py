"""GitHub forge: the real PyGithub client against a loopback server answering like GitHub's REST API,
with injected failures. After the retries there is exactly one pull request with the right content."""

from __future__ import annotations

import json

import pytest

from gitops.forges import ForgeConfig, open_forge
from gitops.propose import propose
from gitops.render import render_bundle
from kb.catalog import open_kb
from planner.errors import BadInput, Unreachable
from tests.fakes.github_api import FakeGitHub

TOKEN = "ghp_" + "x" * 36


@pytest.fixture(scope="module")
def bundle(chatbot_plans):
    return render_bundle(chatbot_plans[0])


@pytest.fixture
def fake():
    f = FakeGitHub(token=TOKEN)
    yield f
    f.close()


def _forge(fake, tmp_path, monkeypatch, **over):
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", TOKEN)
    cfg = ForgeConfig(kind="github", repo=f"{fake.owner}/{fake.name}", url=fake.base, local_path=tmp_path / "unused",
                      timeout_s=1.0, retries=4, backoff_s=0.01, **over)
    return open_forge(cfg, open_kb(tmp_path / "kb.sqlite"))


def test_propose_is_idempotent_and_content_is_right(fake, tmp_path, monkeypatch, bundle):
    forge = _forge(fake, tmp_path, monkeypatch)
    first = propose(bundle, forge)
    second = propose(bundle, forge)
    assert first.created and not second.created and len(fake.pulls) == 1
    pr = fake.pulls[first.pr.number]
    assert pr["head"] == "servewise/llm-serving/chatbot" and "### SLO targets" in pr["body"]
    assert set(fake.labels[first.pr.number]) == {"servewise", "deploy"}
    files = fake.files_at("servewise/llm-serving/chatbot")
    assert json.loads(files["deployments/llm-serving/chatbot/plan.json"])["id"] == bundle.plan.id
    forge.upsert_comment(first.pr.number, "<!-- m -->", "<!-- m --> one")
    forge.upsert_comment(first.pr.number, "<!-- m -->", "two <!-- m -->")
    assert [c.body for c in forge.comments(first.pr.number)] == ["two <!-- m -->"]
    merged = forge.merge_pr(first.pr.number)
    assert merged.state == "merged" and "deployments/llm-serving/chatbot/plan.json" in fake.files_at("main")
    assert forge.list_files("deployments/llm-serving/chatbot") and forge.file_versions(
        "deployments/llm-serving/chatbot/plan.json")


def test_transient_failures_are_retried_to_exactly_one_pr(fake, tmp_path, monkeypatch, bundle):
    fake.fail("POST", r"/pulls$", "500", "429", "secondary")
    fake.fail("POST", r"/git/trees$", "drop")
    fake.fail("GET", r"/git/ref/heads/main$", "slow")
    forge = _forge(fake, tmp_path, monkeypatch)
    result = propose(bundle, forge)
    assert len(fake.pulls) == 1 and result.pr.number in fake.pulls
    assert sum(1 for m, p in fake.requests if m == "POST" and p.endswith("/pulls")) == 4
    assert not fake.failures
    assert "deployments/llm-serving/chatbot/inferenceservice.yaml" in fake.files_at(result.branch)


def test_a_retried_create_that_went_through_is_not_duplicated(fake, tmp_path, monkeypatch, bundle):
    forge = _forge(fake, tmp_path, monkeypatch)
    forge.commit_files("servewise/llm-serving/chatbot", {"a.txt": "x"}, "m")
    fake.pulls[7] = {"head": "servewise/llm-serving/chatbot", "base": "main", "title": "t", "body": "", "state": "open",
                     "merged": False}
    pr = forge.open_pr("servewise/llm-serving/chatbot", "title", "body", [])
    assert pr.number == 7 and len(fake.pulls) == 1


def test_auth_errors_name_the_token_variable_never_the_token(fake, tmp_path, monkeypatch, bundle):
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", "ghp_wrongwrongwrong")
    cfg = ForgeConfig(kind="github", repo=f"{fake.owner}/{fake.name}", url=fake.base, local_path=tmp_path,
                      retries=1, backoff_s=0.01, timeout_s=1)
    forge = open_forge(cfg, open_kb(tmp_path / "kb.sqlite"))
    with pytest.raises(BadInput) as err:
        propose(bundle, forge)
    assert "$SERVEWISE_FORGE_TOKEN" in err.value.message and "ghp_wrong" not in err.value.message
    missing = _forge(fake, tmp_path, monkeypatch)
    missing.repo_name = "acme/nope"
    with pytest.raises(BadInput, match="acme/nope not found"):
        missing.find_pr("x")


def test_unreachable_after_retries(tmp_path, monkeypatch, bundle):
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", TOKEN)
    cfg = ForgeConfig(kind="github", repo="acme/deploys", url="http://127.0.0.1:9", local_path=tmp_path,
                      retries=1, backoff_s=0.01, timeout_s=1)
    with pytest.raises(Unreachable, match="did not answer"):
        open_forge(cfg, open_kb(tmp_path / "kb.sqlite")).find_pr("x")


def test_missing_token_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SERVEWISE_FORGE_TOKEN", raising=False)
    with pytest.raises(BadInput, match=r"\$SERVEWISE_FORGE_TOKEN"):
        open_forge(ForgeConfig(kind="github", repo="a/b", local_path=tmp_path), open_kb(tmp_path / "kb.sqlite"))
