"""The embedded forge: a bare git repository on disk driven with real `git`; pull requests live in
the knowledge base, and merging one really merges its branch into main."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops.forges.base import Comment, Forge, PrState, PullRequest
from kb import pull_requests as prs
from kb.store import KnowledgeBase
from planner.errors import BadInput, Unreachable

_ENV = {"GIT_AUTHOR_NAME": "servewise", "GIT_AUTHOR_EMAIL": "servewise@localhost", "GIT_COMMITTER_NAME": "servewise",
        "GIT_COMMITTER_EMAIL": "servewise@localhost", "GIT_TERMINAL_PROMPT": "0"}


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **_ENV})
    except FileNotFoundError:
        raise Unreachable("git is not installed; install it (apt-get install git)") from None
    if check and proc.returncode != 0:
        raise Unreachable(f"git {' '.join(args[:2])} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout


class LocalForge(Forge):
    name = "local"

    def __init__(self, path: Path, kb: KnowledgeBase) -> None:
        self.path = Path(path).expanduser().resolve()
        self.kb = kb
        self.repo = str(self.path)
        self._ensure()

    def _ensure(self) -> None:
        if (self.path / "HEAD").exists():
            return
        if self.path.exists() and any(self.path.iterdir()):
            raise BadInput(f"{self.path} exists and is not a bare git repository; set local_forge elsewhere")
        self.path.mkdir(parents=True, exist_ok=True)
        git("init", "--bare", "-q", "-b", "main", str(self.path))
        with self._clone() as work:
            (work / "README.md").write_text("# GitOps deployments\n\nManaged by servewise: one directory per "
                                            "deployment under deployments/<namespace>/<name>/, synced by Argo CD.\n")
            git("add", "-A", cwd=work)
            git("commit", "-q", "-m", "Initialize the GitOps repository", cwd=work)
            git("push", "-q", "origin", "HEAD:main", cwd=work)

    @contextmanager
    def _clone(self) -> Iterator[Path]:
        tmp = Path(tempfile.mkdtemp(prefix="servewise-forge-"))
        try:
            git("clone", "-q", str(self.path), str(tmp / "w"))
            yield tmp / "w"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _unmerged_branch(self, branch: str, base: str) -> bool:
        """The branch exists and carries work not yet in base (a merged branch restarts from base)."""
        if not git("--git-dir", str(self.path), "branch", "--list", branch).strip():
            return False
        merged = subprocess.run(["git", "--git-dir", str(self.path), "merge-base", "--is-ancestor", branch, base])
        return merged.returncode != 0

    def commit_files(self, branch: str, files: dict[str, str | None], message: str, base: str = "main") -> str:
        with self._clone() as work:
            empty = not self.has_branch(base)
            if empty:  # an empty repository: the first commit starts history
                git("checkout", "-q", "--orphan", branch, cwd=work)
            else:
                start = f"origin/{branch}" if self._unmerged_branch(branch, base) else f"origin/{base}"
                git("checkout", "-q", "-B", branch, start, cwd=work)
            for rel, content in files.items():
                target = work / rel
                if content is None:
                    if target.exists():
                        target.unlink()
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(content, encoding="utf-8")
            git("add", "-A", cwd=work)
            if git("status", "--porcelain", cwd=work).strip():
                git("commit", "-q", "-m", message, cwd=work)
                git("push", "-q", "-f", "origin", f"HEAD:{branch}", cwd=work)
                if empty and branch == base:  # so that a clone checks out the branch history now starts on
                    git("--git-dir", str(self.path), "symbolic-ref", "HEAD", f"refs/heads/{base}")
            return git("rev-parse", "HEAD", cwd=work).strip()

    def has_branch(self, name: str) -> bool:
        return bool(git("--git-dir", str(self.path), "branch", "--list", name).strip())

    def find_pr(self, branch: str) -> PullRequest | None:
        return prs.find_open(self.kb, self.name, self.repo, branch)

    def open_pr(self, branch: str, title: str, body: str, labels: list[str], base: str = "main") -> PullRequest:
        head = git("--git-dir", str(self.path), "rev-parse", branch).strip()
        existing = self.find_pr(branch)
        number = existing.number if existing else prs.next_number(self.kb, self.name, self.repo)
        pr = PullRequest(forge=self.name, repo=self.repo, number=number, branch=branch, title=title,
                         body=body + (f"\n\nLabels: {', '.join(labels)}" if labels else ""), state="open",
                         url=f"file://{self.path}#pr-{number}", head_sha=head)
        return prs.record(self.kb, pr, deployment="/".join(branch.split("/")[-2:]))

    def get_pr(self, number: int) -> PullRequest:
        return prs.get(self.kb, self.name, self.repo, number)

    def list_prs(self, state: PrState | None = None) -> list[PullRequest]:
        return prs.list_prs(self.kb, self.name, self.repo, state)

    def merge_pr(self, number: int) -> PullRequest:
        pr = self.get_pr(number)
        if pr.state != "open":
            raise BadInput(f"pull request #{number} is {pr.state}; only open ones can be merged")
        with self._clone() as work:
            git("checkout", "-q", pr.branch, cwd=work)
            git("checkout", "-q", "main", cwd=work)
            git("merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}: {pr.title}", pr.branch, cwd=work)
            git("push", "-q", "origin", "main", cwd=work)
            sha = git("rev-parse", "HEAD", cwd=work).strip()
        return prs.record(self.kb, pr.model_copy(update={"state": "merged", "head_sha": sha}))

    def close_pr(self, number: int) -> PullRequest:
        pr = self.get_pr(number)
        return prs.record(self.kb, pr.model_copy(update={"state": "closed"}))

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        return prs.upsert_comment(self.kb, self.name, self.repo, number, marker, body)

    def comments(self, number: int) -> list[Comment]:
        return prs.comments(self.kb, self.name, self.repo, number)

    def read_file(self, path: str, ref: str = "main") -> str | None:
        out = subprocess.run(["git", "--git-dir", str(self.path), "show", f"{ref}:{path}"], capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None

    def list_files(self, prefix: str, ref: str = "main") -> list[str]:
        out = git("--git-dir", str(self.path), "ls-tree", "-r", "--name-only", ref, "--", prefix.rstrip("/") + "/")
        return [line for line in out.splitlines() if line]

    def file_versions(self, path: str, ref: str = "main", limit: int = 10) -> list[str]:
        out = git("--git-dir", str(self.path), "log", f"-{limit}", "--format=%H", ref, "--", path)
        return [line for line in out.splitlines() if line]
