"""A Hugging Face `config.json` (already parsed) to the architecture facts servewise plans with.

Pure: the caller reads the file, the local cache or the Hub (kb.add_model) and hands the dict in.
Parameter counts are computed from the shapes (embeddings, attention, MLP or experts, router; norms and
biases ignored, as for every catalog entry), so memory follows from the config alone.

Supported: dense decoders (MHA/GQA, sliding-window and alternating local/global attention, chunked local
attention), mixture-of-experts (routed top-k, shared experts, leading dense layers, interleaved MoE layers),
multi-head latent attention (DeepSeek-style MLA), hybrid linear attention (Gated DeltaNet layers beside full
attention), and the checkpoint's weight format from `quantization_config`. Anything else is a BadInput that
names the field servewise cannot interpret.
"""

from __future__ import annotations

from typing import Any

from planner.catalog import ModelArch, WeightDtype
from planner.errors import BadInput

# Layer kinds that keep a recurrent state or convolution instead of a KV cache, which servewise does not model.
_UNSUPPORTED_LAYER_FIELDS = {
    "hybrid_override_pattern": "Mamba/attention hybrid layers",
    "mamba_d_ssm": "Mamba state-space layers",
    "ssm_cfg": "state-space layers",
    "attn_layer_indices": "Mamba/attention hybrid layers",
    "block_types": "heterogeneous recurrent blocks",
    "block_configs": "per-layer heterogeneous blocks (Nemotron NAS)",
}
_ENCODER_DECODER = ("is_encoder_decoder", "decoder_start_token_id")
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp16", "float": "fp16"}
# Families whose config class defaults tie_word_embeddings to true when the file omits it.
_TIED_BY_DEFAULT = ("gemma",)
# Defaults of config classes whose published config.json files leave fields out: the Gemma 3 4B/12B/27B repos
# give a text_config with only the values that differ from Gemma3TextConfig's, so vocab_size and the context come
# from the class (transformers src/transformers/models/gemma3/configuration_gemma3.py@008f5c8c29be84d4721dc6d1e0fcd7
# 2300580be4, Gemma3TextConfig.__init__).
_CLASS_DEFAULTS = {
    "gemma3_text": {"vocab_size": 262_208, "max_position_embeddings": 131_072, "head_dim": 256,
                    "sliding_window": 4096, "sliding_window_pattern": 6},
}


def _text(cfg: dict[str, Any]) -> dict[str, Any]:
    """Multimodal and wrapper configs nest the language model under text_config / llm_config."""
    for key in ("text_config", "llm_config", "language_config"):
        inner = cfg.get(key)
        if isinstance(inner, dict) and "hidden_size" in inner:
            return {**{k: v for k, v in cfg.items() if k not in ("text_config", "vision_config")}, **inner}
    return cfg


def _need(cfg: dict[str, Any], field: str) -> Any:
    value = cfg.get(field)
    if value is None:
        raise BadInput(f"config.json has no '{field}': servewise needs it to size the model")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BadInput(f"config.json field '{field}' must be a positive number (got {value!r})")
    return value


def _int(cfg: dict[str, Any], *fields: str, default: int | None = None) -> int | None:
    for f in fields:
        v = cfg.get(f)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return default


def weight_format(cfg: dict[str, Any]) -> tuple[WeightDtype, str | None]:
    """(servewise weight dtype, a note) from quantization_config, else the torch dtype of the checkpoint."""
    q = cfg.get("quantization_config") or cfg.get("compression_config")
    if isinstance(q, dict) and q:
        method = str(q.get("quant_method") or q.get("quant_algo") or "").lower()
        bits = q.get("bits") or q.get("w_bit")
        if method == "fp8":
            return ("fp8_block", "fp8 (block-wise, from quantization_config)") if q.get("weight_block_size") else ("fp8", None)
        if method == "mxfp4":
            return "mxfp4", "mxfp4 experts (quantization_config)"
        if method in ("awq", "gptq", "awq_marlin", "gptq_marlin", "autoround", "auto-round"):
            if bits in (4, 8):
                return ("int4" if bits == 4 else "int8"), f"{method} {bits}-bit (quantization_config)"
            raise BadInput(f"quantization_config.bits={bits!r} for {method}: servewise models 4- and 8-bit weights")
        if method in ("modelopt", "nvfp4", "fp4"):
            algo = str(q.get("quant_algo", method)).upper()
            if "FP4" in algo:
                return "nvfp4", "NVFP4 (quantization_config)"
            if "FP8" in algo:
                return "fp8", "FP8 (quantization_config)"
        if method == "compressed-tensors":
            fmt = str(q.get("format", "")).lower()
            if "nvfp4" in fmt:
                return "nvfp4", "NVFP4 (compressed-tensors)"
            groups = q.get("config_groups") or {}
            weights = next((g.get("weights") for g in groups.values() if isinstance(g, dict) and g.get("weights")), None)
            if isinstance(weights, dict):
                nb, kind = weights.get("num_bits"), str(weights.get("type", "")).lower()
                if nb == 8:
                    return ("fp8" if kind == "float" else "int8"), f"compressed-tensors {kind}{nb}"
                if nb == 4:
                    return ("nvfp4" if kind == "float" else "int4"), f"compressed-tensors {kind}{nb}"
            raise BadInput("quantization_config (compressed-tensors) has no weights.num_bits servewise can read")
        if method == "bitsandbytes":
            return ("int4" if q.get("load_in_4bit") else "int8"), "bitsandbytes (quantization_config)"
        raise BadInput(f"quantization_config.quant_method={method or None!r} is not a weight format servewise knows "
                       "(fp8, mxfp4, awq, gptq, modelopt, compressed-tensors, bitsandbytes)")
    raw = cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"
    dtype = _DTYPES.get(str(raw).replace("torch.", ""))
    if dtype is None:
        raise BadInput(f"config.json torch_dtype={raw!r}: servewise knows bfloat16, float16 and float32")
    return dtype, ("float32 checkpoint, served in fp16 (vLLM's dtype=auto)" if "32" in str(raw) or raw == "float" else None)


def _attention_params(c: dict[str, Any], hidden: int, heads: int, kv_heads: int, head_dim: int) -> tuple[float, dict]:
    """Parameters of one attention layer and the attention description (MLA or MHA/GQA)."""
    if c.get("kv_lora_rank"):
        rank = _need(c, "kv_lora_rank")
        rope = _need(c, "qk_rope_head_dim")
        nope = _int(c, "qk_nope_head_dim", default=0)
        v_dim = _int(c, "v_head_dim", default=nope)
        q_rank = _int(c, "q_lora_rank")
        q = hidden * q_rank + q_rank * heads * (nope + rope) if q_rank else hidden * heads * (nope + rope)
        params = q + hidden * (rank + rope) + rank * heads * (nope + v_dim) + heads * v_dim * hidden
        att = {"kind": "mla", "kv_lora_rank": rank, "qk_rope_head_dim": rope, "q_lora_rank": q_rank,
               "qk_nope_head_dim": nope, "v_head_dim": v_dim}
        return params, att
    params = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden
    return params, {"kind": "mha" if kv_heads == heads else "gqa"}


def _linear_attention_params(c: dict[str, Any], hidden: int) -> float:
    """Gated DeltaNet layer (Qwen3-Next / Qwen3.5): q, k, v, z and output projections plus the a/b gates."""
    nk, dk = _int(c, "linear_num_key_heads", default=0), _int(c, "linear_key_head_dim", default=0)
    nv, dv = _int(c, "linear_num_value_heads", default=0), _int(c, "linear_value_head_dim", default=0)
    if not (nk and dk and nv and dv):
        raise BadInput("config.json has linear_attention layers but no linear_num_key_heads / linear_key_head_dim / "
                       "linear_num_value_heads / linear_value_head_dim")
    return hidden * (2 * nk * dk + 2 * nv * dv) + nv * dv * hidden + 2 * hidden * nv


def _window_layers(c: dict[str, Any], layers: int, model_type: str) -> tuple[int | None, int, str]:
    """(window, layers that use it, how) of sliding-window / chunked attention; (None, 0, '') when none."""
    types = c.get("layer_types")
    window = _int(c, "sliding_window", "attention_chunk_size")
    if isinstance(types, list) and types and window:
        n = sum(1 for t in types if "sliding" in str(t) or "chunk" in str(t) or "local" in str(t))
        if n:
            return window, n, f"{n} of {layers} layers windowed (config.json layer_types)"
    if c.get("attention_chunk_size"):
        no_rope = c.get("no_rope_layers")
        n = sum(1 for x in no_rope if x) if isinstance(no_rope, list) and no_rope else layers - layers // 4
        return c["attention_chunk_size"], n, (f"{n} of {layers} layers use chunked local attention of "
                                              f"{c['attention_chunk_size']} tokens (attention_chunk_size)")
    if not window or c.get("use_sliding_window") is False:
        return None, 0, ""
    if window >= _int(c, "max_position_embeddings", default=0):
        return None, 0, ""
    if model_type.startswith("gemma2"):
        return window, layers // 2, "alternating local/global layers (Gemma 2)"
    pattern = _int(c, "sliding_window_pattern")
    if model_type.startswith("gemma3") or pattern:
        p = pattern or 6
        return window, layers - layers // p, f"{p - 1} local (sliding) : 1 global, every {p}th layer global"
    return window, layers, "every layer uses the sliding window"


def arch_from_config(cfg: dict[str, Any], *, hf_id: str, source: str, license: str = "unknown",
                     open_weights: bool = True) -> ModelArch:
    """The ModelArch of a config.json; BadInput naming the field when servewise cannot model it."""
    if not isinstance(cfg, dict):
        raise BadInput("config.json must hold a JSON object")
    for field, what in _UNSUPPORTED_LAYER_FIELDS.items():
        if cfg.get(field) or (isinstance(cfg.get("text_config"), dict) and cfg["text_config"].get(field)):
            raise BadInput(f"unsupported architecture: config.json field '{field}' ({what}); servewise models "
                           "attention decoders (dense, MoE, MLA, sliding-window, Gated DeltaNet hybrids)")
    if any(cfg.get(f) for f in _ENCODER_DECODER):
        raise BadInput("unsupported architecture: config.json field 'is_encoder_decoder' is true; servewise "
                       "models decoder-only LLMs")
    c = _text(cfg)
    model_type = str(c.get("model_type") or cfg.get("model_type") or "")
    if not model_type:
        raise BadInput("config.json has no 'model_type': servewise needs it to read the architecture")
    c = {**_CLASS_DEFAULTS.get(model_type, {}), **{k: v for k, v in c.items() if v is not None}}
    hidden = _need(c, "hidden_size")
    layers = _need(c, "num_hidden_layers")
    heads = _need(c, "num_attention_heads")
    vocab = _need(c, "vocab_size")
    context = _int(c, "max_position_embeddings", "max_sequence_length", "seq_length")
    if not context:
        raise BadInput("config.json has no 'max_position_embeddings': servewise needs the context length")
    kv_heads = _int(c, "num_key_value_heads", default=heads)
    if heads % kv_heads:
        raise BadInput(f"config.json num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    head_dim = _int(c, "head_dim", default=hidden // heads)
    tied = c.get("tie_word_embeddings", cfg.get("tie_word_embeddings"))
    if tied is None:
        tied = model_type.startswith(_TIED_BY_DEFAULT)
    dtype, dtype_note = weight_format(c)

    att_params, attention = _attention_params(c, hidden, heads, kv_heads, head_dim)
    types = c.get("layer_types") if isinstance(c.get("layer_types"), list) else []
    linear = [i for i, t in enumerate(types) if "linear" in str(t)]
    full_layers = layers - len(linear)
    attn_total = att_params * full_layers + (_linear_attention_params(c, hidden) * len(linear) if linear else 0.0)
    if linear:
        attention = {"kind": "hybrid_linear", "full_attention_layers": [i for i in range(layers) if i not in linear],
                     "pattern": f"{full_layers} full-attention layers; {len(linear)} Gated DeltaNet (linear) layers "
                                "keep a fixed-size state, no growing KV cache (config.json layer_types)"}
    elif attention["kind"] != "mla":
        window, n_windowed, how = _window_layers(c, layers, model_type)
        if window:
            attention = {"kind": "sliding_window", "base": attention["kind"], "window": window,
                         "num_sliding_layers": n_windowed, "sliding_layers": how}
    if c.get("use_qk_norm") and str(c.get("qk_norm_type", "")).lower() == "per_layer":
        attention["qk_norm"] = "across_heads"

    # MLP / experts: gated (SwiGLU/GeGLU) projections, 3 matrices of hidden x intermediate.
    experts = _int(c, "num_local_experts", "num_experts", "n_routed_experts")
    top_k = _int(c, "num_experts_per_tok", "moe_topk", "top_k")
    inter = _int(c, "intermediate_size", "ffn_hidden_size")
    # Llama 4 names the expert width intermediate_size and the dense layers' width intermediate_size_mlp.
    expert_inter = _int(c, "moe_intermediate_size", "expert_intermediate_size", default=inter if experts else None)
    if experts and experts > 1:
        if not top_k:
            raise BadInput("config.json has experts but no 'num_experts_per_tok': servewise needs the routing top-k")
        if not expert_inter:
            raise BadInput("config.json has experts but no 'moe_intermediate_size' or 'intermediate_size'")
        shared_n = _int(c, "n_shared_experts", "num_shared_experts", default=0)
        shared_inter = _int(c, "shared_expert_intermediate_size", default=0)
        if model_type.startswith("llama4"):
            shared_n, shared_inter = 1, _int(c, "intermediate_size", default=expert_inter)
        shared = 3 * hidden * (shared_inter or shared_n * expert_inter) if (shared_inter or shared_n) else 0.0
        dense_first = _int(c, "first_k_dense_replace", "first_k_dense_layers", default=0)
        step = _int(c, "interleave_moe_layer_step", "decoder_sparse_step", "moe_layer_freq", default=1)
        mlp_only = c.get("mlp_only_layers") if isinstance(c.get("mlp_only_layers"), list) else []
        moe_layers = [i for i in range(layers) if i >= dense_first and (i + 1) % step == 0 and i not in mlp_only]
        n_moe = len(moe_layers)
        dense_inter = _int(c, "intermediate_size_mlp", "intermediate_size", default=expert_inter)
        dense_mlp = 3 * hidden * dense_inter * (layers - n_moe)
        one_expert = 3 * hidden * expert_inter
        router = hidden * experts * n_moe
        fixed = attn_total + dense_mlp + (shared + 0.0) * n_moe + router
        embed = vocab * hidden * (1 if tied else 2)
        total = embed + fixed + one_expert * experts * n_moe
        active = embed + fixed + one_expert * top_k * n_moe
        moe = {"num_experts": experts, "experts_per_token": top_k, "moe_intermediate_size": expert_inter,
               "num_shared_experts": (shared_n or (1 if shared_inter else 0)) or None,
               "first_k_dense_layers": dense_first or None, "intermediate_size": dense_inter}
    else:
        inter = _int(c, "intermediate_size_mlp", default=inter)
        if not inter:
            raise BadInput("config.json has no 'intermediate_size': servewise needs the MLP width")
        embed = vocab * hidden * (1 if tied else 2)
        total = active = embed + attn_total + 3 * hidden * inter * layers
        moe = {"intermediate_size": inter}
    arch_name = model_type.removesuffix("_text") if model_type.endswith("_text") and "qwen3_5" not in model_type else model_type
    return ModelArch.model_validate({
        "hf_id": hf_id, "aliases": [], "architecture": arch_name,
        "params_total_b": round(total / 1e9, 2), "params_active_b": round(active / 1e9, 2),
        "num_layers": layers, "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "head_dim": attention.get("qk_nope_head_dim", 0) + attention.get("qk_rope_head_dim", 0)
        if attention["kind"] == "mla" else head_dim,
        "vocab_size": vocab, "max_position_embeddings": context, "tie_word_embeddings": bool(tied),
        "native_dtype": dtype, "native_dtype_note": dtype_note, "license": license, "open_weights": open_weights,
        "attention": attention, "source": source, "verified": True,
        "notes": "computed from config (embeddings+attention+MLP/experts+router; norms/biases ignored)",
        **{k: v for k, v in moe.items() if v is not None},
    })
