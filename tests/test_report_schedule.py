"""Scheduling: the rendered bundle's CronJob and the copyable GitHub workflow run `servewise report` with
arguments this CLI accepts, aimed at the right deployment."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from gitops.render import render_bundle
from kb.catalog import load_catalog, open_kb
from kb.latency import load_latency_params
from planner.recommend import recommend
from planner.spec import build_spec

ROOT = Path(__file__).resolve().parents[1]


def test_the_cronjob_command_runs_here_and_reports_on_its_own_deployment(cli, isolated_env):
    cat = load_catalog(open_kb(isolated_env / "kb.sqlite"))
    plan = recommend(build_spec(cat, use_case="chatbot", qps=5), cat, load_latency_params(), provider="aws")
    bundle = render_bundle(plan, namespace="team-a", name="bot")
    cron = yaml.safe_load(bundle.files["cronjob-slo-report.yaml"])
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["report", "--deployment", "team-a/bot"]
    # Nothing merged yet: one clear error, not a traceback.
    early = cli(*args, "--json")
    assert early.exit_code == 2 and "no merged" in json.loads(early.stdout)["error"]["message"]
    plan_file = isolated_env / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    pr = json.loads(cli("propose", "--plan", str(plan_file), "--namespace", "team-a", "--name", "bot", "--json").stdout)
    assert cli("pr", "merge", str(pr["number"]), "--json").exit_code == 0
    r = cli(*args, "--prometheus", "http://127.0.0.1:9", "--json")
    assert r.exit_code == 4
    rep = json.loads(r.stdout)["reports"][0]
    assert rep["deployment"] == "team-a/bot" and rep["plan_id"] == plan.id and rep["verdict"] == "unreachable"


def test_the_github_workflow_is_scheduled_and_reports_on_every_deployment():
    wf = yaml.safe_load((ROOT / ".github/workflows/slo-report.yml").read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert triggers["schedule"][0]["cron"]
    steps = wf["jobs"]["report"]["steps"]
    run = next(s for s in steps if "servewise report" in s.get("run", ""))
    assert "--all" in run["run"]
    # Secrets come from the repository's secrets, never written in the file.
    assert run["env"]["SERVEWISE_PROMETHEUS_TOKEN"].startswith("${{ secrets.")
    assert wf["permissions"]["pull-requests"] == "write"
