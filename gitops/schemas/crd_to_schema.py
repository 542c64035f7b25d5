"""Turn one served version of a CustomResourceDefinition into the standalone JSON Schema gitops/validate.py uses.

The team's conversion (shared/schemas/README.md), nothing else: `$schema` and `title` added; `apiVersion` and
`kind` pinned with `enum` and required; `additionalProperties: false` wherever the CRD lists `properties` and sets
neither `additionalProperties` nor `x-kubernetes-preserve-unknown-fields` (unknown fields rejected, as
`kubectl apply --validate=strict` does); `x-kubernetes-embedded-resource` objects allow apiVersion/kind/metadata;
RE2 patterns starting `^(?i)` rewritten to `(?i)^` for Python's `re`.

    python gitops/schemas/crd_to_schema.py CRD.yaml VERSION > KIND_GROUP_VERSION.json

Run on argoproj/argo-cd's application-crd.yaml (v3.5.1) it reproduces application_argoproj.io_v1alpha1.json byte
for byte (tests/test_gitops_bootstrap.py checks this), so the ApplicationSet schema was made the same way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def _strict(node: object) -> object:
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if isinstance(out.get("pattern"), str) and out["pattern"].startswith("^(?i)"):
        out["pattern"] = "(?i)^" + out["pattern"][len("^(?i)"):]
    if out.get("x-kubernetes-embedded-resource") and isinstance(out.get("properties"), dict):
        for key in ("apiVersion", "kind"):
            out["properties"].setdefault(key, {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def convert(crd: dict, version: str) -> dict:
    names, group = crd["spec"]["names"], crd["spec"]["group"]
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = _strict(served["schema"]["openAPIV3Schema"])
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{version}"]}
    schema["properties"]["kind"] = {"type": "string", "enum": [names["kind"]]}
    schema["required"] = ["apiVersion", "kind", *[r for r in schema.get("required", []) if r not in ("apiVersion", "kind")]]
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": f"{names['kind']} ({group}/{version})", **schema}


def main(argv: list[str]) -> None:
    crd = yaml.safe_load(Path(argv[1]).read_text())
    sys.stdout.write(json.dumps(convert(crd, argv[2]), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv)
