"""GPU memory of one vLLM replica: weights, KV cache per token, activations, overhead, and the fit.

All byte counts follow from the model's config (planner.catalog.ModelArch) and the weight dtype;
every figure that is not from the config is a stated assumption (see ASSUMPTIONS).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from planner.catalog import Gpu, KvDtype, ModelArch, WeightDtype
from planner.contracts import MemoryBreakdown
from planner.errors import BadInput

GIB = 1024**3

# Bytes per parameter including the quantization scales each format stores:
# int4 (AWQ/GPTQ): 4-bit values + one fp16 scale per group of 128;
# nvfp4: 4-bit values + one fp8 scale per 16 (NVIDIA NVFP4 format); mxfp4: 4-bit + one 8-bit
# scale per 32 (OCP Microscaling spec v1.0); fp8_block: fp8 + one fp32 scale per 128x128 block.
_BYTES_PER_PARAM: dict[str, float] = {
    "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp8_block": 1.0 + 4 / (128 * 128), "int8": 1.0,
    "int4": 0.5 + 2 / 128, "nvfp4": 0.5 + 1 / 16, "mxfp4": 0.5 + 1 / 32,
}

# vLLM sizes memory after loading: CUDA context, NCCL buffers, CUDA graphs and allocator slack
# are not weights/KV. Assumption from vLLM startup logs of 8B-70B models ("CUDA graphs: ~0.5-1.5 GiB"),
# plus NCCL buffers per TP peer.
OVERHEAD_BASE_GIB = 1.5
OVERHEAD_PER_TP_PEER_GIB = 0.25
# nvidia-smi reports 81,559 MiB for the "80 GB" H100: datasheet GB are ~GiB; keep 0.5 % for the driver.
_DEVICE_USABLE = 0.995

ASSUMPTIONS = (
    f"runtime overhead {OVERHEAD_BASE_GIB} GiB + {OVERHEAD_PER_TP_PEER_GIB} GiB per TP peer (CUDA context, graphs, NCCL)",
    "activation peak from a forward pass of max-num-batched-tokens (vLLM's memory profiling run)",
    "quantized checkpoints keep embeddings and lm_head in bf16",
)


def weight_bytes_per_param(dtype: WeightDtype) -> float:
    """Bytes each parameter occupies in `dtype`, scales included."""
    return _BYTES_PER_PARAM[dtype]


def kv_dtype_bytes(kv_dtype: KvDtype, weight_dtype: WeightDtype) -> float:
    """Bytes of one KV entry as the step-time model reads it: `auto` is priced at the activation dtype (bf16), as the
    latency fit was (planner.calibration)."""
    return 1.0 if kv_dtype == "fp8" else 2.0


# Weight formats whose checkpoints are taken to hold fp8 KV entries under --kv-cache-dtype auto.
KV_FP8_WEIGHTS: tuple[str, ...] = ("fp8", "fp8_block", "nvfp4")


def kv_capacity_dtype(kv_dtype: KvDtype, weight_dtype: WeightDtype) -> KvDtype:
    """The KV dtype that sets how many tokens the cache holds. vLLM resolves `auto` to the checkpoint's own KV
    quantization where its config names one (vLLM 0.19.0 `vllm/utils/torch_utils.py`
    resolve_kv_cache_dtype_string, called from `engine/arg_utils.py`): NVIDIA's ModelOpt FP8/NVFP4 releases set
    kv_cache_quant_algo FP8. Sweeps of fp8/fp4 checkpoints run that way: the calibration's runs of such
    checkpoints admit as many clients as an fp8 cache holds (31 rows beyond the bf16 capacity show no slot wait; the
    two that wait match fp8's). So `auto` with such weights holds fp8 entries; a checkpoint without a KV quantization
    (compressed-tensors releases, vLLM's on-load --quantization fp8) is asked for with kv_dtype bf16."""
    return "fp8" if kv_dtype == "auto" and weight_dtype in KV_FP8_WEIGHTS else kv_dtype


def deployed_kv_dtype(rendered: KvDtype = "auto") -> KvDtype:
    """The KV dtype a servewise deployment runs with for the --kv-cache-dtype it renders. The checkpoints servewise
    deploys (kb/data/checkpoints.json: compressed-tensors and native fp8 releases, or vLLM's on-load --quantization
    fp8) set no KV quantization, so vLLM's `auto` is bf16 for them (kv_capacity_dtype)."""
    return "bf16" if rendered == "auto" else rendered


@dataclass(frozen=True)
class ParamSplit:
    """A model's parameters by how they are stored and read."""

    embed: float  # input embedding + untied lm_head (vocab x hidden each)
    dense: float  # attention, dense MLPs, shared experts, router: read every step
    expert_each: float  # one routed expert across all MoE layers (0 for dense models)
    experts: int
    experts_per_token: int

    @property
    def total(self) -> float:
        return self.embed + self.dense + self.expert_each * self.experts


def param_split(model: ModelArch) -> ParamSplit:
    """Split params_total/params_active into embeddings, always-read dense part and routed experts.

    For MoE: total = embed + dense + E*e and active = embed + dense + k*e, so e = (total-active)/(E-k).
    """
    embed = model.vocab_size * model.hidden_size * (1 if model.tie_word_embeddings else 2)
    total, active = model.params_total_b * 1e9, model.params_active_b * 1e9
    if not model.is_moe or not model.experts_per_token:
        return ParamSplit(embed, max(total - embed, 0.0), 0.0, 0, 0)
    e, k = model.num_experts, model.experts_per_token
    each = max(total - active, 0.0) / (e - k)
    return ParamSplit(embed, max(active - embed - k * each, 0.0), each, e, k)


def stored_bytes_per_param(model: ModelArch, dtype: WeightDtype) -> tuple[float, float]:
    """(bytes per param of dense/attention weights, of routed experts)."""
    q = weight_bytes_per_param(dtype)
    # Native expert-only formats: gpt-oss ships mxfp4 experts, Kimi-K2.5 int4 routed experts; the
    # attention and dense weights of those checkpoints stay bf16 (their HF configs' quantization_config).
    if dtype == model.native_dtype and dtype in ("mxfp4", "int4") and model.is_moe:
        return 2.0, q
    return q, q


def weight_bytes(model: ModelArch, dtype: WeightDtype) -> float:
    """Bytes of all weights of one replica (before sharding)."""
    split = param_split(model)
    dense_b, expert_b = stored_bytes_per_param(model, dtype)
    return split.embed * 2.0 + split.dense * dense_b + split.expert_each * split.experts * expert_b


def weight_bytes_read_per_step(model: ModelArch, dtype: WeightDtype, batch_tokens: float) -> float:
    """Weight bytes a decode step streams from memory for `batch_tokens` tokens (whole replica).

    Dense weights are read once per step; of the routed experts only those some token picked are read:
    E[distinct experts] = E * (1 - (1 - k/E)^B) per layer for B tokens routed independently.
    The lm_head is read, the input embedding is a gather (negligible).
    """
    split = param_split(model)
    dense_b, expert_b = stored_bytes_per_param(model, dtype)
    lm_head = model.vocab_size * model.hidden_size * 2.0
    read = lm_head + split.dense * dense_b
    if split.experts:
        touched = split.experts * (1 - (1 - split.experts_per_token / split.experts) ** max(batch_tokens, 1.0))
        read += touched * split.expert_each * expert_b
    return read


def kv_heads_per_gpu(model: ModelArch, tp: int) -> float:
    """vLLM replicates KV heads when TP exceeds their number."""
    return max(model.num_key_value_heads / tp, 1.0)


def kv_bytes_per_token_layer(model: ModelArch, tp: int, kv_bytes: float) -> float:
    """KV bytes one token adds to one attention layer, summed over the TP ranks (replicas included)."""
    att = model.attention
    if att.kind == "mla":
        # MLA caches the compressed latent plus the rope key; vLLM keeps a full copy on every TP rank.
        return (att.kv_lora_rank + att.qk_rope_head_dim) * kv_bytes * tp
    return 2 * kv_heads_per_gpu(model, tp) * tp * model.head_dim * kv_bytes


def attention_layers(model: ModelArch) -> tuple[int, int, int | None]:
    """(layers whose KV grows with context, layers capped at a window, the window)."""
    att = model.attention
    if att.kind == "sliding_window" and att.window:
        sliding = att.num_sliding_layers
        if sliding is None:
            sliding = _sliding_from_pattern(model)
        return model.num_layers - sliding, sliding, att.window
    if att.kind == "hybrid_linear" and att.full_attention_layers:
        # Linear-attention layers keep a constant-size state, not a growing cache.
        return len(att.full_attention_layers), 0, None
    return model.num_layers, 0, None


def _sliding_from_pattern(model: ModelArch) -> int:
    pattern = (getattr(model.attention, "sliding_layers", "") or "").lower()
    if "5 local" in pattern:  # gemma-3: 5 sliding : 1 global
        return model.num_layers - model.num_layers // 6
    return model.num_layers // 2  # alternating local/global (gemma-2, gpt-oss)


def kv_bytes_per_sequence(model: ModelArch, tp: int, context: float, kv_dtype: KvDtype = "auto",
                          weight_dtype: WeightDtype = "bf16") -> float:
    """KV-cache bytes one sequence of `context` tokens holds across the replica."""
    per_layer = kv_bytes_per_token_layer(model, tp, kv_dtype_bytes(kv_dtype, weight_dtype))
    full, sliding, window = attention_layers(model)
    capped = min(context, window) if window else context
    return per_layer * (full * context + sliding * capped)


def kv_bytes_per_token(model: ModelArch, tp: int, kv_dtype: KvDtype = "auto") -> float:
    """KV bytes per token of context for layers that grow without bound (what a long context costs)."""
    full, _, _ = attention_layers(model)
    return kv_bytes_per_token_layer(model, tp, kv_dtype_bytes(kv_dtype, "bf16")) * full


def activation_bytes(model: ModelArch, tp: int, max_num_batched_tokens: int, max_num_seqs: int) -> float:
    """Peak activation memory of vLLM's profiling forward pass, per GPU.

    Per token: residual + attention/QKV buffers (~6 x hidden) and the MLP's gate/up output
    (2 x intermediate / tp), in bf16; plus fp32 logits for the sampled sequences.
    """
    inter = model.moe_intermediate_size * (model.experts_per_token or 1) if model.is_moe else (model.intermediate_size or 4 * model.hidden_size)
    per_token = (6 * model.hidden_size + 2 * inter / tp) * 2.0
    logits = max_num_seqs * model.vocab_size * 4.0 / tp
    return max_num_batched_tokens * per_token + logits


# vLLM 0.19.0's batch defaults for the OpenAI server (`vllm/engine/arg_utils.py`, EngineArgs.get_batch_defaults,
# line 2053 of the released wheel; vendored by gitops/vllm_facts/extract.py as `batch_defaults`, and a test keeps
# these equal to it): GPUs of at least LARGE_BATCH_MIN_GIB whose device name lacks every LARGE_BATCH_NAME_EXCLUDES
# take the large defaults. A100-80GB keeps the small ones: larger batches cost it throughput (vllm-project/vllm#17885).
LARGE_BATCH_MIN_GIB = 70
LARGE_BATCH_NAME_EXCLUDES: tuple[str, ...] = ("a100",)
LARGE_BATCH_DEFAULTS = {"max_num_seqs": 1024, "max_num_batched_tokens": 8192}
OTHER_BATCH_DEFAULTS = {"max_num_seqs": 256, "max_num_batched_tokens": 2048}


def _batch_defaults(gpu: Gpu) -> dict[str, int]:
    return _batch_defaults_for(gpu.name.lower(), gpu.memory_gb)


@cache  # asked twice per query of a 10,000-query batch, of a handful of GPUs
def _batch_defaults_for(name: str, memory_gb: float) -> dict[str, int]:
    large = memory_gb >= LARGE_BATCH_MIN_GIB and not any(x in name for x in LARGE_BATCH_NAME_EXCLUDES)
    return LARGE_BATCH_DEFAULTS if large else OTHER_BATCH_DEFAULTS


def default_max_num_batched_tokens(gpu: Gpu) -> int:
    """vLLM's --max-num-batched-tokens default for the OpenAI server on this GPU: 8192 on large GPUs, else 2048."""
    return _batch_defaults(gpu)["max_num_batched_tokens"]


def default_max_num_seqs(gpu: Gpu) -> int:
    """vLLM's --max-num-seqs default for the OpenAI server on this GPU: 1024 on large GPUs, else 256."""
    return _batch_defaults(gpu)["max_num_seqs"]


def memory_fit(model: ModelArch, gpu: Gpu, *, tp: int, pp: int = 1, weight_dtype: WeightDtype,
               kv_dtype: KvDtype = "auto", gpu_memory_utilization: float = 0.9, context_tokens: int,
               max_num_seqs: int = 256, max_num_batched_tokens: int | None = None) -> MemoryBreakdown:
    """Per-GPU memory of one replica and the KV-cache capacity it leaves; `fits` when at least one
    sequence of `context_tokens` fits in the KV cache (vLLM refuses to start otherwise)."""
    if tp < 1 or pp < 1:
        raise BadInput(f"tp and pp must be >= 1 (got tp={tp}, pp={pp})")
    if context_tokens < 1:
        raise BadInput(f"context must be at least 1 token (got {context_tokens})")
    gpus = tp * pp
    mnbt = max_num_batched_tokens or default_max_num_batched_tokens(gpu)
    total_gib = gpu.memory_gb * _DEVICE_USABLE
    usable_gib = total_gib * gpu_memory_utilization
    weights_gib = weight_bytes(model, weight_dtype) / gpus / GIB
    act_gib = activation_bytes(model, tp, mnbt, max_num_seqs) / GIB
    overhead_gib = OVERHEAD_BASE_GIB + OVERHEAD_PER_TP_PEER_GIB * (tp - 1)
    kv_gib = usable_gib - weights_gib - act_gib - overhead_gib
    per_seq_total = kv_bytes_per_sequence(model, tp, context_tokens, kv_capacity_dtype(kv_dtype, weight_dtype), weight_dtype)
    per_token_total = per_seq_total / context_tokens
    kv_total_bytes = max(kv_gib, 0.0) * GIB * gpus  # summed over the replica's GPUs
    kv_tokens = int(kv_total_bytes / per_token_total) if per_token_total else 0
    max_batch = int(kv_total_bytes // per_seq_total) if per_seq_total else 0
    fits = kv_gib > 0 and max_batch >= 1
    if weights_gib > usable_gib:
        reason = (f"weights need {weights_gib:.1f} GiB per GPU but only {usable_gib:.1f} GiB is usable "
                  f"({gpu.memory_gb:g} GB x {gpu_memory_utilization}); use more GPUs (TP/PP) or a smaller dtype")
    elif not fits:
        reason = (f"after weights ({weights_gib:.1f} GiB), activations ({act_gib:.1f} GiB) and overhead ({overhead_gib:.1f} GiB) "
                  f"the KV cache cannot hold one {context_tokens}-token sequence")
    else:
        reason = (f"fits: {max(kv_gib, 0):.1f} GiB KV cache per GPU holds {kv_tokens:,} tokens, "
                  f"{max_batch} sequences of {context_tokens} tokens")
    return MemoryBreakdown(
        gpu_memory_gib=round(total_gib, 3), usable_gib=round(usable_gib, 3), weights_gib=round(weights_gib, 3),
        activations_gib=round(act_gib, 3), overhead_gib=round(overhead_gib, 3), kv_cache_gib=round(max(kv_gib, 0.0), 3),
        kv_bytes_per_token=round(per_token_total, 1), kv_cache_tokens=kv_tokens, max_batch_at_context=max_batch,
        fits=fits, reason=reason,
    )
