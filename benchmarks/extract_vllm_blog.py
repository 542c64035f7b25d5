"""Re-derive the vLLM blog figures benchmarks/accuracy.py checks the latency model against.

"The State of FP8 KV-Cache and Attention Quantization in vLLM" (vLLM blog, 2026-04-22; the post is
`_posts/2026-04-22-fp8-kvcache.md` of github.com/vllm-project/vllm-project.github.io) measures vLLM v0.19.1 with BF16
and FP8 KV caches. servewise uses the BF16 figures:

- the lines fitted to ITL against prompt length at concurrency 1, in the order the post gives them (Llama-3.1-8B and
  gpt-oss-20b on H100, then on B200): "The fitted ITL slope drops from `<bf16>` ... intercept ... from `<bf16>`";
  where the post gives only a range for the intercepts ("between `4.03` and `4.07` ms"), its midpoint;
- the BF16 rows of Tables 4 and 5 (Llama-3.1-8B, gpt-oss-20b under load): median TTFT, median ITL, total duration,
  output tok/s.

    .venv/bin/python benchmarks/extract_vllm_blog.py [REPO] [--commit SHA]

REPO defaults to the bare clone /work/.mirror/vllm-project+vllm-project.github.io/repo, the commit to COMMIT (the
one VLLM_BLOG in benchmarks/accuracy.py pins). Prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

COMMIT = "c3a01c4a5807c8d900ae468897e45263373e534e"
POST = "_posts/2026-04-22-fp8-kvcache.md"
DEFAULT_REPO = Path("/work/.mirror/vllm-project+vllm-project.github.io/repo")

_SLOPE = re.compile(r"fitted ITL slope drops from `([0-9.e-]+)`")
_INTERCEPT = re.compile(r"intercepts? (?:changes only from|changes from|remain tightly clustered between) "
                        r"`([0-9.]+)`(?: and `([0-9.]+)`)?")
_TABLE = re.compile(r"^\*Table (\d+): Performance results for (\S+) model", re.M)
_BF16_ROW = re.compile(r"^\| BF16 \|(.+)\|\s*$", re.M)


def figures(text: str) -> dict:
    """The BF16 figures of the post: {"itl_lines": [(intercept ms, slope ms/token), ...], "under_load": {model:
    [median TTFT ms, median ITL ms, duration s, output tok/s]}}. Raises ValueError when the post does not read so."""
    lines = []
    for paragraph in text.split("\n\n"):
        slope = _SLOPE.search(paragraph)
        if not slope:
            continue
        cut = _INTERCEPT.search(paragraph)
        if not cut:
            raise ValueError(f"no intercept beside the slope {slope.group(1)}")
        low, high = float(cut.group(1)), float(cut.group(2) or cut.group(1))
        lines.append((round((low + high) / 2, 4), float(slope.group(1))))
    under_load = {}
    for table in _TABLE.finditer(text):
        row = _BF16_ROW.search(text, table.end())
        if not row:
            raise ValueError(f"Table {table.group(1)} has no BF16 row")
        under_load[table.group(2)] = [float(x) for x in row.group(1).split("|")]
    if not lines or not under_load:
        raise ValueError("the post has no fitted ITL lines or no tables under load")
    return {"itl_lines": lines, "under_load": under_load}


def read_post(repo: Path, commit: str = COMMIT) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"{commit}:{POST}"], check=True,
                          capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", nargs="?", type=Path, default=DEFAULT_REPO)
    ap.add_argument("--commit", default=COMMIT)
    args = ap.parse_args()
    print(json.dumps(figures(read_post(args.repo, args.commit)), indent=1))


if __name__ == "__main__":
    main()
