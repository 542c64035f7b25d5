"""The one small interface every forge implements, and the pull-request shape they return."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Literal, TypeVar

from pydantic import BaseModel

from gitops.outbound import redact
from planner.errors import BadInput, ServewiseError, Unreachable

PrState = Literal["open", "merged", "closed"]


class PullRequest(BaseModel):
    forge: str
    repo: str
    number: int
    branch: str
    title: str
    body: str
    state: PrState
    url: str
    head_sha: str = ""


class Comment(BaseModel):
    id: int
    body: str

T = TypeVar("T")


def post_once(create: Callable[[], T], find: Callable[[], T | None], ambiguous: Callable[[Exception], bool],
              retries: int, backoff_s: float) -> T:
    """One POST; after an ambiguous failure (the forge may have acted), what `find` sees (the thing already
    made) or, when it finds nothing, another try, up to `retries`."""
    for attempt in range(retries + 1):
        try:
            return create()
        except Exception as exc:  # noqa: BLE001 - sorted by `ambiguous`; the rest re-raised
            if attempt == retries or not ambiguous(exc):
                raise
        time.sleep(backoff_s * 2 ** attempt)
        found = find()
        if found is not None:
            return found
    raise AssertionError("unreachable: the last attempt returns or raises")


class Forge(ABC):
    """Branches, commits, pull requests and sticky comments on one repository."""

    name: str

    @abstractmethod
    def commit_files(self, branch: str, files: dict[str, str | None], message: str, base: str = "main") -> str:
        """Create or update `branch` from `base` so that each path holds its content (None deletes it).
        Returns the new head commit sha. A no-change commit is skipped."""

    @abstractmethod
    def has_branch(self, name: str) -> bool:
        """Whether the repository has branch `name` (False in an empty repository, which has no branches).
        In an empty repository, `commit_files(base, files, message, base)` makes the first commit."""

    @abstractmethod
    def find_pr(self, branch: str) -> PullRequest | None:
        """The open pull request whose head is `branch`, if any."""

    @abstractmethod
    def open_pr(self, branch: str, title: str, body: str, labels: list[str], base: str = "main") -> PullRequest:
        """Open a pull request, or update title/body/labels of the one already open for `branch`."""

    @abstractmethod
    def get_pr(self, number: int) -> PullRequest: ...

    @abstractmethod
    def list_prs(self, state: PrState | None = None) -> list[PullRequest]: ...

    @abstractmethod
    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        """Create the comment holding `marker` (a hidden HTML comment) or update it; never a duplicate."""

    @abstractmethod
    def read_file(self, path: str, ref: str = "main") -> str | None:
        """Content of `path` at `ref`, or None when absent."""

    @abstractmethod
    def list_files(self, prefix: str, ref: str = "main") -> list[str]:
        """Paths of the files under directory `prefix` at `ref` (empty when absent)."""

    @abstractmethod
    def file_versions(self, path: str, ref: str = "main", limit: int = 10) -> list[str]:
        """Shas of the commits on `ref` that changed `path`, newest first."""

    @abstractmethod
    def merge_pr(self, number: int) -> PullRequest:
        """Merge the pull request into its base (a merge commit) and mark it merged."""

    @abstractmethod
    def close_pr(self, number: int) -> PullRequest:
        """Close the pull request without merging."""


def no_base(kind: str, repo: str, base: str, default_branch: str | None) -> BadInput:
    """A repository with commits but without the branch servewise proposes onto."""
    start = default_branch or "a commit"
    return BadInput(f"{kind} {repo} has no branch {base} (its default branch is {default_branch or 'unset'}); "
                    f"servewise proposes onto {base}: create {base} there (for example from {start}) and run again")


def http_error(forge: str, repo_kind: str, repo: str, token_env: str, access: str, status: int | None, what: str,
               detail: str) -> ServewiseError:
    """One clear message for a hosted forge's HTTP error: the token variable or repository at fault, never the token."""
    if status == 401:
        return BadInput(f"{forge} rejected the token in ${token_env} (401) while trying to {what}: "
                        "it is missing, expired or revoked")
    if status == 403:
        return BadInput(f"the token in ${token_env} may not {what} on {repo} (403); it needs {access}")
    if status == 404:
        return BadInput(f"{forge} {repo_kind} {repo} not found (404) while trying to {what}, or the token in "
                        f"${token_env} cannot see it")
    return Unreachable(f"{forge} answered {status} while trying to {what}: {redact(detail)[:200]}")
