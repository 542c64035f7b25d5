"""The knowledge base's schema, as an ordered list of migrations.

`PRAGMA user_version` holds how many have been applied. Append new migrations at the end; never
edit one that has shipped. A database whose version is higher than `len(MIGRATIONS)` was written
by a newer servewise and is refused rather than touched.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["models"].create({"hf_id": str, "architecture": str, "license": str, "source": str, "data": str}, pk="hf_id")
    db["gpus"].create({"name": str, "vendor": str, "memory_gb": float, "source": str, "data": str}, pk="name")
    db["prices"].create(
        {"gpu": str, "provider": str, "usd_per_gpu_hour": float, "source": str}, pk=("gpu", "provider")
    )
    db["use_cases"].create({"name": str, "task": str, "source": str, "data": str}, pk="name")
    db["benchmarks"].create(
        {
            "id": str, "origin": str, "engine": str, "model": str, "gpu": str, "weight_dtype": str,
            "tp": int, "pp": int, "dp": int, "isl": int, "osl": int, "concurrency": int,
            "request_rate": float, "ttft_mean_ms": float, "tpot_mean_ms": float, "source_ref": str, "data": str,
        },
        pk="id",
    )
    db["plans"].create(
        {"id": str, "created_at": str, "name": str, "use_case": str, "model": str, "gpu": str,
         "kb_version": str, "data": str},
        pk="id",
    )
    db["pull_requests"].create(
        {
            "id": int, "forge": str, "repo": str, "number": int, "deployment": str, "branch": str,
            "title": str, "body": str, "state": str, "url": str, "plan_id": str, "head_sha": str,
            "created_at": str, "updated_at": str,
        },
        pk="id",
    )
    db["pull_requests"].create_index(["forge", "repo", "number"], unique=True)
    db["pr_comments"].create(
        {"id": int, "pr_id": int, "marker": str, "body": str, "created_at": str, "updated_at": str}, pk="id"
    )
    db["reports"].create(
        {"id": int, "deployment": str, "pr_id": int, "created_at": str, "verdict": str, "data": str}, pk="id"
    )
    db["outcomes"].create(
        {
            "id": int, "created_at": str, "deployment": str, "plan_id": str, "model": str, "gpu": str,
            "tp": int, "weight_dtype": str, "metric": str, "predicted": float, "observed": float,
            "window_s": float, "data": str,
        },
        pk="id",
    )
    db["outcomes"].create_index(["model", "gpu", "tp"])
    db["audit_log"].create(
        {"id": int, "at": str, "actor": str, "tool": str, "args_digest": str, "duration_ms": float,
         "outcome": str, "message": str},
        pk="id",
    )


def _v2(db: sqlite_utils.Database) -> None:
    # The audit log keeps the shape of a call (argument names and kinds), never argument values.
    db["audit_log"].add_column("args_shape", str)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2]
