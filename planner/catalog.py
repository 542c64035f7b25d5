"""Facts the planner reasons over: model architectures, GPUs with prices, use cases, benchmark rows.

These are the typed shapes of the knowledge base's seed data (`kb/data/`). The knowledge base
loads and stores them; the planner only receives them as arguments.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import unknown_name

WeightDtype = Literal["bf16", "fp16", "fp8", "fp8_block", "int8", "int4", "nvfp4", "mxfp4"]
KvDtype = Literal["auto", "bf16", "fp16", "fp8"]
WEIGHT_DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "fp8_block", "int8", "int4", "nvfp4", "mxfp4")
# Float formats of 8 bits or fewer: they run on fp8 (or fp4) tensor cores where the GPU has them.
LOW_FLOAT_DTYPES: tuple[str, ...] = ("fp8", "fp8_block", "nvfp4", "mxfp4")

AttentionKind = Literal["mha", "gqa", "mla", "sliding_window", "hybrid_linear"]
TaskType = Literal["chat", "summarization", "code", "rag", "agent", "translation", "batch", "completion", "reasoning"]


class Attention(BaseModel):
    """How a model's attention layers store KV cache: the shape that decides memory per token."""

    model_config = ConfigDict(extra="allow")

    kind: AttentionKind
    base: str | None = None
    window: int | None = None
    num_sliding_layers: int | None = None
    full_attention_layers: list[int] | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_norm: Literal["per_head", "across_heads"] | None = Field(
        None, description="RMSNorm of queries/keys (config.json use_qk_norm / qk_norm_type): per head, or over all "
        "heads at once (MiniMax-M2 'per_layer'), which under tensor parallelism needs one more all-reduce per layer")


class QualityScore(BaseModel):
    """One public benchmark score of a model, with where it was published."""

    benchmark: str
    score: float
    source: str


class GatedAccess(BaseModel):
    """Whether the Hugging Face repo asks each user to accept terms before download (a token is then required)."""

    value: bool
    source: str


# The chat-tuning suffix of a model name ('-Instruct', '-it', '-Instruct-v0.3', '-Instruct-2503'): dropped in the short
# names people type (catalog aliases) and in narrow tables.
CHAT_SUFFIX = re.compile(r"-(instruct|it)(-v[0-9.]+|-\d{4})?$", re.IGNORECASE)


class ModelArch(BaseModel):
    """Architecture facts of one model, copied from its HF config.json (source on every row)."""

    hf_id: str
    aliases: list[str] = Field(default_factory=list)
    architecture: str
    params_total_b: float
    params_active_b: float
    num_layers: int
    hidden_size: int
    intermediate_size: int | None = None
    moe_intermediate_size: int | None = None
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    num_experts: int | None = None
    experts_per_token: int | None = None
    num_shared_experts: int | None = None
    first_k_dense_layers: int | None = None
    tie_word_embeddings: bool = False
    native_dtype: WeightDtype
    native_dtype_note: str | None = None
    license: str
    open_weights: bool = True
    tasks: list[TaskType] = Field(default_factory=lambda: ["chat"])
    attention: Attention
    kv_bytes_per_token_bf16: int | None = None
    quality: list[QualityScore] = Field(default_factory=list)
    source: str
    verified: bool = True
    notes: str | None = None
    gated: GatedAccess | None = Field(default=None, description="None: not recorded (treated as gated when rendering)")
    origin: Literal["seed", "user"] = Field(default="seed", description="shipped catalog, or added with kb add-model")

    @property
    def is_moe(self) -> bool:
        return bool(self.num_experts)

    @property
    def short_name(self) -> str:
        return self.hf_id.split("/")[-1]


class Price(BaseModel):
    """On-demand price of one GPU-hour at one provider."""

    provider: str
    usd_per_gpu_hour: float
    source: str


class Gpu(BaseModel):
    """Datasheet figures (dense, no sparsity) of one accelerator, with its prices."""

    name: str
    aliases: list[str] = Field(default_factory=list)
    vendor: str
    architecture: str = Field("", description="GPU architecture (hopper, blackwell, ampere, ada, cdna3): kernels, and so "
                              "the share of the datasheet they reach, differ per architecture")
    memory_gb: float
    mem_bw_gb_s: float
    bf16_tflops: float
    fp8_tflops: float | None = None
    fp4_tflops: float | None = None
    interconnect: str
    interconnect_gb_s: float = Field(description="per-GPU bidirectional bandwidth of the TP link")
    gpus_per_node: int = Field(default=8, ge=1, description="GPUs one node (one NVLink domain) holds")
    internode_gb_s: float | None = Field(default=None, gt=0, description="per-GPU network bandwidth between nodes, one "
                                         "direction, GB/s (pipeline stages on different nodes); None: no multi-node plans")
    internode_source: str = ""
    k8s_product_labels: list[str] = Field(default_factory=list)
    prices: list[Price] = Field(default_factory=list)
    uncertain: list[str] = Field(default_factory=list)
    source: str

    def price(self, provider: str) -> Price | None:
        return next((p for p in self.prices if p.provider == provider), None)


class TokenDist(BaseModel):
    """A distribution of token counts: mean plus a log-normal spread, clipped at `max`."""

    mean: float = Field(gt=0)
    p50: float | None = Field(default=None, gt=0)
    p90: float | None = Field(default=None, gt=0)
    dist: Literal["fixed", "lognormal"] = "lognormal"
    cv: float = Field(default=0.6, ge=0, description="coefficient of variation (std / mean)")
    max: int | None = Field(default=None, gt=0)


class SloTargets(BaseModel):
    ttft_p90_ms: float | None = Field(default=None, gt=0)
    tpot_p90_ms: float | None = Field(default=None, gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)
    min_throughput_tok_s: float | None = Field(default=None, gt=0)


class UseCase(BaseModel):
    """A template of a workload: typical lengths, SLO targets and where those targets come from."""

    name: str
    title: str
    description: str
    task: TaskType
    keywords: list[str] = Field(default_factory=list)
    prompt_tokens: TokenDist
    output_tokens: TokenDist
    slos: SloTargets
    requests_per_user_per_day: float = Field(gt=0)
    peak_factor: float = Field(ge=1)
    burstiness: float = Field(ge=1, description="variance-to-mean ratio of arrivals (1 = Poisson)")
    prefix_share: float = Field(default=0.0, ge=0, le=1)
    min_quality: float | None = None
    streaming: bool = Field(default=False, description="the client streams tokens as they come: people feel TTFT and "
                            "TPOT, so the E2E target binds only when the person states one")
    quality: str | None = Field(default=None, description="named quality level (quality.json `levels`) a model must "
                                "reach; a floor the person can lower")
    min_params_b: float | None = Field(default=None, gt=0, description="smallest model (total parameters, billions) "
                                       "that serves this workload well")
    max_params_b: float | None = Field(default=None, gt=0)
    source: str = Field(description="short citation of where the template's numbers come from")
    sources: dict[str, str] = Field(default_factory=dict, description="full public reference per field")


class QualityLevel(BaseModel):
    """A named quality floor: the benchmark score a model must reach, anchored to a published score."""

    name: str
    benchmark: str
    min_score: float
    anchor: str = Field(description="the published score this level is set at, and where it was published")


class BenchmarkRow(BaseModel):
    """One measured serving benchmark point (closed loop of `concurrency` clients)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    source_ref: str
    engine: Literal["vllm", "trtllm", "sglang"]
    engine_version: str | None = None
    model: str
    weight_dtype: WeightDtype
    kv_dtype: str | None = None
    gpu: str
    tp: int = Field(ge=1)
    pp: int = Field(default=1, ge=1)
    dp: int = Field(default=1, ge=1)
    gpus_total: int = Field(ge=1)
    isl: int = Field(gt=0)
    osl: int = Field(gt=0)
    concurrency: int | None = Field(default=None, gt=0)
    request_rate: float | None = Field(default=None, gt=0)
    ttft_ms: dict[str, float]
    tpot_ms: dict[str, float]
    e2e_ms: dict[str, float] = Field(default_factory=dict)
    output_tok_s: float | None = None
    request_s: float | None = None
    notes: str | None = None
    extra: dict = Field(default_factory=dict)

    def num_prompts(self) -> int | None:
        """Requests the run sent in all, where its result file (`num_prompts`) or recorded harness command
        (`--num-prompts N`) says; None when neither does."""
        sent = self.extra.get("num_prompts")
        if not isinstance(sent, int) or isinstance(sent, bool):
            match = re.search(r"--num-prompts[ =](\d+)", str(self.extra.get("harness", "")))
            sent = int(match.group(1)) if match else None
        return sent if sent and sent > 0 else None

    def expert_parallel(self) -> bool:
        """Whether the run's MoE layers ran expert parallel across its TP group (vLLM --enable-expert-parallel): its
        recorded flags say so, or its source records an MoE EP size above 1 (AIConfigurator's `moe_ep`)."""
        return ("--enable-expert-parallel" in str(self.extra.get("server_flags", ""))
                or int(self.extra.get("moe_ep") or 1) > 1)

    def asks_async_scheduling(self) -> bool:
        """Whether the run's server was started with --async-scheduling (its recorded flags say so)."""
        return "--async-scheduling" in str(self.extra.get("server_flags", ""))


class Checkpoint(BaseModel):
    """A published pre-quantized checkpoint of a catalog model, and where its existence was checked."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="hf_id of the catalog model it quantizes")
    weight_dtype: WeightDtype
    repo: str = Field(description="Hugging Face repo vLLM serves")
    method: str = Field(description="quantization_config.quant_method vLLM reads from the checkpoint")
    source: str = Field(description="page where the repo was seen to exist")
    note: str | None = None


def _key(name: str) -> str:
    return name.strip().lower()


class Catalog(BaseModel):
    """Everything the knowledge base knows, handed to the planner in one piece."""

    models: list[ModelArch]
    gpus: list[Gpu]
    use_cases: list[UseCase]
    kb_version: str
    checkpoints: list[Checkpoint] = Field(default_factory=list)

    def checkpoint(self, model: str, dtype: str) -> Checkpoint | None:
        """The published checkpoint of `model` (hf_id) in `dtype`, if the catalog knows one."""
        return next((c for c in self.checkpoints if c.model == model and c.weight_dtype == dtype), None)
    quality_levels: list[QualityLevel] = Field(default_factory=list)

    def model(self, name: str) -> ModelArch:
        """Find a model by HF id, short name or alias (case-insensitive)."""
        k = _key(name)
        for m in self.models:
            if k in {_key(m.hf_id), _key(m.short_name), *map(_key, m.aliases)}:
                return m
        raise unknown_name("model", name, [m.hf_id for m in self.models],
                           {a: m.hf_id for m in self.models for a in (m.short_name, *m.aliases)})

    def gpu(self, name: str) -> Gpu:
        """Find a GPU by name or alias (case-insensitive)."""
        k = _key(name)
        for g in self.gpus:
            if k in {_key(g.name), *map(_key, g.aliases)}:
                return g
        raise unknown_name("GPU", name, [g.name for g in self.gpus], {a: g.name for g in self.gpus for a in g.aliases})

    def use_case(self, name: str) -> UseCase:
        k = _key(name).replace("_", "-").replace(" ", "-")
        for u in self.use_cases:
            if k == u.name:
                return u
        raise unknown_name("use case", name, [u.name for u in self.use_cases])

    def quality_level(self, name: str) -> QualityLevel:
        k = _key(name)
        for q in self.quality_levels:
            if k == q.name:
                return q
        raise unknown_name("quality level", name, [q.name for q in self.quality_levels])
