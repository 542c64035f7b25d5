"""Following a merged deployment: Argo CD Application + KServe InferenceService, read from a loopback API."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.kube_api import FakeKubeApi, write_kubeconfig

from gitops.cluster import deployment_status, parse_deployment
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


def test_queries_use_the_exact_vllm_metric_names(tmp_path):
    with FakeKubeApi() as api:
        st = deployment_status("llm", "chat", kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token),
                               grafana_url="https://grafana.example")
    q = st.monitoring.queries
    assert "vllm:time_to_first_token_seconds_bucket{model_name=\"chat\"}" in q["ttft_p90_s"]
    assert "vllm:request_time_per_output_token_seconds_bucket{model_name=\"chat\"}" in q["tpot_p90_s"]
    assert q["ttft_p90_s"].startswith("histogram_quantile(0.90,") and q["e2e_p95_s"].startswith("histogram_quantile(0.95,")
    assert st.monitoring.prometheus_links == {}
    grafana = urlsplit(st.monitoring.grafana_link)
    assert grafana.netloc == "grafana.example" and grafana.path == "/explore"
    pane = json.loads(parse_qs(grafana.query)["panes"][0])["slo"]
    assert [x["expr"] for x in pane["queries"]] == [q["ttft_p90_s"], q["tpot_p90_s"]]


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
