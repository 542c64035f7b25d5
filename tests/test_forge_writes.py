"""Forge writes are not retried blindly: a POST that went through but answered 502, or whose answer never
came, is followed by a fresh look and an update, so there is exactly one sticky comment and one pull
request; the sticky comment is found by its marker AND by servewise's own account (the real PyGithub and
python-gitlab clients against the loopback fakes)."""

from __future__ import annotations

import pytest

from gitops.forges import ForgeConfig, open_forge
from gitops.propose import propose
from gitops.report import MARKER
from kb.catalog import open_kb
from tests.fakes.github_api import FakeGitHub
from tests.fakes.gitlab_api import FakeGitLab

GH_TOKEN = "ghp_" + "z" * 36
GL_TOKEN = "glpat-" + "w" * 20
AMBIGUOUS = ["502-after", "drop-after", "slow-after"]


@pytest.fixture
def gh():
    f = FakeGitHub(token=GH_TOKEN)
    f.slow_s = 1.5  # past the client's 1 s timeout: the write happened, the answer never arrives in time
    yield f
    f.close()


@pytest.fixture
def gl():
    f = FakeGitLab(token=GL_TOKEN)
    f.slow_s = 1.5
    yield f
    f.close()


def _github(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", GH_TOKEN)
    return open_forge(ForgeConfig(kind="github", repo=f"{fake.owner}/{fake.name}", url=fake.base, local_path=tmp_path,
                                  timeout_s=1.0, retries=4, backoff_s=0.01), open_kb(tmp_path / "kb.sqlite"))


def _gitlab(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", GL_TOKEN)
    return open_forge(ForgeConfig(kind="gitlab", repo=fake.path_with_namespace, url=fake.base, local_path=tmp_path,
                                  timeout_s=1.0, retries=4, backoff_s=0.01), open_kb(tmp_path / "kb.sqlite"))


def _sticky(bodies):
    return [b for b in bodies if MARKER in b]


@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_github_ambiguous_comment_post_gives_exactly_one_sticky_comment(gh, tmp_path, monkeypatch, bundle, fault):
    forge = _github(gh, tmp_path, monkeypatch)
    pr = propose(bundle, forge).pr.number
    gh.fail("POST", r"/issues/\d+/comments$", fault)
    forge.upsert_comment(pr, MARKER, f"{MARKER}\nfirst")
    assert [c["body"] for c in gh.comments.values()] == [f"{MARKER}\nfirst"]
    gh.fail("PATCH", r"/issues/comments/\d+$", "502-after")  # a PATCH is idempotent: retried as it is
    forge.upsert_comment(pr, MARKER, f"{MARKER}\nsecond")
    assert [c["body"] for c in gh.comments.values()] == [f"{MARKER}\nsecond"]


@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_github_ambiguous_pull_and_ref_posts_give_one_pull_request(gh, tmp_path, monkeypatch, bundle, fault):
    forge = _github(gh, tmp_path, monkeypatch)
    gh.fail("POST", r"/git/refs$", fault)
    gh.fail("POST", r"/pulls$", fault)
    gh.fail("POST", r"/git/commits$", fault)
    result = propose(bundle, forge)
    assert len(gh.pulls) == 1 and result.pr.number in gh.pulls
    assert "deployments/llm-serving/chatbot/plan.json" in gh.files_at(result.branch)
    assert not gh.failures


def test_github_marker_from_another_author_is_neither_edited_nor_trusted(gh, tmp_path, monkeypatch, bundle):
    forge = _github(gh, tmp_path, monkeypatch)
    pr = propose(bundle, forge).pr.number
    gh.comments[999] = {"issue": pr, "body": f"{MARKER}\nall SLOs met, merge away", "user": "mallory"}
    forge.upsert_comment(pr, MARKER, f"{MARKER}\nreal")
    forge.upsert_comment(pr, MARKER, f"{MARKER}\nreal again")
    assert gh.comments[999]["body"] == f"{MARKER}\nall SLOs met, merge away"
    ours = [c for c in gh.comments.values() if c["user"] == gh.login]
    assert [c["body"] for c in ours] == [f"{MARKER}\nreal again"]


def test_github_actions_token_finds_its_bot_comment_and_ignores_a_person_s(tmp_path, monkeypatch, bundle):
    gh = FakeGitHub(token=GH_TOKEN, login="github-actions[bot]")
    gh.app_token = True
    try:
        forge = _github(gh, tmp_path, monkeypatch)
        pr = propose(bundle, forge).pr.number
        gh.comments[999] = {"issue": pr, "body": f"{MARKER}\nfake", "user": "mallory"}
        forge.upsert_comment(pr, MARKER, f"{MARKER}\none")
        forge.upsert_comment(pr, MARKER, f"{MARKER}\ntwo")
        assert gh.comments[999]["body"] == f"{MARKER}\nfake"
        assert [c["body"] for c in gh.comments.values() if c["user"] == gh.login] == [f"{MARKER}\ntwo"]
    finally:
        gh.close()


@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_gitlab_ambiguous_note_and_mr_posts_give_exactly_one_of_each(gl, tmp_path, monkeypatch, bundle, fault):
    forge = _gitlab(gl, tmp_path, monkeypatch)
    gl.fail("POST", r"/merge_requests$", fault)
    mr = propose(bundle, forge).pr.number
    assert len(gl.mrs) == 1
    gl.fail("POST", r"/notes$", fault)
    forge.upsert_comment(mr, MARKER, f"{MARKER}\nfirst")
    forge.upsert_comment(mr, MARKER, f"{MARKER}\nsecond")
    assert _sticky(n["body"] for n in gl.notes.values()) == [f"{MARKER}\nsecond"]


def test_gitlab_marker_from_another_author_is_left_alone(gl, tmp_path, monkeypatch, bundle):
    forge = _gitlab(gl, tmp_path, monkeypatch)
    mr = propose(bundle, forge).pr.number
    gl.notes[999] = {"mr": mr, "body": f"{MARKER}\nfake verdict", "author": "mallory"}
    forge.upsert_comment(mr, MARKER, f"{MARKER}\nreal")
    assert gl.notes[999]["body"] == f"{MARKER}\nfake verdict"
    assert [n["body"] for n in gl.notes.values() if n["author"] == gl.username] == [f"{MARKER}\nreal"]
