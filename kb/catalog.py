"""Seeding the knowledge base from `kb/data/` and reading the catalog back as typed objects.

The seed files are the reviewed source of truth; the database is rebuilt from them whenever
their content hash changes. That hash (plus any user-imported benchmark rows) is the kb version
that every plan records.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kb.store import KnowledgeBase
from planner.catalog import BenchmarkRow, Catalog, Checkpoint, Gpu, ModelArch, UseCase

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED_FILES = ("models.json", "quality.json", "gpus.json", "use_cases.json", "benchmarks.jsonl", "latency_fit.json",
              "checkpoints.json")


def seed_hash(data_dir: Path = DATA_DIR) -> str:
    h = hashlib.sha256()
    for name in SEED_FILES:
        path = data_dir / name
        if path.exists():
            h.update(name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def open_kb(path: Path | str) -> KnowledgeBase:
    """Open (creating and seeding if needed) the knowledge base at `path`."""
    kb = KnowledgeBase(path)
    if kb.meta("seed_hash") != seed_hash():
        _seed(kb)
    return kb


def _seed_models() -> list[ModelArch]:
    rows = json.loads((DATA_DIR / "models.json").read_text())
    quality_path = DATA_DIR / "quality.json"
    quality = json.loads(quality_path.read_text()) if quality_path.exists() else {}
    for row in rows:
        row["quality"] = quality.get("models", {}).get(row["hf_id"], [])
    return [ModelArch.model_validate(r) for r in rows]


def _seed(kb: KnowledgeBase) -> None:
    models = _seed_models()
    gpus = [Gpu.model_validate(g) for g in json.loads((DATA_DIR / "gpus.json").read_text())]
    use_cases = [UseCase.model_validate(u) for u in json.loads((DATA_DIR / "use_cases.json").read_text())]
    bench = [
        BenchmarkRow.model_validate_json(line)
        for line in (DATA_DIR / "benchmarks.jsonl").read_text().splitlines()
        if line.strip()
    ]
    from kb.benchmarks import benchmark_record

    with kb.transaction() as db:
        for table in ("models", "gpus", "prices", "use_cases"):
            db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM benchmarks WHERE origin = 'seed'")
        db["models"].insert_all(
            {"hf_id": m.hf_id, "architecture": m.architecture, "license": m.license, "source": m.source,
             "data": m.model_dump_json()} for m in models
        )
        db["gpus"].insert_all(
            {"name": g.name, "vendor": g.vendor, "memory_gb": g.memory_gb, "source": g.source,
             "data": g.model_dump_json(exclude={"prices"})} for g in gpus
        )
        db["prices"].insert_all(
            {"gpu": g.name, **p.model_dump()} for g in gpus for p in g.prices
        )
        db["use_cases"].insert_all(
            {"name": u.name, "task": u.task, "source": u.source, "data": u.model_dump_json()} for u in use_cases
        )
        db["benchmarks"].insert_all((benchmark_record(r, "seed") for r in bench), batch_size=500)
        kb.set_meta(db, "seed_hash", seed_hash())
        refresh_version(kb, db)


def refresh_version(kb: KnowledgeBase, db) -> str:
    """Recompute the kb version: the seed hash, plus a hash of user-imported benchmark ids."""
    ids = [r[0] for r in db.execute("SELECT id FROM benchmarks WHERE origin != 'seed' ORDER BY id")]
    version = f"kb-{seed_hash()}"
    if ids:
        version += "+" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:8]
    kb.set_meta(db, "kb_version", version)
    return version


def load_catalog(kb: KnowledgeBase) -> Catalog:
    """The whole catalog (models, GPUs with prices, use cases) as typed objects."""
    prices: dict[str, list[dict]] = {}
    for row in kb.db["prices"].rows:
        prices.setdefault(row["gpu"], []).append(
            {"provider": row["provider"], "usd_per_gpu_hour": row["usd_per_gpu_hour"], "source": row["source"]}
        )
    gpus = [
        Gpu.model_validate({**json.loads(r["data"]), "prices": prices.get(r["name"], [])})
        for r in kb.db["gpus"].rows
    ]
    return Catalog(
        models=[ModelArch.model_validate_json(r["data"]) for r in kb.db["models"].rows],
        gpus=gpus,
        use_cases=[UseCase.model_validate_json(r["data"]) for r in kb.db["use_cases"].rows],
        kb_version=kb.meta("kb_version") or "kb-unknown",
        checkpoints=load_checkpoints(),
    )


def load_checkpoints() -> list[Checkpoint]:
    """Published pre-quantized checkpoints (reviewed seed data, read as is: part of the kb version's seed hash)."""
    return [Checkpoint.model_validate(c) for c in json.loads((DATA_DIR / "checkpoints.json").read_text())]
