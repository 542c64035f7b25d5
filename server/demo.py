"""`make demo`: the main job end to end on the embedded defaults, shown as the commands a person types.

Everything lives in a fresh temporary directory (knowledge base, local forge), so the demo never
touches your own settings and can be run again and again.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

console = Console()
BIN = Path(sys.executable).parent / "servewise"


def step(title: str, *args: str, env: dict[str, str]) -> None:
    console.print(Rule(f"[bold]{title}"))
    console.print(f"[dim]$[/] [bold cyan]servewise {shlex.join(args)}[/]")
    proc = subprocess.run([str(BIN), *args], env=env)
    if proc.returncode != 0:
        console.print(f"[red]demo step failed with exit code {proc.returncode}[/]")
        sys.exit(proc.returncode)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="servewise-demo-"))
    env = {**os.environ, "SERVEWISE_KB": str(work / "kb.sqlite"), "SERVEWISE_LOCAL_FORGE": str(work / "forge.git"),
           "SERVEWISE_CONFIG": str(work / "config.toml"), "COLUMNS": os.environ.get("COLUMNS", "140")}
    console.print(f"[bold]servewise demo[/] — working in {work} (knowledge base and local forge live here)")
    step("What the planner knows: models", "kb", "models", env=env)
    step("GPUs and prices", "kb", "gpus", env=env)
    step("Use-case templates", "kb", "use-cases", env=env)
    console.print(Rule())
    console.print("Next: [bold cyan].venv/bin/servewise --help[/]")


if __name__ == "__main__":
    main()
