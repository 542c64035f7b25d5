"""Measured benchmark rows: importing a user's JSONL or CSV file and reading rows back.

An import is all-or-nothing: every line is validated first, and a bad file is rejected with the
line number and reason before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pydantic import ValidationError

from kb.store import KnowledgeBase
from planner.catalog import BenchmarkRow
from planner.errors import BadInput

_METRICS = ("ttft_ms", "tpot_ms", "e2e_ms")


def benchmark_record(row: BenchmarkRow, origin: str) -> dict:
    """The flat database record of one row (the full row is kept as JSON in `data`)."""
    return {
        "id": row.id, "origin": origin, "engine": row.engine, "model": row.model, "gpu": row.gpu,
        "weight_dtype": row.weight_dtype, "tp": row.tp, "pp": row.pp, "dp": row.dp, "isl": row.isl,
        "osl": row.osl, "concurrency": row.concurrency, "request_rate": row.request_rate,
        "ttft_mean_ms": row.ttft_ms.get("mean"), "tpot_mean_ms": row.tpot_ms.get("mean"),
        "source_ref": row.source_ref, "data": row.model_dump_json(),
    }


def parse_benchmark_file(path: Path) -> list[BenchmarkRow]:
    """Parse and validate a JSONL or CSV file of benchmark rows; raise BadInput at the first bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    raw_rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _jsonl_rows(text, path)
    rows: list[BenchmarkRow] = []
    seen: set[str] = set()
    for line_no, raw in raw_rows:
        try:
            row = BenchmarkRow.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "row"
            raise BadInput(f"{path}:{line_no}: {where}: {err['msg']}; nothing was imported") from None
        if not row.ttft_ms.get("mean") and not row.tpot_ms.get("mean"):
            raise BadInput(f"{path}:{line_no}: needs ttft_ms.mean or tpot_ms.mean; nothing was imported")
        if row.id in seen:
            raise BadInput(f"{path}:{line_no}: duplicate id {row.id!r}; nothing was imported")
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise BadInput(f"{path} holds no benchmark rows")
    return rows


def _jsonl_rows(text: str, path: Path) -> list[tuple[int, dict]]:
    out = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{line_no}: not valid JSON ({exc.msg}); nothing was imported") from None
        if not isinstance(obj, dict):
            raise BadInput(f"{path}:{line_no}: expected a JSON object per line; nothing was imported")
        out.append((line_no, obj))
    return out


def _csv_rows(text: str) -> list[tuple[int, dict]]:
    """CSV columns use the JSONL field names; `ttft_ms.mean` (or plain `ttft_ms`) for the nested ones."""
    out = []
    for line_no, rec in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        obj: dict = {"ttft_ms": {}, "tpot_ms": {}, "e2e_ms": {}}
        for key, value in rec.items():
            if key is None or value in (None, ""):
                continue
            base, _, stat = key.partition(".")
            if base in _METRICS:
                obj[base][stat or "mean"] = value
            else:
                obj[key] = value
        out.append((line_no, obj))
    return out


def import_benchmarks(kb: KnowledgeBase, path: Path) -> int:
    """Validate the whole file, then insert it in one transaction. Returns rows imported."""
    from kb.catalog import refresh_version

    rows = parse_benchmark_file(path)
    existing = {r[0] for r in kb.db.execute("SELECT id FROM benchmarks WHERE origin = 'seed'")}
    clash = next((r.id for r in rows if r.id in existing), None)
    if clash:
        raise BadInput(f"{path}: id {clash!r} is already a seed benchmark row; use other ids. Nothing was imported")
    with kb.transaction() as db:
        db["benchmarks"].upsert_all((benchmark_record(r, f"import:{path.name}") for r in rows), pk="id")
        refresh_version(kb, db)
    return len(rows)


def load_benchmarks(kb: KnowledgeBase, engine: str | None = None) -> list[BenchmarkRow]:
    sql, args = "SELECT data FROM benchmarks", []
    if engine:
        sql, args = sql + " WHERE engine = ?", [engine]
    return [BenchmarkRow.model_validate_json(r[0]) for r in kb.db.execute(sql + " ORDER BY rowid", args)]
