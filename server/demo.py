"""`make demo`: the main job end to end on the embedded defaults, shown as the commands a person types.

Everything lives in a fresh temporary directory (knowledge base, local forge, plan and bundle), so
the demo never touches your own settings and can be run again and again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

console = Console()
BIN = Path(sys.executable).parent / "servewise"
WORDS = ("customer support chatbot, 2,000 users sending 30 requests a day each, p90 first token under 300 ms, "
         "budget $8k a month, prefer open models")


def step(title: str, *args: str, env: dict[str, str], stdout_to: Path | None = None) -> None:
    console.print(Rule(f"[bold]{title}"))
    shown = shlex.join(args) + (f" > {stdout_to.name}" if stdout_to else "")
    console.print(f"[dim]$[/] [bold cyan]servewise {shown}[/]", soft_wrap=True)  # unbroken, to copy
    out = stdout_to.open("w") if stdout_to else None
    try:
        proc = subprocess.run([str(BIN), *args], env=env, stdout=out)
    finally:
        if out:
            out.close()
    if proc.returncode != 0:
        console.print(f"[red]demo step failed with exit code {proc.returncode}[/]")
        sys.exit(proc.returncode)


def check_merged(work: Path) -> None:
    """Read the merged deployment back from main in the local forge and validate every document."""
    from gitops.bundle import Bundle
    from gitops.forges.local import LocalForge
    from gitops.validate import documents, validate_bundle
    from kb.catalog import open_kb
    from planner.contracts import Plan

    forge = LocalForge(work / "forge.git", open_kb(work / "kb.sqlite"))
    prefix = "deployments/llm-serving/support-chatbot"
    files = {p.removeprefix(prefix + "/"): forge.read_file(p) or "" for p in forge.list_files(prefix)}
    bundle = Bundle(namespace="llm-serving", name="support-chatbot", plan=Plan.model_validate_json(files["plan.json"]),
                    files=files)
    issues = validate_bundle(bundle)
    console.print(Rule("[bold]What Argo CD will sync"))
    console.print(f"main of the local forge ({work / 'forge.git'}) holds {len(files)} files under {prefix}/; "
                  f"{len(documents(bundle))} Kubernetes documents, "
                  + ("[green]all valid against the CRD schemas and Kubernetes 1.31[/]" if not issues else
                     f"[red]{len(issues)} invalid: {issues[0]}[/]"))
    if issues:
        sys.exit(1)


def main() -> None:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="servewise-demo-"))
    env = {**os.environ, "SERVEWISE_KB": str(work / "kb.sqlite"), "SERVEWISE_LOCAL_FORGE": str(work / "forge.git"),
           "SERVEWISE_CONFIG": str(work / "config.toml"), "COLUMNS": os.environ.get("COLUMNS", "120")}
    os.chdir(work)
    console.print(f"[bold]servewise demo[/] — working in {work} (knowledge base, local git forge, plan and bundle)")
    step("1. From words to a deployment spec", "spec", WORDS, env=env)
    step("   (the same spec as JSON, for the next step)", "spec", WORDS, "--json", env=env, stdout_to=work / "spec.json")
    step("2. Recommend: model x GPU x TP x replicas, predicted latency and cost", "recommend", "--spec", "spec.json",
         "--top", "4", "--out", "plan.json", env=env)
    step("3. What if traffic doubles?", "whatif", "--plan", "plan.json", "--set", "traffic=x2", env=env)
    step("4. Render KServe + vLLM manifests, validated", "render", "--plan", "plan.json", "--out", "bundle",
         "--name", "support-chatbot", env=env)
    step("5. Open a GitOps pull request in the local forge", "propose", "--plan", "plan.json", "--name", "support-chatbot",
         env=env)
    step("6. The pull request a reviewer sees", "pr", "show", "1", env=env)
    step("7. Merge it (Argo CD syncs main)", "pr", "merge", "1", env=env)
    check_merged(work)
    console.print(Rule())
    console.print(f"done in {time.monotonic() - started:.0f} s. Try next:\n"
                  f"  export SERVEWISE_KB={work / 'kb.sqlite'} SERVEWISE_LOCAL_FORGE={work / 'forge.git'}\n"
                  "  .venv/bin/servewise predict --model llama-3.1-8b --gpu l40s --isl 1024 --osl 256 --qps 2\n"
                  f"  .venv/bin/servewise whatif --plan {work / 'plan.json'} --set gpu=L40S\n"
                  "  .venv/bin/servewise serve      # the MCP server, for Claude or any MCP client",
                  soft_wrap=True)  # a command broken over two lines would not paste


if __name__ == "__main__":
    main()
