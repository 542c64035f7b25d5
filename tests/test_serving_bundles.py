"""Bundles that start and serve: every rendered serving object built by the real `kubectl kustomize`, every vLLM
argument checked against vLLM 0.19.0's own flag definitions (gitops/vllm_facts, extracted from the PyPI wheel),
quantized plans served from a named, verified checkpoint, shared memory, persistent weights, gated tokens,
per-deployment metric selectors, and the LLMInferenceService target (also with a worker spec)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from gitops.bundle import write_bundle
from gitops.render import render_bundle
from gitops.validate import documents, validate_bundle
from gitops.vllm_facts import check_args, facts
from planner.errors import BadInput
from planner.recommend import recommend
from planner.spec import build_spec

KUBECTL = shutil.which("kubectl")


def _plan(cat, params, *, model: str, gpu: str, dtypes: list[str], use_case: str = "chatbot", qps: float = 5):
    spec = build_spec(cat, use_case=use_case, qps=qps, models=[model], gpus=[gpu], quantizations=dtypes, e2e_p95_ms=30000)
    plan = recommend(spec, cat, params, provider="aws", top=1)
    assert plan.chosen is not None, plan.infeasible
    return plan


@pytest.fixture(scope="module")
def plans(cat, params):
    return {
        "int4": _plan(cat, params, model="meta-llama/Llama-3.1-8B-Instruct", gpu="H100-SXM-80GB", dtypes=["int4"]),
        "70b-tp": _plan(cat, params, model="meta-llama/Llama-3.1-70B-Instruct", gpu="H100-SXM-80GB", dtypes=["bf16"]),
        "moe": _plan(cat, params, model="Qwen/Qwen3-30B-A3B", gpu="H100-SXM-80GB", dtypes=["bf16"]),
    }


def _render(cat, plan, **options):
    c = plan.candidates[plan.chosen]
    m = cat.model(c.model)
    options.setdefault("gated", m.gated.value if m.gated else None)
    return render_bundle(plan, gpu_labels=cat.gpu(c.gpu).k8s_product_labels, **options)


def _serving(bundle) -> dict:
    return next(d for _, d in documents(bundle) if d["kind"] in ("InferenceService", "LLMInferenceService"))


def _kustomize(bundle, tmp_path) -> list[dict]:
    out = tmp_path / bundle.name
    write_bundle(bundle, out)
    r = subprocess.run([KUBECTL, "kustomize", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def _pods(doc: dict) -> list[tuple[dict, list[dict], dict]]:
    """(pod spec, volumes, main container) of each pod the serving object describes, as KServe merges them."""
    if doc["kind"] == "InferenceService":
        return [(doc["spec"]["predictor"], [], doc["spec"]["predictor"]["model"])]
    spec = doc["spec"]
    return [(spec[p], spec[p].get("volumes", []), spec[p]["containers"][0]) for p in ("template", "worker") if p in spec]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is installed by `make test` (Debian kubernetes-client)")
@pytest.mark.parametrize("which", ["int4", "70b-tp", "moe"])
@pytest.mark.parametrize("target", ["isvc", "llmisvc"])
def test_done_when_plans_build_and_pass_the_vllm_check(cat, plans, tmp_path, which, target):
    plan = plans[which]
    c = plan.candidates[plan.chosen]
    bundle = _render(cat, plan, target=target)
    assert validate_bundle(bundle) == []
    built = _kustomize(bundle, tmp_path)
    serving = next(d for d in built if d["kind"] in ("InferenceService", "LLMInferenceService"))
    assert serving["kind"] == ("InferenceService" if target == "isvc" else "LLMInferenceService")
    if target == "isvc":
        args = serving["spec"]["predictor"]["model"]["args"]
        assert check_args(args, positional_model=True) == []
        runtime = next(d for d in built if d["kind"] == "ServingRuntime")
        assert "protocolVersions" not in runtime["spec"]  # like KServe's own kserve-vllmserver.yaml: vLLM speaks OpenAI
        assert serving["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    else:
        args = serving["spec"]["template"]["containers"][0]["args"]
        assert check_args(args, positional_model=False) == []
        assert serving["spec"]["parallelism"]["tensor"] == c.tp
    text = yaml.safe_dump(built)
    assert "RawDeployment" not in text and "--model" not in args
    if which == "int4":
        assert c.weight_dtype == "int4" and c.checkpoint
        published = cat.checkpoint(c.model, "int4")
        assert c.checkpoint == published.repo and published.source.startswith("https://")
        served = args[0] if target == "isvc" else serving["spec"]["model"]["uri"]
        assert served.endswith(published.repo) and "--quantization" not in args  # vLLM reads the method itself
    if which == "70b-tp":
        assert c.tp >= 2


@pytest.mark.parametrize("target", ["isvc", "llmisvc"])
def test_tp_pods_get_shared_memory_sized_with_the_gpus(cat, plans, target):
    sizes = {}
    for which in ("int4", "70b-tp"):
        bundle = _render(cat, plans[which], target=target)
        docs = [d for _, d in documents(bundle)]
        if target == "isvc":
            runtime = next(d for d in docs if d["kind"] == "ServingRuntime")
            vols, mounts = runtime["spec"]["volumes"], runtime["spec"]["containers"][0]["volumeMounts"]
        else:
            pod = _serving(bundle)["spec"]["template"]
            vols, mounts = pod["volumes"], [{"name": "dshm", "mountPath": "/dev/shm"}]  # KServe's config mounts dshm
        shm = next(v for v in vols if v.get("emptyDir", {}).get("medium") == "Memory")
        assert any(m["name"] == shm["name"] and m["mountPath"] == "/dev/shm" for m in mounts)
        sizes[which] = int(shm["emptyDir"]["sizeLimit"].removesuffix("Gi"))
    assert plans["70b-tp"].candidates[0].tp >= 2 and sizes["70b-tp"] > sizes["int4"] >= 1


def test_weights_never_land_in_the_writable_layer(cat, plans):
    for which, plan in plans.items():
        for options in ({}, {"storage_uri": "s3://models/llama"}, {"storage_uri": "pvc://weights/llama"},
                        {"storage_uri": "oci://registry.local/models/llama:1"}, {"target": "llmisvc"}):
            bundle = _render(cat, plan, storage_class="fast-rwx", **options)
            serving = _serving(bundle)
            if serving["kind"] == "LLMInferenceService":
                assert serving["spec"]["model"]["uri"].startswith(("hf://", "s3://", "pvc://", "oci://"))
                continue
            model = serving["spec"]["predictor"]["model"]
            if "storageUri" in model:
                assert model["args"][0] == "/mnt/models"
                if model["storageUri"].startswith(("s3://", "hf://")):  # the initializer's emptyDir needs the room
                    assert model["resources"]["requests"]["ephemeral-storage"]
                continue
            env = {e["name"]: e.get("value") for e in model["env"]}
            pvc = yaml.safe_load(bundle.files["persistentvolumeclaim.yaml"])
            runtime = yaml.safe_load(bundle.files["servingruntime.yaml"])
            mount = next(m for m in runtime["spec"]["containers"][0]["volumeMounts"] if m["name"] == "hf-cache")
            claim = next(v for v in runtime["spec"]["volumes"] if v["name"] == "hf-cache")
            assert env["HF_HOME"] == mount["mountPath"] and claim["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
            assert pvc["spec"]["storageClassName"] == "fast-rwx"
            c = plan.candidates[plan.chosen]
            weights_gb = c.predicted.memory.weights_gib * c.tp * c.pp * 2**30 / 1e9
            assert int(pvc["spec"]["resources"]["requests"]["storage"].removesuffix("Gi")) >= weights_gb
            assert pvc["spec"]["accessModes"] == (["ReadWriteMany"] if c.max_replicas > 1 else ["ReadWriteOnce"])


def test_startup_budget_follows_weights_and_bandwidth_and_the_readme_shows_it(cat, plans):
    def checks(plan, **o):
        return _serving(_render(cat, plan, **o))["spec"]["predictor"]["model"]["startupProbe"]["failureThreshold"]

    small, big = checks(plans["int4"]), checks(plans["70b-tp"])
    assert big > small
    assert checks(plans["70b-tp"], pull_gb_s=0.1) > big  # slower pulls, longer budget
    assert checks(plans["70b-tp"], storage_uri="s3://m/70b") < big  # the init container downloads, not vLLM
    readme = _render(cat, plans["70b-tp"]).files["README.md"]
    assert re.search(r"download [\d.]+ GB at 0\.5 GB/s = \d+ s \+ load", readme)
    assert "kubectl -n llm-serving create secret generic hf-token" in readme
    with pytest.raises(BadInput, match="pull bandwidth"):
        _render(cat, plans["int4"], pull_gb_s=0)


def test_gated_models_require_the_token_and_open_ones_do_not(cat, plans):
    def optional(plan, **o):
        env = _serving(_render(cat, plan, **o))["spec"]["predictor"]["model"]["env"]
        return next(e for e in env if e["name"] == "HF_TOKEN")["valueFrom"]["secretKeyRef"]["optional"]

    assert cat.model("meta-llama/Llama-3.1-70B-Instruct").gated.value
    assert optional(plans["70b-tp"]) is False
    assert not cat.model("Qwen/Qwen3-30B-A3B").gated.value and optional(plans["moe"]) is True
    # not recorded in the catalog: required, so a gated model never starts only to fail with 401
    assert optional(plans["moe"], gated=None) is False


def test_two_deployments_of_one_model_select_on_their_own_metrics(cat, plans):
    a, b = (_render(cat, plans["moe"], name=n) for n in ("support", "search"))

    def queries(bundle) -> set[str]:
        docs = [d for _, d in documents(bundle)]
        keda = next(d for d in docs if d["kind"] == "ScaledObject")["spec"]["triggers"]
        rules = next(d for d in docs if d["kind"] == "PrometheusRule")["spec"]["groups"][0]["rules"]
        return {t["metadata"]["query"] for t in keda} | {r["expr"] for r in rules}

    qa, qb = queries(a), queries(b)
    assert qa.isdisjoint(qb)
    for bundle, name in ((a, "support"), (b, "search")):
        args = _serving(bundle)["spec"]["predictor"]["model"]["args"]
        served = args[args.index("--served-model-name") + 1]
        assert served == f"llm-serving/{name}"
        # vLLM's engine series by the served name; the API server's http_requests_total (no model_name) by its pods
        assert all(f'model_name="{served}"' in q or f'pod=~"{name}-predictor-' in q for q in queries(bundle))
        dashboard = json.loads(next(iter(yaml.safe_load(bundle.files["dashboard-configmap.yaml"])["data"].values())))
        assert all(f'model_name="{served}"' in t["expr"] or f'pod=~"{name}-predictor-' in t["expr"]
                   for p in dashboard["panels"] for t in p["targets"])


def test_kserve_version_decides_the_deployment_mode(cat, plans):
    def mode(v):
        return _serving(_render(cat, plans["int4"], kserve_version=v))["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]

    assert mode("0.20") == mode("0.16") == "Standard" and mode("0.15") == "RawDeployment"
    with pytest.raises(BadInput, match="KServe version 0.9"):
        _render(cat, plans["int4"], kserve_version="0.9")


def test_resources_have_no_cpu_limit_and_memory_grows_with_the_model(cat, plans):
    mem = {}
    for which in ("int4", "70b-tp"):
        res = _serving(_render(cat, plans[which]))["spec"]["predictor"]["model"]["resources"]
        assert "cpu" not in res["limits"] and res["requests"]["cpu"]
        assert res["requests"]["memory"] == res["limits"]["memory"]
        mem[which] = int(res["limits"]["memory"].removesuffix("Gi"))
    assert mem["70b-tp"] > mem["int4"]


def test_a_replica_spanning_nodes_renders_the_llmisvc_worker_form(cat, plans, tmp_path):
    plan = plans["70b-tp"]
    c = plan.candidates[plan.chosen]
    multi = c.model_copy(update={"pp": 2, "gpus_total": c.gpus_total * 2})
    plan = plan.model_copy(update={"candidates": [multi]})
    with pytest.raises(BadInput, match="--target llmisvc"):
        _render(cat, plan)
    bundle = _render(cat, plan, target="llmisvc")
    assert validate_bundle(bundle) == []
    spec = _serving(bundle)["spec"]
    assert spec["parallelism"] == {"tensor": c.tp, "pipeline": 2}
    for part in ("template", "worker"):
        assert spec[part]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == c.tp
    assert "--pipeline-parallel-size" in spec["template"]["containers"][0]["args"]
    probe = spec["template"]["containers"][0]["startupProbe"]
    assert "httpGet" not in probe and probe["failureThreshold"] * probe["periodSeconds"] > 0  # merged onto KServe's
    if KUBECTL:
        _kustomize(bundle, tmp_path)


def test_an_old_plan_asking_vllm_to_quantize_to_int4_on_load_is_refused(cat, plans):
    plan = plans["moe"]
    c = plan.candidates[plan.chosen]
    old = c.model_copy(update={"weight_dtype": "int4", "checkpoint": None,
                               "vllm": c.vllm.model_copy(update={"quantization": "awq"})})
    with pytest.raises(BadInput, match="re-run recommend"):
        _render(cat, plan.model_copy(update={"candidates": [old]}))


def test_validation_catches_an_llmisvc_that_drifted_from_the_plan(cat, plans):
    bundle = _render(cat, plans["70b-tp"], target="llmisvc")
    doc = yaml.safe_load(bundle.files["llminferenceservice.yaml"])
    doc["spec"]["parallelism"]["tensor"] = 1
    doc["spec"]["template"]["containers"][0]["args"] += ["--kv-cache-dtype", "bf16"]
    bad = bundle.model_copy(update={"files": {**bundle.files, "llminferenceservice.yaml": yaml.safe_dump(doc)}})
    reasons = [str(i) for i in validate_bundle(bad)]
    assert any("spec.parallelism" in r for r in reasons)
    assert any("--kv-cache-dtype takes one of" in r and "arg_utils.py:" in r for r in reasons)
    monitor = yaml.safe_load(bundle.files["podmonitor.yaml"])
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": bundle.name,
                                                           "app.kubernetes.io/part-of": "llminferenceservice"}


def test_fp8_without_a_checkpoint_is_quantized_on_load_with_the_flag_vllm_accepts(cat, params):
    assert cat.checkpoint("Qwen/Qwen3-8B", "fp8") is None and cat.gpu("H100-SXM-80GB").fp8_tflops
    plan = _plan(cat, params, model="Qwen/Qwen3-8B", gpu="H100-SXM-80GB", dtypes=["fp8"])
    c = plan.candidates[plan.chosen]
    assert c.checkpoint is None and "quantizes" in c.explanation
    args = _serving(_render(cat, plan))["spec"]["predictor"]["model"]["args"]
    assert args[0] == "Qwen/Qwen3-8B" and args[args.index("--quantization") + 1] == "fp8"
    assert check_args(args, positional_model=True) == []
    # no int4 checkpoint of Mistral-7B is in the catalog, and vLLM cannot make one on load: never offered
    spec = build_spec(cat, use_case="chatbot", qps=5, models=["mistralai/Mistral-7B-Instruct-v0.3"],
                      quantizations=["int4"], e2e_p95_ms=30000)
    assert recommend(spec, cat, params, provider="aws").chosen is None


def test_the_mcp_render_tool_renders_an_llminferenceservice(isolated_env):
    import asyncio
    import os
    import sys
    from pathlib import Path

    from mcp import Client, StdioServerParameters

    env = {**os.environ, "SERVEWISE_KB": str(isolated_env / "kb.sqlite"), "SERVEWISE_CONFIG": str(isolated_env / "c.toml")}
    params = StdioServerParameters(command=str(Path(sys.executable).parent / "servewise"), args=["serve"], env=env)

    async def go():
        async with Client(params) as c:
            spec = await c.call_tool("build_spec", {"text": "support chatbot at 5 req/s"})
            plan = await c.call_tool("recommend", {"spec": spec.structured_content, "top": 1})
            r = await c.call_tool("render", {"plan_id": plan.structured_content["id"], "target": "llmisvc"})
            assert not r.is_error, r.content
            files = {f["name"] for f in r.structured_content["files"]}  # the compact render lists names + links
            assert "llminferenceservice.yaml" in files and "inferenceservice.yaml" not in files
            bad = await c.call_tool("render", {"plan_id": plan.structured_content["id"], "target": "deployment"})
            assert bad.is_error

    asyncio.run(go())


def test_the_vllm_check_catches_what_vllm_would_reject_and_cites_vllm():
    f = facts()
    assert f["vllm_version"] == "0.19.0" and "vllm-0.19.0" in f["source"]
    assert "compressed-tensors" in f["quantization_methods"]["values"] and "w8a8" not in f["quantization_methods"]["values"]
    problems = check_args(["--model", "m", "--kv-cache-dtype", "bf16", "--quantization", "w8a8", "--no-such-flag",
                           "--enable-prefix-caching=yes"], positional_model=True)
    assert any("positional" in p and "cli_args.py:" in p for p in problems)
    assert any(p.startswith("--model is deprecated") and "argparse_utils.py:" in p for p in problems)
    assert any(p.startswith("--kv-cache-dtype takes one of") and "arg_utils.py:" in p for p in problems)
    assert any(p.startswith("--no-such-flag is not") for p in problems)
    assert any(p.startswith("--enable-prefix-caching takes no value") for p in problems)
    # --quantization accepts registered plug-in names too (its type is QuantizationMethods | str), so vLLM's parser
    # lets w8a8 through and only get_quant_config fails later: servewise never renders it
    assert f["flags"]["--quantization"]["open"] is True


def test_checkpoints_are_catalog_facts_with_sources(cat):
    methods = set(facts()["quantization_methods"]["values"])
    assert cat.checkpoints
    for ck in cat.checkpoints:
        m = cat.model(ck.model)
        assert ck.weight_dtype != m.native_dtype and ck.source.startswith("https://")
        assert ck.method in methods, ck
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", ck.repo)


def test_render_cli_target_llmisvc(cli, tmp_path):
    plan = tmp_path / "plan.json"
    assert cli("recommend", "--use-case", "chatbot", "--qps", "5", "--out", str(plan), "--json").exit_code == 0
    r = cli("render", "--plan", str(plan), "--out", str(tmp_path / "out"), "--target", "llmisvc",
            "--kserve-version", "0.20", "--json")
    assert r.exit_code == 0, r.stdout
    assert (tmp_path / "out" / "llminferenceservice.yaml").exists() and not (tmp_path / "out" / "inferenceservice.yaml").exists()
    bad = cli("render", "--plan", str(plan), "--out", str(tmp_path / "o2"), "--kserve-version", "0.3", "--json")
    assert bad.exit_code == 2 and "KServe version" in json.loads(bad.stdout)["error"]["message"]


def test_rendered_servers_start_one_api_server_as_the_latency_model_assumes(plans, params):
    """The latency model's output path (LatencyParams.output_per_stream_s) is one API-server process serving every
    running request in turn. vLLM 0.19.0 starts as many as the data-parallel size when --api-server-count is not
    given (vendored from entrypoints/cli/serve.py); servewise renders neither flag, so its pods run one."""
    from gitops.render import engine_args

    assert facts()["api_server_count"]["default"] == "args.data_parallel_size"
    assert params.output_per_stream_s > 0
    for plan in plans.values():
        args = engine_args(plan.candidates[plan.chosen])
        assert not {"--api-server-count", "-asc", "--data-parallel-size", "-dp"} & set(args), args
