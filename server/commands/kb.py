"""`servewise kb ...`: what the planner knows (models, GPUs, use cases, benchmarks, outcomes)."""

from __future__ import annotations

from pathlib import Path

import typer

from kb.benchmarks import import_benchmarks, load_benchmarks
from server.context import app_context
from server.output import JSON_OPTION, console, run, table

kb_app = typer.Typer(help="Show what the planner knows, with the source of every fact.", no_args_is_help=True)


@kb_app.command("models")
def models(name: str = typer.Argument(None, help="One model (HF id or alias): every fact with its source."),
           json_out: bool = JSON_OPTION) -> None:
    """Model architectures (HF config facts), licences, context lengths and sources (full with NAME or --json)."""

    def action():
        cat = app_context().catalog
        return cat.model(name) if name else cat.models

    def human(rows):
        if not isinstance(rows, list):
            console.print_json(rows.model_dump_json())
            return
        console.print(_narrow(table(
            "Models (`servewise kb models NAME` for sources)", ["model", "B (act.)", "attn", "ctx", "dtype", "licence", "MMLU"],
            [(m.short_name, _billions(m.params_total_b) + (f" ({_billions(m.params_active_b)})" if m.is_moe else ""),
              m.attention.kind.replace("sliding_window", "swa").replace("hybrid_linear", "hybrid"),
              f"{m.max_position_embeddings // 1024}k", m.native_dtype, _short(m.license, 12),
              f"{m.quality[0].score:g}" if m.quality else "—") for m in rows],
        )))

    run(json_out, action, human)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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
    """GPU datasheet figures and on-demand prices per provider (provider setting picks the price)."""

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
    """Workload templates: lengths, SLO targets, streaming, quality floor (full sources with NAME or --json)."""

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
    limit: int = typer.Option(0, help="Show at most this many rows (0 = all)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Measured serving benchmarks used for calibration (closed-loop, mean TTFT/TPOT)."""

    def action():
        rows = load_benchmarks(app_context().kb, engine)
        return rows[:limit] if limit else rows

    def human(rows):
        console.print(table(
            f"Benchmarks ({len(rows)} rows)",
            ["id", "engine", "model", "gpu", "dtype", "tp", "isl/osl", "conc", "TTFT ms", "TPOT ms"],
            [(r.id, f"{r.engine} {r.engine_version or ''}", r.model, r.gpu, r.weight_dtype, r.tp,
              f"{r.isl}/{r.osl}", r.concurrency, f"{r.ttft_ms.get('mean', 0):.1f}",
              f"{r.tpot_ms.get('mean', 0):.2f}") for r in rows],
            caption="source: see `servewise kb benchmarks --json` (source_ref per row)",
        ))

    run(json_out, action, human)


@kb_app.command("import-benchmarks")
def import_benchmarks_cmd(
    file: Path = typer.Argument(..., help="JSONL (one row per line) or .csv with the same field names."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Import your own measured runs. All-or-nothing: a bad line rejects the file, naming line and reason."""

    def action():
        n = import_benchmarks(app_context().kb, file)
        return {"imported": n, "file": str(file), "kb_version": app_context().kb.meta("kb_version")}

    run(json_out, action, lambda r: console.print(f"imported {r['imported']} rows from {r['file']} "
                                                  f"(kb version now {r['kb_version']})"))


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
    from planner.feedback import error_over_time

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
                "corrections": [{"model": k[0], "gpu": k[1], "tp": k[2], **v.model_dump()} for k, v in ctx.corrections.items()]}

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
