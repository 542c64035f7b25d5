"""The command-line contract of the foundation: kb listings, config, errors and exit codes."""

from __future__ import annotations

import json


def test_kb_models_json_lists_models_with_sources(cli):
    r = cli("kb", "models", "--json")
    assert r.exit_code == 0
    models = json.loads(r.stdout)
    assert len(models) >= 15
    assert all(m["source"] and m["license"] for m in models)
    assert "meta-llama/Llama-3.1-8B-Instruct" in {m["hf_id"] for m in models}


def test_kb_gpus_prices_follow_the_provider_setting(cli, monkeypatch):
    aws = json.loads(cli("kb", "gpus", "--json").stdout)
    assert aws["provider"] == "aws"
    monkeypatch.setenv("SERVEWISE_PROVIDER", "coreweave")
    cw = json.loads(cli("kb", "gpus", "--json").stdout)
    assert cw["provider"] == "coreweave"
    h100 = next(g for g in cw["gpus"] if g["name"] == "H100-SXM-80GB")
    assert {p["provider"] for p in h100["prices"]} == {"aws", "coreweave"}


def test_kb_tables_are_readable(cli):
    for what in ("models", "gpus", "use-cases"):
        r = cli("kb", what)
        assert r.exit_code == 0 and r.stdout.strip()
    r = cli("kb", "benchmarks", "--engine", "vllm", "--limit", "3", "--json")
    rows = json.loads(r.stdout)
    assert len(rows) == 3 and {x["engine"] for x in rows} == {"vllm"}


def test_config_show_env_wins_over_file(cli, isolated_env, monkeypatch):
    (isolated_env / "config.toml").write_text('provider = "coreweave"\nnamespace = "team-a"\n')
    monkeypatch.setenv("SERVEWISE_NAMESPACE", "team-b")
    out = json.loads(cli("config", "show", "--json").stdout)["settings"]
    assert out["provider"] == {"value": "coreweave", "from": str(isolated_env / "config.toml")}
    assert out["namespace"] == {"value": "team-b", "from": "$SERVEWISE_NAMESPACE"}


def test_bad_config_is_one_clear_error(cli, isolated_env):
    (isolated_env / "config.toml").write_text('provder = "aws"\n')
    r = cli("config", "show", "--json")
    assert r.exit_code == 2
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "bad_input" and "provder" in err["message"]


def test_corrupt_kb_exits_2_with_one_line(servewise_bin, isolated_env):
    (isolated_env / "kb.sqlite").write_text("garbage")
    r = servewise_bin("kb", "models")
    assert r.returncode == 2
    assert "not a SQLite file" in r.stderr and "Traceback" not in r.stderr
    assert (isolated_env / "kb.sqlite").read_text() == "garbage"


def test_import_benchmarks_rejects_bad_file_with_line(cli, isolated_env):
    f = isolated_env / "x.jsonl"
    f.write_text('{"id": "a"}\n')
    r = cli("kb", "import-benchmarks", str(f), "--json")
    assert r.exit_code == 2
    assert "x.jsonl:1" in json.loads(r.stdout)["error"]["message"]
