"""The issue's done-check with the installed command: recommend for the three original use cases, render,
and every document re-parses with yaml.safe_load_all and validates against the copied CRD schemas
(checked here with jsonschema directly, not through gitops.validate)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "gitops" / "schemas"
CRD_FILES = {
    "InferenceService": "inferenceservice_serving.kserve.io_v1beta1.json",
    "ServingRuntime": "servingruntime_serving.kserve.io_v1alpha1.json",
    "ScaledObject": "scaledobject_keda.sh_v1alpha1.json",
    "PodMonitor": "podmonitor_monitoring.coreos.com_v1.json",
    "PrometheusRule": "prometheusrule_monitoring.coreos.com_v1.json",
}


def test_recommend_then_render_for_the_original_use_cases(servewise_bin, tmp_path):
    kinds: set[str] = set()
    for use_case, qps in (("chatbot", "20"), ("summarization", "5"), ("code-generation", "10")):
        plan = tmp_path / f"{use_case}.json"
        rec = servewise_bin("recommend", "--use-case", use_case, "--qps", qps, "--out", str(plan), "--json")
        assert rec.returncode == 0, rec.stderr
        out = tmp_path / use_case
        r = servewise_bin("render", "--plan", str(plan), "--out", str(out), "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        written = {Path(f).name for f in json.loads(r.stdout)["files"]}
        assert written == {p.name for p in out.iterdir()}
        for path in out.glob("*.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                kinds.add(doc["kind"])
                if doc["kind"] in CRD_FILES:
                    schema = json.loads((SCHEMAS / CRD_FILES[doc["kind"]]).read_text())
                    jsonschema.Draft7Validator(schema).validate(doc)
        # the bundle's plan.json is the plan plus how it was rendered (the deployment record)
        bundled = json.loads((out / "plan.json").read_text())
        assert bundled.pop("render")["name"] == json.loads(r.stdout)["name"]
        original = json.loads(plan.read_text())
        original.pop("render", None)
        assert bundled == original
    assert set(CRD_FILES) <= kinds  # every custom resource kind was rendered and checked


def test_a_bad_plan_file_exits_2_and_writes_nothing(servewise_bin, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"id": "p", "spec": "not a spec"}')
    r = servewise_bin("render", "--plan", str(plan), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "not a servewise plan" in r.stderr + r.stdout
    assert not (tmp_path / "out").exists()
