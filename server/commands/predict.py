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
from server.output import JSON_OPTION, console, error_payload, print_json, run, table, validation_message


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


def _batch(source: str, ctx: AppContext) -> None:
    """JSON Lines in, one JSON result per line out, in order; a bad line gets its own error object."""
    stream = sys.stdin if source == "-" else _open(source)
    fields = set(PredictQuery.model_fields)
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise BadInput(f"line {line_no}: expected a JSON object")
            # Calibration rows carry extra fields (ids, measured values): only the query fields count.
            query = PredictQuery.model_validate({k: v for k, v in raw.items() if k in fields and v is not None})
            result = predict_query(ctx, query).model_dump(mode="json")
        except json.JSONDecodeError as exc:
            result = error_payload(BadInput(f"line {line_no}: not valid JSON ({exc.msg})"))
        except ValidationError as exc:
            result = error_payload(BadInput(f"line {line_no}: {validation_message(exc)}"))
        except ServewiseError as exc:
            result = error_payload(exc)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def _open(path: str):
    try:
        return Path(path).open(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None


def predict_cmd(
    model: str = typer.Option(None, "--model", "-m", help="HF id or alias, e.g. llama-3.1-8b (see `servewise kb models`)."),
    gpu: str = typer.Option(None, "--gpu", "-g", help="GPU name or alias, e.g. h100, L40S (see `servewise kb gpus`)."),
    tp: int = typer.Option(1, help="Tensor-parallel size (GPUs per replica when pp=1)."),
    pp: int = typer.Option(1, help="Pipeline-parallel size."),
    isl: int = typer.Option(None, help="Prompt tokens per request."),
    osl: int = typer.Option(None, help="Output tokens per request."),
    concurrency: int = typer.Option(None, help="Closed loop of C clients over the deployment (how benchmarks measure)."),
    qps: float = typer.Option(None, help="Poisson arrivals, requests/s over the deployment."),
    replicas: int = typer.Option(1, help="Replicas sharing the load."),
    weight_dtype: str = typer.Option(None, help="bf16, fp16, fp8, fp8_block, int8, int4, nvfp4, mxfp4 (default: native)."),
    kv_dtype: str = typer.Option("auto", help="KV-cache dtype: auto (= bf16), fp8."),
    max_num_seqs: int = typer.Option(None, help="vLLM --max-num-seqs (default 256, or the clients per replica if more)."),
    max_num_batched_tokens: int = typer.Option(None, help="vLLM --max-num-batched-tokens (default by GPU size)."),
    gpu_memory_utilization: float = typer.Option(0.9, help="vLLM --gpu-memory-utilization."),
    isl_cv: float = typer.Option(0.0, help="Spread of prompt lengths (std/mean; 0 = fixed)."),
    osl_cv: float = typer.Option(0.0, help="Spread of output lengths (std/mean; 0 = fixed)."),
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
            _batch(batch, app_context())
        except ServewiseError as exc:
            print_json(error_payload(exc))
            raise typer.Exit(exc.exit_code) from None
        return
    args = {"model": model, "gpu": gpu, "tp": tp, "pp": pp, "isl": isl, "osl": osl, "concurrency": concurrency,
            "qps": qps, "replicas": replicas, "weight_dtype": weight_dtype, "kv_dtype": kv_dtype,
            "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
            "gpu_memory_utilization": gpu_memory_utilization, "isl_cv": isl_cv, "osl_cv": osl_cv}

    def action() -> Prediction:
        missing = [f"--{k}" for k in ("model", "gpu", "isl", "osl") if args[k] is None]
        if missing:
            raise BadInput(f"missing {', '.join(missing)} (or give --batch FILE)")
        query = PredictQuery.model_validate({k: v for k, v in args.items() if v is not None})
        args["query"] = query
        return predict_query(app_context(), query)

    run(json_out, action, lambda p: _human(args["query"], p))


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
