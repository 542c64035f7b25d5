"""Facts from elsewhere carry where they were read: the quality scores (kb/data/quality.json) and the network
between nodes (kb/data/gpus.json) each name a public source, a GitHub file pinned to a commit or a page address,
and the figures agree with what that source line says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kb.catalog import DATA_DIR

PINNED = re.compile(r"github:[\w.-]+/[\w.-]+:\S.*@[0-9a-f]{40}|https://\S+")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _json(name: str):
    return json.loads((DATA_DIR / name).read_text())


def test_every_quality_score_names_where_it_was_read():
    quality = _json("quality.json")
    assert not re.search(r"recalled|from memory|not re-fetched|UNCERTAIN", json.dumps(quality), re.IGNORECASE)
    for hf_id, scores in quality["models"].items():
        for s in scores:
            assert PINNED.search(s["source"]), (hf_id, s["source"])
            assert 0 < s["score"] <= 100 and "MMLU" in s["benchmark"], hf_id
    catalog = {m["hf_id"] for m in _json("models.json")}
    assert set(quality["models"]) <= catalog, "a score for a model the catalog does not hold"


def test_quality_levels_sit_just_under_the_published_score_they_are_anchored_to():
    quality = _json("quality.json")
    scores = {s["score"] for v in quality["models"].values() for s in v}
    for level in quality["levels"]:
        anchored = float(re.search(r": (\d+(?:\.\d+)?) \(", level["anchor"]).group(1))
        assert anchored in scores, level["name"]
        assert 0 <= anchored - level["min_score"] <= 2.5, level["name"]


def test_internode_bandwidth_is_the_sourced_instance_network_over_its_gpus():
    for g in _json("gpus.json"):
        assert not any("internode" in u for u in g.get("uncertain", [])), g["name"]
        if g.get("internode_gb_s") is None:
            continue
        src = g["internode_source"]
        assert PINNED.search(src), g["name"]
        m = re.search(r"([\d,]+) Gb/s network for (\d+) GPUs", src)
        gbit, gpus = int(m.group(1).replace(",", "")), int(m.group(2))
        assert g["internode_gb_s"] == pytest.approx(gbit / gpus / 8), g["name"]
        assert f"instance-network-bandwidth {gbit * 1000}" in src and f"instance-gpu-count {gpus}" in src
        assert gpus == g["gpus_per_node"], g["name"]


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is only beside the repo in CI and development")
def test_regenerating_the_gpu_seed_keeps_the_sourced_internode_figures():
    from kb.tools.import_shared import gpus

    fresh = {g["name"]: g for g in gpus(SHARED)}
    for g in _json("gpus.json"):
        assert fresh[g["name"]].get("internode_gb_s") == g.get("internode_gb_s"), g["name"]
        assert fresh[g["name"]].get("internode_source", "") == g.get("internode_source", ""), g["name"]
