"""Every rendered alert through `promtool test rules` (Prometheus's own rule evaluator) on synthetic vLLM series:
each fires when its SLO is violated, and none fires on a healthy service whose clients cancel 2 % of requests."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from gitops.render import _BUCKETS, render_bundle, served_model_name

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is missing")

RATE = 600  # finished requests per minute (10/s)
MINUTES = 40
EVAL = "30m"


def _counter(per_min: float) -> str:
    return f"0+{per_min:g}x{MINUTES}"


def _labels(**kw: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kw.items()) + "}"


def _series(sel: dict, pod: dict, *, slow: str | None = None, error_share: float = 0.0, http_5xx_share: float = 0.0,
            abort_share: float = 0.02) -> list[dict]:
    """vLLM's exposed series for one pod at 10 finished requests/s. `slow` names the histogram whose observations
    all land above its SLO threshold bucket; every other observation lands in the lowest bucket."""
    out = []
    for metric, buckets in _BUCKETS.items():
        above = _slow_from.get(metric) if metric == slow else None
        for le in [*buckets, float("inf")]:
            per_min = 0 if above is not None and le <= above else RATE
            le_text = "+Inf" if le == float("inf") else repr(float(le))
            out.append({"series": f"vllm:{metric}_bucket" + _labels(**sel, le=le_text), "values": _counter(per_min)})
    finished = {"abort": RATE * abort_share, "error": RATE * error_share}
    finished["stop"] = RATE - sum(finished.values())
    out += [{"series": "vllm:request_success_total" + _labels(**sel, finished_reason=r), "values": _counter(v)}
            for r, v in finished.items()]
    # A cancelled request is no server error: the API server answers it 200 before the client goes away.
    ok = RATE * (1 - http_5xx_share)
    out += [{"series": "http_requests_total" + _labels(**pod, handler="/v1/chat/completions", method="POST", status=s),
             "values": _counter(v)} for s, v in (("2xx", ok), ("5xx", RATE * http_5xx_share))]
    return out


_slow_from: dict[str, float] = {}


def _promtool(tmp_path, rules: dict, series: list[dict], expect: list[dict]) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rules["spec"]["groups"]}))
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series,
                       "alert_rule_test": [{"eval_time": EVAL, "alertname": a["alert"],
                                            "exp_alerts": a["exp"]} for a in expect]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    return subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def rendered(chatbot_plans):
    bundle = render_bundle(chatbot_plans[0], namespace="team-a", name="support-bot")
    rules = yaml.safe_load(bundle.files["prometheusrule.yaml"])
    # vLLM labels its series with --served-model-name, which render makes unique per deployment
    sel = {"model_name": served_model_name("team-a", "support-bot"), "namespace": "team-a", "engine": "0",
           "pod": "support-bot-predictor-7d9f8b6c4-x2k9p"}
    pod = {"namespace": "team-a", "pod": "support-bot-predictor-7d9f8b6c4-x2k9p", "container": "kserve-container"}
    for _, metric, _, field in (("", "time_to_first_token_seconds", 0, "ttft_p90_ms"),
                                ("", "request_time_per_output_token_seconds", 0, "tpot_p90_ms"),
                                ("", "e2e_request_latency_seconds", 0, "e2e_p95_ms")):
        target = getattr(chatbot_plans[0].spec.slos, field) / 1000
        _slow_from[metric] = min(b for b in _BUCKETS[metric] if b > target)  # everything slower than the next boundary
    return rules, sel, pod


def _alerts(rules: dict) -> list[dict]:
    return rules["spec"]["groups"][0]["rules"]


def _violation(alert: str) -> dict:
    if alert == "ServewiseEngineErrors":
        return {"error_share": 0.05}
    if alert == "ServewiseHttpServerErrors":
        return {"http_5xx_share": 0.05}
    metric = {"TTFT": "time_to_first_token_seconds", "TPOT": "request_time_per_output_token_seconds",
              "E2E": "e2e_request_latency_seconds"}[re.match(r"ServewiseSlo([A-Z0-9]+?)p\d+$", alert).group(1)]
    return {"slow": metric}


def test_no_alert_fires_on_a_healthy_service_with_two_percent_client_cancels(tmp_path, rendered):
    rules, sel, pod = rendered
    names = [a["alert"] for a in _alerts(rules)]
    assert {"ServewiseEngineErrors", "ServewiseHttpServerErrors"} <= set(names) and len(names) == 5
    r = _promtool(tmp_path, rules, _series(sel, pod, abort_share=0.02), [{"alert": n, "exp": []} for n in names])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("index", range(5))
def test_each_alert_fires_on_its_violated_slo_and_only_it(tmp_path, rendered, index):
    rules, sel, pod = rendered
    alerts = _alerts(rules)
    alert = alerts[index]
    series = _series(sel, pod, **_violation(alert["alert"]))
    expect = [{"alert": a["alert"], "exp": [{"exp_labels": dict(a["labels"]), "exp_annotations": dict(a["annotations"])}]
               if a is alert else []} for a in alerts]
    r = _promtool(tmp_path, rules, series, expect)
    assert r.returncode == 0, r.stdout + r.stderr


def test_aborts_alone_never_page(tmp_path, rendered):
    # Half the requests cancelled by their clients is a client problem, not a failing service.
    rules, sel, pod = rendered
    r = _promtool(tmp_path, rules, _series(sel, pod, abort_share=0.5),
                  [{"alert": a["alert"], "exp": []} for a in _alerts(rules)])
    assert r.returncode == 0, r.stdout + r.stderr


def test_another_deployments_pods_do_not_count(tmp_path, rendered):
    # 5xx from a different deployment in the same namespace must not page this one.
    rules, sel, pod = rendered
    other = {**pod, "pod": "support-bot-v2-predictor-5c6d7e8f9-abcde"}
    series = _series(sel, pod) + [{"series": "http_requests_total" + _labels(**other, handler="/v1/chat/completions",
                                                                            method="POST", status="5xx"),
                                   "values": _counter(RATE)}]
    r = _promtool(tmp_path, rules, series, [{"alert": "ServewiseHttpServerErrors", "exp": []}])
    assert r.returncode == 0, r.stdout + r.stderr
