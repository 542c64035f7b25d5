"""Cluster inventory with the real `kubernetes` client against a loopback server answering like the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fakes.kube_api import FakeKubeApi, node, pod, write_kubeconfig

from gitops.cluster import (
    PERMISSIONS,
    gpu_budget,
    pod_gpu_request,
    rbac_manifest,
    read_inventory,
    render_choices,
)

H100 = "NVIDIA-H100-80GB-HBM3"


def gpu_cluster(**kw) -> FakeKubeApi:
    """Two H100 nodes, an A100 PCIe node, a time-sliced L4, a cordoned and a NotReady H100, an unknown GPU,
    a CPU node; pods in every phase. Pages of 2 so every list needs several requests."""
    nodes = [
        node("h100-a", 8, H100), node("h100-b", 8, H100), node("a100-a", 4, "NVIDIA-A100-80GB-PCIe"),
        node("l4-shared", 4, "NVIDIA-L4-SHARED"), node("h100-cordoned", 8, H100, cordoned=True),
        node("h100-notready", 8, H100, ready=False), node("rtx-a", 2, "NVIDIA-RTX-PRO-6000-Blackwell"),
        node("cpu-a", 0),
    ]
    pods = [
        pod("vllm-1", "h100-a", 4), pod("vllm-2", "h100-a", 1, limits_only=True),
        pod("pending-bound", "h100-b", 2, phase="Pending"),
        pod("done", "h100-b", 8, phase="Succeeded"), pod("crashed", "h100-b", 8, phase="Failed"),
        pod("init-heavy", "a100-a", 1, init_gpus=3),
        pod("web", "cpu-a", 0),
    ]
    return FakeKubeApi(nodes=nodes, pods=pods, max_page=2, **kw)


def test_free_gpus_by_catalog_name_after_running_pods(cat, tmp_path):
    with gpu_cluster(crds=["inferenceservices.serving.kserve.io"]) as api:
        inv = read_inventory(cat, kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token),
                             namespace="llm")
    # h100-a: 8 - 4 - 1 (limit only) = 3; h100-b: 8 - 2 (Pending but bound) = 6; Succeeded/Failed hold nothing;
    # cordoned and NotReady nodes offer nothing. a100-a: the 3-GPU init container outweighs the 1-GPU app.
    assert inv.free_gpus == {"H100-SXM-80GB": 9, "A100-80GB": 1, "L4": 4}
    h100 = next(p for p in inv.gpus.pools if p.product == H100)
    assert (h100.nodes, h100.allocatable, h100.requested, h100.max_free_on_one_node) == (4, 32, 7, 6)
    assert inv.gpus.unknown_products == ["NVIDIA-RTX-PRO-6000-Blackwell"]
    assert "cpu-a" not in {n.name for n in inv.gpus.nodes}
    assert inv.k8s_version == "v1.33.2" and inv.namespace == "llm" and inv.context == "fake"


def test_lists_are_followed_page_by_page_and_pods_filtered_by_phase(cat, tmp_path):
    with gpu_cluster() as api:
        read_inventory(cat, kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    node_calls = [r for r in api.requests if r.path == "/api/v1/nodes"]
    assert len(node_calls) == 4  # 8 nodes, pages of 2
    assert [bool(r.query.get("continue")) for r in node_calls] == [False, True, True, True]
    pod_calls = [r for r in api.requests if r.path == "/api/v1/pods"]
    assert {r.query["fieldSelector"] for r in pod_calls} == {"status.phase!=Succeeded,status.phase!=Failed"}
    crd_calls = [r for r in api.requests if r.path.endswith("/customresourcedefinitions")]
    assert all("as=PartialObjectMetadataList" in r.headers["accept"] for r in crd_calls)


def test_only_get_requests_reach_the_cluster(cat, tmp_path):
    from gitops.cluster import deployment_status

    with gpu_cluster(crds=["applications.argoproj.io"]) as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token)
        read_inventory(cat, kubeconfig=kc)
        deployment_status("llm", "chat", kubeconfig=kc)
    assert len(api.requests) > 10
    assert {r.method for r in api.requests} == {"GET"}


def test_namespace_quota_caps_the_budget_and_limit_range_caps_pods(cat, tmp_path):
    quota = {"metadata": {"name": "gpu-quota", "namespace": "llm"},
             "spec": {"hard": {"requests.nvidia.com/gpu": "8", "pods": "50"}},
             "status": {"hard": {"requests.nvidia.com/gpu": "8", "pods": "50"},
                        "used": {"requests.nvidia.com/gpu": "6", "pods": "3"}}}
    limits = {"metadata": {"name": "gpu-limits", "namespace": "llm"},
              "spec": {"limits": [{"type": "Container", "max": {"nvidia.com/gpu": "4", "memory": "512Gi"}}]}}
    with gpu_cluster(namespaced={("llm", "resourcequotas"): [quota], ("llm", "limitranges"): [limits],
                                 ("other", "resourcequotas"): [quota | {"status": {"hard": {}, "used": {}}}]}) as api:
        inv = read_inventory(cat, kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token),
                             namespace="llm")
    assert inv.gpu_quota_remaining == 2
    assert inv.gpu_max_per_pod == 4
    assert gpu_budget(inv) == {"H100-SXM-80GB": 2, "A100-80GB": 1, "L4": 2}
    assert [q.name for q in inv.quotas] == ["gpu-quota"] and inv.quotas[0].hard["pods"] == "50"


def test_without_quota_the_budget_is_the_free_gpus(cat, tmp_path):
    with gpu_cluster() as api:
        inv = read_inventory(cat, kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    assert inv.gpu_quota_remaining is None and gpu_budget(inv) == inv.free_gpus


def test_namespace_defaults_to_the_kubeconfig_context_namespace(cat, tmp_path):
    with FakeKubeApi() as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token, namespace="team-a")
        inv = read_inventory(cat, kubeconfig=kc)
    assert inv.namespace == "team-a"
    assert any(r.path == "/api/v1/namespaces/team-a/resourcequotas" for r in api.requests)


@pytest.mark.parametrize("crds, components, choices", [
    (["scaledobjects.keda.sh", "podmonitors.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com",
      "inferenceservices.serving.kserve.io", "applications.argoproj.io", "certificates.cert-manager.io"],
     {"kserve": True, "keda": True, "prometheus_operator": True, "argocd": True}, ("keda", "podmonitor")),
    (["inferenceservices.serving.kserve.io", "certificates.cert-manager.io"],
     {"kserve": True, "keda": False, "prometheus_operator": False, "argocd": False}, ("hpa", "servicemonitor")),
])
def test_installed_components_pick_what_render_uses(cat, tmp_path, crds, components, choices):
    with FakeKubeApi(crds=crds, max_page=1) as api:
        inv = read_inventory(cat, kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    assert inv.installed.model_dump(exclude={"crds"}) == components
    assert "certificates.cert-manager.io" not in inv.installed.crds
    assert render_choices(inv) == choices


def test_sidecar_init_containers_add_to_the_app_containers():
    p = pod("p", "n", 2, init_gpus=3)
    assert pod_gpu_request(p) == 3
    p["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    assert pod_gpu_request(p) == 5


def test_rbac_manifest_grants_exactly_the_reads_made(cat, tmp_path):
    """Every request the inventory and status made is covered by the rendered rules, and nothing more."""
    from gitops.cluster import deployment_status

    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "chat", "namespace": "llm"}, "status": {}}
    # prometheus-operator installed, so the inventory also reads the Prometheus objects (monitor-label suggestion)
    with FakeKubeApi(objects={("serving.kserve.io", "llm", "inferenceservices", "chat"): isvc},
                     crds=["podmonitors.monitoring.coreos.com"]) as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token)
        read_inventory(cat, kubeconfig=kc, namespace="llm")
        deployment_status("llm", "chat", kubeconfig=kc)
    made = {_rule_of(r.path) for r in api.requests}

    docs = list(yaml.safe_load_all(rbac_manifest("llm")))
    granted = set()
    for d in docs:
        for rule in d.get("rules", []):
            ns = d["metadata"].get("namespace")
            assert set(rule["verbs"]) <= {"get", "list"}
            for verb in rule["verbs"]:
                granted |= {(verb, url, "", None) for url in rule.get("nonResourceURLs", [])}
                granted |= {(verb, res, grp, ns) for res in rule.get("resources", []) for grp in rule["apiGroups"]}
    assert made == granted
    assert len(granted) == len(PERMISSIONS)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Role") == 2 and "ClusterRole" in kinds


def _rule_of(path: str) -> tuple[str, str, str, str | None]:
    """The RBAC (verb, resource, group, namespace) a GET on this path needs."""
    seg = path.strip("/").split("/")
    if seg == ["version"]:
        return ("get", "/version", "", None)
    group, rest = ("", seg[2:]) if seg[0] == "api" else (seg[1], seg[3:])
    if rest[0] == "namespaces":
        return ("list" if len(rest) == 3 else "get", rest[2], group, rest[1])
    return ("list", rest[0], group, None)


@pytest.mark.parametrize("user", [None, "alice@example.com"])
def test_rbac_manifest_is_valid_kubernetes(user):
    """Every object passes the Kubernetes OpenAPI schema, unknown fields rejected (kubectl --validate=strict)."""
    import kubernetes_validate

    docs = list(yaml.safe_load_all(rbac_manifest("llm", user=user)))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32", strict=True)
    assert len(docs) == (6 if user else 7)


def test_rbac_manifest_binds_a_user_when_given():
    docs = list(yaml.safe_load_all(rbac_manifest("llm", user="alice@example.com", argocd_namespace="gitops")))
    bindings = [d for d in docs if d["kind"].endswith("Binding")]
    assert {b["subjects"][0]["name"] for b in bindings} == {"alice@example.com"}
    assert all(b["subjects"][0]["kind"] == "User" for b in bindings)
    assert "ServiceAccount" not in [d["kind"] for d in docs]
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] == "Role"} == {"llm", "gitops"}


def test_kubeconfig_from_env_is_used(cat, tmp_path, monkeypatch):
    with FakeKubeApi(nodes=[node("n", 2, "NVIDIA-L4")]) as api:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url, api.token)))
        inv = read_inventory(cat)
    assert inv.free_gpus == {"L4": 2}


def test_fake_server_pages_like_the_api(tmp_path: Path):
    """The fake itself: without `limit` a list comes whole, as the real apiserver answers."""
    import json
    import urllib.request

    with FakeKubeApi(nodes=[node(f"n{i}", 1, "NVIDIA-L4") for i in range(3)], max_page=1) as api:
        req = urllib.request.Request(api.url + "/api/v1/nodes", headers={"Authorization": f"Bearer {api.token}"})
        body = json.loads(urllib.request.urlopen(req).read())
    assert body["kind"] == "NodeList" and len(body["items"]) == 3 and "continue" not in body["metadata"]
