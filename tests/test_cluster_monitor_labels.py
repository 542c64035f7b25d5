"""`servewise cluster` suggests the monitor label from the installed Prometheus's selectors, when it may read them
(the real `kubernetes` client against the loopback API server)."""

from __future__ import annotations

import json

import pytest
from fakes.kube_api import FakeKubeApi, node, write_kubeconfig

from gitops.cluster import monitor_label_suggestion, read_inventory

OPERATOR = ["podmonitors.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"]


def _prometheus(name: str, **selectors) -> dict:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": name, "namespace": "monitoring"}, "spec": selectors}


KPS = _prometheus("kps-prometheus", **{k: {"matchLabels": {"release": "kps"}} for k in
                                       ("podMonitorSelector", "serviceMonitorSelector", "ruleSelector")})


def test_kube_prometheus_stack_release_label_is_suggested(cat, tmp_path):
    with FakeKubeApi(nodes=[node("h", 8, "NVIDIA-H100-80GB-HBM3")], crds=OPERATOR, prometheuses=[KPS]) as api:
        inv = read_inventory(cat, kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    assert inv.monitor_labels == {"release": "kps"} and "monitoring/kps-prometheus" in inv.monitor_labels_source


def test_a_refused_read_suggests_nothing_and_the_rest_stands(cat, tmp_path):
    with FakeKubeApi(nodes=[node("h", 8, "NVIDIA-H100-80GB-HBM3")], crds=OPERATOR, prometheuses=[KPS],
                     forbidden={"prometheuses"}) as api:
        inv = read_inventory(cat, kubeconfig=write_kubeconfig(tmp_path / "kc", api.url, api.token))
    assert inv.monitor_labels is None and "cannot read" in inv.monitor_labels_source
    assert inv.free_gpus == {"H100-SXM-80GB": 8}


def test_the_cli_prints_the_flag_and_render_cluster_applies_it(cli, tmp_path, monkeypatch):
    with FakeKubeApi(nodes=[node("h", 8, "NVIDIA-H100-80GB-HBM3")], crds=OPERATOR, prometheuses=[KPS]) as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token)
        monkeypatch.setenv("KUBECONFIG", str(kc))
        shown = cli("cluster")
        assert shown.exit_code == 0 and "--monitor-label release=kps" in shown.stdout
        plan = tmp_path / "plan.json"
        assert cli("recommend", "--use-case", "chatbot", "--qps", "5", "--out", str(plan), "--json").exit_code == 0
        r = cli("render", "--plan", str(plan), "--out", str(tmp_path / "out"), "--cluster", "--json")
    assert r.exit_code == 0, r.stdout
    assert json.loads(r.stdout)["monitor_labels"] == {"release": "kps"}


@pytest.mark.parametrize("selectors,expected", [
    ({"podMonitorSelector": {}, "serviceMonitorSelector": {}, "ruleSelector": {}}, {}),  # empty selects all
    ({"podMonitorSelector": {"matchLabels": {"a": "1"}}, "serviceMonitorSelector": {"matchLabels": {"b": "2"}},
      "ruleSelector": {}}, {"a": "1", "b": "2"}),
    ({"podMonitorSelector": {"matchLabels": {"a": "1"}}, "serviceMonitorSelector": {"matchLabels": {"a": "2"}},
      "ruleSelector": {}}, None),
    ({"podMonitorSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
      "serviceMonitorSelector": {}, "ruleSelector": {}}, None),
    ({"serviceMonitorSelector": {}, "ruleSelector": {}}, None),  # absent podMonitorSelector selects none
])
def test_selector_shapes(selectors, expected):
    assert monitor_label_suggestion([_prometheus("p", **selectors)])[0] == expected
