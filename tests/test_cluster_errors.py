"""Each way a cluster read fails gives one clear error naming the context and, for 403, the permission."""

from __future__ import annotations

import pytest
from fakes.kube_api import FakeKubeApi, node, write_kubeconfig

from gitops.cluster import deployment_status, read_inventory
from planner.errors import BadInput, Unreachable
from tests.fakes.loopback import free_port


def test_no_kubeconfig_outside_a_cluster(cat, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(BadInput) as err:
        read_inventory(cat)
    assert "no kubeconfig found" in err.value.message and str(tmp_path / "missing") in err.value.message
    assert err.value.details["reason"] == "no_kubeconfig"


def test_explicit_kubeconfig_that_does_not_exist(cat, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")  # an explicit file never falls back to in-cluster
    with pytest.raises(BadInput, match="no kubeconfig found"):
        read_inventory(cat, kubeconfig=tmp_path / "nope.yaml")


def test_unknown_context_names_the_known_ones(cat, tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9", "t", context="prod-gpu", extra_contexts=("staging",))
    with pytest.raises(BadInput) as err:
        read_inventory(cat, kubeconfig=kc, context="prod-gpus")
    assert "unknown context 'prod-gpus'" in err.value.message
    assert "prod-gpu" in err.value.details["suggestions"]


def test_expired_credentials(cat, tmp_path):
    with FakeKubeApi() as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, "expired-token-xyz", context="prod-gpu")
        with pytest.raises(Unreachable) as err:
            read_inventory(cat, kubeconfig=kc)
    msg = err.value.message
    assert "401" in msg and "'prod-gpu'" in msg and "expired" in msg
    assert "expired-token-xyz" not in msg and err.value.details["reason"] == "unauthorized"


@pytest.mark.parametrize("resource, expect", [
    ("pods", 'list pods (API group "") cluster-wide'),
    ("customresourcedefinitions", 'list customresourcedefinitions (API group "apiextensions.k8s.io") cluster-wide'),
    ("resourcequotas", 'list resourcequotas (API group "") in namespace "llm"'),
])
def test_forbidden_inventory_read_names_the_permission(cat, tmp_path, resource, expect):
    with FakeKubeApi(nodes=[node("n", 1, "NVIDIA-L4")], forbidden={resource}) as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token, context="prod-gpu")
        with pytest.raises(Unreachable) as err:
            read_inventory(cat, kubeconfig=kc, namespace="llm")
    msg = err.value.message
    assert expect in msg and "'prod-gpu'" in msg and "403 Forbidden" in msg
    assert "servewise cluster rbac" in msg
    assert f'resources: ["{resource}"], verbs: ["list"]' in msg
    assert f'cannot list resource "{resource}"' in msg  # the API server's own words are kept
    assert err.value.details["resource"] == resource and err.value.details["verb"] == "list"


def test_forbidden_status_read_names_group_and_namespace(tmp_path):
    with FakeKubeApi(forbidden={"inferenceservices"}) as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token)
        with pytest.raises(Unreachable) as err:
            deployment_status("llm", "chat", kubeconfig=kc)
    assert 'get inferenceservices (API group "serving.kserve.io") in namespace "llm"' in err.value.message
    assert err.value.details["api_group"] == "serving.kserve.io"


def test_slow_api_server_times_out_once_without_retries(cat, tmp_path):
    with FakeKubeApi(delay_s=3.0) as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token, context="slow")
        with pytest.raises(Unreachable) as err:
            read_inventory(cat, kubeconfig=kc, timeout=0.2)
        attempts = len(api.requests)
    assert "did not answer within 0.2 s" in err.value.message and "'slow'" in err.value.message
    assert err.value.details["reason"] == "timeout"
    assert attempts == 1


def test_unreachable_api_server(cat, tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}", "t", context="gone")
    with pytest.raises(Unreachable) as err:
        read_inventory(cat, kubeconfig=kc, timeout=2)
    assert "cannot connect" in err.value.message and "'gone'" in err.value.message
    assert err.value.exit_code == 4


def test_tls_api_server_verified_with_the_kubeconfig_ca(cat, tmp_path):
    with FakeKubeApi(nodes=[node("n", 1, "NVIDIA-L4")], tls_dir=tmp_path / "tls") as api:
        assert api.url.startswith("https://")
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token, ca_file=tmp_path / "tls" / "ca.crt")
        assert read_inventory(cat, kubeconfig=kc).free_gpus == {"L4": 1}
        untrusted = write_kubeconfig(tmp_path / "kc2", api.url, api.token)
        with pytest.raises(Unreachable, match="cannot reach"):
            read_inventory(cat, kubeconfig=untrusted)


def test_in_cluster_service_account(cat, tmp_path, monkeypatch):
    """Inside a pod (no kubeconfig, KUBERNETES_SERVICE_HOST set) the mounted service account is used."""
    from kubernetes.config import incluster_config

    import gitops.cluster

    sa = tmp_path / "serviceaccount"
    with FakeKubeApi(nodes=[node("n", 2, "NVIDIA-L4")], tls_dir=sa) as api:
        (sa / "token").write_text(api.token)
        (sa / "namespace").write_text("serving-team")
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(sa / "token"))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(sa / "ca.crt"))
        monkeypatch.setattr(gitops.cluster, "SERVICE_ACCOUNT_DIR", sa)
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", api.url.rsplit(":", 1)[1])
        inv = read_inventory(cat)
    assert inv.context == "in-cluster" and inv.namespace == "serving-team" and inv.free_gpus == {"L4": 2}
