"""The report CronJob as the cluster would run it: its exact command and environment (from the merged
repository), against a REAL Prometheus (Debian's) scraping a vLLM-format exporter and the local forge,
posting the sticky comment on the deployment's latest merged pull request with a machine-readable outcomes
block that any knowledge base imports with `servewise kb sync-outcomes`. Plus the image it runs: the
Dockerfile's entrypoint is the installed `servewise`, as a non-root user, what the Dockerfile installs is
complete, and the release workflow pushes it."""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gitops.outcome_sync import outcomes_block, parse_block
from gitops.render import render_bundle, served_model_name
from tests.fakes.prometheus_server import PrometheusServer
from tests.fakes.vllm_exporter import VllmExporter

ROOT = Path(__file__).resolve().parents[1]
SERVEWISE = Path(sys.executable).parent / "servewise"


@pytest.fixture
def stack(chatbot_plans, tmp_path):
    # the deployment the test proposes serves as llm-serving/bot, the model_name its vLLM series carry
    exporter = VllmExporter(served_model_name("llm-serving", "bot"))
    (tmp_path / "prom").mkdir()
    prom = PrometheusServer(tmp_path / "prom", [f"127.0.0.1:{exporter.port}"])
    try:
        prom.wait_for_samples("vllm:num_requests_running", minimum=12)
        yield prom
    finally:
        prom.close()
        exporter.close()


def _container(cron: dict) -> dict:
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec["containers"][0]


def _job_env(container: dict, **overrides: str) -> dict[str, str]:
    """The container's literal environment (secret references resolve to nothing here), with overrides for what
    differs between a cluster and this machine."""
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return {"PATH": os.environ["PATH"], **env, **overrides}


def test_the_cronjob_command_posts_on_the_latest_merged_pr(stack, chatbot_plans, cli, isolated_env, tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(chatbot_plans[0].model_dump_json())
    opened = json.loads(cli("propose", "--plan", str(plan_file), "--name", "bot", "--json").stdout)
    assert cli("pr", "merge", str(opened["number"]), "--json").exit_code == 0
    # a later, still open pull request for the same deployment is not what runs
    later = tmp_path / "later.json"
    later.write_text(chatbot_plans[1].model_copy(update={"spec": chatbot_plans[0].spec}).model_dump_json())
    newer = json.loads(cli("propose", "--plan", str(later), "--name", "bot", "--json").stdout)
    assert newer["created"] and newer["number"] != opened["number"]
    tree = tmp_path / "tree"
    subprocess.run(["git", "clone", "-q", str(isolated_env / "forge.git"), str(tree)], check=True)
    cron = yaml.safe_load((tree / "deployments/llm-serving/bot/cronjob-slo-report.yaml").read_text())
    container = _container(cron)
    assert container["args"] == ["report", "--deployment", "llm-serving/bot"]
    env = _job_env(container, SERVEWISE_PROMETHEUS=stack.url, SERVEWISE_KB=str(isolated_env / "kb.sqlite"),
                   SERVEWISE_FORGE="local", SERVEWISE_LOCAL_FORGE=str(isolated_env / "forge.git"),
                   HOME=str(tmp_path), SERVEWISE_CONFIG=str(tmp_path / "none.toml"))
    token_refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert token_refs["SERVEWISE_FORGE_TOKEN"]["key"] == "token"
    first = subprocess.run([str(SERVEWISE), *container["args"], "--json"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)["reports"][0]
    assert report["deployment"] == "llm-serving/bot" and report["plan_id"] == chatbot_plans[0].id
    assert report["verdict"] in ("meets", "at risk", "violated") and report["outcomes"]
    time.sleep(1.1)
    second = subprocess.run([str(SERVEWISE), *container["args"], "--json"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stderr
    from gitops.forges.local import LocalForge
    from kb.catalog import open_kb

    forge = LocalForge(isolated_env / "forge.git", open_kb(isolated_env / "kb.sqlite"))
    comments = forge.comments(opened["number"])
    assert len(comments) == 1 and "SLO report for `llm-serving/bot`" in comments[0].body
    assert forge.comments(newer["number"]) == []
    carried, bad = parse_block(comments[0].body)
    assert bad == 0 and len(carried) == 2 * len(report["outcomes"])  # both runs kept in the sticky comment
    # Outcomes outlive the job's throwaway knowledge base. The local forge keeps its pull requests in this one, so
    # the job wrote here too: forget its outcomes (as a cluster's job container would) and import them back.
    kb = open_kb(isolated_env / "kb.sqlite")
    with kb.transaction() as db:
        db.execute("DELETE FROM outcomes")
    synced = cli("kb", "sync-outcomes", "--json")
    assert synced.exit_code == 0, synced.stdout
    result = json.loads(synced.stdout)
    assert result["found"] == len(carried) and result["imported"] == len(carried) and result["skipped"] == 0
    assert len(json.loads(cli("kb", "outcomes", "--json").stdout)["outcomes"]) == len(carried)
    assert json.loads(cli("kb", "sync-outcomes", "--json").stdout)["imported"] == 0  # once only


def test_the_outcomes_block_survives_hostile_text_and_stays_bounded(chatbot_plans):
    from planner.feedback import Outcome

    hostile = Outcome(deployment="a/b", plan_id="--> <script> -->", model="m", gpu="g", tp=1, metric="ttft_p90_ms",
                      predicted=1.0, observed=2.0, window_s=3600, created_at="2026-11-30T15:00:00+00:00")
    block = outcomes_block([hostile])
    assert block.count("-->") == 1 and "<script>" not in block
    assert parse_block(block) == ([hostile], 0)
    many = [hostile.model_copy(update={"created_at": f"2026-11-{d:02d}T{h:02d}:00:00+00:00", "plan_id": "p"})
            for d in range(1, 29) for h in range(24) for _ in range(1)] * 3
    big = outcomes_block(many)
    assert len(big) < 41_000 and parse_block(big)[0][-1] == many[-1]  # oldest dropped first
    assert parse_block("<!-- servewise:outcomes {\"v\":1,\"runs\":[{\"rows\":[[1]]}]} -->") == ([], 1)


def test_the_cronjob_runs_unprivileged_with_resources_and_no_cluster_access(chatbot_plans):
    bundle = render_bundle(chatbot_plans[0], name="bot", forge="github", forge_repo="acme/deployments")
    cron = yaml.safe_load(bundle.files["cronjob-slo-report.yaml"])
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert pod["automountServiceAccountToken"] is False
    sa = yaml.safe_load(bundle.files["serviceaccount-slo-report.yaml"])
    assert sa["kind"] == "ServiceAccount" and pod["serviceAccountName"] == sa["metadata"]["name"]
    assert not any(k for k in bundle.files if "role" in k)  # bound to nothing
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["SERVEWISE_FORGE"] == "github" and env["SERVEWISE_REPO"] == "acme/deployments"
    # what a read-only root filesystem leaves writable: the knowledge base and HOME on the emptyDir
    mount = c["volumeMounts"][0]["mountPath"]
    assert env["SERVEWISE_KB"].startswith(mount) and env["HOME"] == mount
    # the image is the one the release workflow publishes, unless another is given
    assert c["image"] == f"ghcr.io/servewise/servewise:{__import__('planner').__version__}"


def test_the_image_runs_the_installed_servewise_as_a_non_root_user():
    docker = (ROOT / "Dockerfile").read_text()
    entry = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", docker, re.M)
    assert entry and json.loads(entry.group(1)) == ["servewise"]
    scripts = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["servewise"] == "server.cli:main"  # the console script the entrypoint runs
    user = re.findall(r"^USER\s+(\S+)", docker, re.M)
    cron = yaml.safe_load(render_bundle.__globals__["_yaml_env"].get_template("cronjob-slo-report.yaml.j2").render(
        {k: "x" for k in ("name", "namespace", "report_account", "servewise_image")} | {
            "labels": {}, "report_args": [], "report_env": []}))
    assert user and user[-1].split(":")[0] == str(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                                                  ["securityContext"]["runAsUser"])
    assert re.search(r"pip install[^\n]*\.", docker)  # installs this repository, not a registry copy


def test_the_release_workflow_builds_and_pushes_the_image_on_tags():
    wf = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    triggers = wf.get("on", wf.get(True))
    assert triggers["push"]["tags"] and "branches" not in triggers["push"]
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    push = next(s for s in steps if "docker/build-push-action" in s.get("uses", ""))
    assert push["with"]["push"] is True and "ghcr.io" in push["with"]["tags"]
    assert wf["jobs"][next(iter(wf["jobs"]))]["permissions"]["packages"] == "write"


def test_what_the_image_installs_renders_a_bundle_without_the_source_tree(tmp_path, chatbot_plans, isolated_env):
    """The files the Dockerfile copies, built as `pip install .` builds them (setuptools' build_py: only the packages
    and package data pyproject.toml names), then servewise run from that build alone (`python -S`: no editable
    install of this checkout on the path) renders and validates a bundle: no module or data file is missing."""
    src, lib = tmp_path / "src", tmp_path / "lib"
    src.mkdir()
    for line in re.findall(r"^COPY\s+(.+)$", (ROOT / "Dockerfile").read_text(), re.M):
        for name in line.split()[:-1]:
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    built = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                            "--build-lib", str(lib)], cwd=src, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    modules = {f.relative_to(src).as_posix() for f in src.rglob("*.py") if (f.parent / "__init__.py").exists()
               and f.parts[len(src.parts)] in {"planner", "gitops", "kb", "server"}}
    assert modules - {f.relative_to(lib).as_posix() for f in lib.rglob("*.py")} == set()  # every package ships
    plan = tmp_path / "plan.json"
    plan.write_text(chatbot_plans[0].model_dump_json())
    run = ("import sys, gitops; assert gitops.__file__.startswith(sys.argv[1]), gitops.__file__; "
           "from server.cli import main; sys.argv = ['servewise', *sys.argv[2:]]; sys.exit(main())")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib), *site.getsitepackages()])}
    r = subprocess.run([sys.executable, "-S", "-c", run, str(lib), "render", "--plan", str(plan), "--out",
                        str(tmp_path / "out"), "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (tmp_path / "out" / "kustomization.yaml").exists() and (tmp_path / "out" / "cronjob-slo-report.yaml").exists()


def _container_builder() -> str | None:
    """docker or podman, when it can build here (a docker client without a daemon cannot)."""
    for tool in ("docker", "podman"):
        if shutil.which(tool) and subprocess.run([tool, "info"], capture_output=True, timeout=60).returncode == 0:
            return tool
    return None


def test_the_image_builds_and_runs_servewise_as_user_10001(tmp_path):
    """Where a container builder runs (GitHub's ubuntu runners have docker), the Dockerfile is built for real."""
    tool = _container_builder()
    if tool is None:
        pytest.skip("no container builder answers `info` here (docker client without a daemon, or none)")
    tag = f"servewise-test:{os.getpid()}"
    built = subprocess.run([tool, "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        helped = subprocess.run([tool, "run", "--rm", tag, "--help"], capture_output=True, text=True, timeout=300)
        assert helped.returncode == 0 and "report" in helped.stdout, helped.stderr[-2000:]
        uid = subprocess.run([tool, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True,
                             timeout=300)
        assert uid.stdout.strip() == "10001"
        # the seed knowledge base is built in the user's HOME from the package data the image carries
        gpus = subprocess.run([tool, "run", "--rm", tag, "kb", "gpus", "--json"], capture_output=True, text=True,
                              timeout=300)
        assert gpus.returncode == 0 and json.loads(gpus.stdout), gpus.stderr[-2000:]
    finally:
        subprocess.run([tool, "rmi", "-f", tag], capture_output=True, timeout=300)
