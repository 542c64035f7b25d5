"""A team's own measured runs correct predictions: import (vLLM save-result and servewise rows), naming, scope,
deletion and the cross-validated accuracy report."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from kb.benchmarks import RunOptions, delete_benchmarks, import_benchmarks, load_benchmarks
from kb.catalog import open_kb
from kb.corrections import corrections
from planner.contracts import PredictQuery
from planner.errors import BadInput
from planner.feedback import Outcome
from planner.latency import predict

# Built from the keys vLLM 0.19.0 writes with `vllm bench serve --save-result` (vllm/benchmarks/serve.py in the
# vllm==0.19.0 wheel: result_json's date/backend/label/model_id/tokenizer_id/num_prompts/request_rate/burstiness/
# max_concurrency, benchmark_result's duration/completed/failed/total_*_tokens/*_throughput, and
# mean_/median_/std_/p99_ of ttft, tpot and itl in ms); file name as compute_result_filename makes it. The
# measured values are illustrative.
SAVE_RESULT = Path(__file__).parent / "data" / "openai-infqps-concurrency16-Llama-3.1-8B-Instruct-20261128-101512.json"
RUN_ID = SAVE_RESULT.stem


def _query(**over) -> PredictQuery:
    q = dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="H100-SXM-80GB", tp=1, isl=1024, osl=256, concurrency=16)
    return PredictQuery.model_validate({**q, **over})


def _predict(kb, cat, params, q: PredictQuery):
    table = corrections(kb, cat, params)
    m, g = cat.model(q.model), cat.gpu(q.gpu)
    return predict(q, m, g, params, table.get((m.hf_id, g.name, q.tp)))


def test_save_result_imports_with_gpu_and_tp_and_the_prediction_names_it(cli, servewise_bin, isolated_env):
    r = cli("kb", "import-benchmarks", str(SAVE_RESULT), "--json")
    assert r.exit_code == 2 and "--gpu" in json.loads(r.stdout)["error"]["message"]
    r = cli("kb", "import-benchmarks", str(SAVE_RESULT), "--gpu", "h100", "--tp", "1", "--engine-version", "0.19.0", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["imported"] == 1
    (row,) = json.loads(cli("kb", "benchmarks", "--imported", "--json").stdout)
    raw = json.loads(SAVE_RESULT.read_text())
    assert (row["gpu"], row["tp"], row["engine_version"], row["concurrency"]) == ("H100-SXM-80GB", 1, "0.19.0", 16)
    assert (row["isl"], row["osl"]) == (raw["total_input_tokens"] / raw["completed"], raw["total_output_tokens"] / raw["completed"])
    assert row["ttft_ms"] == {"mean": raw["mean_ttft_ms"], "p50": raw["median_ttft_ms"], "std": raw["std_ttft_ms"],
                              "p99": raw["p99_ttft_ms"]}
    args = ["predict", "--model", "llama-3.1-8b", "--gpu", "h100", "--isl", "1024", "--osl", "256", "--concurrency", "16"]
    p = json.loads(cli(*args, "--json").stdout)
    (run,) = p["correction"]["runs"]
    assert run["id"] == RUN_ID and run["source"] == SAVE_RESULT.name and run["ttft_pct"] != 0
    assert "1 measured run" in p["calibration"]
    human = servewise_bin(*args)
    assert human.returncode == 0 and RUN_ID in human.stdout.replace("\n", "")


def test_a_run_pulls_its_configuration_toward_what_it_measured_and_narrows_the_band(cat, params, tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    before = _predict(kb, cat, params, _query())
    import_benchmarks(kb, SAVE_RESULT, RunOptions(gpu="h100", tp=1))
    after = _predict(kb, cat, params, _query())
    raw = json.loads(SAVE_RESULT.read_text())
    for metric in ("ttft", "tpot"):
        b, a, measured = getattr(before, f"{metric}_ms").mean, getattr(after, f"{metric}_ms").mean, raw[f"mean_{metric}_ms"]
        assert abs(a - measured) < abs(b - measured)  # closer...
        assert (a - b) * (measured - b) > 0 and abs(a - b) < abs(measured - b)  # ...but shrunk: one run moves part way
    assert after.uncertainty_pct < before.uncertainty_pct
    # Further from the run's load, less of it, and a wider band again.
    far = _predict(kb, cat, params, _query(concurrency=128))
    assert far.correction.share < 1 and far.uncertainty_pct > after.uncertainty_pct


def test_configurations_no_run_informs_are_unchanged_to_the_last_digit(cat, params, tmp_path):
    fresh = open_kb(tmp_path / "fresh.sqlite")
    kb = open_kb(tmp_path / "kb.sqlite")
    import_benchmarks(kb, SAVE_RESULT, RunOptions(gpu="h100", tp=1))
    untouched = [_query(gpu="L40S"), _query(weight_dtype="fp8"), _query(model="mistral-7b"),
                 _query(tp=16), _query(concurrency=1024), _query(qps=2.0, concurrency=None)]
    # Poisson load at 2 req/s: in flight = 2 x ~2.6 s, inside the reach of a 16-client run, so it is informed.
    informed = {5}
    for i, q in enumerate(untouched):
        base, now = _predict(fresh, cat, params, q), _predict(kb, cat, params, q)
        if i in informed:
            assert now.correction is not None and now != base
        else:
            assert now.correction is None and now.model_dump() == base.model_dump(), q


def test_bad_files_are_rejected_whole_naming_file_and_field(cat, tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(SAVE_RESULT, runs / "a.json")
    bad = json.loads(SAVE_RESULT.read_text()) | {"mean_tpot_ms": "fast"}
    (runs / "b.json").write_text(json.dumps(bad))
    with pytest.raises(BadInput, match=r"b\.json: field 'mean_tpot_ms' must be a number"):
        import_benchmarks(kb, runs, RunOptions(gpu="h100", tp=1))
    no_tokens = {k: v for k, v in bad.items() if k != "total_output_tokens"} | {"mean_tpot_ms": 9.0}
    (runs / "b.json").write_text(json.dumps(no_tokens))
    with pytest.raises(BadInput, match=r"b\.json: field 'total_output_tokens' is missing"):
        import_benchmarks(kb, runs, RunOptions(gpu="h100", tp=1))
    (runs / "b.json").write_text(json.dumps(bad | {"mean_tpot_ms": 9.0, "model_id": "/models/my-finetune"}))
    with pytest.raises(BadInput, match=r"model '/models/my-finetune' \(field 'model_id' or --model\)"):
        import_benchmarks(kb, runs, RunOptions(gpu="h100", tp=1))
    assert load_benchmarks(kb, imported=True) == []
    (runs / "b.json").write_text(json.dumps(bad | {"mean_tpot_ms": 9.0, "max_concurrency": 32}))
    assert import_benchmarks(kb, runs, RunOptions(gpu="h100", tp=1)) == 2
    assert {r.concurrency for r in load_benchmarks(kb, imported=True)} == {16, 32}


def test_append_result_files_hold_one_run_per_line(cat, tmp_path):
    kb = open_kb(tmp_path / "kb.sqlite")
    raw = json.loads(SAVE_RESULT.read_text())
    appended = tmp_path / "sweep.json"
    appended.write_text(json.dumps(raw) + "\n" + json.dumps(raw | {"max_concurrency": 64}) + "\n")
    assert import_benchmarks(kb, appended, RunOptions(gpu="h100", tp=1)) == 2
    assert sorted(r.id for r in load_benchmarks(kb, imported=True)) == ["sweep#1", "sweep#2"]


def test_delete_by_id_or_source_restores_the_base_prediction(cli, cat, params, isolated_env):
    base = json.loads(cli("predict", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "1024", "--osl", "256",
                          "--concurrency", "16", "--json").stdout)
    assert cli("kb", "import-benchmarks", str(SAVE_RESULT), "--gpu", "h100", "--tp", "1").exit_code == 0
    r = cli("kb", "benchmarks", "--delete", "aic-1", "--json")
    assert r.exit_code == 2 and "seed row" in json.loads(r.stdout)["error"]["message"]
    r = cli("kb", "benchmarks", "--source", "nope.json", "--json")
    assert r.exit_code == 2 and SAVE_RESULT.name in json.loads(r.stdout)["error"]["message"]
    r = cli("kb", "benchmarks", "--source", SAVE_RESULT.name, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["deleted"] == [RUN_ID]
    again = json.loads(cli("predict", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "1024", "--osl", "256",
                           "--concurrency", "16", "--json").stdout)
    assert again == base
    kb = open_kb(isolated_env / "kb.sqlite")
    import_benchmarks(kb, SAVE_RESULT, RunOptions(gpu="h100", tp=1))
    assert delete_benchmarks(kb, ids=[RUN_ID]) == [RUN_ID] and load_benchmarks(kb, imported=True) == []


def test_runs_and_reports_feed_the_same_correction(cat, params, tmp_path):
    from kb.outcomes import store_report

    kb = open_kb(tmp_path / "kb.sqlite")
    import_benchmarks(kb, SAVE_RESULT, RunOptions(gpu="h100", tp=1))
    only_run = _predict(kb, cat, params, _query())
    o = Outcome(deployment="llm/chat", model="meta-llama/Llama-3.1-8B-Instruct", gpu="H100-SXM-80GB", tp=1,
                weight_dtype="bf16", metric="tpot_p90_ms", predicted=10.0, observed=20.0, window_s=3600,
                created_at="2026-11-29T10:00:00+00:00")
    store_report(kb, "llm/chat", None, o.created_at, "violated", {}, [o])
    both = _predict(kb, cat, params, _query())
    kinds = {r.kind for r in both.correction.runs}
    assert kinds == {"run", "outcome"} and both.correction.n_points == 2
    assert both.tpot_ms.mean > only_run.tpot_ms.mean  # the report says slower
    assert "1 observed outcome(s) and 1 measured run(s)" in both.calibration


def test_kb_accuracy_reports_cross_validated_error_before_and_after(cli, tmp_path):
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks" / "calibration.jsonl"
    rows = [json.loads(x) for x in shared.read_text().splitlines() if x]
    mine = [r | {"id": f"mine-{r['id']}"} for r in rows
            if r["engine"] == "vllm" and r["model"] == "moonshotai/Kimi-K2.5" and r["gpu"] == "H200-141GB"]
    assert len(mine) >= 10
    f = tmp_path / "kimi-h200.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in mine) + "\n")
    assert cli("kb", "import-benchmarks", str(f)).exit_code == 0
    data = json.loads(cli("kb", "accuracy", "--json").stdout)
    (row,) = data["accuracy"]
    assert row["runs"] == len(mine) and row["ttft_after_pct"] < row["ttft_before_pct"]
    assert row["tpot_after_pct"] < row["tpot_before_pct"]
    human = cli("kb", "accuracy")
    assert human.exit_code == 0 and "Kimi" in human.stdout


def test_mcp_accuracy_resource_and_predict_name_the_imported_run(isolated_env):
    import asyncio
    import os
    import sys

    from mcp import Client, StdioServerParameters

    kb = open_kb(isolated_env / "kb.sqlite")
    import_benchmarks(kb, SAVE_RESULT, RunOptions(gpu="h100", tp=1))
    kb.close()
    env = {**os.environ, "SERVEWISE_KB": str(isolated_env / "kb.sqlite"), "SERVEWISE_CONFIG": str(isolated_env / "c.toml")}
    params = StdioServerParameters(command=str(Path(sys.executable).parent / "servewise"), args=["serve"], env=env)

    async def go():
        async with Client(params) as c:
            assert "kb://accuracy" in {str(r.uri) for r in (await c.list_resources()).resources}
            acc = json.loads((await c.read_resource("kb://accuracy")).contents[0].text)
            (row,) = acc["accuracy"]
            assert row["model"] == "meta-llama/Llama-3.1-8B-Instruct" and row["runs"] == 1
            p = await c.call_tool("predict", {"model": "llama-3.1-8b", "gpu": "h100", "isl": 1024, "osl": 256,
                                              "concurrency": 16})
            assert not p.is_error and p.structured_content["correction"]["runs"][0]["id"] == RUN_ID

    asyncio.run(go())


def test_runs_with_moe_layers_wider_than_attention_tp_are_kept_out(cat):
    """vLLM shards MoE layers over TP x DP ranks without expert parallelism (FusedMoEParallelConfig.make,
    vllm/model_executor/layers/fused_moe/config.py): MoE TP 4 under attention TP 2 is attention data parallel."""
    from planner.catalog import BenchmarkRow
    from planner.measured import run_query, why_unusable

    row = dict(id="r", source="s", source_ref="test", gpus_total=2, engine="vllm", model="Qwen/Qwen3-235B-A22B-FP8", weight_dtype="fp8", gpu="H200-141GB",
               tp=2, isl=1000, osl=100, concurrency=8, ttft_ms={"mean": 500.0}, tpot_ms={"mean": 40.0})
    assert "attention data parallel" in why_unusable(BenchmarkRow(**row, extra={"moe_tp": 4, "moe_ep": 1}))
    assert why_unusable(BenchmarkRow(**row, extra={"moe_tp": 2, "moe_ep": 1})) is None
    assert why_unusable(BenchmarkRow(**row)) is None
    # Expert parallel across the TP group: predicted (PredictQuery.expert_parallel), but not a correction of plain TP.
    ep = BenchmarkRow(**row, extra={"moe_tp": 1, "moe_ep": 2})
    assert ep.expert_parallel() and "do not correct predictions" in why_unusable(ep)
    assert run_query(ep, cat).expert_parallel and not run_query(BenchmarkRow(**row), cat).expert_parallel


def test_runs_of_another_release_move_a_prediction_half_as_far():
    """Equal prior variances for what releases share and what is a release's own: many agreeing runs of one
    release set its own prediction near their offset and another release's near half of it."""
    from planner.contracts import EvidenceRef
    from planner.feedback import DEPLOYED_RELEASE, Evidence, corrections, resolve

    points = [Evidence(ref=EvidenceRef(id=f"r{i}", source="f"), model="m", gpu="g", weight_dtype="fp8", tp=2, metric="tpot",
                       log_ratio=0.3, inflight=8.0 * 2 ** (i % 3), isl=1000, osl=500, release="0.17.0") for i in range(60)]
    table = corrections(evidence=points)
    own = resolve(table[("m", "g", 2)], weight_dtype="fp8", tp=2, inflight=16, isl=1000, osl=500, release="0.17.0")
    other = resolve(table[("m", "g", 2)], weight_dtype="fp8", tp=2, inflight=16, isl=1000, osl=500)
    assert abs(math.log(own.tpot_factor) - 0.3) < 0.02
    assert abs(math.log(other.tpot_factor) - 0.15) < 0.02
    assert other.tpot_factor == resolve(table[("m", "g", 2)], weight_dtype="fp8", tp=2, inflight=16, isl=1000, osl=500,
                                        release=DEPLOYED_RELEASE).tpot_factor


def test_the_deployed_release_is_the_one_rendered():
    from gitops.render import VLLM_IMAGE
    from gitops.vllm_facts import VLLM_VERSION
    from planner.feedback import DEPLOYED_RELEASE

    assert DEPLOYED_RELEASE == VLLM_VERSION and VLLM_IMAGE.endswith(f":v{DEPLOYED_RELEASE}")


def test_a_trend_the_runs_show_throughout_carries_past_their_range():
    """The share rule outside the range: the fitted trend goes on (a prompt length below every run's gets the
    trend's value there, not the edge's), and beyond three doublings nothing is applied."""
    from planner.contracts import EvidenceRef
    from planner.feedback import Evidence, corrections, resolve

    points = [Evidence(ref=EvidenceRef(id=f"r{isl}-{c}", source="f"), model="m", gpu="g", weight_dtype="fp8", tp=2,
                       metric="ttft", log_ratio=0.15 * math.log2(isl / 4000), inflight=c, isl=isl, osl=500)
              for isl in (2000, 4000, 8000) for c in (4, 8, 16, 32)]
    table = corrections(evidence=points)
    at = {isl: resolve(table[("m", "g", 2)], weight_dtype="fp8", tp=2, inflight=8, isl=isl, osl=500)
          for isl in (2000, 1000, 2000 / 2**3.5)}
    assert abs(math.log(at[2000].ttft_factor) + 0.15) < 0.03 and at[2000].share == 1
    assert math.log(at[1000].ttft_factor) < math.log(at[2000].ttft_factor) - 0.05 and at[1000].share == 0.5
    assert at[2000 / 2**3.5] is None


def test_tpot_is_corrected_along_the_parts_of_the_step_the_runs_show_off():
    """Runs whose KV reads go faster than modelled (TPOT off by -0.4 x its KV share, as where an fp8 KV kernel
    reads half the bytes the model prices) teach one law in the KV share: a query at prompt and output lengths no run
    had, its KV share inside theirs, gets it. TTFT keeps the lengths as coordinates."""
    from planner.contracts import EvidenceRef
    from planner.feedback import Evidence, corrections, resolve

    def shares(c: float, isl: float, osl: float) -> tuple[float, float]:
        kv = c * (isl + osl / 2) / (c * (isl + osl / 2) + 60_000)  # KV bytes against the weights', as step_time has it
        return kv, min(0.5, (c - 1) * isl / osl / 20_000)

    points = []
    for isl in (1000, 8000):
        for c in (1, 4, 8, 16, 32, 64):
            kv, pf = shares(c, isl, 1000)
            common = dict(model="m", gpu="g", weight_dtype="fp8", tp=2, inflight=c, isl=isl, osl=1000, kv_share=kv,
                          prefill_share=pf)
            points.append(Evidence(ref=EvidenceRef(id=f"r{isl}-{c}", source="f"), metric="tpot", log_ratio=-0.4 * kv, **common))
            points.append(Evidence(ref=EvidenceRef(id=f"r{isl}-{c}", source="f"), metric="ttft", log_ratio=0.1, **common))
    table = corrections(evidence=points)
    terms = {t.metric: t.dims for t in table[("m", "g", 2)].terms}
    assert terms == {"tpot": ["tp", "inflight", "kv_share", "prefill_share"], "ttft": ["tp", "inflight", "isl", "osl"]}
    kv, pf = shares(16, 3000, 4000)
    at = resolve(table[("m", "g", 2)], weight_dtype="fp8", tp=2, inflight=16, isl=3000, osl=4000, kv_share=kv,
                 prefill_share=pf)
    assert abs(math.log(at.tpot_factor) + 0.4 * kv) < 0.02
