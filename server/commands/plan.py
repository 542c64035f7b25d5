"""`servewise spec`, `recommend` and `whatif`: from words to a ranked, explained plan, and alternatives."""

from __future__ import annotations

import inspect

from pathlib import Path

import typer

from planner.catalog import CHAT_SUFFIX
from planner.contracts import Candidate, DeploymentSpec, Plan
from server.actions import make_plan
from server.commands import render as R
from server.context import AppContext, app_context
from server.files import load_plan, load_spec, write_text_atomic
from server.limits import bounded
from server.output import JSON_OPTION, console, run, table

TEXT_ARG = typer.Argument(None, help='What you need, in words: "support chatbot, 5,000 daily users, p90 first token under 300 ms".')
USE_CASE = typer.Option(None, "--use-case", "-u", help="Workload template (see `servewise kb use-cases`), e.g. chatbot.")
QPS = typer.Option(None, callback=bounded("qps"), help="Average requests/s (the plan sizes for average x peak factor).")
USERS = typer.Option(None, callback=bounded("users"), help="Users; with --requests-per-user-per-day gives the average rate over the active hours.")
RPUD = typer.Option(None, "--requests-per-user-per-day", callback=bounded("requests_per_user_per_day"), help="Requests each user sends per day.")
PEAK = typer.Option(None, "--peak-factor", callback=bounded("peak_factor"), help="Peak / average request rate (default from the use case).")
TTFT = typer.Option(None, "--ttft-p90-ms", callback=bounded("ttft_p90_ms"), help="Target p90 time to first token, ms.")
TPOT = typer.Option(None, "--tpot-p90-ms", callback=bounded("tpot_p90_ms"), help="Target p90 time per output token, ms.")
E2E = typer.Option(None, "--e2e-p95-ms", callback=bounded("e2e_p95_ms"), help="Target p95 end-to-end latency, ms.")
PROMPT = typer.Option(None, "--prompt-tokens", callback=bounded("prompt_tokens"), help="Mean prompt tokens (spread from the use case).")
OUTPUT = typer.Option(None, "--output-tokens", callback=bounded("output_tokens"), help="Mean output tokens (spread from the use case).")
PRIORITY = typer.Option(None, help="latency | cost | balanced | quality (default balanced).")
BUDGET = typer.Option(None, "--budget", callback=bounded("budget"), help="Monthly budget in USD.")
GPUS = typer.Option(None, "--gpu", help="Allowed GPU (repeatable), e.g. --gpu L40S --gpu L4.")
MODELS = typer.Option(None, "--model", help="Allowed model (repeatable).")
MAX_GPUS = typer.Option(None, "--max-gpus", callback=bounded("max_gpus"), help="Most GPUs the deployment may use.")
HOURS = typer.Option(None, "--active-hours", callback=bounded("active_hours"), help="Hours a day the users' requests spread over (default 8).")
BURST = typer.Option(None, "--burstiness", callback=bounded("burstiness"), help="Variance-to-mean ratio of arrivals, >= 1 (1 = Poisson; default from the use case).")
QUANT = typer.Option(None, "--quantization", help="Allowed weight dtype (repeatable): bf16, fp8, int4, ...")
OPEN = typer.Option(None, "--open-weights-only/--any-licence", help="Only models with open weights.")
MIN_QUALITY = typer.Option(None, "--min-quality", help="Quality floor: a level (basic, good, high, frontier; see "
                           "`servewise kb use-cases NAME`), an MMLU score, or 'none' (default: the use case's level).")
MIN_PARAMS = typer.Option(None, "--min-params-b", help="Smallest model, billions of parameters (default: the use case's).")
MAX_PARAMS = typer.Option(None, "--max-params-b", help="Largest model, billions of parameters (default: the use case's).")
RELIABILITY = typer.Option(None, "--reliability", help="Availability target in percent, e.g. 99.9: at 99.9 and above "
                           "at least two replicas spread over nodes and a PodDisruptionBudget (99.99: one spare replica).")
MIX = typer.Option(None, "--traffic-class", help="A class of a traffic mix, name:share:prompt_tokens:output_tokens"
                   "[:ttft_p90_ms] (repeatable; the last is the class's own TTFT target), e.g. --traffic-class "
                   "chat:0.7:300:200 --traffic-class rag:0.3:8000:400:2000. Every class must meet its targets.")
BUDGET_HOUR = typer.Option(None, "--budget-hour", help="Hourly budget in USD.")
STREAMING = typer.Option(None, "--streaming/--no-streaming", help="Whether the client streams tokens; when it does, "
                         "E2E is a target only if you give --e2e-p95-ms (default: the use case's).")
TRAFFIC_HELP = ("Traffic: the average rate is --qps, or --users x --requests-per-user-per-day / (--active-hours x 3600). "
                "The plan sizes for the peak (average x --peak-factor) plus headroom of 10 % + 10 % per unit of "
                "--burstiness above 1; min replicas carry the average, max replicas 1.5x the peak's.")


# build_spec's name for each spec option the command line names otherwise (the rest are the same).
_BUILD_SPEC_NAME = {"budget": "budget_usd_month", "gpu": "gpus", "model": "models", "active_hours": "active_hours_per_day",
                    "quantization": "quantizations", "budget_hour": "budget_usd_hour", "traffic_class": "traffic_mix"}


def _spec_options(args: dict) -> dict:
    """build_spec's keyword arguments from a command's arguments: the spec options are spec_cmd's parameters
    but its words, use case and --json, and recommend takes every one of them too."""
    names = [n for n in inspect.signature(spec_cmd).parameters if n not in ("text", "use_case", "json_out")]
    opts = {_BUILD_SPEC_NAME.get(n, n): args[n] for n in names}
    opts["traffic_mix"] = opts["traffic_mix"] or None  # no --traffic-class: no mix, not an empty one
    return opts


def _spec(ctx: AppContext, text, use_case, **options) -> DeploymentSpec:
    from planner.spec import build_spec

    return build_spec(ctx.catalog, text=text, use_case=use_case, **options)


def _ms(v: float | None) -> str:
    return f"{v:g} ms" if v else "—"


def _spec_human(spec: DeploymentSpec) -> None:
    s, t = spec.slos, spec.traffic
    load = f"{t.qps:g} req/s" if t.qps else f"{t.users:,} users x {t.requests_per_user_per_day:g} req/day over {t.active_hours_per_day:g} h"
    console.print(table(f"Deployment spec '{spec.name}' ({spec.use_case}, extracted by {spec.extracted_by})",
                        ["traffic", "peak x", "prompt tok", "output tok", "TTFT p90", "TPOT p90", "E2E p95", "priority", "budget"],
                        [(load, f"{t.peak_factor:g}", f"{spec.prompt_tokens.mean:g}", f"{spec.output_tokens.mean:g}",
                          _ms(s.ttft_p90_ms), _ms(s.tpot_p90_ms), _ms(s.e2e_p95_ms), spec.priority,
                          f"${spec.budget_usd_month:,.0f}/mo" if spec.budget_usd_month else "—")]))
    if spec.assumptions:
        console.print(table("Assumed (not in your words)", ["field", "value", "source"],
                            [(a.field, a.value, a.source[:90]) for a in spec.assumptions]))
    for q in spec.questions:
        console.print(f"[bold yellow]?[/] {q}")


def spec_cmd(text: str = TEXT_ARG, use_case: str = USE_CASE, qps: float = QPS, users: int = USERS,
             requests_per_user_per_day: float = RPUD, peak_factor: float = PEAK, ttft_p90_ms: float = TTFT,
             tpot_p90_ms: float = TPOT, e2e_p95_ms: float = E2E, prompt_tokens: float = PROMPT,
             output_tokens: float = OUTPUT, priority: str = PRIORITY, budget: float = BUDGET,
             gpu: list[str] = GPUS, model: list[str] = MODELS, max_gpus: int = MAX_GPUS,
             active_hours: float = HOURS, burstiness: float = BURST, quantization: list[str] = QUANT,
             open_weights_only: bool = OPEN, min_quality: str = MIN_QUALITY, min_params_b: float = MIN_PARAMS,
             max_params_b: float = MAX_PARAMS, streaming: bool = STREAMING, reliability: float = RELIABILITY,
             budget_hour: float = BUDGET_HOUR, traffic_class: list[str] = MIX,
             json_out: bool = JSON_OPTION) -> None:
    """Turn words and/or options into a DeploymentSpec; guesses are listed as assumptions, missing
    essentials as questions.

    Example:  servewise spec 'customer support chatbot, 5,000 daily users, p90 first token under 300 ms, budget $8k a month'
    """
    opts = _spec_options(locals())
    run(json_out, lambda: _spec(app_context(), text, use_case, **opts), _spec_human)


def _binding_short(c: Candidate, plan: Plan) -> str:
    """The SLO running closest to its target, as a share of the target, so the column stays narrow at 80 columns
    (the predicted figures are in the columns beside it and in the rationale)."""
    from planner.capacity import worst_slo

    spec = plan.spec
    name, cls, ratio = worst_slo(c.predicted, spec.slos, spec.traffic_mix)
    if not name or not c.goodput_qps:
        return c.binding_constraint.split(";")[0]
    return f"{name.split()[0]}{f' {cls}' if cls else ''} {ratio:.0%}"


def _classes_human(plan: Plan) -> None:
    """Each traffic class of the chosen (else the closest) candidate against its own targets."""
    from planner.mix import targets

    if not plan.spec.traffic_mix or not plan.candidates:
        return
    c = plan.candidates[plan.chosen or 0]
    mix = {k.name: k for k in plan.spec.traffic_mix}
    rows = []
    for k in c.predicted.classes:
        t = targets(mix[k.name], plan.spec.slos)
        ok = c.class_verdicts.get(k.name, {})
        rows.append((k.name, f"{k.share:.0%}", f"{mix[k.name].prompt_tokens.mean:g}/{mix[k.name].output_tokens.mean:g}",
                     f"{k.ttft_ms.p90:,.0f}/{_ms(t.ttft_p90_ms)}", f"{k.tpot_ms.p90:.1f}/{_ms(t.tpot_p90_ms)}",
                     f"{k.e2e_ms.p95:,.0f}/{_ms(t.e2e_p95_ms)}", "✔" if all(ok.values()) else "✘"))
    console.print(table(f"Traffic classes on {c.model.split('/')[-1]} ({c.replicas}×{c.tp} {c.gpu}), predicted at the "
                        "mix's peak vs each class's targets", ["class", "share", "tokens in/out", "TTFT p90",
                                                               "TPOT p90", "E2E p95", "SLOs"], rows))


def plan_human(plan: Plan) -> None:
    """A ranked table that fits an 80-column terminal (short model names, the binding SLO as a share of its
    target), then the rationale."""
    from rich import box

    rows = []
    for i, c in enumerate(plan.candidates):
        p = c.predicted
        per_m = f"\n${c.cost_per_m_tokens.output_at_load:,.2f}/Mtok" if c.cost_per_m_tokens else ""
        rows.append(("★" if i == plan.chosen else str(i + 1), f"{CHAT_SUFFIX.sub('', c.model.split('/')[-1])}\n{c.weight_dtype}",
                     f"{c.replicas}×{c.tp}{f'×{c.pp}' if c.pp > 1 else ''} {c.gpu}", f"${c.monthly_cost_usd:,.0f}{per_m}", f"{p.ttft_ms.p90:,.0f}",
                     f"{p.tpot_ms.p90:.1f}", f"{p.e2e_ms.p95:,.0f}", ("✔ " if c.meets_slos else "✘ ") + _binding_short(c, plan)))
    s = plan.spec.slos
    t = table(f"Plan {plan.id} for '{plan.spec.name}' ({plan.provider} prices). Predicted ms at the peak vs targets: "
              f"TTFT p90 {_ms(s.ttft_p90_ms)}, TPOT p90 {_ms(s.tpot_p90_ms)}, E2E p95 {_ms(s.e2e_p95_ms)}",
              ["#", "model, weights", "replicas×TP\n(×PP) GPU", "$/month", "TTFT", "TPOT", "E2E", "SLOs, tightest"], rows)
    t.box, t.pad_edge, t.padding = box.SIMPLE_HEAD, False, (0, 1, 0, 0)
    t.columns[1].min_width = 11  # 'Qwen2.5-7B', 'gpt-oss-20b' unbroken
    for col in t.columns[2:7]:
        col.no_wrap = True
    console.print(t)
    _classes_human(plan)
    if plan.infeasible:
        console.print(f"[bold red]infeasible:[/] {plan.infeasible}")
    console.print(f"[bold]why:[/] {plan.rationale}")


def recommend_cmd(text: str = TEXT_ARG, spec: Path = typer.Option(None, "--spec", help="A DeploymentSpec JSON file (from `servewise spec --json`)."),
                  use_case: str = USE_CASE, qps: float = QPS, users: int = USERS, requests_per_user_per_day: float = RPUD,
                  peak_factor: float = PEAK, ttft_p90_ms: float = TTFT, tpot_p90_ms: float = TPOT, e2e_p95_ms: float = E2E,
                  prompt_tokens: float = PROMPT, output_tokens: float = OUTPUT, priority: str = PRIORITY,
                  budget: float = BUDGET, gpu: list[str] = GPUS, model: list[str] = MODELS, max_gpus: int = MAX_GPUS,
             active_hours: float = HOURS, burstiness: float = BURST, quantization: list[str] = QUANT,
             open_weights_only: bool = OPEN, min_quality: str = MIN_QUALITY, min_params_b: float = MIN_PARAMS,
             max_params_b: float = MAX_PARAMS, streaming: bool = STREAMING, reliability: float = RELIABILITY,
             budget_hour: float = BUDGET_HOUR, traffic_class: list[str] = MIX,
                  top: int = typer.Option(5, callback=bounded("top"), help="How many candidates to keep (1-100)."),
                  out: Path = typer.Option(None, "--out", "-o", help="Write the Plan JSON here (for render/propose)."),
                  cluster: bool = typer.Option(False, "--cluster", help="Keep only candidates that fit the GPUs the "
                                               "cluster has free and the namespace GPU quota (read-only; see "
                                               "`servewise cluster`)."),
                  context: str = R.CONTEXT,
                  json_out: bool = JSON_OPTION) -> None:
    """Recommend model x GPU x TP x replicas x vLLM settings with predicted latency and monthly cost.

    Example:  servewise recommend --use-case chatbot --qps 20 --out plan.json
    On a cluster:  servewise recommend --use-case chatbot --qps 20 --cluster --context prod-gpu

    Exit 3 when nothing meets the SLOs within the constraints (the plan still lists the closest candidates and
    which SLO failed); exit 2 for bad input, including a target no allowed model and GPU meets even unloaded.
    """
    opts = _spec_options(locals())

    made: list[Plan] = []

    def action() -> Plan:
        ctx = app_context()
        the_spec = load_spec(spec) if spec else _spec(ctx, text, use_case, **opts)
        budget = None
        if cluster or context:
            from gitops.cluster import gpu_budget, read_inventory

            budget = gpu_budget(read_inventory(ctx.catalog, context=context or ctx.settings.kube_context,
                                               namespace=ctx.settings.namespace))
        plan = make_plan(ctx, the_spec, top, gpu_budget=budget)
        if out:
            write_text_atomic(out, plan.model_dump_json(indent=2) + "\n")
        made.append(plan)
        return plan

    def human(plan: Plan) -> None:
        plan_human(plan)
        console.print(f"plan written to {out}" if out else "add --out plan.json to keep it for `servewise render` / `propose`")

    run(json_out, action, human)
    if made and made[0].chosen is None:
        raise typer.Exit(3)  # the contract's code for infeasible; the plan itself was printed


def _figure(v: float) -> str:
    """A what-if figure; whole numbers (GPUs, replicas) without a '.0'."""
    return f"{v:,.0f}" if v.is_integer() else f"{v:,.1f}"


def whatif_cmd(plan_file: Path = R.PLAN,
               set_: list[str] = typer.Option(..., "--set", help="key=value change (repeatable): traffic=x2, gpu=L40S, tp=2, "
                                                                  "pp=1, quantization=fp8, model=qwen3-8b, ttft_p90_ms=200, prompt_tokens=x2"),
               json_out: bool = JSON_OPTION) -> None:
    """Compare the plan's chosen deployment with a changed one, side by side, with deltas and SLO ticks.

    Example:  servewise whatif --plan plan.json --set traffic=x2 --set gpu=L40S
    """
    from kb.latency import load_latency_params
    from planner.whatif import parse_change, whatif

    def action():
        ctx = app_context()
        return whatif(load_plan(plan_file, ctx.catalog), [parse_change(s) for s in set_], ctx.catalog, load_latency_params(),
                      provider=ctx.settings.provider, corrections=ctx.corrections)

    def human(w) -> None:
        tick = lambda ok: "" if ok is None else (" ✔" if ok else " ✘")  # noqa: E731
        after = w.after
        title = (f"What if {', '.join(f'{c.key}={c.value}' for c in w.changes)}: {w.before.model.split('/')[-1]} on "
                 f"{w.before.gpus_total}x {w.before.gpu} → "
                 + (f"{after.model.split('/')[-1]} ({after.weight_dtype}) on {after.gpus_total}x {after.gpu}" if after else "not servable"))
        console.print(table(title, ["metric", "before", "after", "change", "target"],
                            [(d.metric, f"{_figure(d.before)}{tick(d.before_ok)}", f"{_figure(d.after)}{tick(d.after_ok)}" if after else "—",
                              f"{d.change_pct:+.1f} %" if d.change_pct is not None else "", f"{d.target:g}" if d.target else "")
                             for d in w.deltas]))
        if w.after_error:
            console.print(f"[bold red]after the change:[/] {w.after_error}")
        if w.replanned:
            r = w.replanned
            console.print(f"[bold]re-planned best:[/] {r.model} ({r.weight_dtype}) on {r.replicas}x{r.tp}"
                          f"{f'x{r.pp}' if r.pp > 1 else ''} {r.gpu} at "
                          f"${r.monthly_cost_usd:,.0f}/month — {r.binding_constraint}")
        if w.replan_error:
            console.print(f"[bold red]re-planning the changed spec:[/] {w.replan_error}")

    run(json_out, action, human)


def register(app: typer.Typer) -> None:
    app.command("spec", help=f"{inspect.cleandoc(spec_cmd.__doc__)}\n\n{TRAFFIC_HELP}")(spec_cmd)
    app.command("recommend", help=f"{inspect.cleandoc(recommend_cmd.__doc__)}\n\n{TRAFFIC_HELP}")(recommend_cmd)
    app.command("whatif")(whatif_cmd)
