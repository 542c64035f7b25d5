"""Add or re-check catalog models from the config.json copies in kb/data/hf_configs/.

Each model listed in kb/data/hf_configs/SOURCES.json gets its architecture from its config.json through
planner.hf_config (the same code `servewise kb add-model` runs), its source pinned to the public copy, and
its licence, gated flag (new models) and tasks from the listing. Entries already in models.json keep their aliases and
any keys other tools add. Run by a maintainer: `python -m kb.tools.catalog_models`; the result is reviewed
and committed. kb.tools.import_shared applies the same listing, so re-importing shared data keeps it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from planner.hf_config import arch_from_config

DATA = Path(__file__).resolve().parents[1] / "data"
CONFIGS = DATA / "hf_configs"

_GENERAL = ["chat", "summarization", "rag", "translation", "batch", "agent"]
_TASKS = {"general": _GENERAL, "code": [*_GENERAL, "code", "completion"],
          "reasoning": [*_GENERAL, "code", "completion", "reasoning"]}
# Architecture facts that come from config.json; everything else in a row is kept.
_ARCH_KEYS = ("architecture", "params_total_b", "params_active_b", "num_layers", "hidden_size", "intermediate_size",
              "moe_intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
              "max_position_embeddings", "num_experts", "experts_per_token", "num_shared_experts",
              "first_k_dense_layers", "tie_word_embeddings", "native_dtype", "native_dtype_note", "attention")


def listing() -> dict[str, Any]:
    return json.loads((CONFIGS / "SOURCES.json").read_text())


def source_of(entry: dict[str, Any], upstreams: dict[str, str]) -> str:
    src = upstreams[entry["upstream"]].format(name=entry["name"])
    restored = "".join(f"; {field} {r['value']} restored from {r['source']}" for field, r in
                       entry.get("restored", {}).items())
    return src + (f"; config of {entry['config_of']}" if entry.get("config_of") else "") + restored


def config_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The committed copy, with the fields a test suite cut down put back (`restored`, each value sourced)."""
    cfg = json.loads((CONFIGS / entry["file"]).read_text())
    target = cfg.get("text_config", cfg)
    for field, r in entry.get("restored", {}).items():
        target[field] = r["value"]
    return cfg


def derived(entry: dict[str, Any], upstreams: dict[str, str]) -> dict[str, Any]:
    """The catalog row of one listed model, as its config.json copy gives it."""
    cfg = config_of(entry)
    arch = arch_from_config(cfg, hf_id=entry["hf_id"], source=source_of(entry, upstreams), license=entry["license"])
    row = arch.model_dump(mode="json", exclude_none=True)
    if entry.get("context"):
        row["max_position_embeddings"] = entry["context"]
    row.update(tasks=_TASKS[entry["tasks"]], verified=True)
    return row


def gated(entry: dict[str, Any]) -> dict[str, Any]:
    """Whether the Hub repo asks for terms to be accepted, and why servewise thinks so."""
    if entry.get("gated_source"):
        return {"value": entry["gated"], "source": entry["gated_source"]}
    if entry["gated"]:
        return {"value": True, "source": f"{entry['license']} licence: the publisher's Hugging Face repos ask each user "
                                         "to accept it (as for the catalog's other models of this publisher)"}
    return {"value": False, "source": f"open licence {entry['license']}; no access form recorded for the repo (not "
                                      "checked page by page)"}


def apply(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` with every listed model added, or its architecture replaced by what its config.json gives."""
    from kb.tools.import_shared import _aliases

    src = listing()
    index = {r["hf_id"]: i for i, r in enumerate(rows)}
    out = list(rows)
    for entry in src["models"]:
        new = derived(entry, src["upstreams"])
        if entry["hf_id"] not in index:
            new["aliases"] = _aliases(entry["hf_id"], [])
            new["quality"] = []
            new["gated"] = gated(entry)
            out.append(new)
            continue
        old = out[index[entry["hf_id"]]]
        # In place, key order kept, so the reviewed diff shows only what the config.json changed.
        merged = {k: (new[k] if k in _ARCH_KEYS else v) for k, v in old.items() if k not in _ARCH_KEYS or k in new}
        merged.update({k: new[k] for k in _ARCH_KEYS if k in new and k not in merged})
        merged.update(source=new["source"], verified=True, notes=new["notes"])
        out[index[entry["hf_id"]]] = merged
    return out


def main() -> None:
    path = DATA / "models.json"
    rows = apply(json.loads(path.read_text()))
    path.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
