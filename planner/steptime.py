"""Time of one vLLM engine step from physics: bytes streamed, FLOPs computed, TP all-reduces, overheads.

A configuration (model x GPU x dtype x TP x PP) is reduced to a handful of per-replica numbers
(`StepFeatures`, numpy arrays so thousands of configurations are evaluated at once). The fitted
`LatencyParams` say how much of the datasheet peaks vLLM achieves and what a step costs in fixed
overheads; they carry physical meaning so they transfer to GPUs with no measured runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cache

import numpy as np
from pydantic import BaseModel, Field

from planner.catalog import LOW_FLOAT_DTYPES, Gpu, KvDtype, ModelArch, WeightDtype
from planner.memory import (
    attention_layers,
    kv_bytes_per_token_layer,
    kv_dtype_bytes,
    param_split,
    stored_bytes_per_param,
)


class LatencyParams(BaseModel):
    """Fitted parameters of the step-time model, with where they came from."""

    bw_eff: float = Field(0.75, description="achieved / datasheet memory bandwidth (weights and KV streaming)")
    flops_eff: float = Field(0.55, description="achieved / datasheet tensor FLOPs in dense GEMMs")
    attn_flops_eff: float = Field(0.6, description="achieved / datasheet bf16 tensor FLOPs of attention. Set, not fitted, "
                                  "from measurements of the kernel: FlashAttention-3's forward pass on H100 at head "
                                  "dimension 128 runs 517 / 566 / 614 TFLOP/s at 1k / 2k / 8k tokens (pytorch/benchmark "
                                  "#2391, batch x tokens = 16k), 52-62 % of the 989 TFLOP/s datasheet, 75 % at its best "
                                  "shape (Shah et al. 2024, arXiv:2407.08608). Sharing the GEMMs' efficiency (fitted at "
                                  "0.95) instead predicts held-out families 14.6 / 9.3 / 9.5 % against 14.4 / 9.0 / 9.5 % "
                                  "(benchmarks/accuracy.py)")
    blackwell_gemm_ratio: float = Field(0.6, description="share of the datasheet tensor FLOPs vLLM's GEMMs reach on "
                                        "Blackwell GPUs relative to other architectures (flops_eff and moe_flops_eff are "
                                        "those of Hopper, whose kernels have had longer to mature, and whose half-size "
                                        "tensor cores lose less to the fixed work of each tile). Under one efficiency for "
                                        "all, Llama-3.1-70B fp8's TTFT (one campaign, one dense model) is predicted 14 % "
                                        "too fast on B200 and 13-22 % too slow on H200/H100. Set, not fitted (fitted "
                                        "freely it reaches 0.57 and pushes both efficiencies to their bound): of "
                                        "1/0.8/0.7/0.6/0.5, 0.6-0.8 predict held-out families within 0.4 points of each "
                                        "other and better than 1 or 0.5; 0.6, the nearest to the free fit, predicts "
                                        "TTFT best of them (benchmarks/accuracy.py)")
    moe_flops_eff: float = Field(0.5, description="achieved / datasheet tensor FLOPs of routed-expert (grouped) GEMMs "
                                 "with many rows per expert and wide experts")
    moe_half_rows: float = Field(16.0, description="rows (tokens) per touched expert at which a grouped GEMM reaches half "
                                 "its efficiency: below it tile fill and per-tile fixed work (loading the expert's weight "
                                 "tiles and scales, the epilogue) dominate")
    moe_half_width: float = Field(256.0, description="expert intermediate size per GPU (moe_intermediate_size / tp) at "
                                  "which a grouped GEMM reaches half its efficiency: thin experts give each tile a short "
                                  "reduction (down projection) and few output columns (gate/up), so per-tile fixed work "
                                  "dominates")
    overlap: float = Field(1.0, description="share of the smaller of an operation's memory and compute time not hidden. "
                           "Set, not fitted: fitted, it runs to its bound 1 (the two add), and left free it is what lets "
                           "the fit of a held-out fold stop in one of several local minima (held-out family TTFT 17.1 % "
                           "from one start, 18.0 % from the best of five); set, both give the same figure "
                           "(benchmarks/accuracy.py)")
    step_overhead_s: float = Field(1.5e-3, description="fixed per-step cost: scheduler, input preparation, sampling; set, "
                                   "not fitted: the calibration models all have 61-80 layers, so per-step and per-layer "
                                   "costs cannot be told apart there; 1.5 ms is the value (of 0.5/1/1.5/2) whose fit best "
                                   "predicted the published runs of 32-36-layer models of GPUStack (benchmarks/accuracy.py, "
                                   "choice by transfer). The vLLM blog's single-stream runs split by architecture (a dense 8B "
                                   "wants less, a MoE 20B more): 2 ms is now ahead on their TPOT median, behind on the dense 8B and "
                                   "held-out TTFT; kept")
    layer_overhead_s: float = Field(2e-5, description="per-layer per-step cost: kernel launches, norms")
    seq_overhead_s: float = Field(2e-5, description="per-sequence per-step cost: scheduling, sampling, detokenizing")
    allreduce_latency_s: float = Field(5e-6, description="fixed latency of one TP all-reduce call (launch and the flag "
                                       "exchange between ranks, done with all peers at once), whatever the TP size")
    request_overhead_s: float = Field(0.015, description="per-request time outside engine steps before the first "
                                      "token that does not grow with the prompt: HTTP, queue hand-off, first detokenize. "
                                      "Set with request_token_s, not fitted: the calibration campaigns measure one "
                                      "configuration's TTFT 2-3x apart, so a fitted constant (29 ms) is a compromise "
                                      "that alone exceeds the lowest measured TTFTs; 15 ms + 4 µs a prompt token (of "
                                      "5-20 ms and 1-8 µs) predicts held-out families and published low-load runs "
                                      "best (benchmarks/accuracy.py)")
    request_token_s: float = Field(4e-6, description="per prompt token time outside engine steps: tokenizing, "
                                   "moving the token ids from the API server to the engine")
    output_steps: float = Field(1.0, description="engine steps after a request's prefill step before its first token "
                                "leaves the server: the sampled token is processed and streamed while the next step runs, "
                                "and more when the engine's output path lags; fitted (about 1.7). Async scheduling adds "
                                "one step (planner.batching)")
    output_per_stream_s: float = Field(1e-4, description="per running request, time of the server's output path before "
                                       "a new request's first token leaves: one API-server process (vLLM 0.19.0 "
                                       "`--api-server-count` defaults to the data-parallel size, 1; vendored in "
                                       "gitops/vllm_facts) turns every running "
                                       "request's new tokens into a detokenized, serialized stream chunk on one asyncio "
                                       "loop (`v1/engine/async_llm.py` output_handler), and the benchmark client parses "
                                       "each stream on its own; a first token waits about one pass over the running "
                                       "streams. Fitted (about 0.6 ms) on benchmark runs, whose one client process "
                                       "is part of it: traffic from many clients may see less")
    sync: float = Field(0.1, description="closed loop after the first round: mean share of the other clients' prompts "
                        "a request waits behind because their requests ended in the same step (0 = arrivals spread "
                        "out; the first round, all at once, is 0.5 and counted apart, planner.batching)")
    queue_factor: float = Field(1.0, description="Kingman's (1 + cs^2)/2 for Poisson prefill queueing: 0.5 for fixed "
                                "prompt lengths, 1 for exponential-like spread (used: the safer side); not fitted, "
                                "the measured rows are closed loops")
    data_version: str = Field("", description="hash of the benchmark rows the fit used")
    method: str = ""
    fitted_at: str = ""
    n_rows: int = 0
    cv_median_ape: dict[str, float] = Field(default_factory=dict, description="held-out-model error, for uncertainty")
    transfer_ape: dict[str, float] = Field(default_factory=dict, description="median error where the fit transfers: "
                                           "a whole architecture class held out, and published runs of other models "
                                           "and harnesses; the uncertainty outside the calibrated range")
    calibrated: dict[str, list[str]] = Field(default_factory=dict, description="gpus/models/dtypes seen in the fit")

    @property
    def label(self) -> str:
        return f"servewise step-time model fitted to {self.n_rows} measured rows (data {self.data_version}, {self.fitted_at})"


# Smallest row tile of a grouped-GEMM expert kernel: tensor-core MMA shapes start at 8 rows (m8n8 /
# m16n8), and small-batch MoE kernels pad each expert's tokens to such a tile. 8 is the hardware minimum.
MOE_TILE_ROWS = 8

# Order of the free parameters when fitting (each mapped to its valid range by _to_params).
FREE = ("bw_eff", "flops_eff", "moe_flops_eff", "moe_half_rows", "moe_half_width", "layer_overhead_s", "seq_overhead_s",
        "allreduce_latency_s", "output_steps", "output_per_stream_s", "sync")


@dataclass
class StepFeatures:
    """Per-replica numbers of N configurations (each field an array of length N)."""

    gpus: np.ndarray  # GPUs sharing weights (tp * pp)
    tp: np.ndarray
    pp: np.ndarray
    layers: np.ndarray
    hidden: np.ndarray
    bw: np.ndarray  # bytes/s per GPU (datasheet)
    flops: np.ndarray  # FLOP/s per GPU of the weight format's own tensor cores (datasheet; the TTFT physics floor)
    dense_peak: np.ndarray  # FLOP/s per GPU the dense GEMMs' kernels run at (datasheet, gemm_flops)
    expert_peak: np.ndarray  # FLOP/s per GPU the routed-expert GEMMs' kernels run at (datasheet, gemm_flops)
    blackwell: np.ndarray  # 1 on Blackwell GPUs, whose GEMMs reach their own share of the datasheet, else 0
    attn_peak: np.ndarray  # FLOP/s per GPU attention runs at (bf16: attention math is not weight-quantized)
    link: np.ndarray  # bytes/s one direction of the TP link
    stage_link: np.ndarray  # bytes/s one direction between pipeline stages (the network when stages span nodes)
    allreduces: np.ndarray  # TP all-reduces per layer (2, +1 for a q/k norm over all heads)
    always_read: np.ndarray  # bytes read every step regardless of batch (dense + lm_head)
    expert_bytes: np.ndarray  # bytes of one routed expert (all layers)
    experts: np.ndarray
    experts_per_token: np.ndarray
    flops_per_token: np.ndarray  # 2 x active params
    expert_row_flops: np.ndarray  # FLOPs of one token through one routed expert (2 x its params, all layers)
    expert_width: np.ndarray  # intermediate size of one routed expert on one GPU (TP shards it)
    attn_flops: np.ndarray  # FLOPs per (query token x context token), summed over the unbounded layers
    attn_flops_window: np.ndarray  # the same over the windowed layers (a query there sees at most `window` tokens)
    kv_full: np.ndarray  # KV bytes per token of context in unbounded layers (whole replica)
    kv_window: np.ndarray  # KV bytes per token in windowed layers
    window: np.ndarray  # window length (inf when none)
    ep_spread: np.ndarray  # expert parallel: the busiest rank's excess routed rows x sqrt(rows) / mean (0 without EP)

    @staticmethod
    def stack(items: list[StepFeatures]) -> StepFeatures:
        return StepFeatures(**{f.name: np.concatenate([getattr(i, f.name) for i in items]) for f in fields(StepFeatures)})

    def take(self, idx: np.ndarray) -> StepFeatures:
        return StepFeatures(**{f.name: getattr(self, f.name)[idx] for f in fields(StepFeatures)})


def compute_flops(gpu: Gpu, dtype: WeightDtype) -> float:
    """Datasheet dense tensor FLOP/s of the weight format's own tensor cores: fp8 formats on fp8 cores, nvfp4/mxfp4
    on fp4 cores where the GPU has them (Blackwell), else the best the GPU offers for the format. The best any kernel
    could do, hence the TTFT physics floor; the rates vLLM's kernels run at are `gemm_flops`."""
    if dtype in ("nvfp4", "mxfp4") and gpu.fp4_tflops:
        return gpu.fp4_tflops * 1e12
    if dtype in LOW_FLOAT_DTYPES and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    return gpu.bf16_tflops * 1e12


def gemm_flops(gpu: Gpu, dtype: WeightDtype, *, bf16_dense: bool) -> tuple[float, float]:
    """(dense / attention-projection GEMMs, routed-expert GEMMs): datasheet FLOP/s of the tensor cores the kernels
    vLLM picks for the weight format run on. They multiply in the activations' format, which is the weights' only
    where a kernel quantizes its activations:
    - fp8 / fp8_block: fp8 activations on GPUs with fp8 cores; A100 runs them weight-only (Marlin W8A16) at bf16.
    - nvfp4: fp4 activations on Blackwell; elsewhere weight-only Marlin (W4A16) at bf16.
    - mxfp4 (gpt-oss): the experts multiply bf16 activations on every GPU by default (vLLM's `get_mxfp4_backend`
      picks FlashInfer MXFP4 x BF16 on Blackwell unless VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8 is set, the OAI Triton
      or Marlin W4A16 kernels on Hopper, and `Mxfp4Config.get_supported_act_dtypes` is bf16 only:
      vllm/model_executor/layers/quantization/mxfp4.py @ 007d5005), and its linear layers are unquantized.
    - int4: weight-only (W4A16) at bf16.
    `bf16_dense`: the checkpoint keeps its dense and attention weights in bf16 (gpt-oss, Kimi-K2.5's int4 release),
    so those GEMMs run at bf16 whatever the experts' format."""
    bf16 = gpu.bf16_tflops * 1e12
    experts = bf16 if dtype in ("mxfp4", "int4") or (dtype == "nvfp4" and not gpu.fp4_tflops) else compute_flops(gpu, dtype)
    return (bf16 if bf16_dense else experts), experts


def features(model: ModelArch, gpu: Gpu, *, tp: int, pp: int, weight_dtype: WeightDtype,
             kv_dtype: KvDtype = "auto", expert_parallel: bool = False) -> StepFeatures:
    """`expert_parallel`: vLLM's --enable-expert-parallel without data parallelism. The MoE layers then run with
    TP 1 and EP tp: each GPU holds 1/tp of the routed experts whole instead of a 1/tp slice of every expert
    (`FusedMoEParallelConfig.make`, vllm/model_executor/layers/fused_moe/config.py at vLLM 0.19.0: "In EP, each device
    owns a set of experts fully"), and without data parallelism no all-to-all kernels run (`use_all2all_kernels` is
    dp_size > 1 and use_ep), so the layer's output is all-reduced as under TP. The bytes and FLOPs are the same either
    way; the MoE layer waits for the GPU the routing loads most (`_busiest_rank_load`). The grouped GEMMs' width fill
    stays that of a 1/tp slice: where the calibration measured one configuration both ways (MiniMax-M2.5 on B200 at
    TP 2 and 4, Kimi-K2.5 on B200 at TP 4, Qwen3-235B on H200 at TP 2), whole experts did not decode faster, as a fill
    over the whole width predicts. Taken whole, the predicted EP / TP ratios of TTFT and TPOT move the way the measured
    ones do in 16 of 38 cases; as slices, in 29 (benchmarks/results/accuracy.md, "Expert parallel")."""
    split = param_split(model)
    ep = tp if expert_parallel and split.experts else 1
    dense_b, expert_b = stored_bytes_per_param(model, weight_dtype)
    dense_peak, expert_peak = gemm_flops(gpu, weight_dtype, bf16_dense=dense_b == 2.0)
    lm_head = model.vocab_size * model.hidden_size * 2.0
    full, sliding, window = attention_layers(model)
    per_layer = kv_bytes_per_token_layer(model, tp, kv_dtype_bytes(kv_dtype, weight_dtype))
    att = model.attention
    q_dim = model.num_attention_heads * (att.kv_lora_rank + att.qk_rope_head_dim if att.kind == "mla" else model.head_dim)
    return StepFeatures(
        gpus=np.array([tp * pp], float), tp=np.array([tp], float), pp=np.array([pp], float),
        layers=np.array([model.num_layers], float), hidden=np.array([model.hidden_size], float),
        bw=np.array([gpu.mem_bw_gb_s * 1e9]), flops=np.array([compute_flops(gpu, weight_dtype)]),
        dense_peak=np.array([dense_peak]), expert_peak=np.array([expert_peak]),
        blackwell=np.array([float(gpu.architecture == "blackwell")]),
        attn_peak=np.array([gpu.bf16_tflops * 1e12]),
        link=np.array([gpu.interconnect_gb_s * 1e9 / 2]),
        stage_link=np.array([(gpu.internode_gb_s * 1e9) if gpu.internode_gb_s else gpu.interconnect_gb_s * 1e9 / 2]),
        allreduces=np.array([2.0 + (att.qk_norm == "across_heads")]),
        always_read=np.array([lm_head + split.dense * dense_b]),
        expert_bytes=np.array([split.expert_each * expert_b]),
        experts=np.array([split.experts], float), experts_per_token=np.array([split.experts_per_token], float),
        flops_per_token=np.array([2 * model.params_active_b * 1e9]),
        expert_row_flops=np.array([2.0 * split.expert_each]),
        expert_width=np.array([(model.moe_intermediate_size or 0) / tp], float),
        attn_flops=np.array([4.0 * q_dim * full]), attn_flops_window=np.array([4.0 * q_dim * sliding]),
        kv_full=np.array([per_layer * full]), kv_window=np.array([per_layer * sliding]),
        window=np.array([float(window) if window else np.inf]),
        ep_spread=np.array([busiest_of(ep) * math.sqrt(ep - 1)]),
    )


@cache
def busiest_of(n: int) -> float:
    """Expected maximum of n independent standard normal draws (0 for one): how many standard deviations the busiest
    of n expert-parallel ranks lies above the mean. Computed as the integral of x n phi(x) Phi(x)^(n-1)."""
    if n <= 1:
        return 0.0
    x = np.linspace(-10.0, 10.0, 4001)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    density = n * np.exp(-x * x / 2) / math.sqrt(2 * math.pi) * cdf ** (n - 1)
    return float(np.sum(x * density) * (x[1] - x[0]))


def expert_fraction(f: StepFeatures, tokens: np.ndarray) -> np.ndarray:
    """Share of routed experts a step over `tokens` tokens touches (uniform routing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f.experts > 0, 1 - (1 - f.experts_per_token / np.maximum(f.experts, 1)) ** np.maximum(tokens, 1.0), 0.0)


def weights_read(f: StepFeatures, tokens: np.ndarray) -> np.ndarray:
    """Weight bytes streamed by a step over `tokens` tokens (only touched experts are read)."""
    return f.always_read + f.experts * expert_fraction(f, tokens) * f.expert_bytes


def kv_bytes(f: StepFeatures, context: np.ndarray) -> np.ndarray:
    """KV bytes one sequence of `context` tokens holds (and a decode step reads)."""
    return f.kv_full * context + f.kv_window * np.minimum(context, f.window)


def kv_read_time(p: LatencyParams, f: StepFeatures, decode: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Seconds a step spends streaming the KV cache of `decode` sequences at mean `context` (pipeline stages run
    one after another, each reading its layers' share on its GPUs, so the whole replica's bandwidth counts once)."""
    return decode * kv_bytes(f, context) / (f.gpus * f.bw * p.bw_eff)


def step_time(p: LatencyParams, f: StepFeatures, decode: np.ndarray, context: np.ndarray,
              prefill: np.ndarray, prefill_context: np.ndarray) -> np.ndarray:
    """Seconds for every running sequence to advance one token. With pipeline parallelism (pp > 1, vLLM's
    --pipeline-parallel-size across nodes) the batch runs as pp micro-batches through pp stages of layers/pp
    layers: a token advances once per traversal of all stages, which takes pp stage-steps of one micro-batch each
    plus the hand-off of its hidden states between consecutive stages (bytes over the stage link, and one fixed
    send latency, taken as the fitted per-call all-reduce latency). pp = 1 is one stage-step."""
    micro_decode, micro_prefill = decode / f.pp, prefill / f.pp
    handoff = (f.pp - 1) * ((micro_decode + micro_prefill) * f.hidden * 2.0 / f.stage_link + p.allreduce_latency_s)
    return f.pp * _stage_time(p, f, micro_decode, context, micro_prefill, prefill_context) + handoff


def _stage_time(p: LatencyParams, f: StepFeatures, decode: np.ndarray, context: np.ndarray,
                prefill: np.ndarray, prefill_context: np.ndarray) -> np.ndarray:
    """Seconds of one engine step running `decode` sequences at mean `context` plus `prefill` prompt
    tokens whose mean attention span is `prefill_context`.

    Each kind of kernel is its own roofline (memory time vs compute time, the smaller partly hidden):
    dense GEMMs stream the always-read weights; routed-expert GEMMs stream the touched experts and run
    as grouped GEMMs at their own efficiency; attention streams the decodes' KV and computes at its own share
    (attn_flops_eff) of the bf16 rate whatever the weight dtype.
    """
    tokens = decode + prefill
    bw = f.gpus * f.bw * p.bw_eff

    def roof(mem: np.ndarray, comp: np.ndarray) -> np.ndarray:
        return np.maximum(mem, comp) + p.overlap * np.minimum(mem, comp)

    dense_flops = f.flops_per_token - f.expert_row_flops * f.experts_per_token
    dense = roof(f.always_read / bw, dense_flops * tokens / (_gemm_peak(p, f, f.dense_peak) * p.flops_eff))
    touched = f.experts * expert_fraction(f, tokens)
    experts = roof(touched * f.expert_bytes / bw, _expert_compute(p, f, tokens, touched)) * _busiest_rank_load(f, tokens)
    attention = roof(kv_read_time(p, f, decode, context),
                     attention_flops(f, decode, context, prefill, prefill_context) / (f.gpus * f.attn_peak * p.attn_flops_eff))
    return (p.step_overhead_s + p.layer_overhead_s * f.layers / f.pp + p.seq_overhead_s * decode + dense + experts
            + attention + allreduce_time(p, f, tokens))


def attention_flops(f: StepFeatures, decode: np.ndarray, context: np.ndarray, prefill: np.ndarray,
                    prefill_context: np.ndarray) -> np.ndarray:
    """Attention FLOPs of a step: each decode attends to its context, each prompt token to `prefill_context` tokens on
    average, and in windowed (sliding-window) layers to at most the window."""
    pairs = decode * context + prefill * prefill_context
    pairs_window = decode * np.minimum(context, f.window) + prefill * np.minimum(prefill_context, f.window)
    return f.attn_flops * pairs + f.attn_flops_window * pairs_window


def _busiest_rank_load(f: StepFeatures, tokens: np.ndarray) -> np.ndarray:
    """Expert parallel: the MoE layers wait for the rank with the most routed rows. Under uniform routing a rank gets
    Binomial(tokens x top-k, 1/ep) rows, whose spread relative to the mean is sqrt((ep - 1) / rows), and the busiest
    of ep ranks lies `busiest_of(ep)` spreads above it (the normal approximation): a decode step of 4 clients with
    top-8 routing over 4 ranks loads the busiest 1.32x the mean, an 8k-token prefill 1.01x. Real routing is skewed
    as well, which this leaves out. 1 without expert parallelism."""
    return 1 + f.ep_spread / np.sqrt(np.maximum(tokens * f.experts_per_token, 1.0))


def _gemm_peak(p: LatencyParams, f: StepFeatures, peak: np.ndarray) -> np.ndarray:
    """Datasheet tensor FLOP/s `peak` (per GPU) of a replica's GPUs, scaled to Hopper's share on Blackwell."""
    return f.gpus * peak * (1 + f.blackwell * (p.blackwell_gemm_ratio - 1))


def _expert_compute(p: LatencyParams, f: StepFeatures, tokens: np.ndarray, touched: np.ndarray) -> np.ndarray:
    """Seconds of tensor work in the routed-expert grouped GEMMs of a step over `tokens` tokens.

    A grouped GEMM's efficiency is the product of two saturating fills, each from the fixed work of a tile
    (loading the expert's weight tiles and scales, the epilogue) against the work it amortises over:
    - rows: each touched expert gets rows = tokens x top-k / touched (at least one MMA tile), and
      eff_rows = rows / (rows + moe_half_rows): few rows leave tiles part empty; equivalently each touched expert
      costs moe_half_rows rows of work on top of its own;
    - width: TP shards each expert's intermediate dimension, so a GPU holds width = moe_intermediate_size / tp
      columns of gate/up and a reduction of that length in the down projection, and
      eff_width = width / (width + moe_half_width): MiniMax-M2.5 at TP 8 keeps 192 columns, gpt-oss at TP 1 2,880
      (kept under expert parallel too, where the measured pairs put it: `features`).
    eff = moe_flops_eff x eff_rows x eff_width. The peak is that of the tensor cores the experts' kernels run on
    (planner.steptime.gemm_flops): fp8/nvfp4 experts on fp8/fp4 cores where the GPU has them, weight-only int4 and
    gpt-oss's mxfp4 (bf16 activations) at bf16.
    """
    rows = np.maximum(tokens * f.experts_per_token, touched * MOE_TILE_ROWS)
    # rows / eff = (rows + moe_half_rows x touched) / moe_flops_eff: zero, not 0/0, for dense models.
    width_fill = f.expert_width / np.maximum(f.expert_width + p.moe_half_width, 1e-9)
    return f.expert_row_flops * (rows + p.moe_half_rows * touched) / (_gemm_peak(p, f, f.expert_peak) * p.moe_flops_eff * np.maximum(width_fill, 1e-9))


def allreduce_time(p: LatencyParams, f: StepFeatures, tokens: np.ndarray) -> np.ndarray:
    """Seconds of the TP all-reduces of one stage-step over `tokens` tokens.

    Per layer, attention output and MLP/MoE output carry the hidden state; a q/k RMSNorm over all heads
    (MiniMax-M2) adds one more whose payload (2 floats a token) is only latency. Each call costs a fixed latency plus
    its message bytes (tokens x hidden x bf16) over the link at the bandwidth optimum 2(tp-1)/tp of reduce-scatter +
    all-gather (Thakur, Rabenseifner & Gropp, "Optimization of Collective Communication Operations in MPICH", 2005).
    The latency does not grow with tp: on fully NVLinked GPUs vLLM's custom all-reduce sends messages under 512 KiB
    (tp <= 4) or 256 KiB (tp <= 8) through its one-stage kernel, in which every rank signals all peers at once and
    reads their buffers directly (vllm-project/vllm csrc/custom_all_reduce.cuh @ 036bb685, REDUCE_CASE), so there
    are no log2(tp) rounds; decode messages (batch x hidden x 2 bytes) are that small, and this latency is all they
    cost.
    The latency is fitted; the link bandwidth is the GPU's datasheet figure, one direction (NVLink or PCIe,
    kb/data/gpus.json).
    """
    ring = np.where(f.tp > 1, 2 * (f.tp - 1) / f.tp, 0.0)
    per_call = p.allreduce_latency_s + ring * tokens * f.hidden * 2.0 / f.link
    return np.where(f.tp > 1, f.layers / f.pp * f.allreduces * per_call, 0.0)


def physics_floor_tpot(f: StepFeatures, batch: np.ndarray, context: np.ndarray) -> np.ndarray:
    """No decode step can beat streaming its weights and KV at full datasheet bandwidth (pipeline stages one after
    another: a token's traversal streams every stage's share on that stage's tp GPUs)."""
    return (weights_read(f, batch) + batch * kv_bytes(f, context)) / f.tp / f.bw


def physics_floor_ttft(f: StepFeatures, isl: np.ndarray) -> np.ndarray:
    """No prefill can beat its FLOPs at datasheet peak."""
    zero = np.zeros_like(isl)
    return (f.flops_per_token * isl + attention_flops(f, zero, zero, isl, isl / 2)) / f.gpus / f.flops
