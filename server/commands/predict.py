"""`servewise predict`: what vLLM will do for one configuration under one load (or a JSON Lines batch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from pydantic import ValidationError

from planner.contracts import Prediction, PredictQuery
from planner.errors import BadInput, ServewiseError
from server.actions import predict_query
from server.context import AppContext, app_context
from server.limits import bounded, check
from server.output import JSON_OPTION, console, error_payload, fail, run, table, validation_message


def _human(q: PredictQuery, p: Prediction) -> None:
    load = f"{q.concurrency} concurrent clients" if q.concurrency else f"{q.qps:g} req/s (Poisson)"
    rows = [(name, f"{v.mean:,.1f}", f"{v.p50:,.1f}", f"{v.p90:,.1f}", f"{v.p95:,.1f}", f"{v.p99:,.1f}")
            for name, v in (("TTFT ms", p.ttft_ms), ("TPOT ms", p.tpot_ms), ("E2E ms", p.e2e_ms))]
    console.print(table(f"{q.model} on {q.tp * q.pp}x {q.gpu} x {q.replicas} replica(s), {q.isl}/{q.osl} tokens, {load}",
                        ["", "mean", "p50", "p90", "p95", "p99"], rows,
                        caption=f"throughput {p.output_tok_s:,.0f} output tok/s, {p.request_s:,.2f} req/s"
                                + ("  [bold red]SATURATED: offered load exceeds capacity[/]" if p.saturated else "")))
    m = p.memory
    console.print(table("Memory per GPU (GiB)", ["usable", "weights", "activations", "overhead", "KV cache", "KV tokens", "max batch"],
                        [(m.usable_gib, m.weights_gib, m.activations_gib, m.overhead_gib, m.kv_cache_gib,
                          f"{m.kv_cache_tokens:,}", m.max_batch_at_context)], caption=m.reason))
    if s := p.tpot_shares:
        console.print(f"[bold]TPOT by part:[/] {s.kv_reads:.0%} reading the KV cache, {s.prefill:.0%} other requests' "
                      "prefill beside the decodes, the rest weights, overheads and all-reduces (base model)", highlight=False)
    console.print(f"[bold]calibration:[/] {p.calibration}  (±{p.uncertainty_pct:g} % typical error"
                  f"{'' if p.in_calibrated_range else ', outside calibrated range'})")
    c = p.correction
    if c:
        console.print(f"[bold]corrected by your measurements:[/] TTFT x{c.ttft_factor:.3f}, TPOT x{c.tpot_factor:.3f} "
                      f"from {c.n_points} run(s)/report(s)"
                      + (f", {c.doublings_outside:g} doubling(s) outside their range (share {c.share:.2g})" if c.share < 1 else ""))
        for r in c.runs:
            console.print(f"  • {r.id} ({r.source}): TTFT {r.ttft_pct:+.1f} %, TPOT {r.tpot_pct:+.1f} %", highlight=False)
    console.print("[bold]assumptions:[/]")
    for a in p.assumptions:
        console.print(f"  • {a}")


MAX_LINE_BYTES = 64 * 1024  # one query is a few hundred bytes; a longer line is not a query
_BOUNDED = {"tp": "tp", "pp": "pp", "isl": "isl", "osl": "osl", "concurrency": "concurrency", "num_prompts": "num_prompts", "qps": "qps",
            "replicas": "replicas", "max_num_seqs": "max_num_seqs", "max_num_batched_tokens": "max_num_batched_tokens",
            "gpu_memory_utilization": "gpu_memory_utilization", "isl_cv": "length_cv", "osl_cv": "length_cv"}


def check_query(query: PredictQuery) -> PredictQuery:
    """The query's numbers inside their physical bounds (JSON lines can carry Infinity, NaN, 1e308)."""
    for field, name in _BOUNDED.items():
        check(name, getattr(query, field), field)
    return query


def _query(raw: bytes, line_no: int) -> PredictQuery:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"line {line_no}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"line {line_no}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise BadInput(f"line {line_no}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise BadInput(f"line {line_no}: expected a JSON object")
    fields = set(PredictQuery.model_fields)
    flags = [k for k in _BOUNDED if isinstance(data.get(k), bool)]
    if flags:  # pydantic would read true as 1
        raise BadInput(f"line {line_no}: {flags[0]} must be a number, not {str(data[flags[0]]).lower()}")
    # Calibration rows carry extra fields (ids, measured values): only the query fields count.
    try:
        return check_query(PredictQuery.model_validate({k: v for k, v in data.items() if k in fields and v is not None}))
    except ValidationError as exc:
        raise BadInput(f"line {line_no}: {validation_message(exc)}") from None
    except BadInput as exc:
        raise BadInput(f"line {line_no}: {exc.message}") from None


def _batch(source: str, ctx: AppContext) -> int:
    """JSON Lines in, one JSON result per line out, in order; a bad line gets its own error object.
    Returns the exit code: 0, or 2 when reading stopped at a line too long to be a query."""
    stream = sys.stdin.buffer if source == "-" else _open(source)
    try:
        line_no = 0
        while True:
            line = stream.readline(MAX_LINE_BYTES + 1)
            if not line:
                return 0
            line_no += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                # Reading on could mean reading forever (/dev/zero): stop at the first line that is no query.
                sys.stdout.write(json.dumps(error_payload(BadInput(
                    f"line {line_no}: longer than {MAX_LINE_BYTES} bytes; not a query, stopped reading"))) + "\n")
                return BadInput.exit_code
            if not line.strip():
                continue
            try:
                result = predict_query(ctx, _query(line, line_no)).model_dump(mode="json")
            except ServewiseError as exc:
                result = error_payload(exc)
            except (OverflowError, ValueError, ArithmeticError) as exc:
                result = error_payload(BadInput(f"line {line_no}: {exc}"))
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _open(path: str):
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None


def predict_cmd(
    model: str = typer.Option(None, "--model", "-m", help="HF id or alias, e.g. llama-3.1-8b (see `servewise kb models`)."),
    gpu: str = typer.Option(None, "--gpu", "-g", help="GPU name or alias, e.g. h100, L40S (see `servewise kb gpus`)."),
    tp: int = typer.Option(1, callback=bounded("tp"), help="Tensor-parallel size (GPUs per replica when pp=1)."),
    pp: int = typer.Option(1, callback=bounded("pp"), help="Pipeline-parallel size."),
    isl: int = typer.Option(None, callback=bounded("isl"), help="Prompt tokens per request."),
    osl: int = typer.Option(None, callback=bounded("osl"), help="Output tokens per request."),
    concurrency: int = typer.Option(None, callback=bounded("concurrency"), help="Closed loop of C clients over the deployment (how benchmarks measure)."),
    num_prompts: int = typer.Option(None, callback=bounded("num_prompts"), help="With --concurrency: requests the benchmark run sends in all (vllm bench serve --num-prompts); the clients' first requests arrive at once (default: 10 per client)."),
    qps: float = typer.Option(None, callback=bounded("qps"), help="Poisson arrivals, requests/s over the deployment."),
    replicas: int = typer.Option(1, callback=bounded("replicas"), help="Replicas sharing the load."),
    weight_dtype: str = typer.Option(None, help="bf16, fp16, fp8, fp8_block, int8, int4, nvfp4, mxfp4 (default: native)."),
    kv_dtype: str = typer.Option("auto", help="KV-cache dtype: auto (vLLM's: fp8 entries for an fp8/nvfp4 checkpoint that sets its KV quantization, else bf16), bf16, fp8."),
    max_num_seqs: int = typer.Option(None, callback=bounded("max_num_seqs"), help="vLLM --max-num-seqs (default vLLM's: 1024 on GPUs of 70 GiB or more except A100, else 256; or the clients per replica if more)."),
    max_num_batched_tokens: int = typer.Option(None, callback=bounded("max_num_batched_tokens"), help="vLLM --max-num-batched-tokens (default vLLM's: 8192 on GPUs of 70 GiB or more except A100, else 2048)."),
    gpu_memory_utilization: float = typer.Option(0.9, callback=bounded("gpu_memory_utilization"), help="vLLM --gpu-memory-utilization."),
    isl_cv: float = typer.Option(0.0, callback=bounded("length_cv"), help="Spread of prompt lengths (std/mean; 0 = fixed)."),
    osl_cv: float = typer.Option(0.0, callback=bounded("length_cv"), help="Spread of output lengths (std/mean; 0 = fixed)."),
    expert_parallel: bool = typer.Option(False, "--expert-parallel", help="vLLM --enable-expert-parallel (MoE models, tp >= 2): each GPU holds 1/tp of the routed experts whole."),
    batch: str = typer.Option(None, "--batch", help="Read JSON Lines queries from FILE or - (stdin); write one JSON result per line."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Predict TTFT, TPOT, E2E (mean, p50-p99), throughput and memory for one vLLM configuration.

    Example:  servewise predict --model llama-3.1-8b --gpu l40s --isl 1024 --osl 256 --qps 2

    Every result names the calibration it used and lists its assumptions. Exit 2 on bad input (with
    close matches for unknown names), 3 when the configuration does not fit in memory.
    """
    if batch:
        try:
            code = _batch(batch, app_context())
        except Exception as exc:  # noqa: BLE001 - the batch's own errors, one JSON object like every line's
            raise typer.Exit(fail(True, exc)) from None
        if code:
            raise typer.Exit(code)
        return
    args = {"model": model, "gpu": gpu, "tp": tp, "pp": pp, "isl": isl, "osl": osl, "concurrency": concurrency,
            "num_prompts": num_prompts, "qps": qps, "replicas": replicas, "weight_dtype": weight_dtype, "kv_dtype": kv_dtype,
            "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
            "gpu_memory_utilization": gpu_memory_utilization, "isl_cv": isl_cv, "osl_cv": osl_cv,
            "expert_parallel": expert_parallel}

    def action() -> Prediction:
        missing = [f"--{k}" for k in ("model", "gpu", "isl", "osl") if args[k] is None]
        if missing:
            raise BadInput(f"missing {', '.join(missing)} (or give --batch FILE)")
        query = check_query(PredictQuery.model_validate({k: v for k, v in args.items() if v is not None}))
        args["query"] = query
        return predict_query(app_context(), query)

    run(json_out, action, lambda p: _human(args["query"], p))


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
