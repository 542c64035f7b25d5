"""The data contracts that cross module boundaries: queries, predictions, specs, candidates, plans.

These pydantic models are the one source of truth for the JSON that the CLI prints, the MCP
server returns and `plan.json` holds; their JSON Schema is generated from them. Stable keys
(DESIGN.md): a Plan has `spec`, `candidates`, `chosen`; a candidate has `model`, `gpu`, `tp`,
`replicas`, `gpus_total`, `fits`, `meets_slos`, `monthly_cost_usd`, `predicted`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from planner.catalog import KvDtype, SloTargets, TaskType, TokenDist, WeightDtype

Priority = Literal["latency", "cost", "balanced", "quality"]


class PredictQuery(BaseModel):
    """What `servewise predict` and the `predict` tool take: one configuration under one load."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="HF id or short alias, e.g. 'llama-3.1-8b'")
    gpu: str = Field(description="GPU name or alias, e.g. 'h100', 'L40S'")
    tp: int = Field(default=1, ge=1, le=64, description="tensor-parallel size")
    pp: int = Field(default=1, ge=1, le=16, description="pipeline-parallel size")
    isl: int = Field(gt=0, description="prompt (input) tokens per request")
    osl: int = Field(gt=0, description="output tokens per request")
    concurrency: int | None = Field(default=None, gt=0, description="closed loop of C clients per deployment")
    num_prompts: int | None = Field(default=None, gt=0, description="closed loop: requests the run sends in all "
                                    "(vllm bench serve --num-prompts); the clients' first requests arrive at once and "
                                    "queue behind each other, and the run's means weigh that first round by "
                                    "concurrency / num_prompts. Default: 10 per client, the convention of the sweeps "
                                    "the model is calibrated on")
    qps: float | None = Field(default=None, gt=0, description="Poisson arrivals, requests/s for the deployment")
    replicas: int = Field(default=1, ge=1, le=1000)
    weight_dtype: WeightDtype | None = Field(default=None, description="default: the model's native dtype")
    kv_dtype: KvDtype = "auto"
    max_num_seqs: int | None = Field(default=None, gt=0)
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    gpu_memory_utilization: float = Field(default=0.9, gt=0.1, le=0.99)
    isl_cv: float = Field(default=0.0, ge=0, description="spread of prompt lengths (0 = fixed)")
    osl_cv: float = Field(default=0.0, ge=0, description="spread of output lengths (0 = fixed)")
    engine_version: str | None = Field(default=None, max_length=64,
                                       description="vLLM release; default: the one servewise deploys")
    async_scheduling: bool | None = Field(default=None, description="vLLM --async-scheduling (the next step scheduled "
                                          "while one runs); default: the release's own, on from 0.14")
    expert_parallel: bool = Field(default=False, description="vLLM --enable-expert-parallel (MoE models, tp >= 2): each "
                                  "GPU holds 1/tp of the routed experts whole instead of a slice of every expert")

    @model_validator(mode="after")
    def _one_load(self) -> "PredictQuery":
        if (self.concurrency is None) == (self.qps is None):
            raise ValueError("give exactly one of concurrency (closed loop) or qps (Poisson arrivals)")
        if self.num_prompts is not None and self.concurrency is None:
            raise ValueError("num_prompts describes a closed-loop run: give it with concurrency, not qps")
        return self


class Percentiles(BaseModel):
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float


class MemoryBreakdown(BaseModel):
    """Per-GPU memory of one replica, in GiB, and the KV-cache capacity it leaves."""

    gpu_memory_gib: float
    usable_gib: float = Field(description="gpu_memory × gpu-memory-utilization")
    weights_gib: float
    activations_gib: float
    overhead_gib: float = Field(description="CUDA context, graphs, allocator fragmentation")
    kv_cache_gib: float
    kv_bytes_per_token: float = Field(description="per replica, all layers, summed over GPUs")
    kv_cache_tokens: int = Field(description="tokens of KV cache the replica can hold")
    max_batch_at_context: int = Field(description="sequences of isl+osl tokens that fit at once")
    fits: bool
    reason: str


class EvidenceRef(BaseModel):
    """One measured point behind a correction: an imported run or an SLO report."""

    id: str
    source: str = Field(description="the file a run was imported from, or 'slo report <deployment>'")
    kind: Literal["run", "outcome"] = "run"


class CorrectionTerm(BaseModel):
    """One metric's correction for one model × GPU × weight dtype, fitted by `planner.feedback`: a Gaussian
    process over log2 of TP and requests in flight, and log2 of prompt and output tokens (TTFT, throughput) or the
    KV-read and prefill shares of the base TPOT (TPOT) (a shared bias, a linear trend and a smooth local part),
    given the measured log ratios `y` at `x`. `solve` is (K + noise)^-1, so that each point's
    part in a prediction can be named."""

    weight_dtype: str = Field(description="'' applies to every dtype (outcomes that did not record it)")
    metric: Literal["ttft", "tpot", "throughput"]
    dims: list[str]
    lo: list[float]
    hi: list[float]
    x: list[list[float | None]]
    y: list[float]
    solve: list[list[float]]
    sigma: float = Field(description="spread of the points around the fit (log)")
    tau: list[float] = Field(description="prior sd of the bias, the slope per doubling and the local part")
    length: float = Field(description="length scale of the local part, in doublings")
    center: list[float]
    releases: list[str] = Field(description="vLLM release of each point")
    refs: list[EvidenceRef]
    # numpy copies of x, solve, y and center, made on first use by planner.feedback (a query evaluates many terms)
    _arrays: list = PrivateAttr(default_factory=list)


class Correction(BaseModel):
    """A multiplicative correction learned from measured runs and observed outcomes of one model × GPU,
    already shrunk toward 1.0 when there are few of them (see `planner.feedback`). The scalar factors are
    the correction at the key's own TP and the runs' typical load; `terms`, when present, give it per weight
    dtype and load."""

    ttft_factor: float = Field(default=1.0, gt=0)
    tpot_factor: float = Field(default=1.0, gt=0)
    n_outcomes: int = Field(default=0, ge=0)
    n_runs: int = Field(default=0, ge=0)
    measured_tps: list[int] = Field(default_factory=list, description="TPs the runs and reports were taken at")
    source: str = ""
    terms: list[CorrectionTerm] = Field(default_factory=list, exclude=True)


class RunInfluence(BaseModel):
    """How far one measured run (or SLO report) moved one prediction."""

    id: str
    source: str
    kind: Literal["run", "outcome"] = "run"
    ttft_pct: float = Field(description="change of the predicted mean TTFT due to this run, %")
    tpot_pct: float = Field(description="change of the predicted mean TPOT due to this run, %")


class AppliedCorrection(BaseModel):
    """The correction one prediction received and the measured points that made it."""

    ttft_factor: float
    tpot_factor: float
    throughput_factor: float = 1.0
    share: float = Field(description="how much of the runs' own band the uncertainty keeps: 1 inside the range "
                                     "the runs cover, halving per doubling outside it (TP, requests in flight, prompt "
                                     "and output tokens; for TPOT, a quarter of TPOT in either share of "
                                     "`tpot_shares` counts as a doubling); no correction beyond three doublings")
    doublings_outside: float = 0.0
    n_points: int = Field(description="runs and reports that informed it")
    runs: list[RunInfluence] = Field(default_factory=list, description="the ones that moved it most, largest first")
    uncertainty_pct: float | None = Field(default=None, description="± band where the points inform the query: "
                                          "their spread around the fit, widening back to the base model's outside")


class ClassPrediction(BaseModel):
    """One traffic class's latencies at the operating point the whole mix sets (see `planner.mix`)."""

    name: str
    share: float
    ttft_ms: Percentiles
    tpot_ms: Percentiles
    e2e_ms: Percentiles


# The parts of TPOT a team's runs can show to run faster or slower than modelled (KV reads on another attention
# kernel or KV dtype, prefill chunks beside the decodes): planner.feedback corrects TPOT along them.
class TpotShares(BaseModel):
    """Shares of the base model's mean TPOT."""

    kv_reads: float = Field(ge=0, le=1, description="reading the KV cache")
    prefill: float = Field(ge=0, le=1, description="other requests' prefill chunks")


class Prediction(BaseModel):
    """What vLLM is predicted to do for one PredictQuery, and where each number came from."""

    ttft_ms: Percentiles
    tpot_ms: Percentiles
    e2e_ms: Percentiles
    output_tok_s: float = Field(description="total output tokens/s over all replicas")
    request_s: float = Field(description="completed requests/s over all replicas")
    memory: MemoryBreakdown
    fits: bool
    saturated: bool = Field(default=False, description="offered Poisson load exceeds capacity")
    calibration: str = Field(description="which fitted parameters (and data version) were used")
    tpot_shares: TpotShares | None = Field(default=None, description="null in plans written before it existed")
    in_calibrated_range: bool = True
    uncertainty_pct: float = Field(description="± band of the median prediction, from cross-validation")
    correction: AppliedCorrection | None = Field(default=None, description="what measured runs and SLO reports "
                                                 "changed, and which ones")
    assumptions: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    classes: list[ClassPrediction] = Field(default_factory=list, description="per class of a traffic mix, in the "
                                           "batch the whole mix makes")


class Traffic(BaseModel):
    """Offered load: qps, or users × requests per user per day over the active hours; sized at × peak factor."""

    qps: float | None = Field(default=None, gt=0, description="average requests/s")
    users: int | None = Field(default=None, gt=0)
    requests_per_user_per_day: float | None = Field(default=None, gt=0)
    active_hours_per_day: float = Field(default=8.0, gt=0, le=24)
    peak_factor: float = Field(default=2.0, ge=1)
    burstiness: float = Field(default=1.0, ge=1, description="variance-to-mean ratio (1 = Poisson)")


class TrafficClass(BaseModel):
    """One kind of request in a traffic mix (short chat turns beside long RAG prompts)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=40)
    share: float = Field(gt=0, description="fraction of requests (shares are normalised to sum to 1)")
    prompt_tokens: TokenDist
    output_tokens: TokenDist
    ttft_p90_ms: float | None = Field(default=None, gt=0, description="own targets; default: the spec's")
    tpot_p90_ms: float | None = Field(default=None, gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)


class Constraints(BaseModel):
    models: list[str] = Field(default_factory=list)
    gpus: list[str] = Field(default_factory=list)
    quantizations: list[WeightDtype] = Field(default_factory=list)
    max_gpus: int | None = Field(default=None, gt=0)
    open_weights_only: bool = False
    licenses: list[str] = Field(default_factory=list)


class Assumption(BaseModel):
    """A value servewise filled in rather than read from the person's words."""

    field: str
    value: str
    source: str


class DeploymentSpec(BaseModel):
    """What the person needs, in serving terms; `assumptions` lists every guessed value."""

    name: str = "llm"
    use_case: str
    task: TaskType
    description: str = ""
    traffic: Traffic
    prompt_tokens: TokenDist
    output_tokens: TokenDist
    slos: SloTargets
    priority: Priority = "balanced"
    budget_usd_month: float | None = Field(default=None, gt=0)
    constraints: Constraints = Field(default_factory=Constraints)
    prefix_share: float = Field(default=0.0, ge=0, le=1)
    assumptions: list[Assumption] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)
    extracted_by: Literal["structured", "rules", "sampling"] = "structured"
    streaming: bool = Field(default=False, description="the client streams tokens; E2E binds only when stated")
    quality_level: str | None = Field(default=None, description="named quality floor (see `kb use-cases`), if any")
    min_quality: float | None = Field(default=None, ge=0, le=100, description="benchmark score (MMLU) a model must "
                                      "reach; None = no floor")
    min_params_b: float | None = Field(default=None, gt=0, description="smallest model size allowed, billions")
    max_params_b: float | None = Field(default=None, gt=0, description="largest model size allowed, billions")
    reliability_target: float | None = Field(default=None, ge=90, lt=100, description="availability target, percent "
                                          "(99.9 = three nines); >= 99.9 plans at least two replicas spread over nodes")
    budget_usd_hour: float | None = Field(default=None, gt=0, description="hourly budget, USD")
    traffic_mix: list[TrafficClass] = Field(default_factory=list, description="request classes; when set, "
                                            "prompt_tokens and output_tokens are their mixture")


class VllmSettings(BaseModel):
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float = 0.9
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    kv_cache_dtype: KvDtype = "auto"
    quantization: str | None = Field(default=None, description="vLLM --quantization value, if any")


class UnitCost(BaseModel):
    """What a million tokens cost on this deployment. Each figure puts the whole GPU bill on that kind of token (how
    per-direction comparisons with hosted APIs are made); `blended` splits nothing and counts both kinds."""

    output_at_load: float = Field(description="USD per million output tokens at the planned average load")
    output_at_goodput: float = Field(description="USD per million output tokens with every replica at its goodput")
    input_at_load: float = Field(description="USD per million prompt tokens at the planned average load")
    input_at_goodput: float = Field(description="USD per million prompt tokens with every replica at its goodput")
    blended_at_load: float = Field(description="USD per million prompt + output tokens at the planned average load")


class Candidate(BaseModel):
    """One deployable configuration with its predictions, cost and verdicts."""

    model: str
    weight_dtype: WeightDtype
    checkpoint: str | None = Field(default=None, description="Hugging Face repo served when it is not `model`: a "
                                   "published pre-quantized checkpoint (kb/data/checkpoints.json)")
    checkpoint_source: str = Field(default="", description="where that checkpoint was verified to exist")
    gpu: str
    tp: int
    pp: int = 1
    nodes_per_replica: int = Field(default=1, ge=1, description="nodes one replica spans (pipeline stages across "
                                   "nodes; rendered as an LLMInferenceService leader + workers)")
    replicas: int
    min_replicas: int
    max_replicas: int
    gpus_total: int
    vllm: VllmSettings
    predicted: Prediction
    goodput_qps: float = Field(description="largest req/s one replica sustains within the SLOs")
    fits: bool
    meets_slos: bool
    slo_verdicts: dict[str, bool] = Field(default_factory=dict)
    class_verdicts: dict[str, dict[str, bool]] = Field(default_factory=dict, description="per traffic class: each "
                                                       "SLO against the class's target")
    monthly_cost_usd: float
    price_source: str = ""
    quality: float | None = None
    params_b: float | None = Field(default=None, description="the model's total parameters, billions")
    hourly_cost_usd: float | None = Field(default=None, description="GPU cost of the planned replicas per hour")
    cost_per_m_tokens: UnitCost | None = None
    reliability_replicas: int = Field(default=0, ge=0, description="replicas added beyond what the load needs, for the "
                                      "availability target")
    reliability_cost_usd_month: float = Field(default=0.0, ge=0, description="monthly cost of those replicas")
    spread: list[str] = Field(default_factory=list, description="topology keys replicas are spread over")
    binding_constraint: str = ""
    explanation: str = ""


class RenderOptions(BaseModel):
    """How a plan was rendered into a deployment. The bundle's plan.json carries it, so a rollback, a teardown
    or a re-proposal renders exactly what was deployed instead of today's defaults."""

    namespace: str
    name: str
    k8s_version: str = "1.31"
    autoscaler: str = "keda"
    monitor: str = "podmonitor"
    repo_url: str | None = None
    prometheus_url: str | None = None
    storage_uri: str | None = None
    servewise_image: str | None = None
    gpu_labels: list[str] = Field(default_factory=list)
    monitor_labels: dict[str, str] = Field(default_factory=dict)
    forge: str | None = Field(default=None, description="forge the report job posts on: local | github | gitlab")
    forge_repo: str | None = None
    forge_url: str | None = None
    target: str = "isvc"
    kserve_version: str | None = None
    storage_class: str | None = None
    pull_gb_s: float | None = None


class Plan(BaseModel):
    """A spec, ranked candidates (best first) and the chosen one: what plan.json holds."""

    id: str
    spec: DeploymentSpec
    candidates: list[Candidate]
    chosen: int | None = Field(description="index into candidates; None when nothing is feasible")
    rationale: str = ""
    infeasible: str | None = None
    provider: str
    kb_version: str
    servewise_version: str
    created_at: str
    render: RenderOptions | None = Field(default=None, description="set in a bundle's plan.json: how it was rendered")
