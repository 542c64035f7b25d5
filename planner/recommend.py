"""Recommend deployments for a spec: enumerate, size, price, keep the Pareto front, rank, explain.

Candidates are models (task, constraints, licence, context) x GPU types (with a price at the chosen
provider) x weight dtypes x tensor parallelism. Each is checked for memory fit, pruned early when
physics alone misses the TPOT target, then sized by goodput (planner.capacity) and priced at
730 hours a month. Nothing here reads files: catalog, fitted params and learned corrections come in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from planner.capacity import Goodput, class_ratios, goodputs, headroom, replicas_for, slo_label, slo_ratios, worst_slo
from planner.catalog import Catalog, Checkpoint, Gpu, ModelArch, WeightDtype
from planner.contracts import (
    Candidate,
    Correction,
    DeploymentSpec,
    Plan,
    Prediction,
    PredictQuery,
    UnitCost,
    VllmSettings,
)
from planner.errors import BadInput, Infeasible, ServewiseError
from planner.latency import LatencyParams, predict_loads, prepare, without_cycle_collection
from planner.memory import (
    default_max_num_batched_tokens,
    default_max_num_seqs,
    deployed_kv_dtype,
    memory_fit,
    weight_bytes_read_per_step,
)
from planner.mix import targets, tightest
from planner.spec import average_qps, peak_qps

HOURS_PER_MONTH = 730  # 365 x 24 / 12
TP_CHOICES = (1, 2, 4, 8)
# Nodes a multi-node replica may span: vLLM 0.19 runs --pipeline-parallel-size across nodes (Ray or its multiprocess
# executor), tensor parallelism stays inside a node's NVLink domain. Tried only when no single node holds the model.
PP_CHOICES = (2, 3, 4)


@dataclass
class _Option:
    model: ModelArch
    gpu: Gpu
    dtype: WeightDtype
    tp: int
    price: float
    price_source: str
    max_num_seqs: int | None = None  # None: vLLM's default
    checkpoint: Checkpoint | None = None  # the published checkpoint served for a quantized dtype
    pp: int = 1  # pipeline stages, one node each (tp = the node's GPUs)


def _dtypes(model: ModelArch, gpu: Gpu, allowed: list[str], checkpoints: list[Checkpoint]) -> list[WeightDtype]:
    """The model's own dtype, plus a quantized one only where it can be served: a published pre-quantized
    checkpoint of this model (kb/data/checkpoints.json), or fp8 that vLLM quantizes on load (`--quantization fp8`,
    GPUs with fp8 tensor cores). int4 has no on-load path in vLLM (AWQ/GPTQ need a checkpoint's quantization config)."""
    published = {c.weight_dtype for c in checkpoints if c.model == model.hf_id}
    options: list[WeightDtype] = [model.native_dtype]
    if model.native_dtype in ("bf16", "fp16"):
        if gpu.fp8_tflops:
            options.append("fp8")
        if "int4" in published:
            options.append("int4")
    return [d for d in options if not allowed or d in allowed]


def _checkpoint(catalog: Catalog, model: ModelArch, dtype: str) -> Checkpoint | None:
    return catalog.checkpoint(model.hf_id, dtype) if dtype != model.native_dtype else None


def _quantization(o: _Option) -> str | None:
    """vLLM's --quantization: only to quantize bf16 weights to fp8 on load; a checkpoint carries its own method."""
    return "fp8" if o.dtype == "fp8" and o.dtype != o.model.native_dtype and o.checkpoint is None else None


def context_len(spec: DeploymentSpec) -> int:
    """vLLM --max-model-len: the longest prompt plus the longest answer the workload allows."""
    prompt = spec.prompt_tokens.max or int(spec.prompt_tokens.mean * 4)
    out = spec.output_tokens.max or int(spec.output_tokens.mean * 4)
    return int(prompt + out)


def _enumerate(spec: DeploymentSpec, catalog: Catalog, provider: str) -> tuple[list[_Option], list[str]]:
    c = spec.constraints
    skipped: list[str] = []
    floored: list[str] = []
    models = []
    for m in catalog.models:
        if c.models and m.hf_id not in c.models:
            continue
        if spec.task not in m.tasks:
            if c.models:
                skipped.append(f"{m.hf_id}: not listed for the task '{spec.task}' (serves {', '.join(m.tasks)})")
            continue
        if c.open_weights_only and not m.open_weights:
            continue
        if c.licenses and m.license not in c.licenses:
            continue
        if below := _below_floor(m, spec):
            floored.append(f"{m.hf_id} ({below})")
            continue
        # The model must hold at least a p90 request (vLLM rejects longer ones than max-model-len).
        need = (spec.prompt_tokens.p90 or 2 * spec.prompt_tokens.mean) + (spec.output_tokens.p90 or 2 * spec.output_tokens.mean)
        if m.max_position_embeddings < need:
            skipped.append(f"{m.hf_id}: context {m.max_position_embeddings:,} < {need:,.0f} tokens")
            continue
        models.append(m)
    options = []
    for g in catalog.gpus:
        if c.gpus and g.name not in c.gpus:
            continue
        price = g.price(provider)
        if not price:
            if not c.gpus or g.name in c.gpus:
                skipped.append(f"{g.name}: no {provider} price in the knowledge base")
            continue
        for m in models:
            for d in _dtypes(m, g, list(c.quantizations), catalog.checkpoints):
                for tp in TP_CHOICES:
                    if m.num_attention_heads % tp == 0 and (not c.max_gpus or tp <= c.max_gpus):
                        options.append(_Option(m, g, d, tp, price.usd_per_gpu_hour, price.source,
                                               checkpoint=_checkpoint(catalog, m, d)))
                node = g.gpus_per_node
                if g.internode_gb_s and m.num_attention_heads % node == 0:
                    options += [_Option(m, g, d, node, price.usd_per_gpu_hour, price.source,
                                        checkpoint=_checkpoint(catalog, m, d), pp=pp) for pp in PP_CHOICES
                                if pp <= m.num_layers and (not c.max_gpus or node * pp <= c.max_gpus)]
    if floored:
        skipped.append(f"{len(floored)} model(s) outside the quality floor or size range (change them with "
                       f"--min-quality / --min-params-b / --max-params-b): {'; '.join(floored[:4])}"
                       + (" …" if len(floored) > 4 else ""))
    return options, skipped


def _below_floor(m: ModelArch, spec: DeploymentSpec) -> str | None:
    """Why a model is under the spec's quality floor or outside its size range (None when it is not)."""
    # Nominal sizes round the parameter count ("70B" is 70.55B): 5 % either side still counts.
    if spec.min_params_b and m.params_total_b < spec.min_params_b * 0.95:
        return f"{m.params_total_b:g}B parameters, below the {spec.min_params_b:g}B minimum"
    if spec.max_params_b and m.params_total_b > spec.max_params_b * 1.05:
        return f"{m.params_total_b:g}B parameters, above the {spec.max_params_b:g}B maximum"
    if spec.min_quality is not None:
        score = _quality(m)
        level = f"'{spec.quality_level}' " if spec.quality_level else ""
        if score is None:
            return f"no published benchmark score to check against the {level}quality floor ({spec.min_quality:g})"
        if score < spec.min_quality:
            return f"quality {score:g} below the {level}floor of {spec.min_quality:g}"
    return None


def _fits(o: _Option, context: int) -> bool:
    return memory_fit(o.model, o.gpu, tp=o.tp, pp=o.pp, weight_dtype=o.dtype, kv_dtype=deployed_kv_dtype(),
                      context_tokens=context).fits


def _prune_tp(options: list[_Option], context: int) -> list[_Option]:
    """Per model x GPU x dtype keep the smallest TP that fits on one node and the next one (more TP rarely pays);
    only when no single node holds the model, the fewest nodes that do (multi-node costs network hops)."""
    groups: dict[tuple, list[_Option]] = {}
    for o in options:
        groups.setdefault((o.model.hf_id, o.gpu.name, o.dtype), []).append(o)
    kept = []
    for opts in groups.values():
        fitting = [o for o in sorted(opts, key=lambda o: (o.pp, o.tp)) if _fits(o, context)]
        single = [o for o in fitting if o.pp == 1]
        kept.extend(single[:2] if single else fitting[:1])
    return kept


def _decode_floor_ms(o: _Option) -> float:
    """Physics alone: one decode step streams the weights from memory at the GPUs' full bandwidth."""
    return weight_bytes_read_per_step(o.model, o.dtype, 1) / (o.tp * o.gpu.mem_bw_gb_s * 1e9) * 1e3  # stages in turn


def _too_slow(o: _Option, spec: DeploymentSpec) -> bool:
    tpot = tightest(spec.slos, spec.traffic_mix).tpot_p90_ms
    return bool(tpot) and _decode_floor_ms(o) > tpot


_SLO_FIELD = {"TTFT p90": ("ttft_p90_ms", lambda p: p.ttft_ms.p90), "TPOT p90": ("tpot_p90_ms", lambda p: p.tpot_ms.p90),
              "E2E p95": ("e2e_p95_ms", lambda p: p.e2e_ms.p95)}


def _below_physics(spec: DeploymentSpec, options: list[_Option], cands: list[Candidate]) -> BadInput | None:
    """A target no allowed model and GPU reaches even serving one request alone is a request to fix,
    not a capacity problem: name the field and the best any allowed configuration can do."""
    slos = tightest(spec.slos, spec.traffic_mix)
    if slos.tpot_p90_ms and options and all(_too_slow(o, spec) for o in options):
        best = min(options, key=_decode_floor_ms)
        return BadInput(f"tpot_p90_ms={slos.tpot_p90_ms:g} is below physics: a decode step streams the weights, "
                        f"at best {_decode_floor_ms(best):.2f} ms ({best.model.hf_id} on {best.tp}x {best.gpu.name}); "
                        "allowed: a larger target, or allow smaller models / faster GPUs")
    if not cands or any(c.goodput_qps > 0 for c in cands):
        return None
    for slo, (field, get) in _SLO_FIELD.items():
        if all(not c.slo_verdicts.get(slo, True) for c in cands):
            best = min(cands, key=lambda c: get(c.predicted))
            return BadInput(f"{field}={getattr(slos, field):g} is below physics: even one request alone takes "
                            f"{get(best.predicted):,.1f} ms at best ({best.model} on {best.tp}x {best.gpu}); allowed: "
                            "a larger target, shorter prompts/answers, or other models / GPUs")
    return None


def _nothing_to_size(spec: DeploymentSpec, options: list[_Option], fitting: list[_Option], notes: list[str]) -> str:
    """Why no configuration was even sized: every model or GPU filtered out, none fits in memory, or all too slow."""
    if not options:
        why = "; ".join(notes[:6]) or f"no model in the catalog serves the task '{spec.task}'"
        return f"no model x GPU to consider after the filters: {why}."
    if not fitting:
        biggest_gpu = max(options, key=lambda o: o.gpu.memory_gb * o.tp)
        fit = memory_fit(biggest_gpu.model, biggest_gpu.gpu, tp=biggest_gpu.tp, weight_dtype=biggest_gpu.dtype,
                         kv_dtype=deployed_kv_dtype(), context_tokens=context_len(spec))
        return (f"no allowed model fits in the memory of the allowed GPUs at TP up to {max(TP_CHOICES)} "
                f"(e.g. {biggest_gpu.model.hf_id} ({biggest_gpu.dtype}) on {biggest_gpu.tp}x {biggest_gpu.gpu.name}: "
                f"{fit.reason}).")
    return (f"every configuration that fits is slower than the TPOT target of "
            f"{tightest(spec.slos, spec.traffic_mix).tpot_p90_ms:g} ms even "
            "unloaded; " + ("; ".join(notes[:3]) if notes else "allow faster GPUs or smaller models") + ".")


def _quality(m: ModelArch) -> float | None:
    return m.quality[0].score if m.quality else None


def _query(o: _Option, spec: DeploymentSpec) -> PredictQuery:
    return PredictQuery(model=o.model.hf_id, gpu=o.gpu.name, tp=o.tp, pp=o.pp, isl=max(1, round(spec.prompt_tokens.mean)),
                        osl=max(2, round(spec.output_tokens.mean)), qps=1.0, weight_dtype=o.dtype, kv_dtype=deployed_kv_dtype(),
                        isl_cv=spec.prompt_tokens.cv, osl_cv=spec.output_tokens.cv, max_num_seqs=o.max_num_seqs)


def _candidates(options: list[_Option], spec: DeploymentSpec, params: LatencyParams, context: int,
                corrections: dict[tuple[str, str, int], Correction], notes: list[str]) -> list[Candidate]:
    """Size and predict every option; each stage runs over all options in one vectorised pass."""
    prepared = []
    mix = tuple(spec.traffic_mix)  # one tuple for all: the per-class predictions of the options run as one batch
    for o in options:
        try:
            prepared.append((o, prepare(_query(o, spec), o.model, o.gpu, mix),
                             corrections.get((o.model.hf_id, o.gpu.name, o.tp))))
        except ServewiseError as exc:
            notes.append(f"{o.model.hf_id} on {o.tp}x {o.gpu.name} ({o.dtype}): {exc.message}")
    gps = goodputs([(prep, corr) for _, prep, corr in prepared], params, spec.slos, mix)
    peak, avg = peak_qps(spec), average_qps(spec)
    sizes = [_reliable(replicas_for(peak, avg, gp.qps, spec.traffic.burstiness) if gp.qps > 0 else (1, 1, 1), spec)
             for gp in gps]
    # The deployment's prediction: the peak spread over its replicas, with the same vLLM batch limit
    # the goodput search used, so that the verdicts and the rendered --max-num-seqs agree.
    at_peak = predict_loads([(prep, peak / size[0][0], corr) for (_, prep, corr), size in zip(prepared, sizes)], params)
    return [_candidate(o, spec, context, gp, size, prep.max_num_seqs, pred if gp.qps > 0 else gp.at_goodput)
            for (o, prep, _), gp, size, pred in zip(prepared, gps, sizes, at_peak)]


def _reliable(size: tuple[int, int, int], spec: DeploymentSpec) -> tuple[tuple[int, int, int], int]:
    """Replicas for the availability target, and how many of them the load alone would not need.

    99.9 % allows 43 minutes of downtime a month: one replica's restarts, upgrades and node drains use that up, so
    at least two replicas run, and the autoscaler never goes below two. 99.99 % (4 minutes) needs the peak carried
    with one replica lost: N+1."""
    need, low, high = size
    r = spec.reliability_target
    if not r or r < 99.9:
        return size, 0
    want = need + 1 if r >= 99.99 else max(need, 2)
    return (want, min(max(low, 2), want), max(high, want + 1)), want - need


def _unit_cost(spec: DeploymentSpec, hourly: float, replicas: int, goodput_qps: float) -> UnitCost | None:
    """USD per million tokens at the planned average load and with every replica at its goodput."""
    avg = average_qps(spec)
    isl, osl = spec.prompt_tokens.mean, spec.output_tokens.mean
    full = replicas * goodput_qps
    if avg <= 0 or full <= 0:
        return None

    def per_m(req_s: float, tokens: float) -> float:
        return round(hourly / (req_s * tokens * 3600) * 1e6, 4)

    return UnitCost(output_at_load=per_m(avg, osl), output_at_goodput=per_m(full, osl), input_at_load=per_m(avg, isl),
                    input_at_goodput=per_m(full, isl), blended_at_load=per_m(avg, isl + osl))


def _candidate(o: _Option, spec: DeploymentSpec, context: int, gp: Goodput, sized: tuple[tuple[int, int, int], int],
               max_seqs: int, at_load: Prediction) -> Candidate:
    (replicas, low, high), extra = sized
    peak = peak_qps(spec)
    ratios = slo_ratios(at_load, spec.slos, spec.traffic_mix)
    verdicts = {k: v <= 1.0 for k, v in ratios.items()}
    class_verdicts = {name: {k: v <= 1.0 for k, v in r.items()}
                      for name, r in class_ratios(at_load, spec.slos, spec.traffic_mix).items()}
    meets = gp.qps > 0 and all(verdicts.values()) and not at_load.saturated
    gpus_total = replicas * o.tp * o.pp
    hourly = gpus_total * o.price
    cost = hourly * HOURS_PER_MONTH
    reliability_cost = extra * o.tp * o.pp * o.price * HOURS_PER_MONTH
    spread = ["kubernetes.io/hostname", "topology.kubernetes.io/zone"] if replicas >= 2 and extra >= 0 and \
        (spec.reliability_target or 0) >= 99.9 else []
    slo, cls, _ = worst_slo(at_load, spec.slos, spec.traffic_mix)
    if gp.qps > 0 and slo:
        field, value = _SLO_FIELD[slo]
        seen = next(x for x in at_load.classes if x.name == cls) if cls else at_load
        target = targets(next(c for c in spec.traffic_mix if c.name == cls), spec.slos) if cls else spec.slos
        binding = (f"{slo_label(slo, cls)} at {value(seen):,.0f} of {getattr(target, field):,.0f} ms with {replicas} "
                   f"replica(s); one replica holds {gp.qps:.2f} req/s before {gp.binding}")
    else:
        binding = gp.binding
    quant_note = ""
    if o.checkpoint:
        quant_note = (f" Weights served as {o.dtype} from the published checkpoint {o.checkpoint.repo} "
                      f"({o.checkpoint.method}; vLLM reads the method from its config.json; seen at {o.checkpoint.source}).")
    elif o.dtype != o.model.native_dtype:
        quant_note = f" Weights served as {o.dtype}: vLLM quantizes the {o.model.native_dtype} weights on load (--quantization fp8)."
    return Candidate(
        model=o.model.hf_id, weight_dtype=o.dtype, checkpoint=o.checkpoint.repo if o.checkpoint else None,
        checkpoint_source=o.checkpoint.source if o.checkpoint else "",
        gpu=o.gpu.name, tp=o.tp, pp=o.pp, nodes_per_replica=o.pp, replicas=replicas, min_replicas=low,
        max_replicas=high, gpus_total=gpus_total,
        vllm=VllmSettings(max_model_len=min(context, o.model.max_position_embeddings), max_num_seqs=max_seqs,
                          max_num_batched_tokens=default_max_num_batched_tokens(o.gpu),
                          enable_prefix_caching=spec.prefix_share > 0,
                          quantization=_quantization(o)),
        predicted=at_load.model_copy(update={"request_s": round(peak, 4), "output_tok_s": round(peak * spec.output_tokens.mean, 2)}),
        goodput_qps=round(gp.qps, 4), fits=at_load.fits, meets_slos=meets, slo_verdicts=verdicts,
        class_verdicts=class_verdicts,
        monthly_cost_usd=round(cost, 2), price_source=o.price_source, quality=_quality(o.model),
        params_b=o.model.params_total_b, hourly_cost_usd=round(hourly, 4),
        cost_per_m_tokens=_unit_cost(spec, hourly, replicas, gp.qps), reliability_replicas=extra,
        reliability_cost_usd_month=round(reliability_cost, 2), spread=spread,
        binding_constraint=binding,
        explanation=(f"{replicas} x {o.tp * o.pp} {o.gpu.name} at ${o.price:.2f}/GPU-h for {peak:.2f} req/s peak "
                     f"(+{headroom(spec.traffic.burstiness) * 100:.0f} % headroom); {at_load.calibration}.{quant_note}"
                     + _availability_note(spec, replicas, extra, reliability_cost) + _multinode_note(o)),
    )


def _multinode_note(o: _Option) -> str:
    if o.pp == 1:
        return ""
    return (f" Multi-node: no single {o.gpu.gpus_per_node}-GPU node holds {o.model.hf_id} ({o.dtype}), so each replica "
            f"spans {o.pp} nodes: tensor parallel {o.tp} within a node (NVLink), pipeline parallel {o.pp} across nodes "
            f"({o.gpu.internode_gb_s:g} GB/s per GPU between nodes: {o.gpu.internode_source}); served as one vLLM "
            "instance with --pipeline-parallel-size (KServe LLMInferenceService leader + workers).")


def _availability_note(spec: DeploymentSpec, replicas: int, extra: int, cost: float) -> str:
    if not spec.reliability_target or spec.reliability_target < 99.9:
        return ""
    added = f" ({extra} added for it, ${cost:,.0f}/month)" if extra else " (the load already needs them)"
    return (f" Availability {spec.reliability_target:g} %: {replicas} replicas{added}, spread over nodes (and zones where "
            "nodes carry zone labels); a PodDisruptionBudget keeps all but one serving during drains.")


def evaluate(spec: DeploymentSpec, catalog: Catalog, params: LatencyParams, *, provider: str, model: str, gpu: str,
             tp: int, weight_dtype: WeightDtype | None = None,
             corrections: dict[tuple[str, str, int], Correction] | None = None, pp: int = 1) -> Candidate:
    """Size, predict and price one given configuration for a spec (what-if and explicit choices)."""
    m, g = catalog.model(model), catalog.gpu(gpu)
    price = g.price(provider)
    if not price:
        raise BadInput(f"{g.name} has no {provider} price in the knowledge base; providers with one: "
                       f"{', '.join(p.provider for p in g.prices) or 'none'}")
    if pp > 1 and not g.internode_gb_s:
        raise BadInput(f"pp={pp} puts pipeline stages on {pp} nodes, but the catalog has no inter-node bandwidth for "
                       f"{g.name} to predict the hand-offs with; allowed: pp=1 on {g.name}, or a GPU type with it "
                       f"({', '.join(x.name for x in catalog.gpus if x.internode_gb_s) or 'none'})")
    dtype = weight_dtype or m.native_dtype
    if dtype not in _dtypes(m, g, [dtype], catalog.checkpoints):
        raise BadInput(f"{m.hf_id} cannot be served as {dtype} on {g.name}: "
                       + ("fp8 needs a GPU with fp8 tensor cores for vLLM to quantize on load" if dtype == "fp8" else
                          f"no published {dtype} checkpoint of it is in the catalog (kb/data/checkpoints.json) and vLLM "
                          "cannot quantize to it on load")
                       + f"; servable: {', '.join(_dtypes(m, g, [], catalog.checkpoints))}")
    o = _Option(m, g, dtype, tp, price.usd_per_gpu_hour, price.source, checkpoint=_checkpoint(catalog, m, dtype), pp=pp)
    notes: list[str] = []
    cands = _candidates([o], spec, params, context_len(spec), corrections or {}, notes)
    if not cands:
        raise Infeasible(notes[0] if notes else f"{m.hf_id} on {tp}x {g.name} cannot serve this spec")
    return cands[0]


def _latency_score(c: Candidate, spec: DeploymentSpec) -> float:
    return max(slo_ratios(c.predicted, spec.slos, spec.traffic_mix).values(), default=0.0)


def _pareto(cands: list[Candidate], spec: DeploymentSpec, which: list[int]) -> set[int]:
    """Those of `which` (indices into cands) that no candidate beats on cost, latency and quality at once."""
    pts = [(c.monthly_cost_usd, _latency_score(c, spec), -(c.quality or 0.0)) for c in cands]
    return {i for i in which
            if not any(b != pts[i] and all(b[k] <= pts[i][k] for k in range(3)) for b in pts)}


def _rank_key(c: Candidate, spec: DeploymentSpec, min_cost: float):
    lat = _latency_score(c, spec)
    quality = c.quality or 0.0
    if spec.priority == "cost":
        return (c.monthly_cost_usd, lat)
    if spec.priority == "latency":
        return (round(lat, 2), c.monthly_cost_usd)
    if spec.priority == "quality":
        return (-quality, c.monthly_cost_usd)
    # balanced: relative cost, plus how close to the SLOs it runs, minus quality (0-100 scale / 100)
    return (c.monthly_cost_usd / min_cost + 0.5 * lat - quality / 100, c.monthly_cost_usd)


@without_cycle_collection
def recommend(spec: DeploymentSpec, catalog: Catalog, params: LatencyParams, *, provider: str, top: int = 5,
              gpu_budget: dict[str, int] | None = None,
              corrections: dict[tuple[str, str, int], Correction] | None = None,
              plan_id: str | None = None, created_at: str | None = None, servewise_version: str = "") -> Plan:
    """A Plan: the spec, the best `top` candidates (best first), the chosen index and why.

    Raises BadInput when an SLO target is below physics (no allowed configuration meets it even serving one
    request alone); a spec that is possible in principle but not within the constraints gives a Plan with
    chosen=None and `infeasible` saying which SLO failed."""
    context = context_len(spec)
    options_all, notes = _enumerate(spec, catalog, provider)
    options = options_all
    fitting = _prune_tp(options, context)
    options = [o for o in fitting if not _too_slow(o, spec)]
    sized = _candidates(options, spec, params, context, corrections or {}, notes)
    if bad := _below_physics(spec, fitting, sized):
        raise bad
    cands: list[Candidate] = []
    blocked: list[tuple[Candidate, str]] = []
    for cand in sized:
        if spec.constraints.max_gpus and cand.gpus_total > spec.constraints.max_gpus:
            blocked.append((cand, f"over the {spec.constraints.max_gpus}-GPU limit"))
        elif gpu_budget is not None and cand.gpus_total > gpu_budget.get(cand.gpu, 0):
            blocked.append((cand, f"cluster has {gpu_budget.get(cand.gpu, 0)} free"))
        else:
            cands.append(cand)
    # Only configurations that would have met the SLOs are worth naming as blocked; fewest GPUs first.
    why_blocked = [f"{c.model} on {c.gpus_total}x {c.gpu}: {why}"
                   for c, why in sorted(blocked, key=lambda cw: cw[0].gpus_total) if c.meets_slos]
    feasible = [c for c in cands if c.meets_slos and c.fits]
    for budget, cost_of, unit in ((spec.budget_usd_month, lambda c: c.monthly_cost_usd, "month"),
                                  (spec.budget_usd_hour, lambda c: c.hourly_cost_usd or 0.0, "hour")):
        if not budget:
            continue
        within = [c for c in feasible if cost_of(c) <= budget]
        if feasible and not within:
            notes.append(f"no SLO-meeting candidate within the ${budget:,.2f}/{unit} budget; "
                         "showing the cheapest ones over it")
        feasible = within or feasible
    pid = plan_id or "plan-" + hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:10]
    common = dict(id=pid, spec=spec, provider=provider, kb_version=catalog.kb_version,
                  servewise_version=servewise_version, created_at=created_at or "")
    if not feasible:
        # Closest: what meets the SLOs but was blocked (fewest GPUs first), else what comes nearest the SLOs.
        meeting_blocked = sorted((c for c, _ in blocked if c.meets_slos), key=lambda c: (c.gpus_total, c.monthly_cost_usd))
        closest = (meeting_blocked or sorted(cands, key=lambda c: (_latency_score(c, spec), c.monthly_cost_usd)))[:top]
        missed: dict[str, int] = {}
        for c in cands:
            for k, ok in c.slo_verdicts.items():
                missed[k] = missed.get(k, 0) + (not ok)
        worst = ", ".join(f"{k} missed by {n} of {len(cands)}" for k, n in sorted(missed.items(), key=lambda kv: -kv[1]) if n)
        if why_blocked:
            head = (f"every configuration that meets the SLOs is blocked ({len(why_blocked)}); the smallest: "
                    + "; ".join(why_blocked[:3]) + ". ")
        elif not cands:
            head = _nothing_to_size(spec, options_all, fitting, notes) + " "
        else:
            head = f"no candidate meets every SLO ({worst}). "
        reason = head + "Closest candidates are listed; relax an SLO, allow more GPUs or another GPU type."
        return Plan(candidates=closest, chosen=None, infeasible=reason, rationale="; ".join(notes[:8]), **common)
    min_cost = min(c.monthly_cost_usd for c in feasible)
    ranked = sorted(feasible, key=lambda c: _rank_key(c, spec, min_cost))
    kept: list[tuple[int, Candidate]] = []
    seen = set()
    for i, c in enumerate(ranked):
        if (c.model, c.gpu) not in seen:
            seen.add((c.model, c.gpu))
            kept.append((i, c))
        if len(kept) == top:
            break
    front = _pareto(ranked, spec, [i for i, _ in kept])
    limited = _tighter_batch_limits([c for _, c in kept], spec, catalog, params, provider, context, corrections or {})
    picked = [c.model_copy(update={"explanation": c.explanation + (" Pareto-optimal (cost, latency, quality)." if i in front else "")})
              for (i, _), c in zip(kept, limited)]
    return Plan(candidates=picked, chosen=0, rationale=_rationale(picked, spec, why_blocked, notes), **common)


BATCH_LIMITS = (32, 64, 128, 256)  # --max-num-seqs tried below vLLM's default on the GPU (256, or 1024 on large GPUs)


def _tighter_batch_limits(picked: list[Candidate], spec: DeploymentSpec, catalog: Catalog, params: LatencyParams,
                          provider: str, context: int, corrections: dict[tuple[str, str, int], Correction]) -> list[Candidate]:
    """The vLLM batch limit of each kept candidate: the smallest of BATCH_LIMITS that keeps the same replicas and
    every SLO, else vLLM's default. A tighter limit bounds KV-cache use (no preemption under a burst) and keeps a
    burst waiting in the queue rather than slowing every running stream. Only the kept few are re-sized: the
    limit never makes a candidate cheaper (goodput does not grow as the limit shrinks), so ranking is unchanged."""
    variants = []
    for c in picked:
        g = catalog.gpu(c.gpu)
        price = g.price(provider)
        m = catalog.model(c.model)
        variants += [_Option(m, g, c.weight_dtype, c.tp, price.usd_per_gpu_hour, price.source, n,
                             _checkpoint(catalog, m, c.weight_dtype), pp=c.pp)
                     for n in BATCH_LIMITS if n < default_max_num_seqs(g)]
    sized = _candidates(variants, spec, params, context, corrections, [])
    out = []
    for c in picked:
        tighter = next((v for v in sized if (v.model, v.gpu, v.tp, v.pp, v.weight_dtype) == (c.model, c.gpu, c.tp, c.pp, c.weight_dtype)
                        and v.meets_slos and v.replicas == c.replicas), None)
        out.append(c if tighter is None else tighter.model_copy(update={"explanation": tighter.explanation + (
            f" --max-num-seqs {tighter.vllm.max_num_seqs}: the smallest batch limit that keeps {c.replicas} replica(s) "
            "within every SLO.")}))
    return out


def _rationale(picked: list[Candidate], spec: DeploymentSpec, blocked: list[str], notes: list[str]) -> str:
    top = picked[0]
    unit = top.cost_per_m_tokens
    per_m = (f" (${unit.output_at_load:,.2f} per million output tokens at the planned load, "
             f"${unit.output_at_goodput:,.2f} at full goodput)") if unit else ""
    shape = f"{top.tp}x {top.gpu}" if top.pp == 1 else f"{top.pp} nodes x {top.tp} {top.gpu} (TP {top.tp} x PP {top.pp})"
    text = (f"Priority '{spec.priority}': {top.model} ({top.weight_dtype}) on {top.replicas} replica(s) of {shape} "
            f"meets every SLO at ${top.monthly_cost_usd:,.0f}/month{per_m}; binding: {top.binding_constraint}.")
    if len(picked) > 1:
        text += " " + _versus(top, picked[1], spec)
    if blocked:
        text += f" Blocked: {'; '.join(blocked[:5])}."
    if notes:
        text += f" Notes: {'; '.join(notes[:5])}."
    return text


def _versus(top: Candidate, ru: Candidate, spec: DeploymentSpec) -> str:
    """Why the top pick ranks above the runner-up: where it wins, and what it gives up, in the ranking's terms."""
    wins, losses = [], []
    dc = ru.monthly_cost_usd - top.monthly_cost_usd
    if abs(dc) >= 1:
        (wins if dc > 0 else losses).append(f"${abs(dc):,.0f}/month {'cheaper' if dc > 0 else 'dearer'}")
    lt, lr = _latency_score(top, spec), _latency_score(ru, spec)
    if abs(lt - lr) >= 0.01:
        (wins if lt < lr else losses).append(f"{'more' if lt < lr else 'less'} SLO headroom (tightest SLO at "
                                             f"{lt:.0%} of its target vs {lr:.0%})")
    if top.quality is not None and ru.quality is not None and top.quality != ru.quality:
        better = top.quality > ru.quality
        wins_or_losses = wins if better else losses
        wins_or_losses.append(f"{'higher' if better else 'lower'} benchmark quality ({top.quality:g} vs {ru.quality:g})")
    text = (f"It beats the runner-up {ru.model} ({ru.weight_dtype}) on {ru.gpus_total}x {ru.gpu} under the "
            f"'{spec.priority}' priority: {', '.join(wins) or 'a tie on cost, headroom and quality'}")
    return text + (f", despite {' and '.join(losses)}." if losses else ".")
