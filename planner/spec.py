"""From a person's words or options to a DeploymentSpec, with every guessed value listed.

The rule-based extractor always works (no model needed): it reads numbers with units (users,
req/s, req/min, ms, s, tokens, $/month, GPUs), use-case words, priorities and constraints.
Structured options win over words; whatever comes from a use-case template is an assumption.

Traffic: `qps` is the average request rate. Given users instead, the average is
users x requests per user per day / (active hours x 3600); the planner sizes for the peak,
average x peak factor, and adds headroom for burstiness (variance-to-mean ratio of arrivals,
1 = Poisson) in `planner.capacity`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from planner.catalog import WEIGHT_DTYPES, Catalog, TokenDist, UseCase
from pydantic import ValidationError

from planner.contracts import (
    Assumption,
    Constraints,
    DeploymentSpec,
    SloTargets,
    Traffic,
    TrafficClass,
)
from planner.errors import BadInput
from planner.mix import mixture

_NUM = r"(\d[\d,]*(?:\.\d+)?)\s*(k|thousand|m|million)?"
_SCALE = {None: 1, "k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}
_PER = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hr": 3600, "hour": 3600, "day": 86400}
DEFAULT_USE_CASE = "chatbot"
# "production" read as three nines: the availability at which a single replica's restarts and node drains
# (minutes each, several a month) no longer fit the error budget (43 minutes a month), so two replicas are needed.
_PRODUCTION_RELIABILITY = 99.9


_TOK = r"~?\s*(\d[\d,]*(?:\.\d+)?)\s*(k)?"


def _tokens(m: re.Match) -> float:
    """A token count such as "8k" or "2,000" from a match whose first two groups are the number and its k."""
    return _number(m.group(1), m.group(2))


def _number(value: str, scale: str | None) -> float:
    return float(value.replace(",", "")) * _SCALE[scale.lower() if scale else None]


def _ms(value: str, unit: str) -> float:
    return float(value) * (1000 if unit.lower().startswith("s") else 1)


class _Extracted(dict):
    """What the words said, as option names of build_spec."""


def extract(text: str, catalog: Catalog) -> _Extracted:
    """Read what the words say. Unrecognised words are ignored, never guessed at."""
    t = text.lower()
    out = _Extracted()
    if m := re.search(_NUM + r"\s*(?:daily |active |monthly |concurrent |internal )?(users|people|employees|developers|customers|agents|seats)", t):
        out["users"] = int(_number(m.group(1), m.group(2)))
    if m := re.search(_NUM + r"\s*(?:req(?:uest)?s?|queries|calls|conversations|messages|qps|rps)\s*(?:/|per|a|an|each)\s*(s|sec|second|min|minute|h|hr|hour|day)\b", t):
        rate = _number(m.group(1), m.group(2))
        if m.group(3) == "day" and "users" in out:
            out["requests_per_user_per_day"] = rate  # "2,000 users sending 30 requests a day": per user
        else:
            out["qps"] = rate / _PER[m.group(3)]
    elif m := re.search(_NUM + r"\s*(qps|rps|req/s)\b", t):
        out["qps"] = _number(m.group(1), m.group(2))
    if m := re.search(r"(\d+(?:\.\d+)?)\s*(?:requests?|queries|questions|prompts|messages|chats|calls)\s*(?:per|a|each)\s*(?:user\s*)?(?:per\s*)?day", t):
        out["requests_per_user_per_day"] = float(m.group(1))
    lat = r"(?:under|below|<|less than|within|at most|max(?:imum)?)?\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?)\b"
    if m := re.search(r"(?:first token|ttft|time to first token)[^.;,]*?" + lat, t):
        out["ttft_p90_ms"] = _ms(m.group(1), m.group(2))
    if m := re.search(r"(?:tpot|per token|per output token|inter-token|itl|between tokens)[^.;,]*?" + lat, t):
        out["tpot_p90_ms"] = _ms(m.group(1), m.group(2))
    if m := re.search(r"(?:end-to-end|end to end|e2e|full (?:answer|response)|whole (?:answer|response))[^.;,]*?" + lat, t):
        out["e2e_p95_ms"] = _ms(m.group(1), m.group(2))
    if m := re.search(_TOK + r"\s*(?:-\s*)?(?:token|tok)s?\s*(?:prompts?|inputs?|context|documents?)", t) or \
            re.search(r"(?:prompts?|inputs?|documents?|context)\s+(?:(?:of|around|about|roughly|~|up to)\s*)*" + _TOK + r"\s*(?:token|tok)s?", t):
        out["prompt_tokens"] = _tokens(m)
    if m := re.search(_TOK + r"\s*(?:-\s*)?(?:token|tok)s?\s*(?:outputs?|answers?|responses?|completions?|replies|summar)", t) or \
            re.search(r"(?:outputs?|answers?|responses?|replies|summary|summaries)\s+(?:(?:of|around|about|roughly|~|up to)\s*)*" + _TOK + r"\s*(?:token|tok)s?", t) or \
            re.search(r"(?:token|tok)s?\s*(?:prompts?|inputs?|context)\s*(?:/|->|→|in,?)\s*" + _TOK + r"\s*(?:token|tok)s?", t):
        out["output_tokens"] = _tokens(m)
    if m := re.search(_NUM + r"\s*(?:documents?|docs|requests?|items|records|files|tickets|pages|jobs|prompts)\b[^.;]*?"
                      r"(?:within|in|over|during)\s+(?:an?\s+|one\s+)?(\d+(?:\.\d+)?)?\s*-?\s*(hours?|hrs?|h|minutes?|mins?)\b", t):
        # "2 million documents within a 6-hour window": a batch's average rate is its size over its window.
        if "qps" not in out:
            window = float(m.group(3) or 1) * (60 if m.group(4).startswith("m") else 3600)
            out["qps"] = _number(m.group(1), m.group(2)) / window
    if m := re.search(r"\$\s*" + _NUM + r"\s*(?:/|a|per)\s*(?:month|mo)\b", t) or \
            re.search(r"budget (?:of )?\$?\s*" + _NUM, t):
        out["budget_usd_month"] = _number(m.group(1), m.group(2))
    if m := re.search(r"\$\s*" + _NUM + r"\s*(?:/|an|a|per)\s*(?:hour|hr|h)\b", t):
        out["budget_usd_hour"] = _number(m.group(1), m.group(2))
    if m := re.search(r"(\d{2}(?:\.\d+)?)\s*%\s*(?:uptime|availability|available|sla\b|of the time)", t):
        out["reliability"] = float(m.group(1))
    elif re.search(r"\b(production|prod|highly available|high availability|mission[- ]critical|customer[- ]facing)\b", t):
        out["reliability"] = _PRODUCTION_RELIABILITY
        out["_reliability_word"] = True
    if m := re.search(r"(?:max(?:imum)?|at most|up to|no more than|only)\s*(\d+)\s*gpus?", t):
        out["max_gpus"] = int(m.group(1))
    if m := re.search(r"peaks?\s*(?:of|at|around)?\s*(\d+(?:\.\d+)?)\s*x", t):
        out["peak_factor"] = float(m.group(1))
    if re.search(r"\b(cheap(est)?|lowest cost|cost[- ]sensitive|save money|minimi[sz]e cost)\b", t):
        out["priority"] = "cost"
    elif re.search(r"\b(fastest|lowest latency|latency[- ]critical|snappy|real[- ]time)\b", t):
        out["priority"] = "latency"
    elif re.search(r"\b(best quality|highest quality|most accurate|smartest|best model)\b", t) or \
            re.search(r"\bquality (?:matters|counts|comes) (?:most|first)|\bquality (?:is|as) (?:the )?(?:top |first |main )?"
                      r"priority|\bquality over (?:cost|price|speed|latency)", t):
        out["priority"] = "quality"
    if m := re.search(r"\b(quality|accuracy|latency|speed|cost|price)\s+(?:matters|counts|comes)\s+(?:the\s+)?(?:most|first)\b", t) or \
            re.search(r"\b(?:prioriti[sz]e|optimi[sz]e for)\s+(quality|accuracy|latency|speed|cost|price)\b", t):
        # An explicit ranking of what matters beats a passing adjective elsewhere in the text.
        out["priority"] = {"accuracy": "quality", "speed": "latency", "price": "cost"}.get(m.group(1), m.group(1))
    if re.search(r"\bopen[- ]?(weights?|source|models?)\b", t):
        out["open_weights_only"] = True
    gpus = [g.name for g in catalog.gpus if any(re.search(rf"(?<![\w-]){re.escape(a.lower())}(?![\w-])", t) for a in {g.name, *g.aliases})]
    if gpus:
        out["gpus"] = gpus
    models = [m.hf_id for m in catalog.models if any(len(a) > 4 and a.lower() in t for a in {m.hf_id, *m.aliases})]
    if models:
        out["models"] = sorted(set(models))
    quants = [q for q in WEIGHT_DTYPES if re.search(rf"\b{q}\b", t)]
    if quants:
        out["quantizations"] = quants
    if re.search(r"\b(no|without|not|non)[- ]stream", t):
        out["streaming"] = False
    elif re.search(r"\bstream(s|ed|ing)?\b", t):
        out["streaming"] = True
    if uc := _use_case_from_words(t, catalog):
        out["use_case"] = uc
    if name := _service_name(t):
        out["name"] = name
    return out


# Words that name what a service is; the word before one says which ("support chatbot", "HR assistant"), so two
# services described in words get two deployment names instead of both becoming their use case's name.
_SERVICE_NOUNS = ("chatbot", "bot", "assistant", "agent", "copilot", "helpdesk", "summarizer", "summariser",
                  "classifier", "translator", "tutor", "search", "service", "api")
_NOT_A_QUALIFIER = {"a", "an", "the", "our", "my", "your", "their", "we", "i", "need", "needs", "want", "serve",
                    "deploy", "run", "host", "build", "for", "to", "of", "with", "new", "internal", "llm", "ai", "gpu"}


def _service_name(t: str) -> str | None:
    """The service the first clause of the words names, as qualifier-noun ("support-chatbot"), or None."""
    words = re.findall(r"[a-z][a-z0-9]*", re.split(r"[,.;:()\n]", t, maxsplit=1)[0])
    for i, word in enumerate(words):
        if word in _SERVICE_NOUNS:
            qualifiers = [w for w in words[:i] if w not in _NOT_A_QUALIFIER and w not in _SERVICE_NOUNS]
            return "-".join([*qualifiers[-1:], word])
    return None


def _use_case_from_words(t: str, catalog: Catalog) -> str | None:
    """The use case whose keywords the words mention most (longer keywords weigh more; its own name most)."""
    best, score = None, 0
    for uc in catalog.use_cases:
        s = sum(len(k) for k in uc.keywords if re.search(rf"\b{re.escape(k)}s?\b", t))
        name = r"[- ]".join(map(re.escape, uc.name.split("-")))  # "code completion" names code-completion too
        s += 20 if re.search(rf"\b{name}\b", t) else 0
        if s > score:
            best, score = uc.name, s
    return best


def build_spec(catalog: Catalog, *, text: str | None = None, use_case: str | None = None, name: str | None = None,
               qps: float | None = None, users: int | None = None, requests_per_user_per_day: float | None = None,
               active_hours_per_day: float | None = None, peak_factor: float | None = None,
               burstiness: float | None = None, prompt_tokens: float | None = None, output_tokens: float | None = None,
               ttft_p90_ms: float | None = None, tpot_p90_ms: float | None = None, e2e_p95_ms: float | None = None,
               priority: str | None = None, budget_usd_month: float | None = None, models: list[str] | None = None,
               gpus: list[str] | None = None, quantizations: list[str] | None = None, max_gpus: int | None = None,
               open_weights_only: bool | None = None, extracted: dict[str, Any] | None = None,
               extracted_by: str | None = None, min_quality: str | float | None = None,
               min_params_b: float | None = None, max_params_b: float | None = None,
               streaming: bool | None = None, reliability: float | None = None,
               budget_usd_hour: float | None = None, traffic_mix: list[Any] | None = None) -> DeploymentSpec:
    """A DeploymentSpec from words and/or options (options win). `extracted` lets a caller pass values
    an LLM pulled from the words (MCP sampling); they are treated like the rule extractor's.

    `min_quality` is a named level (`Catalog.quality_levels`), a benchmark score, or "none"; with
    `min_params_b`/`max_params_b` it lowers or raises the floor the use-case template sets."""
    said: dict[str, Any] = dict(extract(text, catalog)) if text else {}
    if extracted:
        said.update({k: v for k, v in extracted.items() if v is not None})
    options = {k: v for k, v in dict(
        use_case=use_case, qps=qps, users=users, requests_per_user_per_day=requests_per_user_per_day,
        active_hours_per_day=active_hours_per_day, peak_factor=peak_factor, burstiness=burstiness,
        prompt_tokens=prompt_tokens, output_tokens=output_tokens, ttft_p90_ms=ttft_p90_ms, tpot_p90_ms=tpot_p90_ms,
        e2e_p95_ms=e2e_p95_ms, priority=priority, budget_usd_month=budget_usd_month, models=models or None,
        gpus=gpus or None, quantizations=quantizations or None, max_gpus=max_gpus, open_weights_only=open_weights_only,
        min_quality=min_quality, min_params_b=min_params_b, max_params_b=max_params_b, streaming=streaming,
        reliability=reliability, budget_usd_hour=budget_usd_hour,
    ).items() if v is not None}
    if "reliability" in options:
        said.pop("_reliability_word", None)
    v = {**said, **options}
    _check(v)
    assumptions: list[Assumption] = []
    questions: list[str] = []
    if "use_case" in v:
        uc = catalog.use_case(v["use_case"])
    else:
        uc = catalog.use_case(DEFAULT_USE_CASE)
        assumptions.append(Assumption(field="use_case", value=uc.name, source="no use-case words recognised; default"))
        questions.append(f"What is the workload? Known use cases: {', '.join(u.name for u in catalog.use_cases)}.")

    def src_of(field: str) -> str:
        return f"use-case template '{uc.name}': {uc.sources.get(field, uc.source)}"

    src = f"use-case template '{uc.name}': {uc.source}"
    traffic = _traffic(v, uc, assumptions, questions, src)
    mix = _mix(traffic_mix or [], uc)
    if mix and ("prompt_tokens" in v or "output_tokens" in v):
        raise BadInput("give either a traffic mix or prompt/output token lengths, not both: the mix sets the lengths")
    if mix:
        prompt, output = mixture(mix, "prompt_tokens"), mixture(mix, "output_tokens")
        shares = ", ".join(f"{c.name} {c.share:.0%}" for c in mix)
        for field, dist in (("prompt_tokens", prompt), ("output_tokens", output)):
            assumptions.append(Assumption(field=field, value=f"mean {dist.mean:g}, p90 {dist.p90:g}, cv {dist.cv:g}",
                                          source=f"mixture of the traffic classes ({shares})"))
    else:
        prompt = _lengths(v.get("prompt_tokens"), uc.prompt_tokens, "prompt_tokens", assumptions, src_of("prompt_tokens"))
        output = _lengths(v.get("output_tokens"), uc.output_tokens, "output_tokens", assumptions, src_of("output_tokens"))
    streaming = v.get("streaming", uc.streaming)
    if "streaming" not in v:
        assumptions.append(Assumption(field="streaming", value=str(streaming).lower(), source=src_of("streaming")))
    if mix:
        # The spec's targets are the template's (or stated) ones; a class whose lengths make them impossible gets
        # its own, adapted as a single-class spec's would be.
        slos = _slos(v, uc, uc.prompt_tokens, uc.output_tokens, streaming, assumptions, src_of)
        mix = _class_slos(v, uc, mix, streaming, slos, assumptions, src_of)
    else:
        slos = _slos(v, uc, prompt, output, streaming, assumptions, src_of)
    floor = _quality_floor(v, uc, catalog, assumptions, src_of("quality"))
    spec = DeploymentSpec(
        name=_name(name or v.get("name") or uc.name),
        use_case=uc.name, task=uc.task, description=(text or "")[:2000], traffic=traffic,
        prompt_tokens=prompt, output_tokens=output, slos=slos, streaming=streaming, **floor,
        priority=v.get("priority", "balanced"),
        budget_usd_month=v.get("budget_usd_month"), budget_usd_hour=v.get("budget_usd_hour"),
        reliability_target=v.get("reliability"), traffic_mix=mix,
        constraints=Constraints(models=[catalog.model(m).hf_id for m in v.get("models", [])],
                                gpus=[catalog.gpu(g).name for g in v.get("gpus", [])],
                                quantizations=v.get("quantizations", []), max_gpus=v.get("max_gpus"),
                                open_weights_only=bool(v.get("open_weights_only", False))),
        prefix_share=uc.prefix_share, assumptions=assumptions, questions=questions,
        extracted_by=extracted_by or ("rules" if text else "structured"),
    )
    if v.get("_reliability_word"):
        assumptions.append(Assumption(field="reliability_target", value=f"{_PRODUCTION_RELIABILITY:g}",
                                      source="your words say production / highly available: read as 99.9 % (43 min of "
                                             "downtime a month); give --reliability to change it"))
    if "priority" not in v:
        assumptions.append(Assumption(field="priority", value="balanced", source="default: cost, latency and quality weighed together"))
    return spec


def _check(v: dict[str, Any]) -> None:
    for field in ("qps", "users", "requests_per_user_per_day", "prompt_tokens", "output_tokens", "ttft_p90_ms",
                  "tpot_p90_ms", "e2e_p95_ms", "budget_usd_month", "budget_usd_hour", "max_gpus", "active_hours_per_day"):
        if field in v and not (isinstance(v[field], (int, float)) and v[field] > 0):
            raise BadInput(f"{field} must be a positive number (got {v[field]!r})")
    if v.get("peak_factor") is not None and v["peak_factor"] < 1:
        raise BadInput(f"peak_factor must be >= 1: the peak is at least the average (got {v['peak_factor']})")
    if v.get("burstiness") is not None and v["burstiness"] < 1:
        raise BadInput(f"burstiness must be >= 1 (1 = Poisson arrivals; got {v['burstiness']})")
    if v.get("priority") not in (None, "latency", "cost", "balanced", "quality"):
        raise BadInput(f"priority must be one of latency, cost, balanced, quality (got {v['priority']!r})")
    bad = [q for q in v.get("quantizations", []) if q not in WEIGHT_DTYPES]
    if bad:
        raise BadInput(f"unknown quantization {bad[0]!r}; allowed: {', '.join(WEIGHT_DTYPES)}")
    r = v.get("reliability")
    if r is not None and not (isinstance(r, (int, float)) and 90 <= r < 100):
        raise BadInput(f"reliability must be an availability percentage from 90 to below 100, e.g. 99.9 (got {r!r})")
    for field in ("min_params_b", "max_params_b"):
        if field in v and not (isinstance(v[field], (int, float)) and v[field] > 0):
            raise BadInput(f"{field} must be a positive number of billions of parameters (got {v[field]!r})")
    if v.get("min_params_b") and v.get("max_params_b") and v["min_params_b"] > v["max_params_b"]:
        raise BadInput(f"min_params_b ({v['min_params_b']:g}) is above max_params_b ({v['max_params_b']:g})")
    ttft, e2e = v.get("ttft_p90_ms"), v.get("e2e_p95_ms")
    if ttft and e2e and e2e < ttft:
        raise BadInput(f"e2e_p95_ms ({e2e:g}) cannot be below ttft_p90_ms ({ttft:g}): the first token is part of the answer")


def _p90(d: TokenDist) -> float:
    return d.p90 or d.mean * (1 + 1.2816 * d.cv)


def _slos(v: dict[str, Any], uc: UseCase, prompt: TokenDist, output: TokenDist, streaming: bool,
          assumptions: list[Assumption], src_of) -> SloTargets:
    """The targets: stated ones as given; template ones adapted when the stated lengths make them
    physically impossible, and E2E dropped while the client streams (people feel TTFT and TPOT)."""
    ttft, tpot = v.get("ttft_p90_ms"), v.get("tpot_p90_ms")
    if tpot is None and uc.slos.tpot_p90_ms:
        tpot = uc.slos.tpot_p90_ms
        assumptions.append(Assumption(field="tpot_p90_ms", value=f"{tpot:g}", source=src_of("slos.tpot_p90_ms")))
    if ttft is None and uc.slos.ttft_p90_ms:
        ttft = uc.slos.ttft_p90_ms
        why = src_of("slos.ttft_p90_ms")
        if prompt.mean > uc.prompt_tokens.mean * 1.05:
            # Prefill work grows at least linearly with the prompt: a template TTFT set for its own
            # prompt length cannot hold for a longer one.
            ttft = round(ttft * prompt.mean / uc.prompt_tokens.mean, -1)
            why = (f"adapted: the template's {uc.slos.ttft_p90_ms:g} ms is set for {uc.prompt_tokens.mean:g}-token "
                   f"prompts; prefill grows at least linearly with the prompt, so {prompt.mean:g} tokens get "
                   f"{ttft:g} ms. Template: {why}")
        assumptions.append(Assumption(field="ttft_p90_ms", value=f"{ttft:g}", source=why))
    e2e = v.get("e2e_p95_ms")
    if e2e is None and uc.slos.e2e_p95_ms:
        if streaming:
            assumptions.append(Assumption(
                field="e2e_p95_ms", value="none",
                source=(f"not a target: the client streams, so people feel TTFT and TPOT; the template's "
                        f"{uc.slos.e2e_p95_ms:g} ms applies only if you state an E2E target. "
                        f"Template: {src_of('slos.e2e_p95_ms')}")))
        else:
            e2e = uc.slos.e2e_p95_ms
            why = src_of("slos.e2e_p95_ms")
            # What the TTFT and TPOT targets themselves allow for a long (p90) answer: an E2E target
            # below that would silently bind instead of them.
            needed = round((ttft or 0) + _p90(output) * (tpot or 0), -2)
            if needed > e2e:
                why = (f"adapted from the template's {uc.slos.e2e_p95_ms:g} ms: a p90 answer of {_p90(output):,.0f} "
                       f"tokens at the TPOT target after the TTFT target takes {needed:,.0f} ms. Template: {why}")
                e2e = needed
            assumptions.append(Assumption(field="e2e_p95_ms", value=f"{e2e:g}", source=why))
    return SloTargets(ttft_p90_ms=ttft, tpot_p90_ms=tpot, e2e_p95_ms=e2e)


def _class_slos(v: dict[str, Any], uc: UseCase, mix: list[TrafficClass], streaming: bool, slos: SloTargets,
                assumptions: list[Assumption], src_of) -> list[TrafficClass]:
    """Each class's own targets where its lengths adapt the template's differently from the spec's (a class that
    states a target keeps it); the adaptation is listed as an assumption of that class."""
    out = []
    for c in mix:
        notes: list[Assumption] = []
        own = _slos(v, uc, c.prompt_tokens, c.output_tokens, streaming, notes, src_of)
        update = {}
        for field in ("ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms"):
            if getattr(c, field) is None and getattr(own, field) != getattr(slos, field):
                update[field] = getattr(own, field)
                assumptions.extend(a.model_copy(update={"field": f"traffic_mix.{c.name}.{field}"})
                                   for a in notes if a.field == field)
        out.append(c.model_copy(update=update))
    return out


def _quality_floor(v: dict[str, Any], uc: UseCase, catalog: Catalog, assumptions: list[Assumption],
                   why: str) -> dict[str, Any]:
    """The model floor: a minimum benchmark score and a size range, from the template unless stated.
    Naming the models lifts the template's floor: the person chose them."""
    named = bool(v.get("models"))
    out: dict[str, Any] = {"quality_level": None, "min_quality": None, "min_params_b": v.get("min_params_b"),
                           "max_params_b": v.get("max_params_b")}
    stated = v.get("min_quality")
    if stated is not None:
        if isinstance(stated, str) and stated.strip().lower() in ("none", "any", "0"):
            pass
        elif isinstance(stated, (int, float)) or _is_number(stated):
            score = float(stated)
            if not 0 <= score <= 100:
                raise BadInput(f"min_quality must be a level name or a score from 0 to 100 (got {stated!r})")
            out["min_quality"] = score
        else:
            level = catalog.quality_level(str(stated))
            out.update(quality_level=level.name, min_quality=level.min_score)
    elif uc.quality and not named:
        level = catalog.quality_level(uc.quality)
        out.update(quality_level=level.name, min_quality=level.min_score)
        assumptions.append(Assumption(field="min_quality", value=f"{level.name} ({level.benchmark} >= {level.min_score:g})",
                                      source=f"{why}; level set at {level.anchor}; lower it with --min-quality "
                                             f"{'|'.join(q.name for q in catalog.quality_levels)}|none"))
    if not named:
        for field, template in (("min_params_b", uc.min_params_b), ("max_params_b", uc.max_params_b)):
            if field not in v and template:
                out[field] = template
                assumptions.append(Assumption(field=field, value=f"{template:g}",
                                              source=f"use-case template '{uc.name}' model-size range; change it "
                                                     f"with --{field.replace('_', '-')}"))
    return out


def _is_number(s: Any) -> bool:
    try:
        float(s)
    except (TypeError, ValueError):
        return False
    return True


def _traffic(v: dict[str, Any], uc: UseCase, assumptions: list[Assumption], questions: list[str], src: str) -> Traffic:
    peak = v.get("peak_factor")
    if peak is None:
        peak = uc.peak_factor
        assumptions.append(Assumption(field="traffic.peak_factor", value=f"{peak:g}", source=src))
    burst = v.get("burstiness")
    if burst is None:
        burst = uc.burstiness
        assumptions.append(Assumption(field="traffic.burstiness", value=f"{burst:g}", source=src))
    hours = v.get("active_hours_per_day", 8.0)
    if "qps" in v:
        return Traffic(qps=v["qps"], peak_factor=peak, burstiness=burst, active_hours_per_day=hours)
    if "users" not in v:
        questions.append("How much traffic? Give requests per second (e.g. '20 req/s') or users and requests per user per day.")
        assumptions.append(Assumption(field="traffic.qps", value="1", source="no traffic given: placeholder of 1 req/s"))
        return Traffic(qps=1.0, peak_factor=peak, burstiness=burst, active_hours_per_day=hours)
    rpud = v.get("requests_per_user_per_day")
    if rpud is None:
        rpud = uc.requests_per_user_per_day
        assumptions.append(Assumption(field="traffic.requests_per_user_per_day", value=f"{rpud:g}", source=src))
    if "active_hours_per_day" not in v:
        assumptions.append(Assumption(field="traffic.active_hours_per_day", value=f"{hours:g}",
                                      source="users' requests spread over an 8-hour working day"))
    return Traffic(users=v["users"], requests_per_user_per_day=rpud, active_hours_per_day=hours, peak_factor=peak,
                   burstiness=burst)


def _lengths(mean: float | None, template: TokenDist, field: str, assumptions: list[Assumption], src: str) -> TokenDist:
    if mean is None:
        assumptions.append(Assumption(field=field, value=f"mean {template.mean:g}, cv {template.cv:g}", source=src))
        return template
    # Keep the template's spread around the stated mean, and say so.
    assumptions.append(Assumption(field=f"{field}.cv", value=f"{template.cv:g}", source=src))
    ratio = mean / template.mean
    return template.model_copy(update={"mean": mean, "p50": template.p50 and template.p50 * ratio,
                                       "p90": template.p90 and template.p90 * ratio,
                                       "max": max(int((template.max or mean * 4) * ratio), int(mean) + 1)})


def _mix(raw: list[Any], uc: UseCase) -> list[TrafficClass]:
    """Classes from dicts (TrafficClass fields; lengths may be plain means) or 'name:share:prompt:output[:ttft_ms]'
    strings (the last, optional, is the class's own TTFT p90 target); shares are normalised to sum to one, and a
    class without a spread takes the use case's."""
    classes = []
    for item in raw:
        if isinstance(item, str):
            parts = item.split(":")
            if len(parts) not in (4, 5):
                raise BadInput(f"traffic class {item[:60]!r}: give name:share:prompt_tokens:output_tokens[:ttft_p90_ms], "
                               "e.g. rag:0.3:8000:400 or rag:0.3:8000:400:2000")
            try:
                numbers = [float(x) for x in parts[1:]]
            except ValueError:
                numbers = [math.nan]
            if not all(math.isfinite(x) and x > 0 for x in numbers):
                raise BadInput(f"traffic class {item[:60]!r}: share, token counts and the TTFT target must be positive "
                               "numbers")
            item = dict(zip(("name", "share", "prompt_tokens", "output_tokens", "ttft_p90_ms"), [parts[0], *numbers]))
        if not isinstance(item, dict):
            raise BadInput("a traffic class is an object with name, share, prompt_tokens, output_tokens")
        item = dict(item)
        for field, template in (("prompt_tokens", uc.prompt_tokens), ("output_tokens", uc.output_tokens)):
            value = item.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if value <= 0:
                    raise BadInput(f"traffic class {item.get('name')!r}: {field} must be positive")
                ratio = value / template.mean
                item[field] = template.model_copy(update={"mean": float(value), "p50": template.p50 and template.p50 * ratio,
                                                          "p90": template.p90 and template.p90 * ratio,
                                                          "max": max(int((template.max or value * 4) * ratio), int(value) + 1)})
        try:
            classes.append(TrafficClass.model_validate(item))
        except ValidationError as exc:
            raise BadInput(f"traffic class {item.get('name')!r}: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    if not classes:
        return []
    total = sum(c.share for c in classes)
    if len({c.name for c in classes}) != len(classes):
        raise BadInput("traffic class names must differ")
    return [c.model_copy(update={"share": c.share / total}) for c in classes]


def _name(raw: str) -> str:
    """A DNS-1123 label for the deployment; the person's text never becomes structure."""
    s = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:40].strip("-")
    return s or "llm"


def average_qps(spec: DeploymentSpec) -> float:
    t = spec.traffic
    if t.qps is not None:
        return t.qps
    return (t.users or 0) * (t.requests_per_user_per_day or 0) / (t.active_hours_per_day * 3600)


def peak_qps(spec: DeploymentSpec) -> float:
    """The request rate the deployment is sized for: average x peak factor."""
    return average_qps(spec) * spec.traffic.peak_factor
