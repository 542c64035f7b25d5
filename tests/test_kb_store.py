"""Knowledge base: seeding, versioning, transactions, refusing files it must not touch."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kb.benchmarks import import_benchmarks, load_benchmarks
from kb.catalog import DATA_DIR, load_catalog, open_kb, seed_hash
from kb.migrations import MIGRATIONS
from planner.errors import BadInput

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_first_open_seeds_every_table_from_kb_data(tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    cat = load_catalog(kb)
    seed_models = json.loads((DATA_DIR / "models.json").read_text())
    assert {m.hf_id for m in cat.models} == {m["hf_id"] for m in seed_models}
    assert len(cat.models) >= 15
    assert {m.attention.kind for m in cat.models} >= {"gqa", "mla", "sliding_window"}
    assert any(m.is_moe for m in cat.models)
    assert all(m.source and m.license and m.max_position_embeddings > 0 for m in cat.models)
    assert all(g.source for g in cat.gpus)
    assert all(p.source for g in cat.gpus for p in g.prices)
    names = {u.name for u in cat.use_cases}
    assert {"chatbot", "summarization", "code-generation", "rag", "long-document-summarization",
            "code-completion", "agentic", "translation", "offline-batch"} <= names
    assert cat.kb_version == f"kb-{seed_hash()}"
    n_seed = sum(1 for line in (DATA_DIR / "benchmarks.jsonl").read_text().splitlines() if line.strip())
    assert len(load_benchmarks(kb)) == n_seed


def test_original_use_cases_carry_the_design_targets(tmp_path):
    cat = load_catalog(open_kb(tmp_path / "kb.sqlite"))
    expected = {"chatbot": (300, 50, 2000, 150, 200), "summarization": (1000, 100, 10000, 2000, 500),
                "code-generation": (500, 75, 5000, 300, 400)}
    for name, (ttft, tpot, e2e, isl, osl) in expected.items():
        u = cat.use_case(name)
        assert (u.slos.ttft_p90_ms, u.slos.tpot_p90_ms, u.slos.e2e_p95_ms) == (ttft, tpot, e2e)
        assert (u.prompt_tokens.mean, u.output_tokens.mean) == (isl, osl)
        assert u.prompt_tokens.dist == "lognormal" and u.prompt_tokens.p90 > u.prompt_tokens.mean


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is only beside the repo in CI and development")
def test_seed_files_match_the_shared_data():
    shared_models = {m["hf_id"] for m in json.loads((SHARED / "models.json").read_text())["models"]}
    shared_gpus = {g["name"] for g in json.loads((SHARED / "gpus.json").read_text())["gpus"]}
    assert shared_models == {m["hf_id"] for m in json.loads((DATA_DIR / "models.json").read_text())}
    assert shared_gpus == {g["name"] for g in json.loads((DATA_DIR / "gpus.json").read_text())}
    shared_rows = [json.loads(x)["id"] for x in (SHARED / "benchmarks" / "calibration.jsonl").read_text().splitlines() if x]
    seed = [json.loads(x) for x in (DATA_DIR / "benchmarks.jsonl").read_text().splitlines() if x]
    assert shared_rows == [r["id"] for r in seed if r["source"] == "aiconfigurator-silicon"]
    # the rest are published runs added with their source (benchmarks/public_runs.jsonl)
    assert all(r["source_ref"].startswith("https://") for r in seed if r["source"] != "aiconfigurator-silicon")


def test_reopen_does_not_reseed_and_keeps_user_rows(tmp_path):
    path = tmp_path / "kb.sqlite"
    kb = open_kb(path)
    rows = tmp_path / "mine.jsonl"
    rows.write_text(json.dumps(_row("mine-1")) + "\n")
    import_benchmarks(kb, rows)
    version = kb.meta("kb_version")
    assert version.startswith(f"kb-{seed_hash()}+")
    kb.close()
    again = open_kb(path)
    assert again.meta("kb_version") == version
    assert any(r.id == "mine-1" for r in load_benchmarks(again))


def test_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "kb.sqlite"
    path.write_text("my precious notes\n")
    with pytest.raises(BadInput, match="not a SQLite file"):
        open_kb(path)
    assert path.read_text() == "my precious notes\n"


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "kb.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
        conn.execute("CREATE TABLE future (x)")
    before = path.read_bytes()
    with pytest.raises(BadInput, match="newer than this servewise"):
        open_kb(path)
    assert path.read_bytes() == before


def _row(rid: str, **over) -> dict:
    row = {"id": rid, "source": "my-lab", "source_ref": "internal run 42", "engine": "vllm", "engine_version": "0.19.0",
           "model": "meta-llama/Llama-3.1-8B-Instruct", "weight_dtype": "bf16", "gpu": "L40S", "tp": 1, "pp": 1, "dp": 1,
           "gpus_total": 1, "isl": 512, "osl": 256, "concurrency": 8, "ttft_ms": {"mean": 80.5}, "tpot_ms": {"mean": 21.0}}
    row.update(over)
    return row


def test_import_is_all_or_nothing_with_line_number(tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    before = len(load_benchmarks(kb))
    bad = tmp_path / "runs.jsonl"
    bad.write_text("\n".join([json.dumps(_row("r1")), json.dumps(_row("r2")), json.dumps(_row("r3", tp=0))]) + "\n")
    with pytest.raises(BadInput, match=r"runs\.jsonl:3: tp"):
        import_benchmarks(kb, bad)
    assert len(load_benchmarks(kb)) == before
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_row("r1")) + "\n{not json\n")
    with pytest.raises(BadInput, match=r"broken\.jsonl:2: not valid JSON"):
        import_benchmarks(kb, broken)
    assert len(load_benchmarks(kb)) == before


def test_import_csv_of_the_same_shape(tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    csv_path = tmp_path / "runs.csv"
    csv_path.write_text(
        "id,source,source_ref,engine,model,weight_dtype,gpu,tp,gpus_total,isl,osl,concurrency,ttft_ms.mean,tpot_ms.mean\n"
        "c1,lab,run-1,vllm,meta-llama/Llama-3.1-8B-Instruct,fp8,L4,1,1,1024,128,4,210.0,31.5\n"
        "c2,lab,run-2,vllm,meta-llama/Llama-3.1-8B-Instruct,fp8,L4,1,1,1024,128,16,640.0,44.0\n"
    )
    assert import_benchmarks(kb, csv_path) == 2
    mine = {r.id: r for r in load_benchmarks(kb) if r.source == "lab"}
    assert mine["c2"].tpot_ms["mean"] == 44.0 and mine["c2"].concurrency == 16
    bad = tmp_path / "bad.csv"
    bad.write_text("id,source,source_ref,engine,model,weight_dtype,gpu,tp,gpus_total,isl,osl,concurrency,ttft_ms.mean\n"
                   "c3,lab,run,vllm,m,fp7,L4,1,1,1,1,1,1\n")
    with pytest.raises(BadInput, match=r"bad\.csv:2: weight_dtype"):
        import_benchmarks(kb, bad)


def test_transaction_rolls_back_on_error(tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    with pytest.raises(RuntimeError):
        with kb.transaction() as db:
            db["audit_log"].insert({"at": "now", "actor": "test", "tool": "x", "args_digest": "d",
                                    "duration_ms": 1.0, "outcome": "ok", "message": ""})
            raise RuntimeError("boom")
    assert kb.db["audit_log"].count == 0
