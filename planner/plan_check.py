"""A plan read back (plan.json from a person, a forge or the knowledge base) is checked again before anything
acts on it: a hand-edited file must not render `nvidia.com/gpu: -4`, pick a candidate that does not exist or
deploy a model on a GPU it does not fit. Pure: the catalog comes in as an argument."""

from __future__ import annotations

from planner.catalog import Catalog
from planner.contracts import Plan
from planner.errors import BadInput
from planner.memory import deployed_kv_dtype, memory_fit


def check_plan(plan: Plan, catalog: Catalog) -> Plan:
    """`plan` itself when servewise could have made it; BadInput naming the first thing that is wrong."""
    n = len(plan.candidates)
    if plan.chosen is not None and not 0 <= plan.chosen < n:
        raise BadInput(f"plan {plan.id}: chosen is {plan.chosen}, not an index into its {n} candidate(s)"
                       + (f" (0 to {n - 1})" if n else ""))
    for i, c in enumerate(plan.candidates):
        where = f"plan {plan.id}, candidate {i}"
        model, gpu = catalog.model(c.model), catalog.gpu(c.gpu)
        if c.tp < 1 or c.pp < 1:
            raise BadInput(f"{where}: tp and pp must be at least 1 (tp={c.tp}, pp={c.pp})")
        if model.num_attention_heads % c.tp:
            raise BadInput(f"{where}: tp={c.tp} does not divide {model.hf_id}'s {model.num_attention_heads} attention "
                           "heads (vLLM refuses it)")
        if c.pp > model.num_layers:
            raise BadInput(f"{where}: pp={c.pp} exceeds {model.hf_id}'s {model.num_layers} layers")
        if not 1 <= c.min_replicas <= c.max_replicas or not c.min_replicas <= c.replicas <= c.max_replicas:
            raise BadInput(f"{where}: replicas must satisfy 1 <= min_replicas <= replicas <= max_replicas "
                           f"(got {c.min_replicas} <= {c.replicas} <= {c.max_replicas})")
        v = c.vllm
        if not (0 < v.gpu_memory_utilization <= 1 and v.max_num_seqs >= 1 and v.max_num_batched_tokens >= 1
                and 1 <= v.max_model_len <= model.max_position_embeddings):
            raise BadInput(f"{where}: vLLM settings out of range (gpu_memory_utilization in (0, 1], max_num_seqs and "
                           f"max_num_batched_tokens >= 1, max_model_len between 1 and {model.max_position_embeddings:,})")
        if i == plan.chosen:
            mem = memory_fit(model, gpu, tp=c.tp, pp=c.pp, weight_dtype=c.weight_dtype, kv_dtype=deployed_kv_dtype(v.kv_cache_dtype),
                             gpu_memory_utilization=v.gpu_memory_utilization, context_tokens=v.max_model_len)
            if not mem.fits:
                raise BadInput(f"{where}: {model.hf_id} ({c.weight_dtype}) does not fit on {c.tp * c.pp}x {gpu.name} "
                               f"with a {v.max_model_len:,}-token context; re-plan with `servewise recommend`")
    return plan
