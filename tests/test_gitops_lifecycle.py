"""The GitOps story as Argo CD would follow it, on real git: propose -> merge -> the repository holds the
ApplicationSet and a deployment directory that `kubectl kustomize` builds -> teardown removes the directory the
generator matched. Names identify services, rollback renders what was deployed, monitors carry the labels a
Prometheus selects by, and the HPA's metric is one prometheus-adapter serves by default."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from gitops.bootstrap import APPSET_PATH, validate_applicationset
from gitops.render import cold_start_s, render_bundle

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = "customer support chatbot, 2,000 users sending 30 requests a day each, p90 first token under 300 ms"
SHOP = "shop bot for our web store, 2,000 users sending 30 requests a day each, p90 first token under 300 ms"


def _ok(r):
    assert r.exit_code == 0, r.stdout + (r.stderr or "")
    return json.loads(r.stdout)


def _plan(cli, tmp_path, words: str, out: str) -> Path:
    path = tmp_path / out
    _ok(cli("recommend", words, "--top", "2", "--out", str(path), "--json"))
    return path


def _checkout(forge_path: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run(["git", "clone", "-q", str(forge_path), str(dest)], check=True, capture_output=True)
    return dest


def _kustomize(path: Path) -> list[dict]:
    r = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def _generated(tree: Path) -> set[str]:
    """The directories Argo CD's git directory generator matches on this tree (path.Match over directories)."""
    appset = yaml.safe_load((tree / APPSET_PATH).read_text())
    pattern = appset["spec"]["generators"][0]["git"]["directories"][0]["path"]
    dirs = {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_dir() and ".git" not in p.parts}
    return {d for d in dirs if fnmatch.fnmatch(d, pattern) and d.count("/") == pattern.count("/")}


def test_two_services_described_in_words_get_two_pull_requests(cli, tmp_path, isolated_env):
    support, shop = _plan(cli, tmp_path, SUPPORT, "support.json"), _plan(cli, tmp_path, SHOP, "shop.json")
    a, b = _ok(cli("propose", "--plan", str(support), "--json")), _ok(cli("propose", "--plan", str(shop), "--json"))
    assert a["created"] and b["created"] and a["number"] != b["number"]
    assert {a["branch"], b["branch"]} == {"servewise/llm-serving/support-chatbot", "servewise/llm-serving/shop-bot"}
    # the same service again updates its own pull request
    again = _ok(cli("propose", "--plan", str(support), "--json"))
    assert again["number"] == a["number"] and not again["created"]


def test_a_different_service_on_a_taken_name_is_refused_unless_replaced(cli, tmp_path):
    support, shop = _plan(cli, tmp_path, SUPPORT, "support.json"), _plan(cli, tmp_path, SHOP, "shop.json")
    first = _ok(cli("propose", "--plan", str(support), "--name", "bot", "--json"))
    refused = cli("propose", "--plan", str(shop), "--name", "bot", "--json")
    assert refused.exit_code == 2
    message = json.loads(refused.stdout)["error"]["message"]
    assert "support-chatbot" in message and "shop-bot" in message and f"#{first['number']}" in message
    assert "--replace" in message
    replaced = _ok(cli("propose", "--plan", str(shop), "--name", "bot", "--replace", "--json"))
    assert replaced["number"] == first["number"] and not replaced["created"]
    # merged, the deployment on main still belongs to its service
    _ok(cli("pr", "merge", str(first["number"]), "--json"))
    assert cli("propose", "--plan", str(support), "--name", "bot", "--json").exit_code == 2


def test_propose_merge_teardown_as_argo_cd_sees_the_repository(cli, tmp_path, isolated_env):
    support, shop = _plan(cli, tmp_path, SUPPORT, "support.json"), _plan(cli, tmp_path, SHOP, "shop.json")
    for plan in (support, shop):
        pr = _ok(cli("propose", "--plan", str(plan), "--monitor-label", "release=kube-prometheus-stack",
                     "--repo-url", "https://git.example.org/acme/deployments.git", "--json"))
        _ok(cli("pr", "merge", str(pr["number"]), "--json"))
    tree = _checkout(isolated_env / "forge.git", tmp_path / "tree")
    assert validate_applicationset((tree / APPSET_PATH).read_text()) == []
    appset = _kustomize(tree / "bootstrap")
    assert [d["kind"] for d in appset] == ["ApplicationSet"] and appset[0]["metadata"]["namespace"] == "argocd"
    template = appset[0]["spec"]["template"]
    assert "resources-finalizer.argocd.argoproj.io" in template["metadata"]["finalizers"]
    assert template["spec"]["syncPolicy"]["automated"]["prune"] is True
    assert appset[0]["spec"]["generators"][0]["git"]["repoURL"] == "https://git.example.org/acme/deployments.git"
    assert _generated(tree) == {"deployments/llm-serving/support-chatbot", "deployments/llm-serving/shop-bot"}
    for d in sorted(_generated(tree)):
        docs = _kustomize(tree / d)
        kinds = [x["kind"] for x in docs]
        assert "Namespace" not in kinds and "Application" not in kinds and "InferenceService" in kinds
        assert {x["metadata"]["namespace"] for x in docs} == {"llm-serving"}
        for x in docs:
            if x["kind"] in ("PodMonitor", "ServiceMonitor", "PrometheusRule"):
                assert x["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    down = _ok(cli("teardown", "llm-serving/shop-bot", "--yes", "--json"))
    _ok(cli("pr", "merge", str(down["number"]), "--json"))
    tree = _checkout(isolated_env / "forge.git", tmp_path / "tree")
    # the generator no longer yields the directory: the ApplicationSet deletes that Application, whose finalizer prunes
    assert _generated(tree) == {"deployments/llm-serving/support-chatbot"} and (tree / APPSET_PATH).exists()


def test_rollback_of_an_hpa_deployment_renders_what_was_deployed(cli, tmp_path, isolated_env):
    first = _plan(cli, tmp_path, SUPPORT, "first.json")
    second = tmp_path / "second.json"
    _ok(cli("recommend", SUPPORT.replace("2,000 users", "20,000 users"), "--top", "2", "--out", str(second), "--json"))
    options = ["--autoscaler", "hpa", "--monitor", "servicemonitor", "--monitor-label", "prometheus=main",
               "--repo-url", "https://git.example.org/acme/deployments.git", "--storage-uri", "pvc://models/phi"]
    for plan in (first, second):
        _ok(cli("pr", "merge", str(_ok(cli("propose", "--plan", str(plan), *options, "--json"))["number"]), "--json"))
    back = _ok(cli("rollback", "llm-serving/support-chatbot", "--json"))
    tree = _checkout(isolated_env / "forge.git", tmp_path / "tree")
    subprocess.run(["git", "checkout", "-q", back["branch"]], cwd=tree, check=True)
    d = tree / "deployments/llm-serving/support-chatbot"
    assert (d / "hpa.yaml").exists() and not (d / "scaledobject.yaml").exists()
    assert (d / "servicemonitor.yaml").exists() and not (d / "podmonitor.yaml").exists()
    restored = json.loads((d / "plan.json").read_text())
    assert restored["id"] == json.loads(first.read_text())["id"]
    assert restored["render"]["storage_uri"] == "pvc://models/phi" and restored["render"]["monitor_labels"] == {"prometheus": "main"}
    assert yaml.safe_load((d / "servicemonitor.yaml").read_text())["metadata"]["labels"]["prometheus"] == "main"
    assert "hpa.yaml" in _kustomize(d)[0]["kind"] or any(x["kind"] == "HorizontalPodAutoscaler" for x in _kustomize(d))
    assert _kustomize(tree / "bootstrap")[0]["spec"]["generators"][0]["git"]["repoURL"].endswith("acme/deployments.git")


def test_an_empty_repository_named_with_repo_gets_main_readme_and_bootstrap(cli, tmp_path, isolated_env):
    empty = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True)
    plan = _plan(cli, tmp_path, SUPPORT, "support.json")
    pr = _ok(cli("propose", "--plan", str(plan), "--forge", "local", "--repo", str(empty), "--json"))
    assert pr["created"] and pr["number"] == 1
    tree = _checkout(empty, tmp_path / "tree")
    assert (tree / "README.md").exists() and "kubectl apply -n argocd -k bootstrap/" in (tree / "README.md").read_text()
    assert (tree / APPSET_PATH).exists() and not (tree / "deployments").exists()  # the deployment waits in its PR
    assert not (isolated_env / "forge.git").exists()  # the local_forge setting's repository was not used


def test_gitops_init_proposes_the_bootstrap_once(cli, tmp_path):
    first = _ok(cli("gitops", "init", "--repo-url", "https://git.example.org/acme/d.git", "--json"))
    assert first["branch"] == "servewise/bootstrap" and first["created"]
    _ok(cli("pr", "merge", str(first["number"]), "--json"))
    again = _ok(cli("gitops", "init", "--repo-url", "https://git.example.org/acme/d.git", "--json"))
    assert again["state"] == "present"


def test_monitor_labels_from_the_option_or_the_setting(cli, tmp_path, monkeypatch):
    plan = _plan(cli, tmp_path, SUPPORT, "support.json")
    out = tmp_path / "out"
    _ok(cli("render", "--plan", str(plan), "--out", str(out), "--monitor-label", "release=kps", "--json"))
    for f in ("podmonitor.yaml", "prometheusrule.yaml"):
        assert yaml.safe_load((out / f).read_text())["metadata"]["labels"]["release"] == "kps"
    monkeypatch.setenv("SERVEWISE_MONITOR_LABELS", "release=monitoring,team=ml")
    _ok(cli("render", "--plan", str(plan), "--out", str(out), "--monitor", "servicemonitor", "--json"))
    labels = yaml.safe_load((out / "servicemonitor.yaml").read_text())["metadata"]["labels"]
    assert labels["release"] == "monitoring" and labels["team"] == "ml"
    for bad in ("release", "Bad Key=x", "release=not ok!", "app.kubernetes.io/name=x"):
        r = cli("render", "--plan", str(plan), "--out", str(tmp_path / "o2"), "--monitor-label", bad, "--json")
        assert r.exit_code == 2 and "monitor label" in json.loads(r.stdout)["error"]["message"]


def test_the_hpa_metric_is_one_prometheus_adapter_serves_by_default(chatbot_plans):
    hpa = yaml.safe_load(render_bundle(chatbot_plans[0], autoscaler="hpa").files["hpa.yaml"])
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    rules = yaml.safe_load((ROOT / "gitops/facts/prometheus_adapter_default_rules.yaml").read_text())["rules"]
    # vLLM's gauge as scraped by a PodMonitor: namespace and pod labels present
    series = "vllm:num_requests_running"
    served = set()
    for rule in rules:
        selector = rule["seriesQuery"]
        name_re = re.search(r'__name__(=~|!~)"([^"]+)"', selector)
        if name_re and (bool(re.search(name_re.group(2), series)) != (name_re.group(1) == "=~")):
            continue
        if any(re.fullmatch(f["isNot"], series) for f in rule["seriesFilters"] if "isNot" in f):
            continue
        matches = re.compile(rule["name"]["matches"] or ".*")
        m = matches.search(series)
        if not m:
            continue
        as_ = rule["name"]["as"] or ("$0" if matches.groups == 0 else "$1")
        served.add(m.expand(as_.replace("$0", r"\g<0>").replace("$1", r"\g<1>")))
    assert metric in served and metric == series


def test_keda_and_hpa_behaviour_follow_the_cold_start(chatbot_plans, cat, params):
    from planner.recommend import recommend
    from planner.spec import build_spec

    small = chatbot_plans[0]
    big = recommend(build_spec(cat, use_case="chatbot", qps=5, e2e_p95_ms=20000, tpot_p90_ms=100,
                               models=["meta-llama/Llama-3.3-70B-Instruct"]), cat,
                    params, provider="aws")
    windows = []
    for plan in (small, big):
        so = yaml.safe_load(render_bundle(plan).files["scaledobject.yaml"])["spec"]
        assert "cooldownPeriod" not in so  # only acts when scaling to or from zero; min replicas >= 1 here
        behavior = so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        hpa = yaml.safe_load(render_bundle(plan, autoscaler="hpa").files["hpa.yaml"])["spec"]["behavior"]
        assert behavior == hpa
        c = plan.candidates[plan.chosen]
        assert behavior["scaleUp"]["policies"][0]["periodSeconds"] == min(max(60, cold_start_s(c)), 1800)
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= behavior["scaleUp"]["stabilizationWindowSeconds"]
        windows.append((cold_start_s(c), behavior["scaleUp"]["stabilizationWindowSeconds"]))
    assert windows[1][0] > windows[0][0] and windows[1][1] > windows[0][1]  # bigger weights, slower to scale up


def test_the_crd_conversion_script_reproduces_the_teams_application_schema(tmp_path):
    out = subprocess.run([str(Path(__import__("sys").executable)), str(ROOT / "gitops/schemas/crd_to_schema.py"),
                          str(ROOT.parent / "shared/schemas/crds/argoproj.io_applications.yaml"), "v1alpha1"],
                         capture_output=True, text=True, check=True).stdout
    assert out == (ROOT / "gitops/schemas/application_argoproj.io_v1alpha1.json").read_text()
    schema = json.loads((ROOT / "gitops/schemas/applicationset_argoproj.io_v1alpha1.json").read_text())
    assert schema["title"] == "ApplicationSet (argoproj.io/v1alpha1)"
    assert validate_applicationset("apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: x}\n"
                                   "spec: {bogus: 1, generators: [], template: {metadata: {}, spec: {project: p, "
                                   "destination: {}}}}\n")
