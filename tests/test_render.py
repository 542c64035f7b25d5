"""Rendering plans into bundles: every document validates against the real schemas, hostile strings
cannot change a document's structure, output is written atomically."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from gitops.bundle import write_bundle
from gitops.render import render_bundle
from gitops.validate import _CRD_SCHEMA, documents, validate_bundle
from kb.latency import load_latency_params
from planner.contracts import Assumption
from planner.errors import BadInput
from planner.recommend import recommend
from planner.spec import build_spec


@pytest.fixture(scope="module")
def plans(cat):
    params = load_latency_params()
    # Not streamed, so every plan carries all three SLOs (a streamed chatbot has no E2E target).
    return {uc: recommend(build_spec(cat, use_case=uc, qps=q, streaming=False), cat, params, provider="aws")
            for uc, q in (("chatbot", 20), ("summarization", 5), ("code-generation", 10))}


def _outline(markdown: str) -> list[str]:
    """The README's block structure: the marker of each heading, table row and list item."""
    return [line.split()[0] for line in markdown.splitlines() if re.match(r"\s*(#|\||[-*+>] |\d+[.)] )", line)]


def _shape(bundle):
    return sorted((path, d["apiVersion"], d["kind"], d["metadata"]["name"]) for path, d in documents(bundle))


@pytest.mark.parametrize("autoscaler,monitor", [("keda", "podmonitor"), ("hpa", "servicemonitor")])
def test_original_use_cases_render_valid_bundles(cat, plans, autoscaler, monitor):
    for plan in plans.values():
        c = plan.candidates[plan.chosen]
        bundle = render_bundle(plan, autoscaler=autoscaler, monitor=monitor,
                               gpu_labels=cat.gpu(c.gpu).k8s_product_labels)
        assert validate_bundle(bundle, "1.31") == []
        kinds = {d["kind"] for _, d in documents(bundle)}
        assert {"InferenceService", "ServingRuntime", "PrometheusRule", "CronJob", "ConfigMap", "ServiceAccount"} <= kinds
        # Argo CD's ApplicationSet makes the Application; the namespace may be shared, so no bundle owns it.
        assert not kinds & {"Namespace", "Application"}
        assert ("ScaledObject" in kinds) == (autoscaler == "keda") and ("HorizontalPodAutoscaler" in kinds) == (autoscaler == "hpa")
        isvc = next(d for _, d in documents(bundle) if d["kind"] == "InferenceService")
        model = isvc["spec"]["predictor"]["model"]
        assert model["resources"]["limits"]["nvidia.com/gpu"] == c.tp * c.pp
        assert model["args"][model["args"].index("--tensor-parallel-size") + 1] == str(c.tp)
        assert all("valueFrom" in e or e["name"] != "HF_TOKEN" for e in model["env"])
        runtime = next(d for _, d in documents(bundle) if d["kind"] == "ServingRuntime")
        assert not runtime["spec"]["containers"][0]["image"].endswith(":latest")
        recorded = json.loads(bundle.files["plan.json"])
        assert recorded["id"] == plan.id and recorded["render"]["autoscaler"] == autoscaler
        assert recorded["render"]["monitor"] == monitor and recorded["render"]["gpu_labels"] == cat.gpu(c.gpu).k8s_product_labels
        rules = bundle.files["prometheusrule.yaml"]
        for metric in ("vllm:time_to_first_token_seconds_bucket", "vllm:request_time_per_output_token_seconds_bucket",
                       "vllm:e2e_request_latency_seconds_bucket", "vllm:request_success_total"):
            assert metric in rules


HOSTILE = ['quote " and \' here', "line\nbreak: x\n- item", "{{ 7*7 }} {% raw %}", "---\nkind: Secret",
           "&anchor value", "*alias", "!!python/object/apply:os.system ['id']", "x" * 5000,
           "naïve 模型 🚀 ünïcødé", "key: value\nother: [1, 2]", "# comment", "@at `tick` |pipe >fold",
           "1. first", "- dash", "> quote", "=== setext"]


def _with_free_text(plan, value: str):
    """The plan and render options with `value` in every free-text field a person or a model can fill."""
    spec = plan.spec.model_copy(update={"description": value, "name": value, "use_case": value,
                                        "assumptions": [Assumption(field=value, value=value, source=value)]})
    candidates = [c.model_copy(update={"model": value, "checkpoint": value, "explanation": value, "binding_constraint": value,
                                       "predicted": c.predicted.model_copy(update={"assumptions": [value]})})
                  for c in plan.candidates]
    plan = plan.model_copy(update={"id": value, "spec": spec, "rationale": value, "candidates": candidates})
    return render_bundle(plan, name="chatbot", repo_url=value, servewise_image=value + ":1")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_cannot_change_structure(plans, value):
    plan = plans["chatbot"]
    benign = _with_free_text(plan, "benign words")
    baseline = _shape(benign)
    bundle = _with_free_text(plan, value)
    assert _shape(bundle) == baseline
    isvc = next(d for _, d in documents(bundle) if d["kind"] == "InferenceService")
    args = isvc["spec"]["predictor"]["model"]["args"]
    assert args[0] == value  # the value survives whole, as data (vLLM's positional model)
    assert json.loads(bundle.files["plan.json"])["id"] == value
    assert _outline(bundle.files["README.md"]) == _outline(benign.files["README.md"])
    # Only schema-level complaints about the values themselves are acceptable, never a changed structure.
    assert all(i.field != "(yaml)" and "duplicate" not in i.reason for i in validate_bundle(bundle))


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_storage_uris_are_rejected_or_stay_one_scalar(plans, value):
    with pytest.raises(BadInput, match="storage URI"):
        render_bundle(plans["chatbot"], storage_uri=value)
    uri = "s3://bucket/" + value
    try:
        bundle = render_bundle(plans["chatbot"], storage_uri=uri)
    except BadInput as exc:
        assert "storage URI" in exc.message and any(ch.isspace() for ch in value)
    else:
        isvc = next(d for _, d in documents(bundle) if d["kind"] == "InferenceService")
        assert isvc["spec"]["predictor"]["model"]["storageUri"] == uri


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_are_sanitized_or_rejected(plans, value):
    plan = plans["chatbot"]
    derived = plan.model_copy(update={"spec": plan.spec.model_copy(update={"name": value})})
    try:
        bundle = render_bundle(derived)
    except BadInput as exc:
        assert "--name" in exc.message
    else:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", bundle.name) and len(bundle.name) <= 40
        assert validate_bundle(bundle) == []
    for field in ("name", "namespace"):
        with pytest.raises(BadInput, match=f"{field} .*DNS-1123"):
            render_bundle(plan, **{field: value})


def test_names_are_sanitized_or_rejected(plans):
    plan = plans["chatbot"]
    derived = plan.model_copy(update={"spec": plan.spec.model_copy(update={"name": "Support Bot!!  v2 ü"})})
    assert render_bundle(derived).name == "support-bot-v2"
    for bad in ("Bad_Name", "-x", "a" * 80, "x\ny"):
        with pytest.raises(BadInput, match="DNS-1123"):
            render_bundle(plan, name=bad)
    with pytest.raises(BadInput, match="namespace"):
        render_bundle(plan, namespace="Team A")


def test_write_is_atomic_and_refuses_foreign_dirs(plans, tmp_path):
    bundle = render_bundle(plans["chatbot"])
    out = tmp_path / "bundle"
    paths = write_bundle(bundle, out)
    assert {p.name for p in paths} == {*bundle.files, ".servewise-bundle.json"} and (out / "plan.json").exists()
    write_bundle(bundle, out)  # replacing an earlier bundle is fine
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BadInput, match="not replaced"):
        write_bundle(bundle, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_every_crd_kind_has_its_schema_copied():
    from gitops.validate import SCHEMAS

    assert all((SCHEMAS / f).exists() for f in _CRD_SCHEMA.values())


def test_render_cli_writes_tree(cli, tmp_path):
    plan = tmp_path / "plan.json"
    assert cli("recommend", "--use-case", "summarization", "--qps", "5", "--out", str(plan), "--json").exit_code == 0
    r = cli("render", "--plan", str(plan), "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r.stdout
    assert len(json.loads(r.stdout)["files"]) >= 9
    bad = cli("render", "--plan", str(plan), "--out", str(tmp_path / "o2"), "--name", "No_Good", "--json")
    assert bad.exit_code == 2 and "DNS-1123" in json.loads(bad.stdout)["error"]["message"]
    missing = cli("render", "--plan", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o3"), "--json")
    assert missing.exit_code == 2
    human = cli("render", "--plan", str(plan), "--out", str(tmp_path / "out"), "--autoscaler", "hpa")
    assert human.exit_code == 0 and "hpa.yaml" in human.stdout and "validated" in human.stdout
    assert not (tmp_path / "out" / "scaledobject.yaml").exists()  # the earlier bundle was replaced whole


def test_keda_scales_on_totals_with_per_replica_thresholds(plans):
    # KEDA's AverageValue divides the query result by the threshold: an average query would never scale out.
    plan = plans["chatbot"]
    c = plan.candidates[plan.chosen]
    triggers = yaml.safe_load(render_bundle(plan).files["scaledobject.yaml"])["spec"]["triggers"]
    running = next(t for t in triggers if "num_requests_running" in t["metadata"]["query"])
    assert all(t["metadata"]["query"].startswith("sum(vllm:") for t in triggers)
    assert 0 < float(running["metadata"]["threshold"]) <= c.vllm.max_num_seqs


def test_gpu_placement_follows_the_catalog_entry(cat, plans):
    plan = plans["code-generation"]
    a100 = cat.gpu("A100-80GB")
    isvc = yaml.safe_load(render_bundle(plan, gpu_labels=a100.k8s_product_labels).files["inferenceservice.yaml"])
    term = isvc["spec"]["predictor"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == a100.k8s_product_labels
    with pytest.raises(BadInput, match="NVIDIA deployments only"):
        render_bundle(plan, gpu_vendor=cat.gpu("MI300X").vendor)
    for option, value in (("autoscaler", "knative"), ("monitor", "datadog")):
        with pytest.raises(BadInput, match=f"{option} '{value}' is not supported"):
            render_bundle(plan, **{option: value})


def test_the_kubernetes_version_is_checked_and_stated(plans):
    assert "Kubernetes 1.33" in render_bundle(plans["chatbot"], k8s_version="1.33").files["README.md"]
    with pytest.raises(BadInput, match="k8s version 1.9 is not supported"):
        render_bundle(plans["chatbot"], k8s_version="1.9")


def test_render_cli_passes_deployment_options(cli, tmp_path):
    plan = tmp_path / "plan.json"
    assert cli("recommend", "--use-case", "chatbot", "--qps", "5", "--out", str(plan), "--json").exit_code == 0
    r = cli("render", "--plan", str(plan), "--out", str(tmp_path / "out"), "--storage-uri", "pvc://models/qwen",
            "--prometheus-url", "http://prom.obs:9090", "--servewise-image", "registry.local/servewise:1.2.3", "--json")
    assert r.exit_code == 0, r.stdout
    isvc = yaml.safe_load((tmp_path / "out" / "inferenceservice.yaml").read_text())
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "pvc://models/qwen" and model["args"][0] == "/mnt/models"
    cron = yaml.safe_load((tmp_path / "out" / "cronjob-slo-report.yaml").read_text())
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/servewise:1.2.3"
    assert {"name": "SERVEWISE_PROMETHEUS", "value": "http://prom.obs:9090"} in container["env"]


def test_alerts_and_dashboard_use_vllms_exposed_metric_names(plans):
    # Names as exposed by vLLM (shared/reference/vllm-metrics.md): histograms through _bucket, counters with _total.
    exposed = {"vllm:time_to_first_token_seconds_bucket", "vllm:request_time_per_output_token_seconds_bucket",
               "vllm:e2e_request_latency_seconds_bucket", "vllm:request_success_total", "vllm:num_requests_running",
               "vllm:num_requests_waiting", "vllm:generation_tokens_total", "vllm:kv_cache_usage_perc",
               "vllm:num_preemptions_total"}
    bundle = render_bundle(plans["chatbot"])
    rules = yaml.safe_load(bundle.files["prometheusrule.yaml"])["spec"]["groups"][0]["rules"]
    dashboard = json.loads(next(iter(yaml.safe_load(bundle.files["dashboard-configmap.yaml"])["data"].values())))
    exprs = [r["expr"] for r in rules] + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"vllm:[a-z0-9_]+", e)}
    assert used == exposed
    assert {r["expr"].rsplit(" > ", 1)[0] for r in rules} <= set(exprs[len(rules):])  # the dashboard shows what alerts
    slos = plans["chatbot"].spec.slos
    assert f"> {slos.ttft_p90_ms / 1000:g}" in rules[0]["expr"]
