"""GitHub forge: the real PyGithub client against a loopback server answering like GitHub's REST API,
with injected failures. After the retries there is exactly one pull request with the right content."""

from __future__ import annotations

import json

import pytest

from gitops.bootstrap import APPSET_PATH, validate_applicationset
from gitops.forges import ForgeConfig, open_forge
from gitops.propose import gitops_init, propose, rollback, teardown
from kb.catalog import open_kb
from planner.errors import BadInput, Unreachable
from tests.fakes.github_api import FakeGitHub

TOKEN = "ghp_" + "x" * 36


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


def test_other_http_errors_are_one_clear_message_not_a_crash(fake, tmp_path, monkeypatch):
    """GitHub's 422 Validation Failed (a pull request onto a base that does not exist) reaches the generic branch of
    the error mapping: an Unreachable naming the status and the step, with the answer's detail."""
    forge = _forge(fake, tmp_path, monkeypatch)
    forge.commit_files("servewise/llm-serving/chatbot", {"a.txt": "x"}, "m")
    with pytest.raises(Unreachable, match=r"GitHub answered 422 while trying to .*Validation Failed"):
        forge.open_pr("servewise/llm-serving/chatbot", "title", "body", [], base="no-such-base")


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


# -- an empty repository ------------------------------------------------------------------------------------------
# GitHub's git database API answers 409 "Git Repository is empty." until a first commit exists, and its guide says
# to make that commit with the contents API (see tests/fakes/github_api.py for the sources the fake follows).

BOOTSTRAP = {"README.md", APPSET_PATH, "bootstrap/kustomization.yaml"}


@pytest.fixture
def empty():
    f = FakeGitHub(token=TOKEN, empty=True)
    yield f
    f.close()


def _puts(fake) -> int:
    return sum(1 for m, p in fake.requests if m == "PUT" and "/contents/" in p)


def test_first_propose_to_an_empty_repository_starts_main_then_opens_the_pr(empty, tmp_path, monkeypatch, bundle):
    forge = _forge(empty, tmp_path, monkeypatch)
    assert not forge.has_branch("main") and forge.list_files("deployments") == []
    first = propose(bundle, forge)
    main = empty.files_at("main")
    assert set(main) == BOOTSTRAP and "kubectl apply -n argocd -k bootstrap/" in main["README.md"]
    assert not validate_applicationset(main[APPSET_PATH])
    # the root commit came from the contents API and holds the README; the bootstrap followed on top of it
    history = [empty.commits[c] for c in empty._history(empty.refs["main"], None)]
    assert [c["parents"] == [] for c in history] == [False, True] and _puts(empty) == 1
    assert set(empty.trees[history[-1]["tree"]]) == {"README.md"}
    # then the deployment's pull request onto main, which does not carry the bootstrap again
    assert first.created and empty.pulls[first.pr.number]["base"] == "main"
    pr_files = empty.files_at(first.branch)
    assert "deployments/llm-serving/chatbot/plan.json" in pr_files and pr_files[APPSET_PATH] == main[APPSET_PATH]
    started = empty.refs["main"]
    second = propose(bundle, forge)
    assert not second.created and second.pr.number == first.pr.number
    assert empty.refs["main"] == started and _puts(empty) == 1 and len(empty.pulls) == 1


def test_an_empty_repository_whose_first_put_went_through_unanswered_is_started_once(empty, tmp_path, monkeypatch,
                                                                                        bundle):
    empty.fail("PUT", r"/contents/README\.md$", "502-after")  # the commit is made, the answer is a 502
    forge = _forge(empty, tmp_path, monkeypatch)
    result = propose(bundle, forge)
    assert set(empty.files_at("main")) == BOOTSTRAP and result.pr.number in empty.pulls
    assert _puts(empty) == 2  # the retried PUT is refused (the file exists now): the branch it wanted is there
    assert len(empty._history(empty.refs["main"], None)) == 2


def test_gitops_init_on_an_empty_repository_commits_main_directly(empty, tmp_path, monkeypatch):
    forge = _forge(empty, tmp_path, monkeypatch)
    result = gitops_init(forge, "https://github.com/acme/deploys.git")
    assert result.pr is None and result.branch == "main" and result.commit == empty.refs["main"]
    assert set(empty.files_at("main")) == BOOTSTRAP and not empty.pulls
    assert "https://github.com/acme/deploys.git" in empty.files_at("main")[APPSET_PATH]
    assert gitops_init(forge, "https://github.com/acme/deploys.git") is None  # present: nothing to propose


def test_rollback_and_teardown_on_an_empty_repository_say_there_is_nothing(empty, tmp_path, monkeypatch, cat):
    forge = _forge(empty, tmp_path, monkeypatch)
    with pytest.raises(BadInput, match="no plan on main"):
        rollback("llm-serving/chatbot", forge, default_namespace="llm-serving", catalog=cat)
    with pytest.raises(BadInput, match="is not deployed"):
        teardown("llm-serving/chatbot", forge, default_namespace="llm-serving")
    assert not empty.refs  # nothing was written


def test_a_repository_with_main_but_no_bootstrap_gets_it_in_the_pr_not_on_main(fake, tmp_path, monkeypatch, bundle):
    started = fake.refs["main"]
    result = propose(bundle, _forge(fake, tmp_path, monkeypatch))
    assert fake.refs["main"] == started and _puts(fake) == 0
    assert BOOTSTRAP <= set(fake.files_at(result.branch)) and set(fake.files_at("main")) == {"README.md"}


def test_a_repository_without_main_is_refused_naming_its_default_branch(fake, tmp_path, monkeypatch, bundle):
    fake.refs["master"] = fake.refs.pop("main")
    fake.default_branch = "master"
    with pytest.raises(BadInput, match=r"acme/deploys has no branch main \(its default branch is master\)"):
        propose(bundle, _forge(fake, tmp_path, monkeypatch))
    assert set(fake.refs) == {"master"} and not fake.pulls
