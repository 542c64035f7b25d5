"""`servewise predict`: the DESIGN.md keys, --batch streams, exit codes."""

from __future__ import annotations

import json

from kb.catalog import DATA_DIR


def test_predict_json_has_the_contract_keys(cli):
    r = cli("predict", "--model", "llama-3.1-8b", "--gpu", "h100", "--isl", "1024", "--osl", "256",
            "--concurrency", "8", "--json")
    assert r.exit_code == 0, r.stdout
    out = json.loads(r.stdout)
    for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
        assert set(out[key]) >= {"mean", "p50", "p90", "p95", "p99"}
    assert out["fits"] is True and out["output_tok_s"] > 0 and out["request_s"] > 0
    assert out["memory"]["kv_cache_tokens"] > 0 and out["calibration"] and out["assumptions"]


def test_replicas_split_the_load(cli):
    one = json.loads(cli("predict", "-m", "llama-3.1-8b", "-g", "l40s", "--isl", "512", "--osl", "256",
                         "--qps", "6", "--json").stdout)
    three = json.loads(cli("predict", "-m", "llama-3.1-8b", "-g", "l40s", "--isl", "512", "--osl", "256",
                           "--qps", "6", "--replicas", "3", "--json").stdout)
    assert three["tpot_ms"]["mean"] < one["tpot_ms"]["mean"]
    assert three["request_s"] == one["request_s"] == 6


def test_batch_answers_calibration_rows_in_order_and_survives_bad_lines(servewise_bin):
    rows = [line for line in (DATA_DIR / "benchmarks.jsonl").read_text().splitlines() if '"engine":"vllm"' in line][:5]
    bad = json.dumps({"model": "llama-3.1-8b", "gpu": "nosuchgpu", "isl": 10, "osl": 10, "qps": 1})
    stream = "\n".join(rows[:2] + ["{broken", bad] + rows[2:]) + "\n"
    r = servewise_bin("predict", "--batch", "-", input=stream)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 7
    assert "error" in lines[2] and "not valid JSON" in lines[2]["error"]["message"]
    assert "error" in lines[3] and "nosuchgpu" in lines[3]["error"]["message"]
    assert all("ttft_ms" in x for i, x in enumerate(lines) if i not in (2, 3))


def test_exit_codes(cli):
    unknown = cli("predict", "-m", "llama-3.1-8b", "-g", "h10", "--isl", "10", "--osl", "10", "--qps", "1", "--json")
    assert unknown.exit_code == 2 and "H100-SXM-80GB" in json.loads(unknown.stdout)["error"]["message"]
    nofit = cli("predict", "-m", "llama-3.1-70b", "-g", "l4", "--isl", "10", "--osl", "10", "--qps", "1", "--json")
    assert nofit.exit_code == 3 and json.loads(nofit.stdout)["error"]["details"]["memory"]["weights_gib"] > 20
    negative = cli("predict", "-m", "llama-3.1-8b", "-g", "l4", "--isl", "-5", "--osl", "10", "--qps", "1", "--json")
    assert negative.exit_code == 2 and "isl" in json.loads(negative.stdout)["error"]["message"]
    both = cli("predict", "-m", "llama-3.1-8b", "-g", "l4", "--isl", "5", "--osl", "10", "--qps", "1",
               "--concurrency", "2", "--json")
    assert both.exit_code == 2 and "exactly one" in json.loads(both.stdout)["error"]["message"]


def test_num_prompts_sets_the_benchmark_run_and_needs_a_closed_loop(cli):
    """`--num-prompts` is the benchmark run's request count: all sent in one round queue more than the default
    ten rounds; with Poisson arrivals it means nothing, and says so."""
    base = ("predict", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "4096", "--osl", "256", "--concurrency", "32")
    one_round = json.loads(cli(*base, "--num-prompts", "32", "--json").stdout)
    default = json.loads(cli(*base, "--json").stdout)
    assert one_round["ttft_ms"]["mean"] > default["ttft_ms"]["mean"]
    assert any("320 requests in all (10 per client" in a for a in default["assumptions"])
    r = cli("predict", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "512", "--osl", "64", "--qps", "2",
            "--num-prompts", "100")
    assert r.exit_code == 2 and "closed-loop" in r.output and "Traceback" not in r.output
    r = cli(*base, "--num-prompts", "0")
    assert r.exit_code == 2 and "num_prompts" in r.output.replace("-", "_")


def test_expert_parallel_is_a_flag_for_moe_models_on_several_gpus(cli):
    """`--expert-parallel` predicts vLLM --enable-expert-parallel; on a dense model or one GPU it is one clear error."""
    base = ("predict", "-m", "openai/gpt-oss-120b", "-g", "h200", "--isl", "8192", "--osl", "1024", "--concurrency", "16")
    tp8 = json.loads(cli(*base, "--tp", "8", "--json").stdout)
    ep8 = json.loads(cli(*base, "--tp", "8", "--expert-parallel", "--json").stdout)
    assert ep8["tpot_ms"]["mean"] > tp8["tpot_ms"]["mean"]
    assert any(a.startswith("expert parallel: each GPU holds 1/8") for a in ep8["assumptions"])
    assert not any(a.startswith("expert parallel") for a in tp8["assumptions"])
    r = cli("predict", "-m", "llama-3.1-8b", "-g", "h100", "--tp", "2", "--isl", "128", "--osl", "64",
            "--concurrency", "1", "--expert-parallel")
    assert r.exit_code == 2 and "is dense" in r.output and "Traceback" not in r.output
    r = cli(*base, "--expert-parallel")
    assert r.exit_code == 2 and "tp >= 2" in r.output and "Traceback" not in r.output
