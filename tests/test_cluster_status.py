"""Following a merged deployment: Argo CD Application + KServe InferenceService, read from a loopback API."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.kube_api import FakeKubeApi, write_kubeconfig

from gitops.cluster import deployment_status, parse_deployment, served_model_name
from planner.errors import BadInput

# Shapes as Argo CD v3 and KServe v0.20 write them (status fields from their CRDs in shared/schemas/crds/).
APPLICATION = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
    "metadata": {"name": "support-chat", "namespace": "argocd"},
    "spec": {"project": "default", "destination": {"namespace": "llm"}},
    "status": {"sync": {"status": "Synced", "revision": "3f2a9c1"}, "health": {"status": "Healthy"},
               "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)"}},
}
ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
    "metadata": {"name": "support-chat", "namespace": "llm"},
    "spec": {"predictor": {"model": {"modelFormat": {"name": "vllm"}, "runtime": "support-chat-vllm",
                                     "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--served-model-name",
                                              "meta-llama/Llama-3.1-8B-Instruct", "--port", "8080"]}}},
    "status": {
        "url": "http://support-chat.llm.example.com", "deploymentMode": "RawDeployment",
        "conditions": [
            {"type": "IngressReady", "status": "True", "lastTransitionTime": "2026-11-23T06:00:00Z"},
            {"type": "PredictorReady", "status": "True", "lastTransitionTime": "2026-11-23T06:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-23T06:00:00Z"},
        ],
        "modelStatus": {"states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                        "transitionStatus": "UpToDate", "copies": {"failedCopies": 0, "totalCopies": 1}},
    },
}


def deployment(name: str, isvc: str, replicas: int, ready: int) -> dict:
    return {"metadata": {"name": name, "namespace": "llm", "labels": {"serving.kserve.io/inferenceservice": isvc}},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas, "readyReplicas": ready}}


def test_synced_healthy_ready_deployment_is_serving(tmp_path):
    objects = {("argoproj.io", "argocd", "applications", "support-chat"): APPLICATION,
               ("serving.kserve.io", "llm", "inferenceservices", "support-chat"): ISVC}
    deployments = [deployment("support-chat-predictor", "support-chat", 3, 2),
                   deployment("other-predictor", "other", 5, 5)]
    with FakeKubeApi(objects=objects, namespaced={("llm", "deployments"): deployments}) as api:
        st = deployment_status("llm", "support-chat", kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token),
                               prometheus_url="http://prom.example:9090/")
    assert st.serving
    assert (st.application.sync_status, st.application.health_status, st.application.revision) == \
        ("Synced", "Healthy", "3f2a9c1")
    s = st.inference_service
    assert s.ready and s.url == "http://support-chat.llm.example.com" and s.model_state == "Loaded"
    assert (s.ready_replicas, s.desired_replicas) == (2, 3)
    assert [c.type for c in s.conditions] == ["IngressReady", "PredictorReady", "Ready"]
    link = urlsplit(st.monitoring.prometheus_links["ttft_p90_s"])
    assert link.netloc == "prom.example:9090" and link.path == "/graph"
    assert parse_qs(link.query)["g0.expr"] == [st.monitoring.queries["ttft_p90_s"]]


def test_queries_select_the_served_model_name_with_the_exact_vllm_metric_names(tmp_path):
    objects = {("serving.kserve.io", "llm", "inferenceservices", "support-chat"): ISVC}
    with FakeKubeApi(objects=objects) as api:
        st = deployment_status("llm", "support-chat", grafana_url="https://grafana.example/",
                               kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    q = st.monitoring.queries
    sel = 'model_name="meta-llama/Llama-3.1-8B-Instruct",namespace="llm"'
    assert st.inference_service.served_model_name == "meta-llama/Llama-3.1-8B-Instruct"
    assert f"vllm:time_to_first_token_seconds_bucket{{{sel}}}" in q["ttft_p90_s"]
    assert f"vllm:request_time_per_output_token_seconds_bucket{{{sel}}}" in q["tpot_p90_s"]
    assert q["ttft_p90_s"].startswith("histogram_quantile(0.90,") and q["e2e_p95_s"].startswith("histogram_quantile(0.95,")
    assert st.monitoring.prometheus_links == {}
    assert st.monitoring.grafana_dashboard == "https://grafana.example/d/servewise-support-chat"


@pytest.mark.parametrize("args, expected", [
    (["--served-model-name=chat-v2", "--port", "8080"], "chat-v2"),
    (["--model", "/mnt/models"], "chat"),  # KServe's vLLM runtime passes --served-model-name={{.Name}}
])
def test_served_model_name_from_the_model_args(args, expected):
    isvc = {"spec": {"predictor": {"model": {"args": args}}}}
    assert served_model_name(isvc, "chat") == expected


def test_not_yet_synced_objects_are_reported_missing_not_as_errors(tmp_path):
    failing = {**ISVC, "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "PredictorNotReady",
                                                  "message": "Revision failed"}],
                                  "modelStatus": {"states": {"activeModelState": "FailedToLoad"},
                                                  "lastFailureInfo": {"reason": "ModelLoadFailed",
                                                                      "message": "CUDA out of memory"}}}}
    with FakeKubeApi(objects={("serving.kserve.io", "llm", "inferenceservices", "support-chat"): failing}) as api:
        st = deployment_status("llm", "support-chat",
                               kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    assert not st.application.found and st.application.sync_status is None
    assert st.inference_service.found and not st.inference_service.ready
    assert st.inference_service.failure == "CUDA out of memory"
    assert st.inference_service.ready_replicas is None
    assert not st.serving
    assert any("argocd" in a and "support-chat" in a for a in st.assumptions)


def test_application_looked_up_in_the_given_argocd_namespace(tmp_path):
    app = APPLICATION | {"metadata": {"name": "support-chat", "namespace": "gitops"}}
    with FakeKubeApi(objects={("argoproj.io", "gitops", "applications", "support-chat"): app}) as api:
        st = deployment_status("llm", "support-chat", argocd_namespace="gitops",
                               kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    assert st.application.found and st.application.namespace == "gitops"


@pytest.mark.parametrize("ref, expected", [("chat", ("llm-serving", "chat")), ("team/chat", ("team", "chat"))])
def test_deployment_reference(ref, expected):
    assert parse_deployment(ref, "llm-serving") == expected


@pytest.mark.parametrize("ref", ["", "a/b/c", "/chat", "team/"])
def test_bad_deployment_reference(ref):
    with pytest.raises(BadInput, match="NAMESPACE/NAME"):
        parse_deployment(ref, "llm-serving")
