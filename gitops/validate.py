"""Validate a rendered bundle: custom resources against the real CRD schemas (gitops/schemas/),
core kinds against the Kubernetes OpenAPI (kubernetes-validate, strict), and semantic checks that no
schema knows: GPU count = TP x PP, vLLM args consistent with the plan, DNS-1123 names, unique objects.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel

from gitops.bundle import Bundle
from planner.errors import BadInput

SCHEMAS = Path(__file__).resolve().parent / "schemas"
_CRD_SCHEMA = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "inferenceservice_serving.kserve.io_v1beta1.json",
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "servingruntime_serving.kserve.io_v1alpha1.json",
    ("serving.kserve.io/v1alpha2", "LLMInferenceService"): "llminferenceservice_serving.kserve.io_v1alpha2.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject_keda.sh_v1alpha1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor_monitoring.coreos.com_v1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor_monitoring.coreos.com_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule_monitoring.coreos.com_v1.json",
    ("argoproj.io/v1alpha1", "Application"): "application_argoproj.io_v1alpha1.json",
}
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUPPORTED_K8S = ("1.29", "1.30", "1.31", "1.32", "1.33")


class ValidationIssue(BaseModel):
    file: str
    kind: str
    name: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}: {self.field}: {self.reason}"


@cache
def _validator(filename: str):
    import jsonschema

    return jsonschema.Draft7Validator(json.loads((SCHEMAS / filename).read_text()))


def _manifests(bundle: Bundle) -> list[tuple[str, str]]:
    return [(path, text) for path, text in bundle.files.items() if path.endswith(".yaml") and path != "kustomization.yaml"]


def documents(bundle: Bundle) -> list[tuple[str, dict]]:
    """Every YAML document of the bundle with the file it came from (Kustomization excluded: not an API object).
    Raises yaml.YAMLError on a file that does not parse."""
    return [(path, d) for path, text in _manifests(bundle) for d in yaml.safe_load_all(text) if d is not None]


def validate_bundle(bundle: Bundle, k8s_version: str = "1.31") -> list[ValidationIssue]:
    """Every problem found, each naming file, object, field and reason; an empty list means the bundle is valid."""
    import kubernetes_validate

    if k8s_version not in SUPPORTED_K8S:
        raise BadInput(f"k8s version {k8s_version} is not supported; choose one of {', '.join(SUPPORTED_K8S)}")
    issues: list[ValidationIssue] = _kustomization(bundle)
    seen: set[tuple[str, str, str]] = set()
    docs: list[tuple[str, object]] = []
    for path, text in _manifests(bundle):
        try:
            docs += [(path, d) for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            issues.append(ValidationIssue(file=path, kind="?", name="?", field="(yaml)", reason=str(exc)[:300]))
    for path, doc in docs:
        if not isinstance(doc, dict):
            issues.append(ValidationIssue(file=path, kind="?", name="?", field="(root)", reason="not a YAML mapping"))
            continue
        kind, meta = str(doc.get("kind", "?")), doc.get("metadata") or {}
        name = str(meta.get("name", "?"))

        def issue(field: str, reason: str, kind=kind, name=name, path=path, issues=issues) -> None:
            issues.append(ValidationIssue(file=path, kind=kind, name=name, field=field, reason=reason))

        key = (kind, str(meta.get("namespace", "")), name)
        if key in seen:
            issue("metadata.name", "duplicate object (same kind, namespace and name)")
        seen.add(key)
        if not _DNS1123.match(str(name)) or len(str(name)) > 63:
            issue("metadata.name", "not a DNS-1123 label (lower-case letters, digits, '-', at most 63)")
        schema = _CRD_SCHEMA.get((doc.get("apiVersion"), kind))
        if schema:
            for err in sorted(_validator(schema).iter_errors(doc), key=lambda e: list(e.path)):
                issue(".".join(map(str, err.path)) or "(root)", err.message[:300])
        else:
            try:
                kubernetes_validate.validate(doc, k8s_version, strict=True)
            except kubernetes_validate.ValidationError as err:
                issue(".".join(map(str, err.path)) or "(root)", err.message[:300])
            except kubernetes_validate.SchemaNotFoundError:
                issue("apiVersion", f"{doc.get('apiVersion')}/{kind} is neither a known CRD nor a Kubernetes {k8s_version} kind")
        if kind == "InferenceService":
            issues += _semantic(bundle, path, doc)
        if kind == "LLMInferenceService":
            issues += _semantic_llmisvc(bundle, path, doc)
        if kind in ("InferenceService", "LLMInferenceService"):
            issues += [ValidationIssue(file=path, kind=kind, name=name, field=field, reason=reason)
                       for field, reason in _vllm_problems(doc)]
        if kind in _REPLICA_FIELDS:
            issues += _replicas(bundle, path, doc)
        for field, image in _images(doc):
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                issue(field, f"image {image} is not pinned to a tag other than latest")
    return issues


def _images(doc: dict) -> list[tuple[str, str]]:
    """(field, image) of every container in a ServingRuntime or CronJob."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        at, spec = "spec.jobTemplate.spec.template.spec", spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    else:
        at = "spec"
    return [(f"{at}.containers.{i}.image", str(c.get("image", ""))) for i, c in enumerate(spec.get("containers") or [])]


def _kustomization(bundle: Bundle) -> list[ValidationIssue]:
    """kustomization.yaml lists exactly the bundle's manifests (the Application is applied to argocd on its own)."""
    text = bundle.files.get("kustomization.yaml")
    if text is None:
        return [ValidationIssue(file="kustomization.yaml", kind="Kustomization", name="-", field="(file)",
                                reason="missing: Argo CD would apply every YAML file, the Application included")]
    resources = (yaml.safe_load(text) or {}).get("resources") or []
    manifests = {p for p in bundle.files if p.endswith(".yaml") and p not in ("kustomization.yaml", "application.yaml")}
    out = [ValidationIssue(file="kustomization.yaml", kind="Kustomization", name="-", field="resources",
                           reason=f"{r} is listed but not in the bundle") for r in resources if r not in bundle.files]
    out += [ValidationIssue(file="kustomization.yaml", kind="Kustomization", name="-", field="resources",
                            reason=f"{m} is in the bundle but not listed, so Argo CD would not apply it")
            for m in sorted(manifests - set(resources))]
    return out


def _arg(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


# where each kind keeps its replica bounds
_REPLICA_FIELDS = {"InferenceService": ("spec.predictor", "minReplicas", "maxReplicas"),
                   "ScaledObject": ("spec", "minReplicaCount", "maxReplicaCount"),
                   "HorizontalPodAutoscaler": ("spec", "minReplicas", "maxReplicas")}


def _replicas(bundle: Bundle, path: str, doc: dict) -> list[ValidationIssue]:
    """Replica bounds equal the plan's, in the InferenceService and in whichever autoscaler is rendered."""
    at, low, high = _REPLICA_FIELDS[doc["kind"]]
    c = bundle.plan.candidates[bundle.plan.chosen]
    obj = doc
    for key in at.split("."):
        obj = obj.get(key) or {}
    return [ValidationIssue(file=path, kind=doc["kind"], name=str(doc.get("metadata", {}).get("name", "?")),
                            field=f"{at}.{field}", reason=f"{obj.get(field)} but the plan says {want}")
            for field, want in ((low, c.min_replicas), (high, c.max_replicas)) if _int(obj.get(field)) != want]


def _vllm_problems(doc: dict) -> list[tuple[str, str]]:
    """Every vLLM argument list of the serving object, checked against vLLM's own flag definitions at the pinned
    release (gitops/vllm_facts). An InferenceService passes the model positionally; KServe's LLMInferenceService
    config already runs `vllm serve /mnt/models --served-model-name ... --port 8000` and appends these."""
    from gitops.vllm_facts import check_args

    spec = doc.get("spec") or {}
    if doc.get("kind") == "InferenceService":
        at, args, positional = "spec.predictor.model.args", ((spec.get("predictor") or {}).get("model") or {}).get("args"), True
        return [(at, p) for p in check_args([str(a) for a in args or []], positional_model=positional)]
    out = []
    for part in ("template", "worker"):
        for i, container in enumerate((spec.get(part) or {}).get("containers") or []):
            if "args" in container:
                out += [(f"spec.{part}.containers.{i}.args", p)
                        for p in check_args([str(a) for a in container["args"]], positional_model=False)]
    return out


def _semantic_llmisvc(bundle: Bundle, path: str, doc: dict) -> list[ValidationIssue]:
    """The plan's model, name, parallelism, GPUs per pod and engine settings in an LLMInferenceService."""
    from gitops.render import engine_args, served_model_name, serving_repo

    c = bundle.plan.candidates[bundle.plan.chosen]
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    name = str(meta.get("name", "?"))
    out = []

    def bad(field: str, reason: str) -> None:
        out.append(ValidationIssue(file=path, kind="LLMInferenceService", name=name, field=field, reason=reason))

    model = spec.get("model") or {}
    uri = str(model.get("uri", ""))
    if uri.startswith("hf://") and uri != f"hf://{serving_repo(c)}":
        bad("spec.model.uri", f"{uri} but the plan serves {serving_repo(c)}")
    if model.get("name") != served_model_name(str(meta.get("namespace", "")), name):
        bad("spec.model.name", f"{model.get('name')} is not the deployment's served name")
    par = spec.get("parallelism") or {}
    nodes = _int(par.get("pipeline") or 1) or 1
    if _int(par.get("tensor")) != c.tp or (nodes > 1) != ("worker" in spec):
        bad("spec.parallelism", f"{par} but the plan has TP {c.tp} x PP {c.pp} (a worker spec when it spans nodes)")
    for part in ("template", "worker"):
        for i, container in enumerate((spec.get(part) or {}).get("containers") or []):
            gpus = _int(((container.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
            if gpus is None or gpus * nodes != c.tp * c.pp:
                bad(f"spec.{part}.containers.{i}.resources.limits.nvidia.com/gpu",
                    f"{gpus} GPUs per pod x {nodes} node(s) but TP x PP = {c.tp} x {c.pp}")
    args = [str(a) for a in ((spec.get("template") or {}).get("containers") or [{}])[0].get("args") or []]
    if args != engine_args(c)[2:]:
        bad("spec.template.containers.0.args", "differ from the plan's vLLM settings")
    return out


def _semantic(bundle: Bundle, path: str, isvc: dict) -> list[ValidationIssue]:
    """GPUs = TP x PP, every vLLM setting as the plan chose it, memory settings matching the plan's fit."""
    from gitops.render import served_model_name, serving_repo, vllm_args  # the plan's settings as render writes them

    plan = bundle.plan
    c = plan.candidates[plan.chosen]
    name = str((isvc.get("metadata") or {}).get("name", "?"))
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}
    args = [str(a) for a in model.get("args", [])]
    out = []

    def bad(field: str, reason: str) -> None:
        out.append(ValidationIssue(file=path, kind="InferenceService", name=name, field=field, reason=reason))

    tp, pp = _int(_arg(args, "--tensor-parallel-size") or 1), _int(_arg(args, "--pipeline-parallel-size") or 1)
    for part in ("requests", "limits"):
        gpus = _int((model.get("resources") or {}).get(part, {}).get("nvidia.com/gpu", 0))
        if tp is None or pp is None or gpus != tp * pp:
            bad(f"spec.predictor.model.resources.{part}.nvidia.com/gpu", f"{gpus} GPUs but TP x PP = {tp} x {pp}")
    want_model = "/mnt/models" if model.get("storageUri") else serving_repo(c)
    if not args or args[0] != want_model:
        bad("spec.predictor.model.args[0]", f"{args[0] if args else 'nothing'} but the plan serves {want_model}"
            + (" (the published quantized checkpoint)" if c.checkpoint and not model.get("storageUri") else ""))
    want_name = served_model_name(str((isvc.get("metadata") or {}).get("namespace", "")), name)
    if _arg(args, "--served-model-name") != want_name:
        bad("spec.predictor.model.args[--served-model-name]", f"{_arg(args, '--served-model-name')} but every query "
            f"of this deployment selects on {want_name}")
    expected = vllm_args(c, want_model, want_name)
    for i, flag in enumerate(expected):
        value = expected[i + 1] if i + 1 < len(expected) and not expected[i + 1].startswith("--") else None
        if not flag.startswith("--"):
            continue
        if value is None and flag not in args:
            bad(f"spec.predictor.model.args[{flag}]", f"missing, but the plan sets {flag}")
        elif value is not None and _arg(args, flag) != value:
            bad(f"spec.predictor.model.args[{flag}]", f"{_arg(args, flag)} but the plan says {value}")
    mem = c.predicted.memory
    try:
        util = float(_arg(args, "--gpu-memory-utilization") or 0)
    except ValueError:
        util = 0.0
    if abs(util * mem.gpu_memory_gib - mem.usable_gib) > 0.05 * mem.gpu_memory_gib:
        bad("spec.predictor.model.args[--gpu-memory-utilization]",
            f"{util:g} does not match the plan's memory fit ({mem.usable_gib:.1f} of {mem.gpu_memory_gib:.1f} GiB usable)")
    if not mem.fits:
        bad("spec.predictor", f"the plan's memory fit says it does not fit: {mem.reason}")
    return out
