"""Latency model: physics floors over a grid, monotonicity, closed loop vs Poisson, the stored fit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kb.benchmarks import load_benchmarks
from kb.catalog import open_kb
from planner.calibration import build_dataset, fit, layout_pairs, predict_means
from planner.contracts import Correction, PredictQuery
from planner.errors import BadInput, Infeasible
from planner.latency import predict, predict_load_sweep
from planner.memory import kv_bytes_per_sequence, weight_bytes_read_per_step

GRID_MODELS = ["llama-3.1-8b", "qwen3-32b", "llama-3.1-70b", "Qwen/Qwen3-30B-A3B", "openai/gpt-oss-120b", "mistral-7b"]
GRID_GPUS = ["L4", "A10G", "L40S", "A100-80GB", "H100-SXM-80GB", "B200-180GB"]


def test_never_faster_than_physics(cat, params):
    checked = 0
    for name, gname, tp, load in itertools.product(GRID_MODELS, GRID_GPUS, (1, 2, 4, 8), (1, 16, 64)):
        model, gpu = cat.model(name), cat.gpu(gname)
        q = PredictQuery(model=name, gpu=gname, tp=tp, isl=1024, osl=256, concurrency=load, weight_dtype="fp8"
                         if gpu.fp8_tflops else "bf16")
        try:
            p = predict(q, model, gpu, params)
        except (Infeasible, BadInput):
            continue
        checked += 1
        dtype = q.weight_dtype
        # decode streams the weights plus the KV of every sequence decoding at once, at datasheet bandwidth;
        # how many decode at once follows from the prediction's own throughput (Little's law)
        batch = max(1.0, p.request_s * (256 - 1) * p.tpot_ms.mean / 1e3)
        floor_tpot = (weight_bytes_read_per_step(model, dtype, batch) + batch * kv_bytes_per_sequence(model, tp, 1024))
        floor_tpot /= tp * gpu.mem_bw_gb_s * 1e9
        assert p.tpot_ms.p50 / 1e3 >= floor_tpot * 0.999, (name, gname, tp, load)
        peak = (gpu.fp8_tflops if dtype == "fp8" else gpu.bf16_tflops) * 1e12
        floor_ttft = 2 * model.params_active_b * 1e9 * 1024 / (tp * peak)
        assert p.ttft_ms.mean / 1e3 >= floor_ttft, (name, gname, tp, load)
    assert checked > 50


def test_more_load_never_lowers_latency(cat, params):
    for name, gname in (("llama-3.1-8b", "L40S"), ("Qwen/Qwen3-30B-A3B", "H100-SXM-80GB")):
        q = PredictQuery(model=name, gpu=gname, isl=800, osl=200, qps=0.1)
        sweep = predict_load_sweep(q, [0.25, 0.5, 1, 2, 4, 8], cat.model(name), cat.gpu(gname), params)
        tpot = [p.tpot_ms.mean for p in sweep]
        ttft = [p.ttft_ms.mean for p in sweep]
        assert tpot == sorted(tpot) and ttft == sorted(ttft)
        assert all(p.request_s == pytest.approx(load, rel=1e-3) for p, load in zip(sweep, [0.25, 0.5, 1, 2, 4, 8]))


def test_percentiles_are_ordered_and_spread_grows_with_length_spread(cat, params):
    m, g = cat.model("llama-3.1-8b"), cat.gpu("A100-80GB")
    fixed = predict(PredictQuery(model="x", gpu="y", isl=500, osl=300, qps=3), m, g, params)
    spread = predict(PredictQuery(model="x", gpu="y", isl=500, osl=300, qps=3, isl_cv=0.8, osl_cv=0.8), m, g, params)
    for p in (fixed, spread):
        for v in (p.ttft_ms, p.tpot_ms, p.e2e_ms):
            assert v.p50 <= v.p90 <= v.p95 <= v.p99
    assert spread.e2e_ms.p99 / spread.e2e_ms.p50 > fixed.e2e_ms.p99 / fixed.e2e_ms.p50


def test_closed_loop_throughput_follows_littles_law(cat, params):
    m, g = cat.model("llama-3.1-8b"), cat.gpu("H100-SXM-80GB")
    p = predict(PredictQuery(model="x", gpu="y", isl=1024, osl=512, concurrency=32), m, g, params)
    assert p.output_tok_s == pytest.approx(32 * 512 / (p.e2e_ms.mean / 1e3), rel=0.02)


def test_correction_is_applied_and_named(cat, params):
    m, g = cat.model("llama-3.1-8b"), cat.gpu("L40S")
    q = PredictQuery(model="x", gpu="y", isl=512, osl=128, qps=1)
    base = predict(q, m, g, params)
    corr = predict(q, m, g, params, Correction(ttft_factor=1.5, tpot_factor=1.2, n_outcomes=4, source="test"))
    assert corr.tpot_ms.mean == pytest.approx(base.tpot_ms.mean * 1.2, rel=0.01)
    assert "4 observed outcome" in corr.calibration


def test_uncalibrated_gpu_says_so(cat, params):
    p = predict(PredictQuery(model="x", gpu="y", isl=512, osl=128, qps=1), cat.model("mistral-7b"), cat.gpu("L4"), params)
    assert not p.in_calibrated_range and any("outside the calibrated range" in a for a in p.assumptions)
    assert p.uncertainty_pct > params.cv_median_ape["tpot"]


def test_bad_queries(cat, params):
    m = cat.model("llama-3.1-8b")
    with pytest.raises(BadInput, match="allowed tp"):
        predict(PredictQuery(model="x", gpu="y", tp=3, isl=10, osl=10, qps=1), m, cat.gpu("h100"), params)
    with pytest.raises(BadInput, match="context"):
        predict(PredictQuery(model="x", gpu="y", isl=130000, osl=2000, qps=1), m, cat.gpu("h100"), params)
    with pytest.raises(Infeasible, match="does not fit"):
        predict(PredictQuery(model="x", gpu="y", isl=100, osl=10, qps=1), cat.model("llama-3.1-70b"), cat.gpu("L4"), params)


def test_stored_fit_is_reproducible_on_a_subset(cat, params, tmp_path):
    rows = load_benchmarks(open_kb(tmp_path / "kb.sqlite"))[:300]
    data = build_dataset(rows, cat)
    p = fit(data, iterations=10)
    ttft, tpot = predict_means(p, data)
    assert np.all(np.isfinite(ttft)) and np.all(np.isfinite(tpot))
    assert 0 < p.bw_eff <= 1 and 0 < p.flops_eff <= 1
    assert params.n_rows > 500 and params.data_version and params.cv_median_ape


def test_more_starting_points_never_end_at_a_worse_objective(cat, tmp_path):
    """The robustness check of held-out errors (benchmarks/accuracy.py) refits from extra starting points and keeps
    the lowest objective: never above the single descent's, and the same every run."""
    from planner.calibration import _from_params, _residuals, _robust_cost
    from planner.steptime import LatencyParams

    data = build_dataset(load_benchmarks(open_kb(tmp_path / "kb.sqlite"))[:200], cat)
    fitted = data.subset(data.fitted)

    def objective(p: LatencyParams) -> float:
        return _robust_cost(_residuals(_from_params(p), LatencyParams(), fitted))

    one, several = fit(data, iterations=8), fit(data, iterations=8, restarts=2)
    assert objective(several) <= objective(one) + 1e-12
    assert fit(data, iterations=8, restarts=2) == several


def test_only_vllm_rows_are_scored_and_old_releases_are_not_fitted(cat, tmp_path):
    rows = load_benchmarks(open_kb(tmp_path / "kb.sqlite"))
    data = build_dataset(rows, cat)
    assert {r.engine for r in data.rows} == {"vllm"}
    assert len(data.rows) < len(rows)  # TRT-LLM and SGLang rows stay out
    old = [r.engine_version for r, fitted in zip(data.rows, data.fitted) if not fitted]
    # vLLM 0.12 calibration rows, and the published 0.10/0.11 runs of other labs (transfer checks)
    assert old and all(v.split(".")[:2] in (["0", "10"], ["0", "11"], ["0", "12"]) for v in old)
    assert all(fitted for r, fitted in zip(data.rows, data.fitted) if r.engine_version in (None, "0.19.0"))
    nightly = [f for r, f in zip(data.rows, data.fitted) if (r.engine_version or "").startswith("nightly")]
    assert nightly and all(nightly)


def test_request_overhead_grows_with_the_prompt_and_lone_clients_do_not_wait(cat, params):
    """TTFT outside the engine = fixed part + per prompt token; a lone closed-loop client finds the engine idle."""
    from planner.batching import Load, solve
    from planner.steptime import features

    f = features(cat.model("llama-3.1-8b"), cat.gpu("H100-SXM-80GB"), tp=1, pp=1, weight_dtype="bf16")
    f = type(f).stack([f, f, f])
    one = np.ones(3)
    load = Load(isl=np.array([256.0, 4096.0, 256.0]), osl=one * 128, clients=np.array([1.0, 1.0, 8.0]),
                qps=one * np.nan, max_running=one * 256, chunk=one * 8192)
    state = solve(params, f, load)
    assert state.outside[1] - state.outside[0] == pytest.approx(params.request_token_s * (4096 - 256))
    # the output step, plus the step async scheduling had already planned when the request landed
    assert state.residual[0] == pytest.approx((params.output_steps + 1) * state.decode_only[0] + params.output_per_stream_s)
    # among eight clients: half the step in progress, and an output path serving eight streams
    assert state.residual[2] == pytest.approx((params.output_steps + 1.5) * state.decode_only[2]
                                              + 8 * params.output_per_stream_s)
    sync_only = solve(params, f, Load(**{**vars(load), "async_scheduling": np.zeros(3, bool)}))
    assert sync_only.ttft[0] == pytest.approx(state.ttft[0] - state.decode_only[0])


def test_closed_loop_first_round_queues_and_weighs_by_its_share(cat, params):
    """A benchmark's clients send their first requests at once: that round waits behind half the others' prompts,
    and the mean TTFT weighs it by clients / num_prompts (one round: all of it). TPOT does not depend on it; a lone
    client has no one to wait for."""
    q = PredictQuery(model="x", gpu="y", tp=4, isl=8192, osl=1024, concurrency=32, weight_dtype="fp8")
    model, gpu = cat.model("llama-3.1-70b"), cat.gpu("H200-141GB")
    one, ten, hundred = (predict(q.model_copy(update={"num_prompts": n}), model, gpu, params) for n in (32, 320, 3200))
    default = predict(q, model, gpu, params)
    assert one.ttft_ms.mean > ten.ttft_ms.mean > hundred.ttft_ms.mean
    assert default.ttft_ms.mean == ten.ttft_ms.mean
    assert one.tpot_ms.mean == ten.tpot_ms.mean == hundred.tpot_ms.mean
    # mean = later rounds' TTFT + (first round's - later rounds') / rounds: from 10 to 100 rounds the mean moves a
    # tenth of what it moves from 1 to 10
    assert ten.ttft_ms.mean - hundred.ttft_ms.mean == pytest.approx(0.1 * (one.ttft_ms.mean - ten.ttft_ms.mean), rel=0.02)
    alone = q.model_copy(update={"concurrency": 1})
    assert predict(alone.model_copy(update={"num_prompts": 1}), model, gpu, params).ttft_ms.mean == pytest.approx(
        predict(alone.model_copy(update={"num_prompts": 100}), model, gpu, params).ttft_ms.mean)
    with pytest.raises(ValueError, match="closed-loop"):
        PredictQuery(model="x", gpu="y", isl=1, osl=1, qps=1.0, num_prompts=10)


def test_a_stated_release_schedules_as_that_release_does(cat, params):
    """Async scheduling is vLLM's default from 0.14 (vllm-project/vllm#27614): a query for 0.12 waits for no step
    planned ahead, as the calibration treats that release's runs; no release means the one servewise deploys."""
    from planner.batching import async_by_default

    assert async_by_default(None) and async_by_default("0.19.0") and async_by_default("nightly-5b8c30d6")
    assert not async_by_default("0.12.0") and not async_by_default("0.13")
    q = PredictQuery(model="x", gpu="y", tp=2, isl=1024, osl=256, concurrency=8, weight_dtype="fp8")
    model, gpu = cat.model("llama-3.1-70b"), cat.gpu("H200-141GB")
    old, new, deployed = (predict(q.model_copy(update={"engine_version": v}), model, gpu, params)
                          for v in ("0.12.0", "0.19.0", None))
    assert new.ttft_ms.mean == deployed.ttft_ms.mean
    assert old.ttft_ms.mean < new.ttft_ms.mean < old.ttft_ms.mean + 1.5 * new.tpot_ms.mean
    assert old.tpot_ms.mean == new.tpot_ms.mean
    # --async-scheduling named outright overrides the release's default either way.
    asked = predict(q.model_copy(update={"engine_version": "0.12.0", "async_scheduling": True}), model, gpu, params)
    off = predict(q.model_copy(update={"engine_version": "0.19.0", "async_scheduling": False}), model, gpu, params)
    assert asked.ttft_ms.mean == new.ttft_ms.mean and off.ttft_ms.mean == old.ttft_ms.mean


def test_run_says_how_many_requests_it_sent():
    """A run's request count comes from its result file (vllm bench serve's num_prompts) or its recorded harness
    command; calibration rows that state neither are taken at the sweep convention."""
    from planner.catalog import BenchmarkRow

    base = dict(id="r", source="s", source_ref="f", engine="vllm", model="m", weight_dtype="fp8", gpu="g", tp=1,
                gpus_total=1, isl=1, osl=1, concurrency=8, ttft_ms={"mean": 1.0}, tpot_ms={"mean": 1.0})
    assert BenchmarkRow(**base, extra={"num_prompts": 80}).num_prompts() == 80
    assert BenchmarkRow(**base, extra={"harness": "vllm bench serve --num-prompts 100 --max-concurrency 8"}).num_prompts() == 100
    assert BenchmarkRow(**base, extra={"harness": "vllm bench serve --num-prompts=40"}).num_prompts() == 40
    assert BenchmarkRow(**base).num_prompts() is None
    assert BenchmarkRow(**base, extra={"num_prompts": "many"}).num_prompts() is None


def test_allreduce_cost_follows_message_bytes_over_the_link(cat, params):
    """Same model and TP: a GPU with a slower link pays more for the same messages, and more tokens cost more."""
    from planner.steptime import features, step_time

    model = cat.model("llama-3.1-70b")
    fast = features(model, cat.gpu("H100-SXM-80GB"), tp=4, pp=1, weight_dtype="fp8")
    slow = features(model, cat.gpu("H100-SXM-80GB"), tp=4, pp=1, weight_dtype="fp8")
    slow.link = fast.link / 10
    zero = np.zeros(1)
    for tokens in (1.0, 512.0):
        t_fast = step_time(params, fast, np.array([tokens]), np.array([1024.0]), zero, zero)
        t_slow = step_time(params, slow, np.array([tokens]), np.array([1024.0]), zero, zero)
        message = 2 * 2 * (4 - 1) / 4 * tokens * model.hidden_size * 2.0 * model.num_layers
        assert (t_slow - t_fast)[0] == pytest.approx(message * (1 / slow.link[0] - 1 / fast.link[0]), rel=1e-6)


def test_uncertainty_is_wider_outside_the_calibrated_range(cat, params):
    q = PredictQuery(model="x", gpu="y", tp=4, isl=512, osl=128, concurrency=4, weight_dtype="fp8")
    inside = predict(q, cat.model("MiniMaxAI/MiniMax-M2.5"), cat.gpu("H200-141GB"), params.model_copy(
        update={"calibrated": {"gpus": ["H200-141GB"], "models": ["MiniMaxAI/MiniMax-M2.5"], "dtypes": ["fp8"]}}))
    outside = predict(q.model_copy(update={"weight_dtype": "bf16", "tp": 1}), cat.model("qwen3-8b"), cat.gpu("L40S"), params)
    assert inside.in_calibrated_range and not outside.in_calibrated_range
    assert inside.uncertainty_pct == max(params.cv_median_ape.values())
    assert outside.uncertainty_pct == max(params.transfer_ape.values()) > inside.uncertainty_pct


def test_published_runs_are_seed_rows_with_their_source_and_importable(tmp_path):
    """benchmarks/public_runs.jsonl is what `kb import-benchmarks` takes, and every row is in the seed data."""
    import json
    from pathlib import Path

    from kb.benchmarks import parse_benchmark_file
    from kb.catalog import DATA_DIR

    public = Path(__file__).resolve().parents[1] / "benchmarks" / "public_runs.jsonl"
    rows = parse_benchmark_file(public)
    seed = {json.loads(x)["id"] for x in (DATA_DIR / "benchmarks.jsonl").read_text().splitlines() if x.strip()}
    assert rows and all(r.id in seed for r in rows)
    assert all(r.source_ref.startswith("https://") and r.engine_version and r.extra.get("server_flags") for r in rows)


def test_allreduce_latency_does_not_grow_with_tp(cat, params):
    """vLLM's one-stage custom all-reduce signals all peers at once: a decode-sized message costs the same
    latency per call at TP 2 and TP 8 (no log2(tp) rounds); only the bytes term scales, by 2(tp-1)/tp."""
    from planner.steptime import allreduce_time, features

    model = cat.model("openai/gpt-oss-120b")
    two, eight = (features(model, cat.gpu("H200-141GB"), tp=tp, pp=1, weight_dtype="mxfp4") for tp in (2, 8))
    calls = model.num_layers * 2
    tiny = np.array([1e-9])
    assert allreduce_time(params, two, tiny)[0] == pytest.approx(calls * params.allreduce_latency_s)
    assert allreduce_time(params, eight, tiny)[0] == pytest.approx(calls * params.allreduce_latency_s)
    tokens = np.array([8192.0])
    bytes_two = allreduce_time(params, two, tokens)[0] - calls * params.allreduce_latency_s
    bytes_eight = allreduce_time(params, eight, tokens)[0] - calls * params.allreduce_latency_s
    assert bytes_eight / bytes_two == pytest.approx((2 * 7 / 8) / (2 * 1 / 2))


def test_grouped_gemm_efficiency_rises_with_rows_per_expert_and_expert_width(cat, params):
    """Per FLOP, routed experts cost more when each touched expert gets few rows (tile fill) and when TP leaves
    each GPU a thin slice of every expert (width = moe_intermediate_size / tp)."""
    from planner.steptime import _expert_compute, expert_fraction, features

    model = cat.model("MiniMaxAI/MiniMax-M2.5")

    def seconds_per_row_flop(tp: int, tokens: float) -> float:
        f = features(model, cat.gpu("B200-180GB"), tp=tp, pp=1, weight_dtype="fp8")
        t = np.array([tokens])
        touched = f.experts * expert_fraction(f, t)
        flops = f.expert_row_flops * t * f.experts_per_token / (f.gpus * f.expert_peak)
        return float(_expert_compute(params, f, t, touched)[0] / flops[0])

    # more rows per touched expert: closer to the full-tile efficiency
    assert seconds_per_row_flop(2, 8192) < seconds_per_row_flop(2, 256) < seconds_per_row_flop(2, 32)
    # a thinner slice of each expert per GPU (TP 8: 192 columns) runs at a lower efficiency than TP 2 (768)
    assert seconds_per_row_flop(8, 8192) > seconds_per_row_flop(2, 8192)
    width = model.moe_intermediate_size
    ratio = (1 + params.moe_half_width / (width / 8)) / (1 + params.moe_half_width / (width / 2))
    assert seconds_per_row_flop(8, 8192) / seconds_per_row_flop(2, 8192) == pytest.approx(ratio, rel=1e-6)


def test_blackwell_gemms_run_at_their_own_share_of_the_datasheet(cat, params):
    """A compute-bound prefill on a Blackwell GPU takes its GEMM time at blackwell_gemm_ratio of Hopper's share; the
    same datasheet figures under another architecture name do not, and a memory-bound decode step barely moves."""
    from planner.steptime import features, step_time

    model = cat.model("llama-3.1-70b")
    b200 = cat.gpu("B200-180GB")
    assert b200.architecture == "blackwell" and cat.gpu("H200-141GB").architecture == "hopper"
    as_hopper = b200.model_copy(update={"architecture": "hopper"})
    zero, one = np.zeros(1), np.ones(1)
    prefill = {}
    for name, gpu in (("blackwell", b200), ("hopper", as_hopper)):
        f = features(model, gpu, tp=2, pp=1, weight_dtype="fp8")
        prefill[name] = step_time(params, f, zero, zero, np.array([8192.0]), np.array([4096.0]))[0]
        decode = step_time(params, f, one, np.array([1024.0]), zero, zero)[0]
        prefill[name + " decode"] = decode
    assert params.blackwell_gemm_ratio < 1
    # GEMMs are most of an 8k-token prefill of a dense 70B model (attention and the weight stream are the rest)
    assert prefill["blackwell"] / prefill["hopper"] > 1 + 0.6 * (1 / params.blackwell_gemm_ratio - 1)
    assert prefill["blackwell decode"] == pytest.approx(prefill["hopper decode"], rel=0.02)


def test_windowed_layers_attend_to_at_most_their_window(cat):
    """gpt-oss-120b alternates 128-token sliding-window layers with full ones (its config.json): a long prompt's
    attention work grows quadratically only in the full layers, and the physics floor counts the same work."""
    from planner.memory import attention_layers
    from planner.steptime import attention_flops, features, physics_floor_ttft

    model = cat.model("openai/gpt-oss-120b")
    full, sliding, window = attention_layers(model)
    assert sliding > 0 and window == 128
    f = features(model, cat.gpu("H200-141GB"), tp=1, pp=1, weight_dtype="mxfp4")
    zero = np.zeros(1)
    for isl in (1024.0, 8192.0):
        prompt = np.array([isl])
        work = attention_flops(f, zero, zero, prompt, prompt / 2)[0]
        per_layer_pair = f.attn_flops[0] / full
        assert work == pytest.approx(per_layer_pair * isl * (full * isl / 2 + sliding * window))
    no_window = features(model.model_copy(update={"attention": model.attention.model_copy(update={"kind": "full"})}),
                         cat.gpu("H200-141GB"), tp=1, pp=1, weight_dtype="mxfp4")
    prompt = np.array([8192.0])
    assert physics_floor_ttft(f, prompt)[0] < physics_floor_ttft(no_window, prompt)[0]


def test_gemm_rates_follow_the_kernels_vllm_picks(cat):
    """The tensor-core rate of each GEMM is that of the activations' format in the kernel vLLM runs: gpt-oss's mxfp4
    experts multiply bf16 activations by default on Hopper and Blackwell (vllm/model_executor/layers/quantization/
    mxfp4.py @ 007d5005: get_mxfp4_backend, get_supported_act_dtypes = [bfloat16]) and its linear layers are
    unquantized; nvfp4 without fp4 tensor cores runs weight-only; fp8 runs on fp8 cores where they exist."""
    from planner.steptime import features, physics_floor_ttft

    def peaks(model: str, gpu: str, dtype: str) -> tuple[float, float, float]:
        g = cat.gpu(gpu)
        f = features(cat.model(model), g, tp=1, pp=1, weight_dtype=dtype)
        return f.dense_peak[0] / 1e12, f.expert_peak[0] / 1e12, g.bf16_tflops

    for gpu in ("H200-141GB", "B200-180GB"):
        dense, experts, bf16 = peaks("openai/gpt-oss-120b", gpu, "mxfp4")
        assert dense == experts == bf16
    dense, experts, _ = peaks("MiniMaxAI/MiniMax-M2.5", "H200-141GB", "fp8")
    assert dense == experts == cat.gpu("H200-141GB").fp8_tflops
    assert peaks("MiniMaxAI/MiniMax-M2.5", "B200-180GB", "nvfp4")[1] == cat.gpu("B200-180GB").fp4_tflops
    dense, experts, bf16 = peaks("MiniMaxAI/MiniMax-M2.5", "H200-141GB", "nvfp4")
    assert dense == experts == bf16
    assert peaks("llama-3.1-70b", "A100-80GB", "fp8")[0] == cat.gpu("A100-80GB").bf16_tflops
    # The physics floor keeps the format's best tensor cores: a bound on any kernel, not on today's.
    f = features(cat.model("openai/gpt-oss-120b"), cat.gpu("B200-180GB"), tp=1, pp=1, weight_dtype="mxfp4")
    assert f.flops[0] == cat.gpu("B200-180GB").fp4_tflops * 1e12 > f.expert_peak[0]
    assert physics_floor_ttft(f, np.array([1024.0]))[0] > 0


def test_set_constants_are_listed_as_assumptions(cat, params):
    """Every constant the fit did not choose is named in the prediction it shaped: the step and per-request
    overheads always, Blackwell's GEMM share on Blackwell GPUs only."""
    q = PredictQuery(model="x", gpu="y", tp=1, isl=512, osl=128, concurrency=4, weight_dtype="fp8")
    on_b200 = predict(q, cat.model("llama-3.1-70b"), cat.gpu("B200-180GB"), params)
    on_h100 = predict(q.model_copy(update={"tp": 2}), cat.model("llama-3.1-70b"), cat.gpu("H100-SXM-80GB"), params)
    for p in (on_b200, on_h100):
        text = " ".join(p.assumptions)
        assert f"{params.request_overhead_s * 1e3:g} ms + {params.request_token_s * 1e6:g} µs per prompt token" in text
        assert f"engine step overhead {params.step_overhead_s * 1e3:g} ms" in text
        assert f"attention at {params.attn_flops_eff:g} of the datasheet bf16 FLOPs" in text
        # the deployment shape the output-path term stands for (servewise renders no --api-server-count)
        assert "one API-server process" in text and f"{params.output_per_stream_s * 1e3:.2f} ms each" in text
    assert any("Blackwell" in a for a in on_b200.assumptions)
    assert not any("Blackwell" in a for a in on_h100.assumptions)


def test_batches_pause_the_cycle_collector_only_while_they_run(cat, params, monkeypatch):
    import gc

    from planner import latency

    seen = []
    real_solve = latency._solve_prepared

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_solve(*args, **kwargs)

    monkeypatch.setattr(latency, "_solve_prepared", spy)
    q = PredictQuery(model="llama-3.1-8b", gpu="H100-SXM-80GB", isl=512, osl=128, concurrency=4)
    item = (q, cat.model(q.model), cat.gpu(q.gpu))
    assert gc.isenabled()
    latency.predict_many([item], params)
    latency.predict_load_sweep(q, [1.0, 2.0], *item[1:], params)
    assert seen == [False, False] and gc.isenabled()
    # A caller that paused the collector itself keeps it paused, and an error inside restores it.
    gc.disable()
    try:
        latency.predict_many([item], params)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(BadInput):
        latency.predict_many([(q.model_copy(update={"tp": 3}), *item[1:])], params)
    assert gc.isenabled()


def test_batch_defaults_are_vllms_for_the_gpu(cat, params):
    """vLLM 0.19.0 vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults (lines 2050-2072 of the released wheel):
    the OpenAI server takes --max-num-seqs 1024 and --max-num-batched-tokens 8192 on GPUs with at least 70 GiB whose
    name lacks "a100", else 256 and 2048 (A100-80GB included: vllm-project/vllm#17885)."""
    from planner.memory import default_max_num_batched_tokens, default_max_num_seqs

    for name, seqs, tokens in (("H100-SXM-80GB", 1024, 8192), ("H200-141GB", 1024, 8192), ("B200-180GB", 1024, 8192),
                               ("MI300X", 1024, 8192), ("A100-80GB", 256, 2048), ("A100-40GB", 256, 2048),
                               ("L40S", 256, 2048), ("L4", 256, 2048)):
        gpu = cat.gpu(name)
        assert (default_max_num_seqs(gpu), default_max_num_batched_tokens(gpu)) == (seqs, tokens), name
    # A Poisson load that keeps about 400 requests decoding on one H100: vLLM's default lets them all run, so the
    # prediction is the one for an explicit 1024, while an explicit 256 cannot keep up with it.
    q = PredictQuery(model="llama-3.1-8b", gpu="H100-SXM-80GB", isl=128, osl=512, qps=30)
    model, gpu = cat.model(q.model), cat.gpu(q.gpu)
    default = predict(q, model, gpu, params)
    assert "max-num-seqs 1024 (vLLM's default on this GPU)" in default.assumptions
    assert default.ttft_ms.mean == predict(q.model_copy(update={"max_num_seqs": 1024}), model, gpu, params).ttft_ms.mean
    assert not default.saturated and 256 < default.request_s * 511 * default.tpot_ms.mean / 1e3 < 1024
    assert predict(q.model_copy(update={"max_num_seqs": 256}), model, gpu, params).saturated


def test_predicting_a_calibration_run_gives_what_the_fit_saw(cat, params, tmp_path):
    """A run's query through `predict` (planner.measured.run_query, as kb accuracy and imported runs use it) and the
    calibration's own view of that run (planner.calibration.build_dataset) agree: same KV capacity, same load. Runs
    of fp8/fp4 checkpoints at 256-512 clients and 8,192-token prompts were once taken at bf16 capacity here, and
    predicted 5-50x their measured TTFT; two published runs that set --async-scheduling on a release where it is
    off by default were predicted without the step it schedules ahead."""
    from planner.measured import run_query, score_runs

    rows = load_benchmarks(open_kb(tmp_path / "kb.sqlite"), engine="vllm")
    data = build_dataset(rows, cat)
    ttft, tpot = predict_means(params, data)
    scored, _ = score_runs([(r, "seed") for r in data.rows], cat, params)
    by_id = {s.id: s for s in scored}
    pairs = [(ttft[i] * 1e3, by_id[r.id].base_ttft_ms, tpot[i] * 1e3, by_id[r.id].base_tpot_ms)
             for i, r in enumerate(data.rows) if r.id in by_id and run_query(r, cat).concurrency]
    assert len(pairs) > 500
    assert max(abs(b / a - 1) for a, b, _, _ in pairs) < 0.05
    assert max(abs(d / c - 1) for _, _, c, d in pairs) < 0.05


def test_attention_computes_at_its_own_measured_share(cat, params):
    """Attention runs at attn_flops_eff of the bf16 datasheet (FlashAttention-3's measured share), not at the GEMMs'
    fitted efficiency: a step's time moves with the one by exactly the attention FLOPs over that rate (memory and
    compute add, overlap 1), and not at all with the other for the same attention work."""
    from planner.steptime import attention_flops, features, step_time

    f = features(cat.model("llama-3.1-70b"), cat.gpu("H100-SXM-80GB"), tp=2, pp=1, weight_dtype="fp8")
    one = np.array([1.0])
    args = (one * 4, one * 8192, one * 2048, one * 4096)  # 4 decodes at 8k context beside a 2k-token prefill chunk
    low, high = params.model_copy(update={"attn_flops_eff": 0.3}), params.model_copy(update={"attn_flops_eff": 0.6})
    flops = attention_flops(f, *args)
    expected = flops / (f.gpus * f.attn_peak) * (1 / 0.3 - 1 / 0.6)
    assert (step_time(low, f, *args) - step_time(high, f, *args)) == pytest.approx(expected, rel=1e-9)
    assert params.attn_flops_eff == 0.6 and params.flops_eff != params.attn_flops_eff


def test_tpot_shares_are_the_kv_reads_and_the_prefill_beside_the_decodes(cat, params):
    """Every prediction states its TPOT by part, the coordinates its TPOT correction uses: a lone client decodes with
    no other prompt beside it, and the KV share grows with the clients and the context."""
    from planner.steptime import features, kv_read_time

    def at(**load):
        q = PredictQuery(model="meta-llama/Llama-3.1-70B-Instruct", gpu="H100-SXM-80GB", tp=4, osl=256,
                         weight_dtype="fp8", **load)
        return q, predict(q, cat.model(q.model), cat.gpu(q.gpu), params)

    q, lone = at(isl=1024, concurrency=1)
    assert lone.tpot_shares.prefill == 0
    # A lone client's TPOT is its decode step: the KV share is that step's KV reads over it.
    f = features(cat.model(q.model), cat.gpu(q.gpu), tp=4, pp=1, weight_dtype="fp8", kv_dtype=q.kv_dtype)
    kv_s = kv_read_time(params, f, np.ones(1), np.array([1024 + 256 / 2]))[0]
    assert lone.tpot_shares.kv_reads == pytest.approx(kv_s / (lone.tpot_ms.mean / 1e3), abs=5e-5)  # stated to 4 places
    _, busy = at(isl=1024, concurrency=32)
    _, long = at(isl=8192, concurrency=32)
    assert lone.tpot_shares.kv_reads < busy.tpot_shares.kv_reads < long.tpot_shares.kv_reads
    # Others' prompts land in a client's decode steps, more tokens of them for longer prompts.
    assert 0 < busy.tpot_shares.prefill < long.tpot_shares.prefill
    assert all(s.tpot_shares.kv_reads + s.tpot_shares.prefill <= 1 for s in (lone, busy, long))


def test_busiest_rank_is_the_expected_maximum_of_normal_draws():
    """busiest_of(n) against the closed forms of the expected maximum of 2 and 3 standard normals, 1/sqrt(pi) and
    3/(2 sqrt(pi)) (e.g. David & Nagaraja, Order Statistics, 3rd ed., 2003, section 3.2), and growing with n."""
    from planner.steptime import busiest_of

    assert busiest_of(1) == 0.0
    assert busiest_of(2) == pytest.approx(1 / np.sqrt(np.pi), rel=1e-6)
    assert busiest_of(3) == pytest.approx(1.5 / np.sqrt(np.pi), rel=1e-6)
    assert busiest_of(2) < busiest_of(4) < busiest_of(8) < busiest_of(64) < np.sqrt(2 * np.log(64))


def test_expert_parallel_waits_for_the_busiest_rank(cat, params):
    """vLLM --enable-expert-parallel without data parallelism (FusedMoEParallelConfig.make, vLLM 0.19.0): each of the
    tp GPUs holds 1/tp of the routed experts whole, and the MoE layer waits for the GPU the routing loads most.
    Checked against uniform routing simulated here."""
    from planner.steptime import _busiest_rank_load, features

    model, gpu = cat.model("openai/gpt-oss-120b"), cat.gpu("H200-141GB")
    tp_feats = features(model, gpu, tp=8, pp=1, weight_dtype="mxfp4")
    assert float(_busiest_rank_load(tp_feats, np.array([4.0]))[0]) == 1.0
    # The busiest of ep ranks under uniform routing of tokens x top-k rows, simulated; the normal approximation
    # runs a few per cent under the binomial's maximum at decode sizes and meets it as the batch grows.
    rng = np.random.default_rng(0)
    for tokens, ep in ((8, 4), (16, 8), (256, 8), (2048, 2)):
        rows = tokens * model.experts_per_token
        simulated = rng.multinomial(rows, [1 / ep] * ep, size=20_000).max(axis=1).mean() / (rows / ep)
        f = features(model, gpu, tp=ep, pp=1, weight_dtype="mxfp4", expert_parallel=True)
        modelled = float(_busiest_rank_load(f, np.array([float(tokens)]))[0])
        assert simulated * 0.94 < modelled <= simulated, (tokens, ep, simulated, modelled)

    def run(expert_parallel: bool, isl: int, clients: int):
        q = PredictQuery(model="openai/gpt-oss-120b", gpu="H200-141GB", tp=8, isl=isl, osl=1024, concurrency=clients,
                         expert_parallel=expert_parallel)
        return predict(q, model, gpu, params)

    # Few clients: the decode step waits for the busiest GPU's experts. A long prompt's many rows spread evenly, so
    # its TTFT moves only by the decode steps it waits for.
    few_ep, few_tp = run(True, 1024, 4), run(False, 1024, 4)
    assert few_ep.tpot_ms.mean / few_tp.tpot_ms.mean > 1.02
    long_ttft = run(True, 8192, 4).ttft_ms.mean / run(False, 8192, 4).ttft_ms.mean
    assert 1.0 <= long_ttft < few_ep.tpot_ms.mean / few_tp.tpot_ms.mean
    assert any("expert parallel" in a for a in few_ep.assumptions)
    # Weights per GPU are the same whichever way the experts are split.
    assert few_ep.memory.weights_gib == few_tp.memory.weights_gib


def test_expert_parallel_decodes_slower_where_runs_were_measured_both_ways(cat, params, tmp_path):
    """AIConfigurator measured MiniMax-M2.5 fp8 on B200 at TP 2 and 4 (vLLM 0.19.0) both ways at the same lengths and
    clients: expert parallel decodes 0-4 % slower (kb/data/benchmarks.jsonl). The stored fit predicts each pair's
    TPOT ratio within 4 points, where the layout taken as TP slices predicted 1 for every pair."""
    rows = load_benchmarks(open_kb(tmp_path / "kb.sqlite"), engine="vllm")
    data = build_dataset([r for r in rows if r.model == "MiniMaxAI/MiniMax-M2.5" and r.engine_version == "0.19.0"
                          and r.gpu == "B200-180GB"], cat)
    ttft, tpot = predict_means(params, data)
    pairs = layout_pairs(data)
    assert len(pairs) >= 8
    for key, ep, tp in pairs:
        measured = np.median(data.tpot[ep]) / np.median(data.tpot[tp])
        predicted = np.median(tpot[ep]) / np.median(tpot[tp])
        assert measured >= 0.995 and predicted > 1.0 and abs(predicted - measured) < 0.04, (key, measured, predicted)


def test_expert_parallel_needs_a_moe_model_on_several_gpus(cat, params):
    for name, tp, words in (("llama-3.1-8b", 2, "is dense"), ("openai/gpt-oss-120b", 1, "needs tp >= 2")):
        q = PredictQuery(model=name, gpu="H100-SXM-80GB", tp=tp, isl=128, osl=128, concurrency=1, expert_parallel=True)
        with pytest.raises(BadInput, match=words):
            predict(q, cat.model(name), cat.gpu("H100-SXM-80GB"), params)


def test_calibration_runs_that_ran_expert_parallel_are_modelled_so(cat, tmp_path):
    """AIConfigurator's rows record the MoE layout (moe_tp, moe_ep); runs with moe_ep = tp are fitted as expert
    parallel (waiting for the busiest GPU), the others as TP."""
    rows = load_benchmarks(open_kb(tmp_path / "kb.sqlite"), engine="vllm")
    data = build_dataset(rows, cat)
    ep_rows = [i for i, r in enumerate(data.rows) if int(r.extra.get("moe_ep") or 1) > 1]
    assert len(ep_rows) >= 40
    for i in ep_rows:
        row = data.rows[i]
        assert row.expert_parallel() and int(row.extra["moe_ep"]) == row.tp
        assert data.features.ep_spread[i] > 0
    assert not data.features.ep_spread[[i for i in range(len(data.rows)) if i not in set(ep_rows)]].any()
