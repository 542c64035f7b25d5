"""Re-derive the GPUStack performance-lab rows of benchmarks/public_runs.jsonl from the lab's own pages.

GPUStack publishes its tuning experiments as markdown (github.com/gpustack/gpustack, docs/performance-lab/<model>/
<gpu>.md): each page names the engine versions and hardware, shows every serving command, and pastes the
`vllm bench serve` result blocks. This script reads the pages from a local bare clone at one commit, keeps the runs
servewise can score and prints why the others are left out:

- kept: vLLM runs whose result block reports `Maximum request concurrency` (a closed loop of that many clients,
  `vllm bench serve --max-concurrency C`), on an NVIDIA GPU of the catalog, for a catalog model;
- left out: runs of other engines (SGLang, TensorRT-LLM); runs with no concurrency limit (all prompts sent at once,
  a burst, not a closed loop); pages measured with guidellm at a constant request rate (an open loop: its
  `Maximum request concurrency` is the peak it observed, not a limit); Ascend NPU pages; runs with speculative
  decoding, which servewise does not model; the same run pasted twice on a page.

    .venv/bin/python benchmarks/extract_gpustack.py [REPO] [--commit SHA] [--write]

REPO defaults to /work/.mirror/gpustack+gpustack/repo (a bare clone, e.g. from `git clone --bare`), the commit to
COMMIT below. Without --write the rows are printed as JSON lines; with it they replace the rows of source
`gpustack-performance-lab` in benchmarks/public_runs.jsonl and in the seed data kb/data/benchmarks.jsonl (rows of
other sources stay as they are, rows kept keep their place).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _data import replace_source_rows  # noqa: E402

from planner.catalog import BenchmarkRow  # noqa: E402

SOURCE = "gpustack-performance-lab"
COMMIT = "47277d79f4a5bae12a2d25e9ecbed2a2177a5f2d"
DEFAULT_REPO = Path("/work/.mirror/gpustack+gpustack/repo")
PAGES_DIR = "docs/performance-lab"
PUBLIC = ROOT / "benchmarks" / "public_runs.jsonl"
SEED = ROOT / "kb" / "data" / "benchmarks.jsonl"

# Page directory -> (catalog hf_id, weight dtype of the checkpoint the page serves, what the mapping rests on).
MODELS: dict[str, tuple[str, str, str]] = {
    "qwen3-8b": ("Qwen/Qwen3-8B", "bf16", "serves Qwen/Qwen3-8B (bf16)"),
    "gpt-oss-120b": ("openai/gpt-oss-120b", "mxfp4", "serves openai/gpt-oss-120b (mxfp4 experts)"),
    "deepseek-r1": ("deepseek-ai/DeepSeek-R1", "fp8_block",
                    "serves deepseek-ai/DeepSeek-R1-0528, a weight update of DeepSeek-R1 with the same DeepseekV3 "
                    "architecture and block-wise fp8 checkpoint (vllm-project/recipes DeepSeek/DeepSeek-V3.md at "
                    "8959cf64189c71d36e11c6a30335f923f261b1f7: 'DeepSeek-R1 and DeepSeek-V3 share the same "
                    "architecture', its commands serve R1-0528)"),
}
# Page file name -> catalog GPU (the pages' Hardware sections: H100 SXM, H200 SXM, A100 SXM 80GB).
GPUS = {"h100": "H100-SXM-80GB", "h100-latency": "H100-SXM-80GB", "h200": "H200-141GB", "h200-latency": "H200-141GB",
        "a100": "A100-80GB"}
NON_NVIDIA = {"910b"}
UNMODELLED_FLAGS = ("--speculative", "speculative-config", "--speculative-algorithm")

_METRIC = re.compile(r"^([A-Za-z][A-Za-z0-9 ./()_-]*?):\s+(-?[\d.]+)\s*$")
_INFO = re.compile(r'^\?\?\?\+? info "(.+)"\s*$')


@dataclass
class Run:
    """One result block as pasted on a page, with the serving command it ran against."""

    page: str
    section: str
    label: str
    command: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Page:
    path: str
    title: str
    text: str
    vllm_version: str | None
    hardware: str
    guidellm: bool
    runs: list[Run]


def git_show(repo: Path, commit: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def page_paths(repo: Path, commit: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", commit, PAGES_DIR + "/"],
                         check=True, capture_output=True, text=True).stdout.split()
    # references/ holds articles (LMCache, quantization), not tuning pages; overview.md has no runs.
    return [p for p in out if p.endswith(".md") and "/references/" not in p and not p.endswith("overview.md")]


def _command(lines: list[str]) -> str:
    """A shell command from a code block: continuation lines joined, whitespace collapsed."""
    joined = " ".join(x.strip().rstrip("\\").strip() for x in lines if x.strip() and not x.strip().startswith("```"))
    return re.sub(r"\s+", " ", joined).strip()


def _code_block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The lines of the fenced block opening at or after `start`, and the index after its closing fence."""
    i = start
    while i < len(lines) and not lines[i].strip().startswith("```"):
        i += 1
    body = []
    i += 1
    while i < len(lines) and not lines[i].strip().startswith("```"):
        body.append(lines[i])
        i += 1
    return body, i + 1


def split_results(body: list[str]) -> list[tuple[str, dict[str, float]]]:
    """The runs of one result block: (label, metrics). A run starts at a '# label' comment, at a 'Serving Benchmark
    Result' banner, or where a metric repeats (condensed blocks pasted back to back)."""
    runs: list[tuple[str, dict[str, float]]] = []
    label, current, fresh = "", None, True
    for raw in body:
        s = raw.strip()
        if s.startswith("#"):
            label, fresh = s.lstrip("#").strip(), True
            continue
        if "Serving Benchmark Result" in s:
            fresh = True
            continue
        m = _METRIC.match(s)
        if not m:
            continue
        key, value = m.group(1).strip(), float(m.group(2))
        if current is None or fresh or key in current:
            current = {}
            runs.append((label, current))
            fresh = False
        current[key] = value
    return runs


def parse_page(path: str, text: str) -> Page:
    lines = text.splitlines()
    title = next((x.lstrip("# ").strip() for x in lines if x.startswith("# ")), path)
    version = re.search(r"^-\s*vLLM:?\s*v?([\d.]+\w*)", text, re.M)
    hw = re.search(r"^### Hardware\s*\n+(.+)$", text, re.M)
    runs: list[Run] = []
    section, command, i = "", "", 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("#") and not line.startswith("# "):
            section = line.lstrip("#").strip()
        info = _INFO.match(line)
        if info and "script" in info.group(1).lower():
            body, i = _code_block(lines, i + 1)
            command = _command(body)
            continue
        if info and "result" in info.group(1).lower():
            body, i = _code_block(lines, i + 1)
            kind = info.group(1).split()[0] if info.group(1).lower().startswith(("baseline", "optimized")) else ""
            for label, metrics in split_results(body):
                runs.append(Run(path, f"{section}{', ' + kind.lower() if kind else ''}", label, command, metrics))
            continue
        i += 1
    return Page(path, title, text, version.group(1) if version else None, hw.group(1).strip() if hw else "",
                "guidellm" in text.lower(), runs)


def engine_of(command: str) -> str:
    if "sglang" in command:
        return "sglang"
    if "trtllm-serve" in command:
        return "trtllm"
    return "vllm" if "vllm serve" in command else "unknown"


def _tp(command: str) -> int:
    m = re.search(r"(?:-tp|--tensor-parallel-size)[ =](\d+)", command)
    return int(m.group(1)) if m else 1


def classify(page: Page, run: Run) -> str | None:
    """Why a run is left out, or None when it becomes a row."""
    name = page.path.removeprefix(PAGES_DIR + "/")
    model_dir, gpu_file = name.split("/")[0], name.split("/")[1].removesuffix(".md")
    if gpu_file in NON_NVIDIA:
        return "Ascend NPU page (not a GPU servewise plans)"
    if page.guidellm:
        return "guidellm constant-rate run (open loop; its 'Maximum request concurrency' is the observed peak)"
    engine = engine_of(run.command)
    if engine != "vllm":
        return f"engine {engine}, not vLLM"
    if "Maximum request concurrency" not in run.metrics:
        return "no concurrency limit (all prompts sent at once: a burst, not a closed loop)"
    if any(f in run.command for f in UNMODELLED_FLAGS):
        return "speculative decoding (not modelled)"
    if model_dir not in MODELS:
        return f"model of page {model_dir} not in the catalog"
    if gpu_file not in GPUS:
        return f"GPU {gpu_file} not mapped"
    return None


def row_of(page: Page, run: Run, commit: str) -> BenchmarkRow:
    name = page.path.removeprefix(PAGES_DIR + "/")
    model_dir, gpu_file = name.split("/")[0], name.split("/")[1].removesuffix(".md")
    model, dtype, model_note = MODELS[model_dir]
    m = run.metrics
    n, conc, tp = int(m["Successful requests"]), int(m["Maximum request concurrency"]), _tp(run.command)
    dataset = "ShareGPT" if "sharegpt" in (run.label + page.text).lower() else "random"
    where = f"'{run.section}'" + (f", '{run.label}'" if run.label else "")
    notes = (f"GPUStack performance lab, '{page.title}', {where}; {page.hardware.rstrip('.')}; {model_note}; closed loop "
             f"of {conc} client{'s' if conc > 1 else ''}; means over {n} {dataset} requests (the result block's own counts)")
    if "--max-num-batched-tokens" in run.command:
        notes += "; --max-num-batched-tokens set by the server command (servewise assumes the default chunk)"
    return BenchmarkRow(
        id=f"pub-gpustack-{model_dir}-{gpu_file.removesuffix('-latency')}-tp{tp}-c{conc}", source=SOURCE,
        source_ref=f"https://github.com/gpustack/gpustack/blob/{commit}/{page.path}", engine="vllm",
        engine_version=page.vllm_version, model=model, weight_dtype=dtype, gpu=GPUS[gpu_file], tp=tp, pp=1, dp=1,
        gpus_total=tp, isl=round(m["Total input tokens"] / n), osl=round(m["Total generated tokens"] / n),
        concurrency=conc, ttft_ms={"mean": m["Mean TTFT (ms)"], "p50": m["Median TTFT (ms)"]},
        tpot_ms={"mean": m["Mean TPOT (ms)"], "p50": m["Median TPOT (ms)"]},
        output_tok_s=m.get("Output token throughput (tok/s)"), request_s=m.get("Request throughput (req/s)"),
        notes=notes,
        extra={"harness": f"vllm bench serve --backend openai-chat --endpoint /v1/chat/completions --dataset-name "
                          f"{dataset.lower()} --num-prompts {n} --max-concurrency {conc}",
               "server_flags": run.command,
               "lengths": f"{dataset}: isl/osl are the run's mean input/output tokens (total tokens / {n} requests), "
                          "not fixed"})


def extract(repo: Path, commit: str) -> tuple[list[BenchmarkRow], Counter]:
    rows: list[BenchmarkRow] = []
    left_out: Counter = Counter()
    seen: set[tuple] = set()
    for path in page_paths(repo, commit):
        page = parse_page(path, git_show(repo, commit, path))
        for run in page.runs:
            why = classify(page, run)
            if why is None:
                key = (run.command, tuple(sorted(run.metrics.items())))
                if key in seen:
                    why = "the same run pasted twice on the page"
                else:
                    seen.add(key)
                    rows.append(row_of(page, run, commit))
            if why:
                left_out[why] += 1
    # Two runs of one layout and concurrency differ by their server flags: the one with async scheduling says so.
    ids = Counter(r.id for r in rows)
    for r in rows:
        if ids[r.id] > 1 and "--async-scheduling" in r.extra["server_flags"]:
            r.id += "-async"
    if len({r.id for r in rows}) != len(rows):
        raise SystemExit("two GPUStack runs got the same id; extend the id rule")
    return rows, left_out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("repo", nargs="?", type=Path, default=DEFAULT_REPO)
    ap.add_argument("--commit", default=COMMIT)
    ap.add_argument("--write", action="store_true", help="replace the GPUStack rows of public_runs.jsonl and the seed")
    args = ap.parse_args()
    rows, left_out = extract(args.repo, args.commit)
    print(f"kept {len(rows)} closed-loop vLLM runs; left out {sum(left_out.values())}:", file=sys.stderr)
    for why, n in left_out.most_common():
        print(f"  {n:4d}  {why}", file=sys.stderr)
    if args.write:
        for path in (PUBLIC, SEED):
            replace_source_rows(path, SOURCE, rows)
        print(f"wrote {PUBLIC.relative_to(ROOT)} and {SEED.relative_to(ROOT)}", file=sys.stderr)
    else:
        for r in rows:
            print(r.model_dump_json(exclude_none=False))


if __name__ == "__main__":
    main()
