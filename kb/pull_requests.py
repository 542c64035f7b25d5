"""Pull requests of the local forge (and a record of those opened on GitHub/GitLab), with their comments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from gitops.forges.base import Comment, PrState, PullRequest
from kb.store import KnowledgeBase
from planner.errors import BadInput

_FIELDS = ("forge", "repo", "number", "branch", "title", "body", "state", "url", "head_sha")
MAX_NUMBER = 2**63 - 1  # SQLite's INTEGER


def _check_number(number: int) -> None:
    if not 1 <= number <= MAX_NUMBER:
        raise BadInput(f"pull request numbers are whole numbers from 1 to {MAX_NUMBER} (got {number})")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _pr(row) -> PullRequest:
    return PullRequest(**dict(zip(_FIELDS, row)))


def find_open(kb: KnowledgeBase, forge: str, repo: str, branch: str) -> PullRequest | None:
    row = kb.db.execute(f"SELECT {', '.join(_FIELDS)} FROM pull_requests WHERE forge = ? AND repo = ? AND branch = ? "
                        "AND state = 'open'", [forge, repo, branch]).fetchone()
    return _pr(row) if row else None


def get(kb: KnowledgeBase, forge: str, repo: str, number: int) -> PullRequest:
    _check_number(number)
    row = kb.db.execute(f"SELECT {', '.join(_FIELDS)} FROM pull_requests WHERE forge = ? AND repo = ? AND number = ?",
                        [forge, repo, number]).fetchone()
    if not row:
        raise BadInput(f"no pull request #{number} in {forge} repository {repo}; see `servewise pr list`")
    return _pr(row)


def list_prs(kb: KnowledgeBase, forge: str, repo: str, state: PrState | None = None) -> list[PullRequest]:
    sql = f"SELECT {', '.join(_FIELDS)} FROM pull_requests WHERE forge = ? AND repo = ?"
    args: list = [forge, repo]
    if state:
        sql, args = sql + " AND state = ?", [*args, state]
    return [_pr(r) for r in kb.db.execute(sql + " ORDER BY number", args)]


def record(kb: KnowledgeBase, pr: PullRequest, deployment: str = "", plan_id: str = "") -> PullRequest:
    """Insert or update the record of a pull request (numbered by its forge)."""
    now = _now()
    with kb.transaction() as db:
        existing = db.execute("SELECT id FROM pull_requests WHERE forge = ? AND repo = ? AND number = ?",
                              [pr.forge, pr.repo, pr.number]).fetchone()
        row = {**pr.model_dump(), "updated_at": now}
        if deployment:
            row["deployment"] = deployment
        if plan_id:
            row["plan_id"] = plan_id
        if existing:
            db["pull_requests"].update(existing[0], row)
        else:
            db["pull_requests"].insert({**row, "created_at": now})
    return pr


def open_or_update(kb: KnowledgeBase, pr: PullRequest, url: Callable[[int], str], deployment: str = "") -> PullRequest:
    """Record the open pull request of `pr.branch`: the one already open keeps its number, a new one takes
    the next free number. Looked up, numbered and written in one write transaction, so two concurrent
    runs can neither share a number nor open two pull requests for one branch."""
    with kb.transaction() as db:
        row = db.execute("SELECT number FROM pull_requests WHERE forge = ? AND repo = ? AND branch = ? "
                         "AND state = 'open'", [pr.forge, pr.repo, pr.branch]).fetchone()
        if row:
            number = row[0]
        else:
            last = db.execute("SELECT max(number) FROM pull_requests WHERE forge = ? AND repo = ?",
                              [pr.forge, pr.repo]).fetchone()[0]
            number = (last or 0) + 1
        return record(kb, pr.model_copy(update={"number": number, "url": url(number)}), deployment=deployment)


def _pr_id(kb: KnowledgeBase, forge: str, repo: str, number: int) -> int:
    _check_number(number)
    row = kb.db.execute("SELECT id FROM pull_requests WHERE forge = ? AND repo = ? AND number = ?",
                        [forge, repo, number]).fetchone()
    if not row:
        raise BadInput(f"no pull request #{number} in {forge} repository {repo}")
    return row[0]


def upsert_comment(kb: KnowledgeBase, forge: str, repo: str, number: int, marker: str, body: str) -> Comment:
    pr_id = _pr_id(kb, forge, repo, number)
    with kb.transaction() as db:
        row = db.execute("SELECT id FROM pr_comments WHERE pr_id = ? AND marker = ?", [pr_id, marker]).fetchone()
        if row:
            db["pr_comments"].update(row[0], {"body": body, "updated_at": _now()})
            cid = row[0]
        else:
            cid = db["pr_comments"].insert({"pr_id": pr_id, "marker": marker, "body": body, "created_at": _now(),
                                            "updated_at": _now()}).last_pk
    return Comment(id=cid, body=body)


def comments(kb: KnowledgeBase, forge: str, repo: str, number: int) -> list[Comment]:
    pr_id = _pr_id(kb, forge, repo, number)
    return [Comment(id=r[0], body=r[1]) for r in kb.db.execute("SELECT id, body FROM pr_comments WHERE pr_id = ? ORDER BY id", [pr_id])]
