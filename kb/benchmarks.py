"""Measured benchmark rows: importing a user's runs, reading rows back, taking them out again.

Formats: servewise's own rows (JSONL or CSV with the same field names), and the JSON that
`vllm bench serve --save-result` writes (one file, several appended with --append-result, or a directory
of them). An import is all-or-nothing: every file and line is validated first, and a bad one is rejected
with the file, line or field and the reason before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pydantic import BaseModel, ValidationError, field_validator

from kb.store import KnowledgeBase
from planner.catalog import BenchmarkRow, Catalog, WeightDtype
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


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None


def parse_benchmark_file(path: Path) -> list[BenchmarkRow]:
    """Parse and validate a JSONL or CSV file of benchmark rows; raise BadInput at the first bad line."""
    text = _read(path)
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


class RunOptions(BaseModel):
    """What a `vllm bench serve` result does not record about the server it measured."""

    model: str | None = None
    gpu: str | None = None
    tp: int | None = None
    pp: int = 1
    weight_dtype: WeightDtype | None = None
    engine_version: str | None = None

    @field_validator("tp", "pp")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= 64:
            raise ValueError("must be between 1 and 64")
        return v


# Keys of the file `vllm bench serve --save-result` writes, as vLLM 0.19.0 builds it in
# vllm/benchmarks/serve.py (result_json: model_id, num_prompts, request_rate ("inf" when unset), burstiness,
# max_concurrency; benchmark_result: completed, failed, total_input_tokens, total_output_tokens,
# request_throughput, output_throughput; mean_/median_/std_/pNN_ + ttft|tpot|itl|e2el + _ms per selected metric).
# The random dataset's lengths are not saved unless passed with --metadata, so the token totals stand in.
_VLLM_MARKERS = ("model_id", "completed")
_VLLM_METRICS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "e2el": "e2e_ms"}


def _is_vllm_result(obj: dict) -> bool:
    return all(k in obj for k in _VLLM_MARKERS)


def _number(obj: dict, key: str, where: str, *, required: bool = False, positive: bool = True) -> float | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise BadInput(f"{where}: field {key!r} is missing; nothing was imported")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise BadInput(f"{where}: field {key!r} must be a number, got {value!r}; nothing was imported")
    if positive and value <= 0:
        raise BadInput(f"{where}: field {key!r} must be positive, got {value!r}; nothing was imported")
    return float(value)


def vllm_result_row(obj: dict, row_id: str, where: str, options: RunOptions, catalog: Catalog) -> BenchmarkRow:
    """One `vllm bench serve --save-result` object as a benchmark row; BadInput names the field at fault."""
    model_name = options.model or obj.get("model_id")
    if not isinstance(model_name, str) or not model_name:
        raise BadInput(f"{where}: field 'model_id' is missing; pass --model; nothing was imported")
    try:
        model = catalog.model(model_name)
    except BadInput as exc:
        raise BadInput(f"{where}: model {model_name!r} (field 'model_id' or --model): {exc.message}; "
                       "nothing was imported") from None
    gpu_name = options.gpu or obj.get("gpu")
    if not gpu_name:
        raise BadInput(f"{where}: the file does not say which GPU it measured; pass --gpu; nothing was imported")
    try:
        gpu = catalog.gpu(str(gpu_name))
    except BadInput as exc:
        raise BadInput(f"{where}: GPU {gpu_name!r}: {exc.message}; nothing was imported") from None
    tp_given = options.tp or obj.get("tensor_parallel_size") or obj.get("tp")
    if tp_given is None:
        raise BadInput(f"{where}: the file does not say the tensor-parallel size; pass --tp; nothing was imported")
    try:  # --metadata tp=2 arrives as a string
        tp = int(str(tp_given))
    except ValueError:
        raise BadInput(f"{where}: tensor-parallel size {tp_given!r} is not a whole number; nothing was imported") from None
    completed = _number(obj, "completed", where, required=True)
    isl = _number(obj, "random_input_len", where) or (_number(obj, "total_input_tokens", where, required=True) / completed)
    osl = _number(obj, "random_output_len", where) or (_number(obj, "total_output_tokens", where, required=True) / completed)
    rate = obj.get("request_rate")
    rate = None if rate in (None, "inf") else _number(obj, "request_rate", where)
    concurrency = _number(obj, "max_concurrency", where)
    notes = []
    if rate is None and concurrency is None:
        # Every prompt sent at once: as many clients as prompts.
        concurrency = _number(obj, "num_prompts", where, required=True)
        notes.append("no request rate or max concurrency: all num_prompts requests sent at once")
    stats: dict[str, dict[str, float]] = {"ttft_ms": {}, "tpot_ms": {}, "e2e_ms": {}, "itl_ms": {}}
    for metric, field in (*_VLLM_METRICS.items(), ("itl", "itl_ms")):
        for key in obj:
            prefix, _, rest = key.partition("_")
            if rest != f"{metric}_ms":
                continue
            stat = {"mean": "mean", "median": "p50", "std": "std"}.get(prefix) or (prefix if prefix.startswith("p") else None)
            if stat:
                value = _number(obj, key, where, positive=stat != "std")
                if value is not None:
                    stats[field][stat] = value
    if not stats["ttft_ms"].get("mean") and not stats["tpot_ms"].get("mean"):
        raise BadInput(f"{where}: needs 'mean_ttft_ms' or 'mean_tpot_ms'; nothing was imported")
    if obj.get("failed"):
        notes.append(f"{obj['failed']} request(s) failed")
    raw = {
        "id": row_id, "source": "vllm bench serve --save-result", "source_ref": where, "engine": "vllm",
        "engine_version": options.engine_version or obj.get("engine_version") or obj.get("vllm_version"),
        "model": model.hf_id, "weight_dtype": options.weight_dtype or obj.get("weight_dtype") or model.native_dtype,
        "gpu": gpu.name, "tp": tp, "pp": options.pp, "gpus_total": tp * options.pp,
        "isl": round(isl), "osl": round(osl), "concurrency": round(concurrency) if concurrency else None,
        "request_rate": rate, "ttft_ms": stats["ttft_ms"], "tpot_ms": stats["tpot_ms"], "e2e_ms": stats["e2e_ms"],
        "output_tok_s": _number(obj, "output_throughput", where), "request_s": _number(obj, "request_throughput", where),
        "notes": "; ".join(notes) or None,
        "extra": {k: obj[k] for k in ("label", "date", "num_prompts", "burstiness", "duration", "completed", "failed")
                  if k in obj} | ({"itl_ms": stats["itl_ms"]} if stats["itl_ms"] else {}),
    }
    try:
        return BenchmarkRow.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "row"
        raise BadInput(f"{where}: {field}: {err['msg']}; nothing was imported") from None


def _vllm_objects(path: Path) -> list[tuple[int, dict]]:
    """The result objects in one file: one JSON object, or one per line (--append-result)."""
    text = _read(path)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return _jsonl_rows(text, path)
    if not isinstance(whole, dict):
        raise BadInput(f"{path}: expected a JSON object (a vllm bench serve result); nothing was imported")
    return [(1, whole)]


def parse_import(path: Path, options: RunOptions | None, catalog: Catalog | None) -> list[tuple[BenchmarkRow, str]]:
    """(row, source file name) for every run in a file or directory; BadInput at the first bad one."""
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    files = sorted(p for p in path.rglob("*.json") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise BadInput(f"{path} holds no .json files (vllm bench serve --save-result writes one per run)")
    out: list[tuple[BenchmarkRow, str]] = []
    for file in files:
        objects = [] if file.suffix.lower() == ".csv" else _vllm_objects(file)
        if objects and all(_is_vllm_result(o) for _, o in objects):
            if catalog is None:
                raise BadInput("internal: a catalog is needed to import vllm results")
            name = str(file.relative_to(path)) if path.is_dir() else file.name
            for line_no, obj in objects:
                row_id = file.stem if len(objects) == 1 else f"{file.stem}#{line_no}"
                where = f"{file}:{line_no}" if len(objects) > 1 else str(file)
                out.append((vllm_result_row(obj, row_id, where, options or RunOptions(), catalog), name))
        elif path.is_dir() or any(_is_vllm_result(o) for _, o in objects):
            bad = next((n for n, o in objects if not _is_vllm_result(o)), 1)
            raise BadInput(f"{file}:{bad}: not a vllm bench serve result (needs {', '.join(_VLLM_MARKERS)}); "
                           "nothing was imported")
        else:
            if options and options.model_dump(exclude_defaults=True):
                raise BadInput("--model/--gpu/--tp/--weight-dtype/--engine-version apply to vllm bench serve results; "
                               f"{file} holds servewise rows, which say these per row")
            out += [(r, file.name) for r in parse_benchmark_file(file)]
    seen: set[str] = set()
    for row, name in out:
        if row.id in seen:
            raise BadInput(f"{name}: duplicate run id {row.id!r}; nothing was imported")
        seen.add(row.id)
    return out


def import_benchmarks(kb: KnowledgeBase, path: Path, options: RunOptions | None = None) -> int:
    """Validate every file, then insert all rows in one transaction. Returns rows imported."""
    from kb.catalog import load_catalog, refresh_version

    rows = parse_import(path, options, load_catalog(kb))
    existing = {r[0] for r in kb.db.execute("SELECT id FROM benchmarks WHERE origin = 'seed'")}
    clash = next((r.id for r, _ in rows if r.id in existing), None)
    if clash:
        raise BadInput(f"{path}: id {clash!r} is already a seed benchmark row; use other ids. Nothing was imported")
    with kb.transaction() as db:
        db["benchmarks"].upsert_all((benchmark_record(r, f"import:{name}") for r, name in rows), pk="id")
        refresh_version(kb, db)
    return len(rows)


def delete_benchmarks(kb: KnowledgeBase, ids: list[str] | None = None, source: str | None = None) -> list[str]:
    """Take imported runs back out, by id or by the file they came from. Seed rows (the base model's data)
    cannot be deleted; an id or file that matches nothing is an error, and nothing is deleted then."""
    from kb.catalog import refresh_version

    found: list[str] = []
    for rid in ids or []:
        row = kb.db.execute("SELECT origin FROM benchmarks WHERE id = ?", [rid]).fetchone()
        if row is None:
            raise BadInput(f"no benchmark run with id {rid!r}; see `servewise kb benchmarks --imported`")
        if row[0] == "seed":
            raise BadInput(f"{rid!r} is a seed row (the data the base model was fitted on), not an imported run")
        found.append(rid)
    if source:
        matched = [r[0] for r in kb.db.execute("SELECT id FROM benchmarks WHERE origin = ?", [f"import:{source}"])]
        if not matched:
            names = sorted({r[0].removeprefix("import:") for r in kb.db.execute(
                "SELECT DISTINCT origin FROM benchmarks WHERE origin != 'seed'")})
            raise BadInput(f"no imported runs came from {source!r}; imported files: {', '.join(names) or 'none'}")
        found += matched
    if not found:
        raise BadInput("give --delete ID or --source FILE")
    with kb.transaction() as db:
        db.execute(f"DELETE FROM benchmarks WHERE id IN ({','.join('?' * len(found))})", found)
        refresh_version(kb, db)
    return found


def load_benchmarks(kb: KnowledgeBase, engine: str | None = None, imported: bool = False) -> list[BenchmarkRow]:
    sql, clauses, args = "SELECT data FROM benchmarks", [], []
    if engine:
        clauses, args = ["engine = ?"], [engine]
    if imported:
        clauses.append("origin != 'seed'")
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return [BenchmarkRow.model_validate_json(r[0]) for r in kb.db.execute(sql + " ORDER BY rowid", args)]
