"""`servewise kb ...`: what the planner knows (models, GPUs, use cases, benchmarks, outcomes)."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.benchmarks import import_benchmarks, load_benchmarks
from planner.catalog import CHAT_SUFFIX
from server.context import app_context
from server.limits import bounded, input_file
from server.output import JSON_OPTION, console, run, table

_bench_file = input_file("benchmark file")  # a device like /dev/zero would be read forever

kb_app = typer.Typer(help="Show what the planner knows, with the source of every fact.", no_args_is_help=True)


@kb_app.command("models")
def models(name: str = typer.Argument(None, help="One model (HF id or alias): every fact with its source."),
           json_out: bool = JSON_OPTION) -> None:
    """Model architectures (HF config facts), licences, context lengths and sources (full with NAME or --json).

    Example:  servewise kb models llama-3.1-8b
    """

    def action():
        cat = app_context().catalog
        return cat.model(name) if name else cat.models

    def human(rows):
        if not isinstance(rows, list):
            console.print_json(rows.model_dump_json())
            return
        headers = ["model", "B tot/act", "attn", "ctx", "dtype", "licence", "MMLU"]
        cells = [[_billions(m.params_total_b) + (f"/{_billions(m.params_active_b)}" if m.is_moe else ""),
                  m.attention.kind.replace("sliding_window", "swa").replace("hybrid_linear", "hybrid"),
                  _tokens(m.max_position_embeddings), m.native_dtype, _short(m.license, 10),
                  f"{m.quality[0].score:g}" if m.quality else "—"] for m in rows]
        # Each column costs its padding (2) and a separator (1): what is left of 80 goes to the names.
        width = 80 - 3 - sum(max(len(h), *(len(c[i]) for c in cells)) + 3 for i, h in enumerate(headers[1:]))
        console.print(_narrow(table("Models (`servewise kb models NAME` for sources)", headers,
                                    [(_fit_name(m.short_name, width), *c) for m, c in zip(rows, cells)])))

    run(json_out, action, human)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _fit_name(name: str, width: int) -> str:
    """A model name in `width` characters that still tells sizes apart: the chat-tuning suffix goes first (as in the
    aliases), then the middle, because the size ('-14B', '-70B') is at the end of the name."""
    short = CHAT_SUFFIX.sub("", name)
    if len(short) <= width:
        return short
    head = max(1, (width - 1) // 3)
    return short[:head] + "…" + short[len(short) - (width - 1 - head):]


def _narrow(t):
    """A table that fits 80 columns: light borders, the first column never wrapped."""
    from rich import box

    t.box = box.SIMPLE_HEAD
    t.pad_edge = False
    for i, col in enumerate(t.columns):
        col.no_wrap, col.overflow = True, "ellipsis"
        if i:  # short cells keep their width; only the first (name) column gives way
            col.min_width = max([len(str(col.header)), *(len(str(c)) for c in col.cells)])
    # Each column costs its padding (2) and a separator (1): what is left of 80 goes to the names.
    t.columns[0].max_width = max(12, 80 - sum(c.min_width + 3 for c in t.columns[1:]) - 3)
    return t


def _tokens(n: int) -> str:
    return f"{n // 1024 ** 2}M" if n >= 1024 ** 2 else f"{n // 1024}k"


def _billions(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def _size_range(lo: float | None, hi: float | None) -> str:
    if lo and hi:
        return f" {lo:g}-{hi:g}B"
    return f" >={lo:g}B" if lo else (f" <={hi:g}B" if hi else "")


@kb_app.command("add-model")
def add_model_cmd(
    path: str = typer.Argument(..., help="A config.json, a model directory holding one, or a Hugging Face id "
                               "(read from the local HF cache, else the Hub when reachable)."),
    name: str = typer.Option(None, "--name", help="Model id to plan with (default: the HF id or the directory name)."),
    license: str = typer.Option(None, "--license", help="Licence to record (default: unknown)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Add your own model (a fine-tune, a new release) from its config.json: dense, MoE, MLA, sliding-window and
    hybrid-linear attention are read, and the weight format from quantization_config.

    Example:  servewise kb add-model ./my-finetune --name acme/support-8b
    """
    from kb.add_model import add_model

    def action():
        ctx = app_context()
        return add_model(ctx.kb, path, name=name, license=license)

    def human(m) -> None:
        moe = f", {m.num_experts} experts (top-{m.experts_per_token})" if m.is_moe else ""
        console.print(f"added {m.hf_id}: {m.architecture}, {m.params_total_b:g}B params ({m.params_active_b:g}B active)"
                      f"{moe}, {m.attention.kind} attention, {m.native_dtype} weights, context "
                      f"{m.max_position_embeddings:,}. Plan with: servewise recommend --model {m.hf_id} ...")

    run(json_out, action, human)


@kb_app.command("gpus")
def gpus(json_out: bool = JSON_OPTION) -> None:
    """GPU datasheet figures and on-demand prices per provider (provider setting picks the price).

    Example:  SERVEWISE_PROVIDER=coreweave servewise kb gpus
    """

    def action():
        ctx = app_context()
        return {"provider": ctx.settings.provider, "gpus": ctx.catalog.gpus}

    def human(r):
        provider = r["provider"]
        rows = []
        for g in r["gpus"]:
            p = g.price(provider)
            rows.append((g.name, f"{g.memory_gb:g}", f"{g.mem_bw_gb_s:g}", f"{g.bf16_tflops:g}",
                         f"{g.fp8_tflops:g}" if g.fp8_tflops else "—", g.interconnect,
                         f"${p.usd_per_gpu_hour:.2f}" if p else "—", "; ".join(g.uncertain) or ""))
        console.print(table(f"GPUs (prices: {provider})", ["gpu", "GB", "GB/s", "bf16 TFLOPS", "fp8 TFLOPS",
                                                          "interconnect", "$/GPU-h", "uncertain"], rows))

    run(json_out, action, human)


@kb_app.command("use-cases")
def use_cases(name: str = typer.Argument(None, help="One use case: every default with its full source."),
              json_out: bool = JSON_OPTION) -> None:
    """Workload templates: lengths, SLO targets, streaming, quality floor (full sources with NAME or --json).

    Example:  servewise kb use-cases chatbot
    """

    def action():
        cat = app_context().catalog
        return cat.use_case(name) if name else cat.use_cases

    def ms(v: float | None) -> str:
        return f"{v:g}" if v else "—"

    def human(rows):
        if not isinstance(rows, list):
            u = rows
            console.print(f"[bold]{u.name}[/]: {u.title}. {u.description}")
            facts = [("task", u.task, ""), ("streaming", str(u.streaming).lower(), u.sources.get("streaming", "")),
                     ("prompt tokens", f"mean {u.prompt_tokens.mean:g}, p90 {u.prompt_tokens.p90:g}, max {u.prompt_tokens.max}",
                      u.sources.get("prompt_tokens", "")),
                     ("output tokens", f"mean {u.output_tokens.mean:g}, p90 {u.output_tokens.p90:g}, max {u.output_tokens.max}",
                      u.sources.get("output_tokens", "")),
                     ("TTFT p90", f"{ms(u.slos.ttft_p90_ms)} ms", u.sources.get("slos.ttft_p90_ms", "")),
                     ("TPOT p90", f"{ms(u.slos.tpot_p90_ms)} ms", u.sources.get("slos.tpot_p90_ms", "")),
                     ("E2E p95", f"{ms(u.slos.e2e_p95_ms)} ms", u.sources.get("slos.e2e_p95_ms", "")),
                     ("quality", u.quality or "—", u.sources.get("quality", "")),
                     ("model size", _size_range(u.min_params_b, u.max_params_b).strip() or "any", ""),
                     ("peak factor", f"{u.peak_factor:g}", u.sources.get("peak_factor", "")),
                     ("spread", f"prompt cv {u.prompt_tokens.cv:g}, output cv {u.output_tokens.cv:g}", u.sources.get("spread", ""))]
            for label, value, source in facts:
                console.print(f"  [bold]{label}[/]: {value}" + (f"\n      source: {source}" if source else ""))
            return
        console.print(_narrow(table(
            "Use cases (`servewise kb use-cases NAME` for sources)", ["name", "in/out", "TTFT", "TPOT", "E2E", "stream", "quality"],
            [(u.name, f"{u.prompt_tokens.mean:g}/{u.output_tokens.mean:g}", ms(u.slos.ttft_p90_ms), ms(u.slos.tpot_p90_ms),
              ms(u.slos.e2e_p95_ms), "yes" if u.streaming else "no",
              (u.quality or "—") + _size_range(u.min_params_b, u.max_params_b))
             for u in rows],
            caption="ms at p90 (E2E p95); E2E binds a streaming use case only when you state it",
        )))

    run(json_out, action, human)


@kb_app.command("benchmarks")
def benchmarks(
    engine: str = typer.Option(None, help="Only rows of this engine: vllm, trtllm or sglang."),
    imported: bool = typer.Option(False, "--imported", help="Only your imported runs (not the seed rows)."),
    limit: int = typer.Option(None, callback=bounded("limit"), help="Show at most this many rows (default: all)."),
    delete: list[str] = typer.Option(None, "--delete", help="Take this imported run out (repeatable)."),
    source: str = typer.Option(None, "--source", help="Take out every run imported from this file name."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Measured serving benchmarks: the seed rows the base model was fitted on, and your imported runs,
    which correct predictions for the configurations they inform.

    Example:  servewise kb benchmarks --imported;  servewise kb benchmarks --source run-c16.json
    """

    if delete or source:
        def remove():
            from kb.benchmarks import delete_benchmarks

            ctx = app_context()
            gone = delete_benchmarks(ctx.kb, delete, source)
            return {"deleted": gone, "kb_version": ctx.kb.meta("kb_version")}

        run(json_out, remove, lambda r: console.print(f"deleted {len(r['deleted'])} run(s): {', '.join(r['deleted'])} "
                                                      f"(kb version now {r['kb_version']})"))
        return

    def action():
        rows = load_benchmarks(app_context().kb, engine, imported=imported)
        return rows[:limit] if limit else rows

    def human(rows):
        console.print(table(
            f"Benchmarks ({len(rows)} rows)",
            ["id", "engine", "model", "gpu", "dtype", "tp", "isl/osl", "load", "TTFT ms", "TPOT ms"],
            [(r.id, f"{r.engine} {r.engine_version or ''}", r.model, r.gpu, r.weight_dtype, r.tp,
              f"{r.isl}/{r.osl}", f"{r.concurrency} clients" if r.concurrency else f"{r.request_rate:g} req/s",
              f"{r.ttft_ms.get('mean', 0):.1f}", f"{r.tpot_ms.get('mean', 0):.2f}") for r in rows],
            caption="source: see `servewise kb benchmarks --json` (source_ref per row)",
        ))

    run(json_out, action, human)


@kb_app.command("import-benchmarks")
def import_benchmarks_cmd(
    path: Path = typer.Argument(..., callback=lambda v: v if v is None or v.is_dir() else _bench_file(v),
                                help="A `vllm bench serve --save-result` JSON file or a directory of them, or "
                                          "servewise rows as JSONL / .csv."),
    model: str = typer.Option(None, help="Model the vLLM results measured, when their model_id is a path or alias "
                                         "servewise does not know."),
    gpu: str = typer.Option(None, help="GPU the vLLM results were measured on (the files do not say)."),
    tp: int = typer.Option(None, help="Tensor-parallel size of the measured server (the files do not say)."),
    weight_dtype: str = typer.Option(None, help="Weight dtype of the measured server (default: the model's native)."),
    engine_version: str = typer.Option(None, help="vLLM version of the measured server."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Import your own measured runs; they correct predictions for the configurations they inform.
    All-or-nothing: a bad file rejects the import, naming the file, line or field and the reason.

    Example:  servewise kb import-benchmarks results/ --gpu h100 --tp 2 --engine-version 0.19.0
    """

    def action():
        from kb.benchmarks import RunOptions

        opts = RunOptions.model_validate({k: v for k, v in dict(model=model, gpu=gpu, tp=tp, weight_dtype=weight_dtype,
                                                                engine_version=engine_version).items() if v is not None})
        ctx = app_context()
        n = import_benchmarks(ctx.kb, path, opts)
        return {"imported": n, "file": str(path), "kb_version": ctx.kb.meta("kb_version")}

    run(json_out, action, lambda r: console.print(f"imported {r['imported']} rows from {r['file']} "
                                                  f"(kb version now {r['kb_version']})"))


@kb_app.command("accuracy")
def accuracy_cmd(json_out: bool = JSON_OPTION) -> None:
    """What your own runs did: for each model x GPU, the median error of the base model on your runs, and the
    error once each run is predicted with the corrections the other runs give (ten folds; leave one out up to ten).

    Example:  servewise kb accuracy --json | jq '.accuracy'
    """
    from kb.corrections import accuracy
    from kb.latency import load_latency_params

    def action() -> dict:
        ctx = app_context()
        return accuracy(ctx.kb, ctx.catalog, load_latency_params())

    def human(r: dict) -> None:
        if not r["accuracy"]:
            console.print("no imported runs to score: `servewise kb import-benchmarks FILE` adds yours")
        else:
            pct = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
            console.print(table("Your runs, cross-validated (median |error| %)",
                                # Two-line headers keep the numbers narrow, so a long model name has the room.
                                ["model", "GPU", "runs", "TTFT\nbefore", "TTFT\nafter", "TPOT\nbefore", "TPOT\nafter"],
                                [(a.model, a.gpu, a.runs, pct(a.ttft_before_pct), pct(a.ttft_after_pct),
                                  pct(a.tpot_before_pct), pct(a.tpot_after_pct)) for a in r["accuracy"]]))
        for s in r["skipped"]:
            console.print(f"  skipped {s.id}: {s.reason}")

    run(json_out, action, human)


@kb_app.command("outcomes")
def outcomes(delete: list[int] = typer.Option(None, "--delete", help="Delete the outcome with this id (repeatable)."),
             dry_run: bool = typer.Option(False, "--dry-run", help="With --delete: show what it would change, change "
                                          "nothing."),
             json_out: bool = JSON_OPTION) -> None:
    """Observed vs predicted outcomes from SLO reports, the prediction error over time, and the corrections the
    planner now applies per model x GPU x TP (shrunk toward the base model while there are few reports).

    Example:  servewise kb outcomes --json | jq '.corrections'

    Example:  servewise kb outcomes --delete 7 --delete 8 --dry-run   (the corrections before and after)
    """
    from kb.outcomes import delete_outcomes, outcome_rows
    from planner.errors import BadInput
    from planner.feedback import error_over_time, listed

    if delete or dry_run:
        def delete_action() -> dict:
            if not delete:
                raise BadInput("--dry-run goes with --delete ID (see the ids in `servewise kb outcomes --json`)")
            return delete_outcomes(app_context().kb, delete, dry_run=dry_run)

        def human_delete(r: dict) -> None:
            verb = "would delete" if r["dry_run"] else "deleted"
            console.print(f"{verb} {len(r['outcomes'])} outcome(s): " + ", ".join(
                f"#{o['id']} {o['deployment']} {o['metric']} {o['observed']:g} vs {o['predicted']:g}" for o in r["outcomes"]),
                markup=False)
            fmt = lambda c: "none" if c is None else f"TTFT x{c['ttft_factor']:g}, TPOT x{c['tpot_factor']:g} ({c['n_outcomes']} report(s))"
            for c in r["corrections"]:
                console.print(f"  {c['model']} on {c['tp']}x {c['gpu']}: {fmt(c['before'])} -> {fmt(c['after'])}",
                              markup=False)

        run(json_out, delete_action, human_delete)
        return

    def action() -> dict:
        ctx = app_context()
        with_ids = outcome_rows(ctx.kb)
        rows = [o for _, o in with_ids]
        return {"outcomes": [{"id": i, **o.model_dump()} for i, o in with_ids], "error_over_time": error_over_time(rows),
                "corrections": listed(ctx.corrections)}

    def human(r: dict) -> None:
        if not r["outcomes"]:
            console.print("no outcomes yet: `servewise report --pr N` stores one per complete SLO report")
            return
        console.print(table("Prediction error over time", ["day", "metric", "reports", "median |error| %"],
                            [(p.period, p.metric, p.n, p.median_abs_pct_error) for p in r["error_over_time"]]))
        console.print(table("Corrections applied", ["model", "GPU", "TP", "TTFT x", "TPOT x", "reports"],
                            [(c["model"], c["gpu"], c["tp"], c["ttft_factor"], c["tpot_factor"], c["n_outcomes"])
                             for c in r["corrections"]]))

    run(json_out, action, human)


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
