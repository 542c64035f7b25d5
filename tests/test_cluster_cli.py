"""`servewise cluster`, `cluster rbac` and `status` through the command line, against a loopback Kubernetes API."""

from __future__ import annotations

import json

import yaml
from fakes.kube_api import FakeKubeApi, node, pod, write_kubeconfig

H100 = "NVIDIA-H100-80GB-HBM3"


def cluster_api() -> FakeKubeApi:
    return FakeKubeApi(nodes=[node("h1", 8, H100), node("l4", 2, "NVIDIA-L4")], pods=[pod("vllm", "h1", 2)],
                       crds=["scaledobjects.keda.sh", "inferenceservices.serving.kserve.io"], max_page=1)


def test_cluster_json(cli, tmp_path):
    with cluster_api() as api:
        r = cli("cluster", "--kubeconfig", str(write_kubeconfig(tmp_path / "kc", api.url, api.token)),
                "-n", "team", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["free_gpus"] == {"H100-SXM-80GB": 6, "L4": 2}
    assert out["namespace"] == "team" and out["installed"]["keda"] and not out["installed"]["argocd"]


def test_cluster_tables_for_people(cli, tmp_path):
    with cluster_api() as api:
        r = cli("cluster", "--kubeconfig", str(write_kubeconfig(tmp_path / "kc", api.url, api.token)))
    assert r.exit_code == 0, r.stderr
    assert "H100-SXM-80GB" in r.stdout and "NVIDIA-L4" in r.stdout and "KEDA" in r.stdout
    assert "llm-serving" in r.stdout  # the configured deployment namespace is the default


def test_context_comes_from_config_when_not_given(cli, tmp_path, monkeypatch):
    with cluster_api() as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token, context="dev", extra_contexts=("prod",))
        monkeypatch.setenv("SERVEWISE_KUBE_CONTEXT", "prod")
        r = cli("cluster", "--kubeconfig", str(kc), "--json")
    assert json.loads(r.stdout)["context"] == "prod"


def test_errors_are_one_json_object_with_exit_code(cli, tmp_path):
    with FakeKubeApi(forbidden={"nodes"}) as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token)
        r = cli("cluster", "--kubeconfig", str(kc), "--json")
        human = cli("cluster", "--kubeconfig", str(kc))
    assert r.exit_code == 4
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "unreachable" and err["details"]["resource"] == "nodes"
    assert human.exit_code == 4 and "servewise cluster rbac" in human.stderr and "Traceback" not in human.stderr
    missing = cli("cluster", "--kubeconfig", str(tmp_path / "none"), "--json")
    assert missing.exit_code == 2 and json.loads(missing.stdout)["error"]["code"] == "bad_input"


def test_rbac_prints_an_applicable_manifest(cli):
    r = cli("cluster", "rbac", "-n", "team")
    assert r.exit_code == 0
    docs = list(yaml.safe_load_all(r.stdout))
    roles = [d for d in docs if d["kind"] == "Role"]
    assert {d["metadata"]["namespace"] for d in roles} == {"team", "argocd"}
    verbs = {v for d in docs for rule in d.get("rules", []) for v in rule["verbs"]}
    assert verbs == {"get", "list"}
    as_json = json.loads(cli("cluster", "rbac", "-n", "team", "--json").stdout)
    assert as_json["manifest"] == r.stdout


def test_status_of_namespace_slash_name(cli, tmp_path):
    isvc = {"metadata": {"name": "chat", "namespace": "team"},
            "status": {"url": "http://chat.team.example", "conditions": [{"type": "Ready", "status": "True"}]}}
    with FakeKubeApi(objects={("serving.kserve.io", "team", "inferenceservices", "chat"): isvc}) as api:
        kc = str(write_kubeconfig(tmp_path / "kc", api.url, api.token))
        r = cli("status", "team/chat", "--kubeconfig", kc, "--json")
        human = cli("status", "team/chat", "--kubeconfig", kc)
    out = json.loads(r.stdout)
    assert out["inference_service"]["ready"] and not out["application"]["found"] and not out["serving"]
    assert "vllm:time_to_first_token_seconds_bucket" in out["monitoring"]["queries"]["ttft_p90_s"]
    assert human.exit_code == 0 and "http://chat.team.example" in human.stdout and "not found" in human.stdout


def test_installed_binary_documents_cluster_and_never_prints_the_token(servewise_bin, tmp_path):
    help_ = servewise_bin("cluster", "--help")
    assert help_.returncode == 0 and "--context" in help_.stdout and "rbac" in help_.stdout
    with cluster_api() as api:
        kc = write_kubeconfig(tmp_path / "kc", api.url, api.token)
        ok = servewise_bin("cluster", "--kubeconfig", str(kc), "--json")
        bad = servewise_bin("status", "chat", "--kubeconfig", str(write_kubeconfig(tmp_path / "kc2", api.url, "wrong")))
    assert ok.returncode == 0 and json.loads(ok.stdout)["free_gpus"]["H100-SXM-80GB"] == 6
    assert bad.returncode == 4 and "401" in bad.stderr
    for proc in (ok, bad):
        assert api.token not in proc.stdout + proc.stderr and "wrong" not in proc.stdout + proc.stderr


def test_recommend_on_the_cluster_keeps_what_fits_the_free_gpus(cli, tmp_path, monkeypatch):
    args = ("recommend", "--use-case", "chatbot", "--qps", "1", "--top", "10", "--json")
    anywhere = json.loads(cli(*args).stdout)
    assert {c["gpu"] for c in anywhere["candidates"]} - {"L40S"}  # without the cluster, other GPUs take places
    busy_h100_free_l40s = FakeKubeApi(nodes=[node("h1", 8, H100), node("l40s", 2, "NVIDIA-L40S")],
                                      pods=[pod("busy", "h1", 8)])
    with busy_h100_free_l40s as api:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url, api.token)))
        r = cli(*args, "--cluster")
    assert r.exit_code == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["candidates"] and all(c["gpu"] == "L40S" and c["gpus_total"] <= 2 for c in plan["candidates"])
    assert "cluster has 0 free" in plan["rationale"]  # says what blocked the others
    assert {r.method for r in api.requests} == {"GET"}


def test_recommend_on_a_cluster_without_room_is_infeasible_and_names_the_block(cli, tmp_path, monkeypatch):
    with FakeKubeApi(nodes=[node("h1", 8, H100)], pods=[pod("busy", "h1", 8)]) as api:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url, api.token)))
        r = cli("recommend", "--use-case", "chatbot", "--qps", "1", "--cluster", "--json")
    assert r.exit_code == 3
    plan = json.loads(r.stdout)
    assert plan["chosen"] is None and "blocked" in json.dumps(plan)


def test_render_on_the_cluster_picks_the_installed_kinds(cli, tmp_path, monkeypatch):
    plan_file = tmp_path / "plan.json"
    made = cli("recommend", "--use-case", "chatbot", "--qps", "1", "--out", str(plan_file), "--json")
    assert made.exit_code == 0, made.stderr
    with FakeKubeApi(crds=["inferenceservices.serving.kserve.io", "applications.argoproj.io"]) as api:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url, api.token)))
        bare = cli("render", "--plan", str(plan_file), "--out", str(tmp_path / "bare"), "--cluster", "--json")
    with FakeKubeApi(crds=["scaledobjects.keda.sh", "podmonitors.monitoring.coreos.com"]) as api:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url, api.token)))
        full = cli("render", "--plan", str(plan_file), "--out", str(tmp_path / "full"), "--cluster", "--json")
    assert bare.exit_code == 0 and full.exit_code == 0, bare.stderr + full.stderr
    assert (json.loads(bare.stdout)["autoscaler"], json.loads(bare.stdout)["monitor"]) == ("hpa", "servicemonitor")
    assert (json.loads(full.stdout)["autoscaler"], json.loads(full.stdout)["monitor"]) == ("keda", "podmonitor")
    kinds = {f.name for f in (tmp_path / "bare").iterdir()} ^ {f.name for f in (tmp_path / "full").iterdir()}
    assert any("hpa" in k for k in kinds) and any("scaledobject" in k for k in kinds)
