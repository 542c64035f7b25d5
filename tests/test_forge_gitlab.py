"""GitLab forge: the real python-gitlab client against a loopback server answering like GitLab's REST
API v4, with injected failures. After the retries there is exactly one merge request with the right content."""

from __future__ import annotations

import json

import pytest

from gitops.bootstrap import APPSET_PATH, validate_applicationset
from gitops.forges import ForgeConfig, open_forge
from gitops.propose import gitops_init, propose, rollback, teardown
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


# -- an empty project ---------------------------------------------------------------------------------------------
# GitLab says `empty_repo: true` and answers 404 for its branches; the commits API creates `branch` in an empty
# project without a start branch (see tests/fakes/gitlab_api.py for the sources the fake follows).

BOOTSTRAP = {"README.md", APPSET_PATH, "bootstrap/kustomization.yaml"}


@pytest.fixture
def empty():
    f = FakeGitLab(token=TOKEN, empty=True)
    yield f
    f.close()


def test_first_propose_to_an_empty_project_starts_main_then_opens_the_mr(empty, tmp_path, monkeypatch, plans):
    forge = _forge(empty, tmp_path, monkeypatch)
    assert not forge.has_branch("main") and forge.list_files("deployments") == []
    first = propose(render_bundle(plans[0]), forge)
    main = empty.files_at("main")
    assert set(main) == BOOTSTRAP and "kubectl apply -n argocd -k bootstrap/" in main["README.md"]
    assert not validate_applicationset(main[APPSET_PATH])
    root = empty.commits[empty.branches["main"]]
    assert root["parents"] == [] and root["message"].startswith("Initialize the GitOps repository")
    assert first.created and empty.mrs[first.pr.number]["target"] == "main"
    mr_files = empty.files_at(first.branch)
    assert "deployments/llm-serving/chatbot/plan.json" in mr_files and mr_files[APPSET_PATH] == main[APPSET_PATH]
    assert empty.commits[empty.branches[first.branch]]["parents"] == [empty.branches["main"]]
    started = empty.branches["main"]
    second = propose(render_bundle(plans[0]), forge)
    assert not second.created and second.pr.number == first.pr.number
    assert empty.branches["main"] == started and len(empty.mrs) == 1


def test_an_empty_project_whose_first_commit_went_through_unanswered_is_started_once(empty, tmp_path, monkeypatch,
                                                                                     plans):
    empty.fail("POST", r"/repository/commits$", "502-after")  # the commit is made, the answer is a 502
    result = propose(render_bundle(plans[0]), _forge(empty, tmp_path, monkeypatch))
    assert set(empty.files_at("main")) == BOOTSTRAP and result.pr.number in empty.mrs
    assert empty.commits[empty.branches["main"]]["parents"] == []  # one first commit; the retry was refused
    assert sum(1 for m, p in empty.requests if m == "POST" and p.endswith("/repository/commits")) == 3


def test_gitops_init_on_an_empty_project_commits_main_directly(empty, tmp_path, monkeypatch):
    forge = _forge(empty, tmp_path, monkeypatch)
    result = gitops_init(forge, "https://gitlab.com/platform/deploys.git")
    assert result.pr is None and result.branch == "main" and result.commit == empty.branches["main"]
    assert set(empty.files_at("main")) == BOOTSTRAP and not empty.mrs
    assert gitops_init(forge, "https://gitlab.com/platform/deploys.git") is None


def test_rollback_and_teardown_on_an_empty_project_say_there_is_nothing(empty, tmp_path, monkeypatch, cat):
    forge = _forge(empty, tmp_path, monkeypatch)
    with pytest.raises(BadInput, match="no plan on main"):
        rollback("llm-serving/chatbot", forge, default_namespace="llm-serving", catalog=cat)
    with pytest.raises(BadInput, match="is not deployed"):
        teardown("llm-serving/chatbot", forge, default_namespace="llm-serving")
    assert not empty.branches


def test_a_project_with_main_but_no_bootstrap_gets_it_in_the_mr_not_on_main(fake, tmp_path, monkeypatch, plans):
    started = fake.branches["main"]
    result = propose(render_bundle(plans[0]), _forge(fake, tmp_path, monkeypatch))
    assert fake.branches["main"] == started
    assert BOOTSTRAP <= set(fake.files_at(result.branch)) and set(fake.files_at("main")) == {"README.md"}


def test_a_project_without_main_is_refused_naming_its_default_branch(fake, tmp_path, monkeypatch, plans):
    fake.branches["master"] = fake.branches.pop("main")
    fake.default_branch = "master"
    with pytest.raises(BadInput, match=r"platform/deploys has no branch main \(its default branch is master\)"):
        propose(render_bundle(plans[0]), _forge(fake, tmp_path, monkeypatch))
    assert set(fake.branches) == {"master"} and not fake.mrs
