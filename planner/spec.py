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

import re
from typing import Any

from planner.catalog import WEIGHT_DTYPES, Catalog, TokenDist, UseCase
from planner.contracts import (
    Assumption,
    Constraints,
    DeploymentSpec,
    SloTargets,
    Traffic,
)
from planner.errors import BadInput

_NUM = r"(\d[\d,]*(?:\.\d+)?)\s*(k|thousand|m|million)?"
_SCALE = {None: 1, "k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}
_PER = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hr": 3600, "hour": 3600, "day": 86400}
DEFAULT_USE_CASE = "chatbot"


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
    if m := re.search(r"(\d[\d,]*)\s*(?:-\s*)?(?:token|tok)s?\s*(?:prompts?|inputs?|context|documents?)", t) or \
            re.search(r"(?:prompts?|inputs?|documents?)\s+(?:(?:of|around|about|roughly|~)\s*)*(\d[\d,]*)\s*tokens", t):
        out["prompt_tokens"] = float(m.group(1).replace(",", ""))
    if m := re.search(r"(\d[\d,]*)\s*(?:-\s*)?(?:token|tok)s?\s*(?:outputs?|answers?|responses?|completions?|summar)", t) or \
            re.search(r"(?:outputs?|answers?|responses?)\s+(?:(?:of|around|about|roughly|~)\s*)*(\d[\d,]*)\s*tokens", t):
        out["output_tokens"] = float(m.group(1).replace(",", ""))
    if m := re.search(r"\$\s*" + _NUM + r"\s*(?:/|a|per)\s*(?:month|mo)\b", t) or \
            re.search(r"budget (?:of )?\$?\s*" + _NUM, t):
        out["budget_usd_month"] = _number(m.group(1), m.group(2))
    if m := re.search(r"(?:max(?:imum)?|at most|up to|no more than|only)\s*(\d+)\s*gpus?", t):
        out["max_gpus"] = int(m.group(1))
    if m := re.search(r"peaks?\s*(?:of|at|around)?\s*(\d+(?:\.\d+)?)\s*x", t):
        out["peak_factor"] = float(m.group(1))
    if re.search(r"\b(cheap(est)?|lowest cost|cost[- ]sensitive|save money|minimi[sz]e cost)\b", t):
        out["priority"] = "cost"
    elif re.search(r"\b(fastest|lowest latency|latency[- ]critical|snappy|real[- ]time)\b", t):
        out["priority"] = "latency"
    elif re.search(r"\b(best quality|highest quality|most accurate|smartest|best model)\b", t):
        out["priority"] = "quality"
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
        s += 20 if re.search(rf"\b{re.escape(uc.name)}\b", t) else 0
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
               extracted_by: str | None = None) -> DeploymentSpec:
    """A DeploymentSpec from words and/or options (options win). `extracted` lets a caller pass values
    an LLM pulled from the words (MCP sampling); they are treated like the rule extractor's."""
    said: dict[str, Any] = dict(extract(text, catalog)) if text else {}
    if extracted:
        said.update({k: v for k, v in extracted.items() if v is not None})
    options = {k: v for k, v in dict(
        use_case=use_case, qps=qps, users=users, requests_per_user_per_day=requests_per_user_per_day,
        active_hours_per_day=active_hours_per_day, peak_factor=peak_factor, burstiness=burstiness,
        prompt_tokens=prompt_tokens, output_tokens=output_tokens, ttft_p90_ms=ttft_p90_ms, tpot_p90_ms=tpot_p90_ms,
        e2e_p95_ms=e2e_p95_ms, priority=priority, budget_usd_month=budget_usd_month, models=models or None,
        gpus=gpus or None, quantizations=quantizations or None, max_gpus=max_gpus, open_weights_only=open_weights_only,
    ).items() if v is not None}
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

    def pick(field: str, template_value: Any, why: str) -> Any:
        if field in v:
            return v[field]
        assumptions.append(Assumption(field=field, value=str(template_value), source=why))
        return template_value

    src = f"use-case template '{uc.name}': {uc.source}"
    traffic = _traffic(v, uc, assumptions, questions, src)
    spec = DeploymentSpec(
        name=_name(name or v.get("name") or uc.name),
        use_case=uc.name, task=uc.task, description=(text or "")[:2000], traffic=traffic,
        prompt_tokens=_lengths(v.get("prompt_tokens"), uc.prompt_tokens, "prompt_tokens", assumptions, src),
        output_tokens=_lengths(v.get("output_tokens"), uc.output_tokens, "output_tokens", assumptions, src),
        slos=SloTargets(ttft_p90_ms=pick("ttft_p90_ms", uc.slos.ttft_p90_ms, src),
                        tpot_p90_ms=pick("tpot_p90_ms", uc.slos.tpot_p90_ms, src),
                        e2e_p95_ms=pick("e2e_p95_ms", uc.slos.e2e_p95_ms, src)),
        priority=v.get("priority", "balanced"),
        budget_usd_month=v.get("budget_usd_month"),
        constraints=Constraints(models=[catalog.model(m).hf_id for m in v.get("models", [])],
                                gpus=[catalog.gpu(g).name for g in v.get("gpus", [])],
                                quantizations=v.get("quantizations", []), max_gpus=v.get("max_gpus"),
                                open_weights_only=bool(v.get("open_weights_only", False))),
        prefix_share=uc.prefix_share, assumptions=assumptions, questions=questions,
        extracted_by=extracted_by or ("rules" if text else "structured"),
    )
    if "priority" not in v:
        assumptions.append(Assumption(field="priority", value="balanced", source="default: cost, latency and quality weighed together"))
    return spec


def _check(v: dict[str, Any]) -> None:
    for field in ("qps", "users", "requests_per_user_per_day", "prompt_tokens", "output_tokens", "ttft_p90_ms",
                  "tpot_p90_ms", "e2e_p95_ms", "budget_usd_month", "max_gpus", "active_hours_per_day"):
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
    ttft, e2e = v.get("ttft_p90_ms"), v.get("e2e_p95_ms")
    if ttft and e2e and e2e < ttft:
        raise BadInput(f"e2e_p95_ms ({e2e:g}) cannot be below ttft_p90_ms ({ttft:g}): the first token is part of the answer")


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
