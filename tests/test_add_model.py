"""Bring your own model: config.json files of real models of each kind (copies pinned in
kb/data/hf_configs/SOURCES.json) become architectures the planner predicts and recommends with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kb.catalog import DATA_DIR
from planner.errors import BadInput
from planner.hf_config import arch_from_config, weight_format
from planner.memory import GIB, memory_fit

CONFIGS = DATA_DIR / "hf_configs"


def _cfg(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _arch(name: str):
    return arch_from_config(_cfg(name), hf_id="test/model", source="test")


# Published parameter counts (model cards / names), billions: total, active.
@pytest.mark.parametrize("file,total,active,kind", [
    ("meta-llama--Meta-Llama-3.1-8B.json", 8.03, 8.03, "gqa"),  # dense GQA
    ("meta-llama--Llama-3.2-1B-Instruct.json", 1.24, 1.24, "gqa"),  # tied embeddings
    ("google--gemma-2-9b-it.json", 9.24, 9.24, "sliding_window"),  # alternating local/global
    ("mistralai--Mixtral-8x22B-v0.1.json", 141, 39, "gqa"),  # MoE top-2
    ("Qwen--Qwen3-30B-A3B.json", 30.5, 3.3, "gqa"),  # fine-grained MoE
    ("meta-llama--Llama-4-Scout-17B-16E-Instruct.json", 109, 17, "sliding_window"),  # MoE + shared expert, chunked attn
    ("deepseek-ai--DeepSeek-R1.json", 671, 37, "mla"),  # MLA, shared expert, leading dense layers
    ("Qwen--Qwen3.5-35B-A3B.json", 35, 3, "hybrid_linear"),  # Gated DeltaNet + full attention
    ("openai--gpt-oss-20b.json", 21, 3.6, "sliding_window"),  # mxfp4 experts, alternating windows
    ("microsoft--phi-4.json", 14, 14, "gqa"),  # arXiv 2412.08905 abstract: "a 14-billion parameter language model"
    # keras-hub gemma3_presets.py@46f3b4a000be58c092fe2f1acf87d2fb620aefd0, text-only presets: 3,880,099,328 params
    ("google--gemma-3-4b-it.json", 3.880, 3.880, "sliding_window"),  # multimodal wrapper, text_config
])
def test_real_configs_of_each_kind_give_the_published_sizes(file, total, active, kind):
    m = _arch(file)
    assert m.attention.kind == kind
    assert m.params_total_b == pytest.approx(total, rel=0.05 if file == "microsoft--phi-4.json" else 0.03)
    # Active counts differ by whether publishers count embeddings: within 20 %, and never above the total.
    assert m.params_active_b == pytest.approx(active, rel=0.2) and m.params_active_b <= m.params_total_b


def test_moe_mla_window_and_quantization_details_are_read():
    r1 = _arch("deepseek-ai--DeepSeek-R1.json")
    assert (r1.num_experts, r1.experts_per_token, r1.num_shared_experts, r1.first_k_dense_layers) == (256, 8, 1, 3)
    assert r1.attention.kv_lora_rank == 512 and r1.attention.qk_rope_head_dim == 64
    assert r1.native_dtype == "fp8_block", "quantization_config fp8 with weight_block_size"
    oss = _arch("openai--gpt-oss-20b.json")
    assert oss.native_dtype == "mxfp4" and oss.attention.window == 128 and oss.attention.num_sliding_layers == 12
    gemma = _arch("google--gemma-2-9b-it.json")
    assert gemma.tie_word_embeddings and gemma.attention.num_sliding_layers == gemma.num_layers // 2
    kimi = _arch("moonshotai--Kimi-K2-Instruct.json")
    assert kimi.attention.kind == "mla" and kimi.num_experts == 384
    assert _arch("meta-llama--Llama-3.2-1B-Instruct.json").tie_word_embeddings
    assert weight_format({"quantization_config": {"quant_method": "awq", "bits": 4}})[0] == "int4"
    assert weight_format({"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {
        "g": {"weights": {"num_bits": 8, "type": "float"}}}}})[0] == "fp8"


def test_memory_of_an_added_model_matches_its_checkpoint_size():
    # Llama-3.1-8B's bf16 safetensors hold 16.06e9 bytes (8.03B params x 2); Mixtral-8x22B's 281e9 (140.6B x 2).
    for file, checkpoint_bytes, tp in (("meta-llama--Meta-Llama-3.1-8B.json", 16.06e9, 1),
                                       ("mistralai--Mixtral-8x22B-v0.1.json", 281.2e9, 8)):
        m = _arch(file)
        gpu = next(g for g in _gpus() if g.name == "H100-SXM-80GB")
        fit = memory_fit(m, gpu, tp=tp, weight_dtype="bf16", context_tokens=4096)
        assert fit.weights_gib * tp * GIB == pytest.approx(checkpoint_bytes, rel=0.03)


def _gpus():
    from planner.catalog import Gpu

    return [Gpu.model_validate(g) for g in json.loads((DATA_DIR / "gpus.json").read_text())]


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.pop("num_hidden_layers"), "num_hidden_layers"),
    (lambda c: c.update(hidden_size="big"), "hidden_size"),
    (lambda c: c.update(quantization_config={"quant_method": "hqq"}), "quant_method"),
    (lambda c: c.update(num_key_value_heads=5), "num_key_value_heads"),
])
def test_configs_servewise_cannot_model_are_one_clear_error_naming_the_field(mutate, field):
    cfg = _cfg("meta-llama--Meta-Llama-3.1-8B.json")
    mutate(cfg)
    with pytest.raises(BadInput, match=field):
        arch_from_config(cfg, hf_id="a/b", source="t")
    with pytest.raises(BadInput, match="hybrid_override_pattern"):
        _arch("nvidia--Nemotron-H-56B-Base-8K.json")
    with pytest.raises(BadInput, match="is_encoder_decoder"):
        arch_from_config({"is_encoder_decoder": True, "model_type": "t5"}, hf_id="a/b", source="t")


def test_every_listed_catalog_model_is_what_its_config_json_gives(cat):
    """The catalog's architecture facts of every listed model are re-derived from its committed config.json."""
    from kb.tools.catalog_models import derived, listing

    src = listing()
    assert len(cat.models) >= 40
    for entry in src["models"]:
        want = derived(entry, src["upstreams"])
        have = cat.model(entry["hf_id"])
        assert have.verified and "@" in have.source, entry["hf_id"]
        for key in ("num_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
                    "max_position_embeddings", "params_total_b", "native_dtype", "num_experts", "experts_per_token"):
            assert getattr(have, key) == want.get(key), (entry["hf_id"], key)
        assert have.attention.kind == want["attention"]["kind"], entry["hf_id"]
        assert have.gated is None or have.gated.value == entry["gated"] or not entry.get("new", True)
    for entry in src["checks_only"]:
        want = derived({**entry, "upstream": "aic", "name": "x", "license": "x", "gated": False, "tasks": "general"},
                       src["upstreams"])
        have = cat.model(entry["hf_id"])
        assert have.params_total_b == pytest.approx(want["params_total_b"], rel=0.01), entry["hf_id"]


# Copies a test suite cut down (fewer layers, a tiny window), with the fields put back from the sources named in
# SOURCES.json `restored`. Published text-only sizes, billions: Gemma 3 27B 27,009,002,240 (keras-hub
# gemma3_presets.py@46f3b4a000be58c092fe2f1acf87d2fb620aefd0); Mistral Small 3.1 "24B" with its ~0.4B vision encoder
# (the Mistral Small 3 card copied at github:OpenMOSE/RWKV-LM-RLHF:main/tokenizer/mistralsmall3/README.md@f476341).
@pytest.mark.parametrize("hf_id,published,rel,shape", [
    ("google/gemma-3-27b-it", 27.009, 0.002, (62, 5376, 32, 16, 128)),
    ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", 24.0, 0.03, (40, 5120, 32, 8, 128)),
])
def test_cut_down_copies_with_restored_fields_give_the_published_models(hf_id, published, rel, shape):
    from kb.tools.catalog_models import config_of, listing

    entry = next(e for e in listing()["models"] if e["hf_id"] == hf_id)
    m = arch_from_config(config_of(entry), hf_id=hf_id, source="t")
    assert m.params_total_b == pytest.approx(published, rel=rel)
    assert (m.num_layers, m.hidden_size, m.num_attention_heads, m.num_key_value_heads, m.head_dim) == shape
    # Without the restored fields the copy is the small test model, not the published one.
    small = arch_from_config(_cfg(entry["file"]), hf_id="t/t", source="t")
    assert small.num_layers < 10 and small.params_total_b < published / 3


def test_gemma3_sparse_text_config_takes_the_class_defaults():
    """The published Gemma 3 27B config.json omits vocab_size and the context; Gemma3TextConfig's defaults apply."""
    from kb.tools.catalog_models import config_of, listing

    entry = next(e for e in listing()["models"] if e["hf_id"] == "google/gemma-3-27b-it")
    assert "vocab_size" not in _cfg(entry["file"])["text_config"]
    m = arch_from_config(config_of(entry), hf_id="google/gemma-3-27b-it", source="t")
    assert m.vocab_size == 262208 and m.max_position_embeddings == 131072 and m.tie_word_embeddings
    assert m.attention.window == 1024 and m.attention.num_sliding_layers == 52  # every 6th of 62 layers global


# Published sizes of models whose row comes from a sibling's config.json (`config_of`), billions. Qwen2.5 and
# Qwen2.5-Coder: the model tables of github:QwenLM/qwenlm.github.io@1f89f8c81adb85e3808f9cc15180ab1fdacbb900
# (content/blog/qwen2.5-llm and qwen2.5-coder-family); DeepSeek-R1 distills: their base models', the layer shapes of
# a fine-tune being its base's (github:deepseek-ai/DeepSeek-R1 README.md@0cf78561f1d51c84a21b2190626b21116d5c68bb).
@pytest.mark.parametrize("hf_id,published,layers,heads,kv_heads", [
    ("Qwen/Qwen2.5-Coder-7B-Instruct", 7.61, 28, 28, 4),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", 32.5, 64, 40, 8),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", 14.7, 48, 40, 8),  # Qwen2.5-14B
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", 32.5, 64, 40, 8),  # Qwen2.5-32B
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", 8.03, 32, 32, 8),  # Llama-3.1-8B
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", 70.55, 80, 64, 8),  # Llama-3.3-70B-Instruct, as the catalog's row
])
def test_models_sized_from_a_sibling_config_match_their_published_tables(cat, hf_id, published, layers, heads, kv_heads):
    m = cat.model(hf_id)
    assert (m.num_layers, m.num_attention_heads, m.num_key_value_heads) == (layers, heads, kv_heads)
    assert m.params_total_b == pytest.approx(published, rel=0.01)
    assert "config of" in m.source and "@" in m.source


def _dir_with(tmp_path: Path, config: str) -> Path:
    d = tmp_path / "my-finetune"
    d.mkdir()
    shutil.copy(CONFIGS / config, d / "config.json")
    return d


def test_a_model_added_from_a_directory_is_predicted_and_recommended(servewise_bin, tmp_path):
    d = _dir_with(tmp_path, "meta-llama--Meta-Llama-3.1-8B.json")
    added = servewise_bin("kb", "add-model", str(d), "--name", "acme/support-8b", "--json")
    assert added.returncode == 0, added.stderr
    model = json.loads(added.stdout)
    assert model["hf_id"] == "acme/support-8b" and model["origin"] == "user" and model["params_total_b"] == 8.03
    p = servewise_bin("predict", "--model", "acme/support-8b", "--gpu", "h100", "--tp", "1", "--isl", "512", "--osl",
                      "256", "--qps", "2", "--json")
    assert p.returncode == 0, p.stderr
    weights_bytes = json.loads(p.stdout)["memory"]["weights_gib"] * GIB
    assert weights_bytes == pytest.approx(16.06e9, rel=0.03), "memory right to a few percent of the checkpoint"
    plan = servewise_bin("recommend", "--use-case", "chatbot", "--qps", "5", "--model", "acme/support-8b", "--json")
    assert plan.returncode == 0, plan.stderr
    out = json.loads(plan.stdout)
    assert out["candidates"][out["chosen"]]["model"] == "acme/support-8b"
    listed = json.loads(servewise_bin("kb", "models", "--json").stdout)
    assert any(m["hf_id"] == "acme/support-8b" for m in listed)


def test_added_model_survives_reseeding_and_changes_the_kb_version(tmp_path):
    from kb.add_model import add_model
    from kb.catalog import load_catalog, open_kb

    kb = open_kb(tmp_path / "kb.sqlite")
    before = kb.meta("kb_version")
    add_model(kb, str(_dir_with(tmp_path, "Qwen--Qwen3-14B.json")), name="acme/qwen-ft")
    assert kb.meta("kb_version") != before
    with kb.transaction() as db:
        kb.set_meta(db, "seed_hash", "stale")  # as after an upgrade with new seed data
    kb.close()
    again = open_kb(tmp_path / "kb.sqlite")
    assert load_catalog(again).model("acme/qwen-ft").origin == "user"


def test_hf_cache_hub_and_offline(servewise_bin, tmp_path, monkeypatch):
    # A local Hugging Face cache laid out as huggingface_hub writes it.
    cache = tmp_path / "hf-cache"
    snap = cache / "models--acme--cached-model" / "snapshots" / "0123456789abcdef"
    snap.mkdir(parents=True)
    shutil.copy(CONFIGS / "Qwen--Qwen3-4B.json", snap / "config.json")
    (cache / "models--acme--cached-model" / "refs").mkdir()
    (cache / "models--acme--cached-model" / "refs" / "main").write_text("0123456789abcdef")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = servewise_bin("kb", "add-model", "acme/cached-model", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hf_id"] == "acme/cached-model"
    offline = servewise_bin("kb", "add-model", "acme/not-cached", "--json")
    assert offline.returncode == 4
    err = json.loads(offline.stdout)["error"]
    assert "Hugging Face Hub" in err["message"] and "config.json" in err["message"]
    bad = servewise_bin("kb", "add-model", str(tmp_path / "nope" / "config.json"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    nemotron = servewise_bin("kb", "add-model", str(CONFIGS / "nvidia--Nemotron-H-56B-Base-8K.json"), "--name", "a/b")
    assert nemotron.returncode == 2 and "hybrid_override_pattern" in nemotron.stderr


def test_kb_models_at_80_columns_tells_every_model_apart(servewise_bin, monkeypatch):
    """Names are cut in the middle (the size is at the end), so 14B/32B/70B siblings stay distinct in 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    r = servewise_bin("kb", "models")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rule = next(i for i, line in enumerate(lines) if "───" in line)
    names = [line.split()[0] for line in lines[rule + 1:] if line.strip()]
    listed = json.loads(servewise_bin("kb", "models", "--json").stdout)
    assert len(names) == len(listed) >= 49 and len(set(names)) == len(names), names
    assert "Qwen2.5-Coder-7B" in names, "a name that fits is shown whole, without its -Instruct suffix"
