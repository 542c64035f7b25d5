"""Outbound URLs: http(s) only, userinfo never printed, stored or posted, a token only to the host it is
configured for, token files private (as ssh insists)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from gitops.outbound import outbound_url, redact, same_origin
from planner.errors import BadInput
from tests.fakes.prometheus_api import ScriptedPrometheus

SECRET = "hunter2-secret-in-url"


@pytest.fixture(scope="module")
def plan_json(chatbot_plans) -> str:
    return chatbot_plans[0].model_dump_json()


def test_redact_and_policy_units():
    assert redact(f"see http://bob:{SECRET}@h:1/x and https://{SECRET}@g/ ok") == "see http://h:1/x and https://g/ ok"
    for bad in ("file:///etc/passwd", "gopher://h/", "ftp://h", "http://", "not a url", "http://h:99999/",
                "javascript:alert(1)", "http://h/\nx"):
        with pytest.raises(BadInput):
            outbound_url(bad, "x")
    assert outbound_url(" https://prom:9090/ ", "x") == "https://prom:9090/"
    assert same_origin("http://a:80/x", "http://A/y") and not same_origin("http://a", "https://a")
    assert not same_origin("http://a:9090", "http://a:9091")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://127.0.0.1/"])
def test_other_schemes_are_refused_everywhere(cli, isolated_env, plan_json, monkeypatch, url):
    plan = isolated_env / "plan.json"
    plan.write_text(plan_json)
    r = cli("report", "--plan", str(plan), "--prometheus", url, "--json")
    assert r.exit_code == 2 and "http(s)" in json.loads(r.stdout)["error"]["message"]
    r = cli("pr", "list", "--forge", "github", "--repo", "a/b", "--forge-url", url, "--json")
    assert r.exit_code == 2
    r = cli("render", "--plan", str(plan), "--out", str(isolated_env / "b"), "--prometheus-url", url, "--json")
    assert r.exit_code == 2 and not (isolated_env / "b").exists()
    monkeypatch.setenv("SERVEWISE_PROMETHEUS", url)
    r = cli("config", "show", "--json")
    assert r.exit_code == 2 and "prometheus" in json.loads(r.stdout)["error"]["message"]


def test_userinfo_is_never_printed_stored_or_posted(cli, isolated_env, plan_json, monkeypatch):
    plan = isolated_env / "plan.json"
    plan.write_text(plan_json)
    assert cli("propose", "--plan", str(plan), "--json").exit_code == 0
    r = cli("report", "--pr", "1", "--prometheus", f"http://bob:{SECRET}@127.0.0.1:9", "--json")
    assert r.exit_code == 4 and SECRET not in r.stdout + r.stderr
    human = cli("report", "--plan", str(plan), "--prometheus", f"http://bob:{SECRET}@127.0.0.1:9")
    assert human.exit_code == 4 and SECRET not in human.stdout + human.stderr
    db = sqlite3.connect(isolated_env / "kb.sqlite")
    assert not [t for t in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                for row in db.execute(f"SELECT * FROM [{t[0]}]") if SECRET in json.dumps(row, default=str)]
    from gitops.forges.local import LocalForge
    from kb.catalog import open_kb

    comments = LocalForge(isolated_env / "forge.git", open_kb(isolated_env / "kb.sqlite")).comments(1)
    assert comments and all(SECRET not in c.body for c in comments)
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", "ghp_x")
    r = cli("pr", "list", "--forge", "github", "--repo", "a/b", "--forge-url", f"http://bob:{SECRET}@127.0.0.1:9")
    assert r.exit_code in (2, 4) and SECRET not in r.stdout + r.stderr
    monkeypatch.setenv("SERVEWISE_FORGE_URL", f"http://bob:{SECRET}@127.0.0.1:9")
    r = cli("pr", "list", "--forge", "github", "--repo", "a/b", "--json")
    assert r.exit_code == 4 and SECRET not in r.stdout + r.stderr
    monkeypatch.setenv("SERVEWISE_PROMETHEUS", f"https://bob:{SECRET}@prom.example")
    for args in (("config", "show"), ("config", "show", "--json")):
        r = cli(*args)
        assert r.exit_code == 0 and "prom.example" in r.stdout and SECRET not in r.stdout
    r = cli("render", "--plan", str(plan), "--out", str(isolated_env / "b"), "--prometheus-url",
            f"http://bob:{SECRET}@prom:9090", "--json")
    assert r.exit_code == 2 and SECRET not in r.stdout and not (isolated_env / "b").exists()


def test_status_links_carry_no_credentials():
    from gitops.cluster import monitoring_links

    links = monitoring_links("chat", "llm-serving", "m", prometheus_url=f"https://bob:{SECRET}@prom.example:9090/")
    assert links.prometheus_links and all(v.startswith("https://prom.example:9090/graph?")
                                          for v in links.prometheus_links.values())


def test_the_prometheus_token_goes_only_to_the_configured_host(cli, isolated_env, plan_json, monkeypatch):
    configured, other = ScriptedPrometheus(), ScriptedPrometheus()
    try:
        plan = isolated_env / "plan.json"
        plan.write_text(plan_json)
        monkeypatch.setenv("SERVEWISE_PROMETHEUS_TOKEN", SECRET)
        monkeypatch.setenv("SERVEWISE_PROMETHEUS", configured.url)
        assert cli("report", "--plan", str(plan), "--json").exit_code == 0
        assert cli("report", "--plan", str(plan), "--prometheus", other.url, "--json").exit_code == 0
    finally:
        configured.close()
        other.close()
    assert configured.auth and set(configured.auth) == {f"Bearer {SECRET}"}
    assert other.auth and set(other.auth) == {None}


def test_the_forge_token_goes_only_to_the_configured_host(cli, isolated_env, monkeypatch):
    other = ScriptedPrometheus()  # records the Authorization of any GET or POST that reaches it
    try:
        monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", SECRET)
        r = cli("pr", "list", "--forge", "github", "--repo", "a/b", "--forge-url", other.url, "--json")
    finally:
        other.close()
    assert r.exit_code == 2 and "SERVEWISE_FORGE_URL" in json.loads(r.stdout)["error"]["message"]
    assert other.auth == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_token_files_open_to_group_or_others_are_refused(cli, isolated_env, monkeypatch, mode):
    token = isolated_env / "token"
    token.write_text("ghp_secret\n")
    token.chmod(mode)
    monkeypatch.delenv("SERVEWISE_FORGE_TOKEN", raising=False)
    monkeypatch.setenv("SERVEWISE_TOKEN_FILE", str(token))
    r = cli("pr", "list", "--forge", "github", "--repo", "a/b", "--json")
    message = json.loads(r.stdout)["error"]["message"]
    assert r.exit_code == 2 and f"chmod 600 {token}" in message and "ghp_secret" not in message
    r = cli("serve", "--http", "127.0.0.1:1", "--token-file", str(token))
    assert r.exit_code == 2 and "chmod 600" in r.stderr
    token.chmod(0o600)
    from gitops.forges import ForgeConfig

    assert ForgeConfig(kind="github", repo="a/b", token_file=token, local_path=isolated_env).token() == "ghp_secret"
