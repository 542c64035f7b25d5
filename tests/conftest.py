"""Shared fixtures: every test runs with its own knowledge base, config and local forge in a temp dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

SERVEWISE = Path(sys.executable).parent / "servewise"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every setting at a temp dir so no test reads or writes the user's own files."""
    monkeypatch.setenv("SERVEWISE_KB", str(tmp_path / "kb.sqlite"))
    monkeypatch.setenv("SERVEWISE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("SERVEWISE_LOCAL_FORGE", str(tmp_path / "forge.git"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for var in ("SERVEWISE_PROVIDER", "SERVEWISE_FORGE", "SERVEWISE_REPO", "SERVEWISE_PROMETHEUS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def cat(tmp_path_factory):
    """The catalog seeded from kb/data, shared read-only by the planner tests."""
    from kb.catalog import load_catalog, open_kb

    return load_catalog(open_kb(tmp_path_factory.mktemp("kb") / "kb.sqlite"))


@pytest.fixture(scope="session")
def params():
    """The shipped fitted latency parameters."""
    from kb.latency import load_latency_params

    return load_latency_params()


@pytest.fixture(scope="session")
def chatbot_plans(cat, params):
    """Two recommended chatbot plans, at 20 and 200 req/s, for the forge and propose tests."""
    from planner.recommend import recommend
    from planner.spec import build_spec

    # Not streamed, so the plans carry all three SLOs (a streamed chatbot has no E2E target) for report tests.
    return [recommend(build_spec(cat, use_case="chatbot", qps=q, streaming=False), cat, params, provider="aws")
            for q in (20, 200)]


@pytest.fixture(scope="module")
def bundle(chatbot_plans):
    """The bundle of the 20 req/s chatbot plan, rendered once per test module (tests may change its files)."""
    from gitops.render import render_bundle

    return render_bundle(chatbot_plans[0])


@pytest.fixture
def cli():
    """Run the CLI in-process (fast): cli("kb", "models", "--json") -> Result with exit_code, stdout, stderr."""
    from server.cli import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def servewise_bin():
    """Run the installed `.venv/bin/servewise` as a real process (end-to-end tests)."""

    def run(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(SERVEWISE), *args], input=input, capture_output=True, text=True, timeout=timeout)

    return run
