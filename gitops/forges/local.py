"""The embedded forge: a bare git repository on disk driven with real `git`; pull requests live in
the knowledge base, and merging one really merges its branch into main.

Several runs may share the repository (two terminals, CI, the MCP server). A run that writes a
branch holds that branch's lock (an flock under the repository, so a killed run releases it) and
pushes with a lease on the commit it started from: it never replaces a commit another run pushed,
and a run that cannot get the lock in time exits with a clear message instead of waiting forever.
Creating the repository happens under a lock too, so two first uses cannot race.

Work happens in throwaway clones in the temp dir. Each clone holds an flock on a file inside it
for as long as it is used; a clone whose lock is free belongs to a run that died (kill -9), and
the next run removes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from gitops.forges.base import Comment, Forge, PrState, PullRequest
from kb import pull_requests as prs
from kb.store import KnowledgeBase
from planner.errors import BadInput, Unreachable

_ENV = {"GIT_AUTHOR_NAME": "servewise", "GIT_AUTHOR_EMAIL": "servewise@localhost", "GIT_COMMITTER_NAME": "servewise",
        "GIT_COMMITTER_EMAIL": "servewise@localhost", "GIT_TERMINAL_PROMPT": "0"}
GIT_TIMEOUT_S = 60
LOCK_WAIT_S = 60.0  # longer than one propose takes on a slow disk; shorter than a person's patience
CLONE_PREFIX = "servewise-forge-"
_NEW_CLONE_PREFIX = ".servewise-forge-new-"
_OWNER_LOCK = "owner.lock"
# A clone without an owner lock (an older servewise's) or not yet renamed is stale after this long.
_UNLOCKED_CLONE_GRACE_S = 600
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class ForgeBusy(Unreachable):
    code = "busy"


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              env={**os.environ, **_ENV})
    except FileNotFoundError:
        raise Unreachable("git is not installed; install it (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise Unreachable(f"git {' '.join(args[:2])} did not finish in {GIT_TIMEOUT_S} s") from None
    if check and proc.returncode != 0:
        raise Unreachable(f"git {' '.join(args[:2])} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout


def repo_path(path: str) -> str:
    """A path inside the repository, or BadInput: never absolute, never `..`, never an option."""
    parts = PurePosixPath(path).parts
    if (not parts or path.startswith(("/", "-")) or any(p in ("..", ".") for p in parts) or "\x00" in path
            or "\\" in path):
        raise BadInput(f"{path!r} is not a path inside the deployments repository")
    return path


def check_branch(branch: str) -> str:
    if not _BRANCH.match(branch) or ".." in branch or branch.endswith(".lock") or len(branch) > 200:
        raise BadInput(f"{branch!r} is not a valid branch name (letters, digits, '.', '_', '-' and '/')")
    return branch


@contextmanager
def _flock(target: Path, what: str, wait_s: float) -> Iterator[int]:
    """Hold an exclusive flock on `target` (a file, created if missing, or a directory)."""
    if target.is_dir():
        fd = os.open(target, os.O_RDONLY)
    else:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    raise ForgeBusy(f"another servewise run{holder} is still writing {what} after {wait_s:g} s; "
                                    "nothing was changed by this run; try again when it has finished") from None
                time.sleep(0.05)
        if not target.is_dir():
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 20, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def clean_stale_clones(tmp_root: Path | None = None) -> list[Path]:
    """Remove clones left by runs that died; returns what was removed. Live runs' clones are kept."""
    root = Path(tmp_root or tempfile.gettempdir())
    removed = []
    now = time.time()
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith((CLONE_PREFIX, _NEW_CLONE_PREFIX))]
    except OSError:
        return removed
    for d in candidates:
        try:
            st = d.lstat()
            if not d.is_dir() or d.is_symlink() or st.st_uid != os.getuid():
                continue
            lock = d / _OWNER_LOCK
            if d.name.startswith(CLONE_PREFIX) and lock.exists():
                fd = os.open(lock, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its run is alive
                finally:
                    os.close(fd)
            elif now - st.st_mtime < _UNLOCKED_CLONE_GRACE_S:
                continue
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        except OSError:
            continue
    return removed


class LocalForge(Forge):
    name = "local"

    def __init__(self, path: Path, kb: KnowledgeBase) -> None:
        self.path = Path(path).expanduser().resolve()
        self.kb = kb
        self.repo = str(self.path)
        clean_stale_clones()
        self._ensure()

    def _ready(self) -> bool:
        # An existing empty repository is ready too: the first propose commits main (README + Argo CD bootstrap,
        # see gitops.propose) under the branch lock and a lease, so concurrent first runs make it once.
        return (self.path / "HEAD").exists()

    def _ensure(self) -> None:
        if self._ready():
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create the local forge at {self.path}: {exc.strerror}") from None
        if not self.path.parent.is_dir():
            raise BadInput(f"cannot create the local forge at {self.path}: its parent is not a directory")
        # The parent directory is the lock: the repository itself may not exist yet.
        with _flock(self.path.parent, f"the new local forge {self.path}", LOCK_WAIT_S):
            if self._ready():
                return
            if self.path.exists() and not self.path.is_dir():
                raise BadInput(f"{self.path} exists and is not a bare git repository; set local_forge elsewhere")
            if self.path.exists() and any(self.path.iterdir()):
                raise BadInput(f"{self.path} exists and is not a bare git repository; set local_forge elsewhere")
            self.path.mkdir(parents=True, exist_ok=True)
            git("init", "--bare", "-q", "-b", "main", str(self.path))
            # The repository servewise makes for itself starts with main; a run killed before this push leaves an
            # empty repository, which the first propose starts like any empty one.
            with self._clone() as work:
                (work / "README.md").write_text("# GitOps deployments\n\nManaged by servewise: one directory per "
                                                "deployment under deployments/<namespace>/<name>/, synced by Argo CD.\n")
                git("add", "-A", cwd=work)
                git("commit", "-q", "-m", "Initialize the GitOps repository", cwd=work)
                git("push", "-q", "origin", "HEAD:main", cwd=work)

    @contextmanager
    def _lock(self, branch: str) -> Iterator[None]:
        locks = self.path / "servewise-locks"
        locks.mkdir(exist_ok=True)
        key = hashlib.sha256(branch.encode()).hexdigest()[:16]
        with _flock(locks / f"{key}.lock", f"branch {branch}", LOCK_WAIT_S):
            yield

    @contextmanager
    def _clone(self) -> Iterator[Path]:
        fresh = Path(tempfile.mkdtemp(prefix=_NEW_CLONE_PREFIX))
        fd = os.open(fresh / _OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Visible to the cleaner only once locked, so it never mistakes a starting run for a dead one.
        tmp = fresh.with_name(CLONE_PREFIX + fresh.name.removeprefix(_NEW_CLONE_PREFIX))
        os.rename(fresh, tmp)
        try:
            git("clone", "-q", str(self.path), str(tmp / "w"))
            yield tmp / "w"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            os.close(fd)

    def _head(self, branch: str) -> str:
        """The branch's commit in the repository, or "" when it does not exist."""
        out = subprocess.run(["git", "--git-dir", str(self.path), "rev-parse", "--verify", "-q",
                              f"refs/heads/{branch}"], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    def _merged(self, branch: str, base: str) -> bool:
        return subprocess.run(["git", "--git-dir", str(self.path), "merge-base", "--is-ancestor", branch, base],
                              capture_output=True).returncode == 0

    def _push(self, work: Path, branch: str, expected: str) -> None:
        """Push HEAD to `branch` only if the branch is still at `expected` ("" = absent)."""
        proc = subprocess.run(["git", "push", "-q", "--porcelain", f"--force-with-lease=refs/heads/{branch}:{expected}",
                               "origin", f"HEAD:refs/heads/{branch}"], cwd=work, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, env={**os.environ, **_ENV})
        if proc.returncode == 0:
            return
        if "stale info" in proc.stdout + proc.stderr or "rejected" in proc.stdout + proc.stderr:
            raise ForgeBusy(f"branch {branch} moved while this run was writing it (another run pushed); nothing "
                            "of this run was pushed; run it again")
        raise Unreachable(f"git push failed: {proc.stderr.strip()[:300]}")

    def commit_files(self, branch: str, files: dict[str, str | None], message: str, base: str = "main") -> str:
        check_branch(branch)
        for rel in files:
            repo_path(rel)
        with self._lock(branch), self._clone() as work:
            expected = self._head(branch)
            empty = not self.has_branch(base)
            if empty:  # an empty repository: the first commit starts history
                git("checkout", "-q", "--orphan", branch, cwd=work)
            else:
                start = f"origin/{branch}" if expected and not self._merged(branch, base) else f"origin/{base}"
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
                self._push(work, branch, expected)
                if empty and branch == base:  # so that a clone checks out the branch history now starts on
                    git("--git-dir", str(self.path), "symbolic-ref", "HEAD", f"refs/heads/{base}")
            return git("rev-parse", "HEAD", cwd=work).strip()

    def has_branch(self, name: str) -> bool:
        return bool(git("--git-dir", str(self.path), "branch", "--list", name).strip())

    def find_pr(self, branch: str) -> PullRequest | None:
        return prs.find_open(self.kb, self.name, self.repo, branch)

    def open_pr(self, branch: str, title: str, body: str, labels: list[str], base: str = "main") -> PullRequest:
        check_branch(branch)
        head = git("--git-dir", str(self.path), "rev-parse", f"refs/heads/{branch}").strip()
        pr = PullRequest(forge=self.name, repo=self.repo, number=1, branch=branch, title=title,
                         body=body + (f"\n\nLabels: {', '.join(labels)}" if labels else ""), state="open",
                         url="", head_sha=head)
        return prs.open_or_update(self.kb, pr, url=lambda n: f"file://{self.path}#pr-{n}",
                                  deployment="/".join(branch.split("/")[-2:]))

    def get_pr(self, number: int) -> PullRequest:
        return prs.get(self.kb, self.name, self.repo, number)

    def list_prs(self, state: PrState | None = None) -> list[PullRequest]:
        return prs.list_prs(self.kb, self.name, self.repo, state)

    def merge_pr(self, number: int) -> PullRequest:
        pr = self.get_pr(number)
        if pr.state != "open":
            raise BadInput(f"pull request #{number} is {pr.state}; only open ones can be merged")
        check_branch(pr.branch)
        with self._lock(pr.branch), self._lock("main"):
            pr = self.get_pr(number)  # again under the locks: another run may have merged or closed it
            if pr.state != "open":
                raise BadInput(f"pull request #{number} is {pr.state}; only open ones can be merged")
            with self._clone() as work:
                expected = self._head("main")
                git("checkout", "-q", pr.branch, cwd=work)
                git("checkout", "-q", "main", cwd=work)
                git("merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}: {pr.title}", pr.branch, cwd=work)
                self._push(work, "main", expected)
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
        repo_path(path)
        out = subprocess.run(["git", "--git-dir", str(self.path), "show", f"{ref}:{path}"], capture_output=True)
        if out.returncode != 0:
            return None
        return out.stdout.decode("utf-8", errors="replace")

    def list_files(self, prefix: str, ref: str = "main") -> list[str]:
        repo_path(prefix.rstrip("/") or "-")
        out = git("--git-dir", str(self.path), "ls-tree", "-r", "--name-only", ref, "--", prefix.rstrip("/") + "/")
        return [line for line in out.splitlines() if line]

    def file_versions(self, path: str, ref: str = "main", limit: int = 10) -> list[str]:
        repo_path(path)
        out = git("--git-dir", str(self.path), "log", f"-{limit}", "--format=%H", ref, "--", path)
        return [line for line in out.splitlines() if line]
