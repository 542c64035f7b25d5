"""benchmarks/public_runs.jsonl: the published runs of other labs the latency model is checked against, never fitted.

The GPUStack rows are re-derived from the lab's pages by benchmarks/extract_gpustack.py; the parser is tested on a
page written here in the pages' layout (serving-script and result blocks as `??? info` admonitions, the result
blocks as `vllm bench serve` prints them), and, where the mirrored repository is on this machine, the committed rows
are checked to be exactly what the script derives from it.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from planner.catalog import BenchmarkRow

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "benchmarks" / "public_runs.jsonl"


def _module(name: str):
    """A script of benchmarks/ (they import each other by bare name, as when run from there)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module(name)


extract = _module("extract_gpustack")


def _result(conc: int | None, n: int, tin: int, tout: int, ttft: float, tpot: float) -> str:
    limit = f"    Maximum request concurrency:             {conc}\n" if conc else ""
    return (f"    ============ Serving Benchmark Result ============\n"
            f"    Successful requests:                     {n}\n{limit}"
            f"    Total input tokens:                      {tin}\n"
            f"    Total generated tokens:                  {tout}\n"
            f"    Request throughput (req/s):              1.00\n"
            f"    Output token throughput (tok/s):         100.00\n"
            f"    Mean TTFT (ms):                          {ttft}\n"
            f"    Median TTFT (ms):                        {ttft - 1}\n"
            f"    Mean TPOT (ms):                          {tpot}\n"
            f"    Median TPOT (ms):                        {tpot - 0.5}\n"
            f"    ==================================================\n")


PAGE = (
    "# Tuning Qwen3-8B on H100\n\n### Hardware\n\nOne NVIDIA H100 SXM GPU.\n\n### Engine Version\n\n- vLLM: v0.11.0\n"
    "- SGLang: v0.5.3\n\n### 1. Engines\n\n??? info \"Serving script\"\n    ```bash\n    vllm serve Qwen/Qwen3-8B \\\n"
    "        -tp 2\n    ```\n\n??? info \"Benchmark result\"\n    ```\n"
    + _result(None, 1000, 200000, 180000, 9000.0, 60.0) + "    ```\n\n"
    "??? info \"Serving script\"\n    ```bash\n    python3 -m sglang.launch_server --model-path Qwen/Qwen3-8B\n    ```\n\n"
    "??? info \"Benchmark result\"\n    ```\n" + _result(4, 100, 23260, 22061, 30.0, 7.0) + "    ```\n\n"
    "### Other Benchmark Cases\n\n??? info \"Baseline serving script\"\n    ```bash\n    vllm serve Qwen/Qwen3-8B -tp 2\n"
    "    ```\n\n??? info \"Baseline benchmark results\"\n    ```bash\n    # BS=1\n"
    + _result(1, 100, 23260, 22061, 50.0, 7.5) + "\n    # BS=4\n" + _result(4, 100, 23260, 22061, 55.5, 7.75)
    + "    ```\n")


def test_result_blocks_are_split_per_run_and_attributed_to_the_command_above_them():
    page = extract.parse_page("docs/performance-lab/qwen3-8b/h100-latency.md", PAGE)
    assert page.vllm_version == "0.11.0" and page.hardware == "One NVIDIA H100 SXM GPU." and not page.guidellm
    assert [(r.label, r.metrics.get("Maximum request concurrency")) for r in page.runs] == [
        ("", None), ("", 4.0), ("BS=1", 1.0), ("BS=4", 4.0)]
    assert page.runs[0].command == "vllm serve Qwen/Qwen3-8B -tp 2"  # continuation line joined
    assert extract.engine_of(page.runs[1].command) == "sglang"
    why = [extract.classify(page, r) for r in page.runs]
    assert why[0].startswith("no concurrency limit") and why[1] == "engine sglang, not vLLM"
    assert why[2:] == [None, None]


def test_a_kept_run_becomes_a_row_of_means_with_its_layout_and_source():
    page = extract.parse_page("docs/performance-lab/qwen3-8b/h100-latency.md", PAGE)
    row = extract.row_of(page, page.runs[3], "0" * 40)
    assert (row.id, row.model, row.gpu, row.tp, row.gpus_total, row.concurrency) == (
        "pub-gpustack-qwen3-8b-h100-tp2-c4", "Qwen/Qwen3-8B", "H100-SXM-80GB", 2, 2, 4)
    assert (row.isl, row.osl) == (233, 221)  # 23260 / 100 and 22061 / 100, rounded
    assert row.ttft_ms == {"mean": 55.5, "p50": 54.5} and row.tpot_ms == {"mean": 7.75, "p50": 7.25}
    assert row.source_ref == ("https://github.com/gpustack/gpustack/blob/" + "0" * 40
                              + "/docs/performance-lab/qwen3-8b/h100-latency.md")
    assert row.extra["server_flags"] == "vllm serve Qwen/Qwen3-8B -tp 2"
    assert "--max-concurrency 4" in row.extra["harness"] and "'BS=4'" in row.notes


def test_guidellm_pages_and_ascend_pages_are_left_out_whatever_their_blocks_say():
    guided = extract.parse_page("docs/performance-lab/qwen3-8b/h100.md",
                                PAGE.replace("### Engine Version", "Runs use guidellm at a constant rate.\n\n### Engine"))
    assert all(extract.classify(guided, r).startswith("guidellm") for r in guided.runs)
    npu = extract.parse_page("docs/performance-lab/qwen3-8b/910b.md", PAGE)
    assert all(extract.classify(npu, r).startswith("Ascend") for r in npu.runs)


@pytest.mark.skipif(not extract.DEFAULT_REPO.exists(), reason="needs the mirrored gpustack repository")
def test_committed_gpustack_rows_are_what_the_pages_give():
    rows, left_out = extract.extract(extract.DEFAULT_REPO, extract.COMMIT)
    committed = [BenchmarkRow.model_validate_json(x) for x in PUBLIC.read_text().splitlines() if x.strip()]
    assert sorted(r.model_dump_json() for r in rows) == sorted(
        r.model_dump_json() for r in committed if r.source == extract.SOURCE)
    assert left_out["engine sglang, not vLLM"] > 0 and sum(left_out.values()) > len(rows)


def test_every_published_row_is_a_transfer_check_never_a_calibration_row():
    data = _module("_data")
    public = {json.loads(x)["id"] for x in PUBLIC.read_text().splitlines() if x.strip()}
    seed = [BenchmarkRow.model_validate_json(x) for x in (ROOT / "kb" / "data" / "benchmarks.jsonl").read_text().splitlines()
            if x.strip()]
    calibration, published = data.split_rows(seed)
    assert {r.id for r in published} == public
    assert all(r.source == "aiconfigurator-silicon" for r in calibration)


def test_replacing_one_sources_rows_keeps_the_others_and_the_order(tmp_path):
    data = _module("_data")
    base = json.loads(PUBLIC.read_text().splitlines()[0])

    def row(rid: str, source: str, ttft: float = 50.0) -> BenchmarkRow:
        return BenchmarkRow.model_validate({**base, "id": rid, "source": source, "ttft_ms": {"mean": ttft}})

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in
                            (row("a1", "lab-a"), row("b1", "lab-b"), row("a2", "lab-a"), row("c1", "lab-c"))))
    data.replace_source_rows(path, "lab-a", [row("a2", "lab-a", 70.0), row("a3", "lab-a")])
    out = [json.loads(x) for x in path.read_text().splitlines()]
    # a1 is gone (not re-derived), a2 is updated where it was, a3 follows the last lab-a row, b1 and c1 are untouched
    assert [r["id"] for r in out] == ["b1", "a2", "a3", "c1"]
    assert out[1]["ttft_ms"] == {"mean": 70.0}


blog = _module("extract_vllm_blog")

# Paragraphs and tables in the layout of the vLLM blog post (written here, the numbers made up).
BLOG_EXCERPT = """Figure 2 shows results.

The fitted ITL slope drops from `4.00e-05` to `2.00e-05` ms/token, while the intercept changes only from `6.00` to `6.10` ms.

The fitted ITL slope drops from `9.00e-06` ms/token in BF16 to `7.00e-06` in full FP8, while intercepts remain tightly clustered between `4.00` and `4.10` ms.

*Table 4: Performance results for Llama-3.1-8B model under heavy throughput load.*

| Config | Median TTFT (ms) | Median ITL (ms) | Total duration (s) | Output tok/s |
| :---- | :---: | :---: | :---: | :---: |
| BF16 | 700.0 | 15.00 | 600.0 | 400.0 |
| FP8 | 690.0 | 13.00 | 550.0 | 450.0 |
"""


def test_blog_figures_are_the_bf16_line_of_each_fit_and_the_bf16_row_of_each_table():
    got = blog.figures(BLOG_EXCERPT)
    assert got["itl_lines"] == [(6.0, 4e-05), (4.05, 9e-06)], "a range of intercepts gives its midpoint"
    assert got["under_load"] == {"Llama-3.1-8B": [700.0, 15.0, 600.0, 400.0]}
    with pytest.raises(ValueError, match="no intercept"):
        blog.figures("The fitted ITL slope drops from `4.00e-05` ms/token.\n\n*Table 4: Performance results for X model*")


@pytest.mark.skipif(not blog.DEFAULT_REPO.exists(), reason="needs the mirrored vllm-project.github.io repository")
def test_the_blog_figures_accuracy_checks_against_are_what_the_post_gives():
    accuracy = _module("accuracy")
    got = blog.figures(blog.read_post(blog.DEFAULT_REPO))
    assert got["itl_lines"] == [(a, b) for _, _, _, a, b in accuracy.BLOG_ITL_LINES]
    # The post's order: Llama-3.1-8B, gpt-oss-20b on H100, then on B200.
    assert [(m.split("/")[1].removesuffix("-Instruct"), g) for m, _, g, _, _ in accuracy.BLOG_ITL_LINES] == [
        ("Llama-3.1-8B", "H100-SXM-80GB"), ("gpt-oss-20b", "H100-SXM-80GB"),
        ("Llama-3.1-8B", "B200-180GB"), ("gpt-oss-20b", "B200-180GB")]
    assert {m.split("/")[1].removesuffix("-Instruct"): [ttft, itl, tok_s]
            for m, _, ttft, itl, tok_s in accuracy.BLOG_CLOSED_LOOP} == {
        m: [ttft, itl, tok_s] for m, (ttft, itl, _, tok_s) in got["under_load"].items()}
    assert blog.COMMIT in accuracy.VLLM_BLOG
