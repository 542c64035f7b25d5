"""Memory model against facts computed by hand from the models' configs."""

from __future__ import annotations

import pytest

from planner.memory import (
    GIB,
    kv_bytes_per_sequence,
    memory_fit,
    weight_bytes,
    weight_bytes_per_param,
)


def test_gqa_kv_bytes_match_config(cat):
    m = cat.model("llama-3.1-8b")
    # 2 (K and V) x 8 KV heads x 128 head_dim x 32 layers x 2 bytes = 131,072 B/token (and the seed's own figure)
    assert kv_bytes_per_sequence(m, 1, 1) == 2 * 8 * 128 * 32 * 2 == m.kv_bytes_per_token_bf16
    assert kv_bytes_per_sequence(m, 1, 1, kv_dtype="fp8") == 2 * 8 * 128 * 32


def test_kv_heads_replicate_beyond_their_number(cat):
    m = cat.model("llama-3.1-8b")  # 8 KV heads: TP 16 keeps one head per GPU, so 16 copies-worth in total
    assert kv_bytes_per_sequence(m, 16, 1) == 2 * kv_bytes_per_sequence(m, 8, 1)


def test_mla_caches_the_latent_on_every_rank(cat):
    m = cat.model("deepseek-ai/DeepSeek-V3")
    per_rank = (512 + 64) * 61 * 2  # (kv_lora_rank + qk_rope_head_dim) x layers x bf16
    assert kv_bytes_per_sequence(m, 1, 1) == per_rank == m.kv_bytes_per_token_bf16
    assert kv_bytes_per_sequence(m, 8, 1) == 8 * per_rank


def test_sliding_window_layers_stop_growing(cat):
    m = cat.model("google/gemma-2-9b-it")  # window 4096, half the layers sliding
    short, long = kv_bytes_per_sequence(m, 1, 4096), kv_bytes_per_sequence(m, 1, 8192)
    per_layer = 2 * m.num_key_value_heads * m.head_dim * 2
    assert long - short == per_layer * (m.num_layers // 2) * 4096


def test_hybrid_linear_only_full_layers_grow(cat):
    m = cat.model("Qwen/Qwen3.5-397B-A17B")
    per_layer = 2 * m.num_key_value_heads * m.head_dim * 2
    assert kv_bytes_per_sequence(m, 1, 1000) == per_layer * 15 * 1000


def test_weight_bytes_by_dtype(cat):
    m = cat.model("llama-3.1-8b")
    assert weight_bytes(m, "bf16") == pytest.approx(m.params_total_b * 1e9 * 2, rel=1e-6)
    assert weight_bytes(m, "fp8") < weight_bytes(m, "bf16") * 0.6
    assert weight_bytes_per_param("int4") > 0.5 and weight_bytes_per_param("nvfp4") > weight_bytes_per_param("mxfp4")
    oss = cat.model("openai/gpt-oss-120b")  # native mxfp4 covers the experts only: ~61 GiB checkpoint
    assert 55 < weight_bytes(oss, "mxfp4") / GIB < 70


def test_fit_verdicts(cat):
    big = memory_fit(cat.model("llama-3.1-70b"), cat.gpu("l4"), tp=1, weight_dtype="bf16", context_tokens=2048)
    assert not big.fits and "weights need" in big.reason
    ok = memory_fit(cat.model("llama-3.1-8b"), cat.gpu("l4"), tp=1, weight_dtype="bf16", context_tokens=2048)
    assert ok.fits and ok.max_batch_at_context >= 1
    assert ok.weights_gib + ok.activations_gib + ok.overhead_gib + ok.kv_cache_gib == pytest.approx(ok.usable_gib, abs=0.01)
    more_tp = memory_fit(cat.model("llama-3.1-70b"), cat.gpu("h100"), tp=4, weight_dtype="fp8", context_tokens=2048)
    less_tp = memory_fit(cat.model("llama-3.1-70b"), cat.gpu("h100"), tp=2, weight_dtype="fp8", context_tokens=2048)
    assert more_tp.weights_gib < less_tp.weights_gib and more_tp.kv_cache_tokens > less_tp.kv_cache_tokens


def test_auto_kv_of_an_fp8_or_fp4_checkpoint_holds_fp8_entries(cat):
    """vLLM 0.19.0 resolves --kv-cache-dtype auto to the checkpoint's kv_cache_quant_algo (vllm/utils/torch_utils.py
    resolve_kv_cache_dtype_string): ModelOpt FP8/NVFP4 releases set FP8, and the calibration sweeps of fp8/fp4
    checkpoints admit fp8's capacity. bf16 names a checkpoint without a KV quantization; gpt-oss's mxfp4 release sets
    none (its config has no kv_cache_quant_algo), nor does a bf16 model."""
    from planner.memory import kv_capacity_dtype, memory_fit

    m, g = cat.model("llama-3.1-70b"), cat.gpu("H200-141GB")
    tokens = {kv: memory_fit(m, g, tp=2, weight_dtype="fp8", kv_dtype=kv, context_tokens=9216).kv_cache_tokens
              for kv in ("auto", "fp8", "bf16")}
    assert tokens["auto"] == tokens["fp8"] and tokens["bf16"] == pytest.approx(tokens["fp8"] / 2, abs=2)
    assert [kv_capacity_dtype("auto", w) for w in ("fp8", "fp8_block", "nvfp4", "mxfp4", "int4", "bf16")] == \
        ["fp8", "fp8", "fp8", "auto", "auto", "auto"]
    assert kv_capacity_dtype("bf16", "fp8") == "bf16"
