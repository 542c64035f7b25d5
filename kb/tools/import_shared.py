"""Regenerate kb/data/models.json, gpus.json and benchmarks.jsonl from the team's shared data.

Run by a maintainer when ../shared/data changes: `python -m kb.tools.import_shared ../shared/data`.
The output files are reviewed and committed; a user's clone never needs ../shared.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from planner.catalog import CHAT_SUFFIX, BenchmarkRow, Gpu, ModelArch

DATA = Path(__file__).resolve().parents[1] / "data"

# Per-GPU bidirectional bandwidth of the link tensor parallelism uses. NVLink figures are the
# datasheets' per-GPU totals; PCIe Gen4 x16 is 32 GB/s each way (PCI-SIG), 64 GB/s both ways.
_LINK_GB_S = [(r"NVLink5 1800", 1800.0), (r"NVLink 900", 900.0), (r"NVLink 600", 600.0),
              (r"Infinity Fabric 896", 896.0), (r"PCIe Gen4 x16", 64.0)]

# Dense FP4 tensor throughput (TFLOPS), half the "with sparsity" figures NVIDIA publishes: HGX B200
# datasheet 18 PF sparse per GPU, HGX B300 144 PF sparse / 8 GPUs, GB200 NVL72 1,440 PF sparse / 72 GPUs.
# Recalled from those datasheets, not re-fetched here: listed under `uncertain`.
_FP4_TFLOPS = {"B200-180GB": 9000.0, "B300-288GB": 13500.0, "GB200-186GB": 10000.0}

# Values of the NVIDIA GPU operator's `nvidia.com/gpu.product` node label as GPU feature
# discovery publishes them (the CUDA device name with spaces replaced by dashes).
_PRODUCT_LABELS = {
    "H100-SXM-80GB": ["NVIDIA-H100-80GB-HBM3"],
    "H200-141GB": ["NVIDIA-H200"],
    "B200-180GB": ["NVIDIA-B200"],
    "B300-288GB": ["NVIDIA-B300-SXM6-AC"],
    "GB200-186GB": ["NVIDIA-GB200"],
    "A100-80GB": ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"],
    "A100-40GB": ["NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"],
    "L40S": ["NVIDIA-L40S"],
    "L4": ["NVIDIA-L4"],
    "A10G": ["NVIDIA-A10G"],
    "MI300X": [],
}

# Network between nodes, per GPU and direction, for pipeline stages on different nodes (multi-node plans):
# (GB/s, source). Each is the AWS instance's network bandwidth over its GPUs, both as Karpenter's instance-type
# reference lists them (labels instance-network-bandwidth, in Mb/s, and instance-gpu-count), generated from the EC2
# API. GPUs without an entry get no multi-node plans.
_KARPENTER = ("github:aws/karpenter-provider-aws:website/content/en/docs/reference/instance-types.md"
              "@1d927085dd81a9df9301e613f371dac5b4d16bfe")


def _internode(instance: str, gbit_s: int, gpus: int, note: str = "") -> tuple[float, str]:
    return gbit_s / gpus / 8, (f"AWS {instance}: {gbit_s:,} Gb/s network for {gpus} GPUs = {gbit_s / gpus:g} Gb/s per "
                                f"GPU ({_KARPENTER}, {instance}: instance-network-bandwidth {gbit_s * 1000}, "
                                f"instance-gpu-count {gpus}){note}")


_INTERNODE = {
    "H100-SXM-80GB": _internode("p5.48xlarge", 3200, 8, "; DGX H100 likewise has one 400 Gb/s ConnectX-7 per GPU"),
    "H200-141GB": _internode("p5e.48xlarge", 3200, 8),
    "B200-180GB": _internode("p6-b200.48xlarge", 3200, 8),
    "A100-80GB": _internode("p4de.24xlarge", 400, 8),
    "A100-40GB": _internode("p4d.24xlarge", 400, 8),
    "L40S": _internode("g6e.48xlarge", 400, 8),
    "L4": _internode("g6.48xlarge", 100, 8),
    "A10G": _internode("g5.48xlarge", 100, 8),
}

# Architectures whose q/k RMSNorm spans all heads ("qk_norm_type": "per_layer" in MiniMax-M2's config.json);
# vLLM implements it with MiniMaxText01RMSNormTP.forward_qk (vllm/model_executor/models/minimax_m2.py), which
# needs one more all-reduce per layer under tensor parallelism.
_QK_NORM_ACROSS_HEADS = {"minimax_m2"}

# Tasks each family is commonly deployed for, from the model cards' stated intended uses.
_TASKS = {
    "code": ["Qwen/", "deepseek-ai/", "moonshotai/", "MiniMaxAI/", "zhipuai/", "openai/gpt-oss", "meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.3"],
    # Models that think before answering (DeepSeek-R1, gpt-oss reasoning effort, Qwen3 thinking mode, ...).
    "reasoning": ["Qwen/Qwen3", "openai/gpt-oss", "deepseek-ai/DeepSeek-R1", "moonshotai/", "zhipuai/", "MiniMaxAI/"],
}


def _dtype(native: str) -> tuple[str, str | None]:
    n = native.lower()
    for key, val in (("mxfp4", "mxfp4"), ("int4", "int4"), ("fp8", "fp8_block" if "block" in n else "fp8"),
                     ("bfloat16", "bf16"), ("float16", "fp16")):
        if key in n:
            return val, (native if native not in ("bfloat16", "float16") else None)
    raise ValueError(f"unknown native dtype {native!r}")


def _aliases(hf_id: str, given: list[str]) -> list[str]:
    """Given aliases plus short lower-case names with and without the chat-tuning suffix,
    so `llama-3.1-8b` and `mistral-7b` resolve the way people type them."""
    out = set(given)
    for name in (hf_id, *given):
        short = name.split("/")[-1].lower()
        out.add(short)
        out.add(re.sub(CHAT_SUFFIX, "", short))
    return sorted(out - {hf_id})


def models(shared: Path) -> list[dict]:
    src = json.loads((shared / "models.json").read_text())
    out = []
    for m in src["models"]:
        dtype, note = _dtype(m["native_dtype"])
        tasks = ["chat", "summarization", "rag", "translation", "batch", "agent"]
        if any(m["hf_id"].startswith(p) for p in _TASKS["code"]):
            tasks += ["code", "completion"]
        if any(m["hf_id"].startswith(p) for p in _TASKS["reasoning"]):
            tasks += ["reasoning"]
        row = {k: v for k, v in m.items() if k in ModelArch.model_fields}
        if m.get("architecture") in _QK_NORM_ACROSS_HEADS:
            row["attention"] = {**row["attention"], "qk_norm": "across_heads"}
        row.update(native_dtype=dtype, native_dtype_note=note, tasks=tasks,
                   aliases=_aliases(m["hf_id"], m.get("aliases", [])))
        if m.get("params_note"):
            row["notes"] = "; ".join(x for x in (m.get("notes"), m["params_note"]) if x)
        out.append(ModelArch.model_validate(row).model_dump(mode="json", exclude_none=True))
    return out


def gpus(shared: Path) -> list[dict]:
    src = json.loads((shared / "gpus.json").read_text())
    out = []
    for g in src["gpus"]:
        link = next(bw for pat, bw in _LINK_GB_S if re.search(pat, g["interconnect"]))
        prices = [{"provider": _provider(k), "usd_per_gpu_hour": v, "source": _price_source(k, g["name"])}
                  for k, v in g["price_usd_per_gpu_hour"].items()]
        row = {k: v for k, v in g.items() if k in Gpu.model_fields and k != "prices"}
        if g["name"] in _FP4_TFLOPS:
            row["fp4_tflops"] = _FP4_TFLOPS[g["name"]]
            row["uncertain"] = [*g.get("uncertain", []), "fp4_tflops recalled from NVIDIA's datasheet (half the sparse figure)"]
        if g["name"] in _INTERNODE:
            row["gpus_per_node"], (row["internode_gb_s"], row["internode_source"]) = 8, _INTERNODE[g["name"]]
        row.update(interconnect_gb_s=link, prices=prices, k8s_product_labels=_PRODUCT_LABELS[g["name"]],
                   source="; ".join(src["sources"][:1]) + " (via shared/data/gpus.json)")
        out.append(Gpu.model_validate(row).model_dump(mode="json", exclude_none=True))
    return out


def _provider(key: str) -> str:
    return "aws" if key.startswith("aws") else "coreweave" if key.startswith("coreweave") else key


_AWS_INSTANCE = {"H100-SXM-80GB": "p5.48xlarge", "H200-141GB": "p5e.48xlarge", "B200-180GB": "p6-b200.48xlarge",
                 "A100-80GB": "p4de.24xlarge", "A100-40GB": "p4d.24xlarge"}


def _price_source(key: str, gpu: str) -> str:
    if key.startswith("aws"):
        inst = key.split("_2026_")[-1] if "_2026_" in key else _AWS_INSTANCE[gpu]
        return f"AWS EC2 on-demand pricing, us-east-1, 2026 ({inst}), per GPU (instance price / GPUs)"
    return "CoreWeave public GPU pricing, February 2026, per GPU-hour"


def benchmarks(shared: Path) -> list[str]:
    lines = []
    for raw in (shared / "benchmarks" / "calibration.jsonl").read_text().splitlines():
        if raw.strip():
            lines.append(BenchmarkRow.model_validate_json(raw).model_dump_json(exclude_none=False))
    return lines


def published(existing: Path) -> list[str]:
    """Rows of the seed file that did not come from the shared data (published runs added with their source,
    benchmarks/public_runs.jsonl): kept when the shared rows are regenerated."""
    if not existing.exists():
        return []
    return [raw for raw in existing.read_text().splitlines()
            if raw.strip() and BenchmarkRow.model_validate_json(raw).source != "aiconfigurator-silicon"]


def main(shared: str) -> None:
    root = Path(shared)
    from kb.tools.catalog_models import apply  # the models added from config.json copies stay in the catalog

    (DATA / "models.json").write_text(json.dumps(apply(models(root)), indent=1) + "\n")
    (DATA / "gpus.json").write_text(json.dumps(gpus(root), indent=1) + "\n")
    seed = DATA / "benchmarks.jsonl"
    seed.write_text("\n".join(benchmarks(root) + published(seed)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
