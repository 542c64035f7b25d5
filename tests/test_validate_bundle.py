"""Validating bundles: each kind of mistake a hand edit or a bad render could make is found, and the issue
names the file, the object, the field and the reason."""

from __future__ import annotations

import pytest
import yaml

from gitops.bundle import Bundle
from gitops.render import render_bundle
from gitops.validate import validate_bundle
from planner.errors import BadInput
from planner.recommend import recommend
from planner.spec import build_spec


@pytest.fixture(scope="module")
def bundle(cat, params) -> Bundle:
    return render_bundle(recommend(build_spec(cat, use_case="chatbot", qps=20), cat, params, provider="aws"))


def _edit(bundle: Bundle, path: str, old: str, new: str) -> Bundle:
    assert old in bundle.files[path], f"{old!r} not in {path}"
    changed = bundle.model_copy(deep=True)
    changed.files[path] = changed.files[path].replace(old, new, 1)
    return changed


def _issues(bundle: Bundle) -> list:
    issues = validate_bundle(bundle)
    assert issues, "the mistake went unnoticed"
    assert all(i.file and i.kind and i.name and i.field and i.reason for i in issues)
    return issues


def test_the_rendered_bundle_is_valid(bundle):
    assert validate_bundle(bundle, "1.31") == []


def test_an_unknown_field_in_a_custom_resource_names_it(bundle):
    issues = _issues(_edit(bundle, "inferenceservice.yaml", "  predictor:", "  bogus: 1\n  predictor:"))
    assert any(i.kind == "InferenceService" and i.name == bundle.name and "bogus" in i.reason for i in issues)


def test_a_wrong_type_in_a_custom_resource_names_the_field(bundle):
    issues = _issues(_edit(bundle, "scaledobject.yaml", "  triggers:", "  pollingInterval: soon\n  triggers:"))
    assert any(i.kind == "ScaledObject" and i.field == "spec.pollingInterval" for i in issues)


def test_core_kinds_are_checked_strictly_against_the_kubernetes_openapi(bundle):
    issues = _issues(_edit(bundle, "cronjob-slo-report.yaml", "  concurrencyPolicy: Forbid",
                           "  concurrencyPolicy: Forbid\n  retries: 3"))
    assert any(i.kind == "CronJob" and "retries" in i.reason for i in issues)


def test_gpu_count_must_equal_tp_times_pp(bundle):
    isvc = yaml.safe_load(bundle.files["inferenceservice.yaml"])
    gpus = isvc["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"]
    issues = _issues(_edit(bundle, "inferenceservice.yaml", f"nvidia.com/gpu: {gpus}\n    ",
                           f"nvidia.com/gpu: {gpus + 1}\n    "))
    assert any(i.field.endswith("nvidia.com/gpu") and "TP x PP" in i.reason for i in issues)


def test_memory_settings_must_match_the_plans_fit(bundle):
    issues = _issues(_edit(bundle, "inferenceservice.yaml", '"--gpu-memory-utilization", "',
                           '"--gpu-memory-utilization", "0.5", "--x", "'))
    field = "spec.predictor.model.args[--gpu-memory-utilization]"
    assert any(i.field == field and "memory fit" in i.reason for i in issues)
    assert any(i.field == field and "but the plan says" in i.reason for i in issues)


@pytest.mark.parametrize("flag,replacement", [("--max-num-seqs", ["--max-num-seqs", "7"]),
                                              ("--kv-cache-dtype", ["--kv-cache-dtype", "fp8"]),
                                              ("--enable-chunked-prefill", ["--no-enable-chunked-prefill"])])
def test_vllm_settings_must_be_the_plans(bundle, flag, replacement):
    isvc = yaml.safe_load(bundle.files["inferenceservice.yaml"])
    args = isvc["spec"]["predictor"]["model"]["args"]
    i = args.index(flag)
    args[i:i + (1 if flag.startswith("--enable") else 2)] = replacement
    changed = bundle.model_copy(deep=True)
    changed.files["inferenceservice.yaml"] = yaml.safe_dump(isvc)
    assert any(i.field == f"spec.predictor.model.args[{flag}]" for i in _issues(changed))


def test_replica_bounds_must_be_the_plans(bundle):
    c = bundle.plan.candidates[bundle.plan.chosen]
    issues = _issues(_edit(bundle, "scaledobject.yaml", f"maxReplicaCount: {c.max_replicas}",
                           f"maxReplicaCount: {c.max_replicas + 5}"))
    assert any(i.kind == "ScaledObject" and i.field == "spec.maxReplicaCount" for i in issues)


def test_names_must_be_dns_labels_and_unique(bundle):
    issues = _issues(_edit(bundle, "dashboard-configmap.yaml", f'name: "{bundle.name}-dashboard"', 'name: "Dash_Board"'))
    assert any(i.kind == "ConfigMap" and i.field == "metadata.name" and "DNS-1123" in i.reason for i in issues)
    twice = bundle.model_copy(deep=True)
    twice.files["serviceaccount-slo-report.yaml"] += "---\n" + bundle.files["serviceaccount-slo-report.yaml"]
    assert any("duplicate" in i.reason for i in _issues(twice))


def test_images_must_be_pinned(bundle):
    runtime = yaml.safe_load(bundle.files["servingruntime.yaml"])
    image = runtime["spec"]["containers"][0]["image"]
    issues = _issues(_edit(bundle, "servingruntime.yaml", image, image.split(":")[0] + ":latest"))
    assert any(i.field == "spec.containers.0.image" and "latest" in i.reason for i in issues)


def test_kustomization_lists_exactly_the_manifests(bundle):
    missing = _issues(_edit(bundle, "kustomization.yaml", '"prometheusrule.yaml", ', ""))
    assert any(i.kind == "Kustomization" and "prometheusrule.yaml" in i.reason for i in missing)
    extra = bundle.model_copy(deep=True)
    del extra.files["podmonitor.yaml"]
    assert any("podmonitor.yaml is listed but not in the bundle" in i.reason for i in _issues(extra))


def test_a_file_that_does_not_parse_is_an_issue_not_a_crash(bundle):
    issues = _issues(_edit(bundle, "serviceaccount-slo-report.yaml", "kind: ServiceAccount", "kind: [ServiceAccount"))
    assert issues[0].field == "(yaml)" and issues[0].file == "serviceaccount-slo-report.yaml"


def test_an_unsupported_kubernetes_version_is_bad_input(bundle):
    with pytest.raises(BadInput, match="1.31"):
        validate_bundle(bundle, "1.12")
