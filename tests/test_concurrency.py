"""Concurrent and killed runs, with real processes, real git and one shared SQLite file.

Four proposes at once (of one deployment, and of four) on a fresh knowledge base and a fresh local
forge: every run that exits 0 has its commit on its branch, PR numbers are unique, and one
deployment has one pull request. Many processes writing the knowledge base at once lose nothing
and never crash. A propose killed half way leaves nothing the next run does not clean or finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.conftest import SERVEWISE


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SERVEWISE_KB": str(tmp / "kb.sqlite"), "SERVEWISE_LOCAL_FORGE": str(tmp / "forge.git"),
            "SERVEWISE_CONFIG": str(tmp / "config.toml"), **extra}


@pytest.fixture(scope="module")
def plan_files(tmp_path_factory) -> list[Path]:
    """Four different plans of the chatbot deployment (different loads, so each propose changes files)."""
    from kb.catalog import load_catalog, open_kb
    from kb.latency import load_latency_params
    from planner.recommend import recommend
    from planner.spec import build_spec

    d = tmp_path_factory.mktemp("plans")
    cat = load_catalog(open_kb(d / "kb.sqlite"))
    out = []
    for i, qps in enumerate((3, 7, 20, 40)):
        plan = recommend(build_spec(cat, use_case="chatbot", qps=qps), cat, load_latency_params(), provider="aws")
        path = d / f"plan{i}.json"
        path.write_text(plan.model_dump_json())
        out.append(path)
    return out


def _git(forge: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", str(forge), *args], capture_output=True, text=True)


def _propose_all(tmp: Path, runs: list[list[str]]) -> list[tuple[int, dict, str]]:
    procs = [subprocess.Popen([str(SERVEWISE), "propose", *args, "--json"], env=_env(tmp), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in runs]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append((p.returncode, json.loads(out) if out.strip() else {}, err))
    return results


def _assert_commits_on_branches(tmp: Path, results) -> list[dict]:
    ok = [r for code, r, err in results if code == 0]
    for code, r, err in results:
        assert "Traceback" not in err
        assert code in (0, 4), (code, r, err)
        if code == 4:
            assert r["error"]["code"] == "busy"
    for r in ok:
        on_branch = _git(tmp / "forge.git", "merge-base", "--is-ancestor", r["commit"], f"refs/heads/{r['branch']}")
        assert on_branch.returncode == 0, f"commit {r['commit']} of PR #{r['number']} is not on {r['branch']}"
    return ok


def test_four_proposes_of_one_deployment_keep_every_commit(tmp_path, plan_files):
    results = _propose_all(tmp_path, [["--plan", str(p)] for p in plan_files])
    ok = _assert_commits_on_branches(tmp_path, results)
    assert ok, "at least one run must succeed"
    assert {r["number"] for r in ok} == {1} and {r["branch"] for r in ok} == {"servewise/llm-serving/chatbot"}
    listed = json.loads(subprocess.run([str(SERVEWISE), "pr", "list", "--json"], env=_env(tmp_path),
                                       capture_output=True, text=True).stdout)
    assert [p["number"] for p in listed] == [1]
    head = _git(tmp_path / "forge.git", "rev-parse", "refs/heads/servewise/llm-serving/chatbot").stdout.strip()
    assert listed[0]["head_sha"] == head


def test_four_proposes_of_different_deployments_get_unique_numbers(tmp_path, plan_files):
    results = _propose_all(tmp_path, [["--plan", str(p), "--name", f"chat-{i}"] for i, p in enumerate(plan_files)])
    ok = _assert_commits_on_branches(tmp_path, results)
    assert len(ok) == 4, [(c, e) for c, _, e in results]
    assert sorted(r["number"] for r in ok) == [1, 2, 3, 4]
    assert len({r["branch"] for r in ok}) == 4


WRITER = textwrap.dedent("""
    import sys
    from gitops.forges.base import PullRequest
    from kb import pull_requests as prs
    from kb.audit import record_call
    from kb.catalog import open_kb

    kb = open_kb(sys.argv[1])
    who = sys.argv[2]
    for i in range(int(sys.argv[3])):
        pr = PullRequest(forge="local", repo="r", number=1, branch=f"b/{who}/{i}", title="t", body="", state="open",
                         url="")
        prs.open_or_update(kb, pr, url=lambda n: f"x#{n}")
        assert record_call(kb, actor=who, tool="t", args={"i": i}, duration_ms=0, outcome="ok")
""")


def test_many_concurrent_kb_writers_lose_nothing(tmp_path):
    writers, each = 8, 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "kb.sqlite"), f"w{w}", str(each)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
             for w in range(writers)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    from kb.catalog import open_kb

    kb = open_kb(tmp_path / "kb.sqlite")
    numbers = [r[0] for r in kb.db.execute("SELECT number FROM pull_requests")]
    assert sorted(numbers) == list(range(1, writers * each + 1))
    assert kb.db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == writers * each
    assert kb.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _servewise_clones() -> set[Path]:
    return {p for p in Path(tempfile.gettempdir()).glob("servewise-forge-*")}


def test_killed_propose_is_cleaned_and_completed_by_the_next_run(tmp_path, plan_files):
    env = _env(tmp_path)
    assert subprocess.run([str(SERVEWISE), "pr", "list"], env=env, capture_output=True).returncode == 0  # forge exists
    before = _servewise_clones()
    # Stop the run inside git (the clone exists), as kill -9 would at any moment.
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    (wrapper / "git").write_text(f"#!/bin/sh\nif [ \"$1\" = push ]; then kill -9 $PPID; sleep 30; fi\nexec {real_git} \"$@\"\n")
    (wrapper / "git").chmod(0o755)
    killed = subprocess.run([str(SERVEWISE), "propose", "--plan", str(plan_files[0])],
                            env={**env, "PATH": f"{wrapper}:{env['PATH']}"}, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    left = _servewise_clones() - before
    assert left, "the killed run left its clone behind (what the next run must clean)"
    rerun = subprocess.run([str(SERVEWISE), "propose", "--plan", str(plan_files[0]), "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert not (left & _servewise_clones())
    r = json.loads(rerun.stdout)
    assert r["created"] and r["number"] == 1
    assert _git(tmp_path / "forge.git", "merge-base", "--is-ancestor", r["commit"], f"refs/heads/{r['branch']}").returncode == 0


def test_a_branch_without_pull_request_is_completed_by_a_rerun(tmp_path, plan_files):
    """kill -9 between the push and the kb insert: the branch exists, no PR records it."""
    env = _env(tmp_path)
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    # After the push, `rev-parse refs/heads/<branch>` from open_pr is the next git call: die there.
    (wrapper / "git").write_text(
        f"#!/bin/sh\ncase \"$*\" in *'rev-parse refs/heads/servewise'*) kill -9 $PPID; sleep 30;; esac\n"
        f"exec {real_git} \"$@\"\n")
    (wrapper / "git").chmod(0o755)
    killed = subprocess.run([str(SERVEWISE), "propose", "--plan", str(plan_files[1])],
                            env={**env, "PATH": f"{wrapper}:{env['PATH']}"}, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert _git(tmp_path / "forge.git", "rev-parse", "--verify", "refs/heads/servewise/llm-serving/chatbot").returncode == 0
    listed = subprocess.run([str(SERVEWISE), "pr", "list", "--json"], env=env, capture_output=True, text=True)
    assert json.loads(listed.stdout) == []
    rerun = subprocess.run([str(SERVEWISE), "propose", "--plan", str(plan_files[1]), "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["number"] == 1
