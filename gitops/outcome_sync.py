"""Outcomes that outlive the report job: a machine-readable block in the sticky SLO comment.

The scheduled report runs in a throwaway container, so its knowledge base dies with it. The pull request's
sticky comment is the one place it can write that every servewise install can read back with only the
forge token it already has (`servewise kb sync-outcomes`). Committing outcomes to the GitOps repository
instead would need write access to main and would make Argo CD sync an unchanged deployment every hour.

The block is an HTML comment (invisible on GitHub and GitLab) holding compact JSON; each update keeps the
outcomes already in the comment, newest last, within a size bound below GitHub's 65,536-character limit.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from gitops.forges.base import Forge
from planner.feedback import Outcome

_BLOCK = re.compile(r"<!-- servewise:outcomes (\{.*?\}) -->", re.S)
MAX_BLOCK_CHARS = 40_000
_KEY = ("deployment", "plan_id", "model", "gpu", "tp", "weight_dtype")
_ROW = ("created_at", "metric", "predicted", "observed", "window_s")


def outcomes_block(outcomes: list[Outcome]) -> str:
    """The hidden block: outcomes grouped by deployment and plan, oldest dropped first beyond the size bound."""
    kept = list(outcomes)
    while True:
        groups: dict[tuple, list] = {}
        for o in kept:
            groups.setdefault(tuple(getattr(o, k) for k in _KEY), []).append([getattr(o, f) for f in _ROW])
        data = {"v": 1, "runs": [{**dict(zip(_KEY, key)), "rows": rows} for key, rows in groups.items()]}
        # '>' occurs in JSON only inside strings, so escaping it there keeps "-->" from closing the comment early
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace(">", "\\u003e")
        if len(text) <= MAX_BLOCK_CHARS or not kept:
            return f"\n<!-- servewise:outcomes {text} -->\n"
        kept = kept[len(kept) // 10 or 1:]


def parse_block(body: str) -> tuple[list[Outcome], int]:
    """The outcomes a comment carries and how many rows were unreadable (skipped, never guessed at)."""
    m = _BLOCK.search(body or "")
    if not m:
        return [], 0
    try:
        data = json.loads(m.group(1))
        runs = data["runs"] if isinstance(data, dict) and data.get("v") == 1 else None
    except (ValueError, KeyError):
        return [], 1
    if not isinstance(runs, list):
        return [], 1
    out, bad = [], 0
    for run in runs:
        rows = run.get("rows") if isinstance(run, dict) else None
        for row in rows if isinstance(rows, list) else [None]:
            try:
                out.append(Outcome.model_validate({**{k: run[k] for k in _KEY}, **dict(zip(_ROW, row, strict=True))}))
            except (ValidationError, KeyError, TypeError, ValueError):
                bad += 1
    return out, bad


def _key(o: Outcome) -> tuple:
    return (o.deployment, o.plan_id, o.metric, o.created_at)


def sticky_comment(forge: Forge, number: int, marker: str, body: str, new: list[Outcome]) -> str:
    """The comment body with the outcomes already on the pull request's sticky comment plus the new ones."""
    previous = next((c.body for c in forge.comments(number) if marker in c.body), "")
    old, _ = parse_block(previous)
    seen = {_key(o) for o in new}
    return body.rstrip("\n") + "\n" + outcomes_block([o for o in old if _key(o) not in seen] + new)


def collect(forge: Forge, marker: str) -> tuple[list[Outcome], int, int]:
    """Every outcome on the forge's servewise pull requests: (outcomes, pull requests read, rows skipped)."""
    outcomes, read, skipped = [], 0, 0
    for pr in forge.list_prs():
        if not pr.branch.startswith("servewise/"):
            continue
        for c in forge.comments(pr.number):
            if marker in c.body:
                found, bad = parse_block(c.body)
                outcomes += found
                skipped += bad
                read += 1
    return outcomes, read, skipped
