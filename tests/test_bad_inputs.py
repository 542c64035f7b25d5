"""The bad-input contract over every command, from the corpus in tests/data/bad_inputs.json.

Each case runs in-process through the real CLI entry point (typer's CliRunner → the top-level
handler) and must end with the contract's exit code (2 bad input, 3 does not fit, 4 outside world),
no traceback anywhere, and one error: a single `error:` line on stderr, or with `--json` a single
`{"error": {"code", "message"}}` object on stdout. Cases alternate between the two modes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

DATA = Path(__file__).parent / "data" / "bad_inputs.json"
COMMAND_WORDS = {"spec", "recommend", "whatif", "predict", "render", "propose", "pr", "show", "merge", "close", "list",
                 "rollback", "teardown", "report", "kb", "models", "gpus", "use-cases", "benchmarks",
                 "import-benchmarks", "outcomes", "cluster", "rbac", "status", "config"}
NO_JSON_OPTION = {"serve"}  # the MCP server speaks MCP, not the CLI's JSON


def _cases() -> list[tuple[str, dict]]:
    groups = json.loads(DATA.read_text())["groups"]
    cases = []
    for g in groups:
        for i, value in enumerate(g["values"]):
            case = {"exit": g["exit"], "stdin": None, "env": {}, "index": len(cases)}
            if isinstance(value, dict):
                case["exit"] = value.get("exit", case["exit"])
                case["env"] = value.get("env", {})
                if "stdin" in value:
                    case["stdin"] = value["stdin"].encode("utf-8", "surrogatepass")
                elif "stdin_hex" in value:
                    case["stdin"] = bytes.fromhex(value["stdin_hex"])
                elif "stdin_repeat" in value:
                    unit, n = value["stdin_repeat"]
                    case["stdin"] = (unit * n).encode()
                args = list(g["base"])
            elif isinstance(value, list):
                args = list(g["base"]) + value
            else:
                args = list(g["base"]) + ([g["option"]] if "option" in g else []) + [value]
            case["args"] = args
            cases.append((f"{g['name']}[{i}]", case))
    return cases


CASES = _cases()


def test_the_corpus_is_large_and_covers_every_command():
    assert len(CASES) >= 700
    from server.cli import app
    from typer.main import get_command

    root = get_command(app)
    commands = set(root.commands)
    used = {c["args"][0] for _, c in CASES if c["args"]}
    assert commands <= used, f"commands without bad inputs: {commands - used}"


@pytest.fixture(scope="module")
def world(tmp_path_factory, chatbot_plans) -> dict[str, str]:
    """The files the corpus names in braces, and one seeded knowledge base shared by every case."""
    from kb.catalog import open_kb

    d = tmp_path_factory.mktemp("bad-inputs")
    open_kb(d / "kb.sqlite").close()
    files = {
        "plan": chatbot_plans[0].model_dump_json(), "spec": chatbot_plans[0].spec.model_dump_json(), "empty": "",
        "notjson": "hello, I am not JSON\n", "array": "[]", "deep": "[" * 100_000,
        "bad_row": '{"id": "x", "engine": "vllm"}\n', "bad_csv": "id,engine\n1,2,3,4\n\x00\n",
        "bad_toml": "provider = [unclosed\n", "unknown_key_toml": 'provder = "aws"\n',
        "corrupt_sqlite": "SQLite format 3\x00" + "garbage" * 200,
    }
    paths = {}
    for name, text in files.items():
        (d / name).write_text(text)
        paths[name] = str(d / name)
    (d / "binary").write_bytes(bytes(range(256)) * 40)
    (d / "nul").write_bytes(b"\x00" * 4096)
    (d / "huge").write_bytes(b"a" * (16 * 1024 * 1024 + 10))
    (d / "huge_line").write_bytes(b'{"model": "' + b"x" * 70_000 + b'"}\n')
    (d / "dir").mkdir()
    (d / "nonbare_dir").mkdir()
    (d / "nonbare_dir" / "notes.txt").write_text("mine\n")
    (d / "cwd").mkdir()
    (d / "cwd" / "notes.txt").write_text("a person's own file: no case may remove it\n")
    paths.update({k: str(d / k) for k in ("binary", "nul", "huge", "huge_line", "dir", "nonbare_dir", "cwd")})
    paths.update({"missing": str(d / "no-such-file.json"), "file_as_dir": paths["notjson"], "newdir": str(d / "out-new"),
                  "kb": str(d / "kb.sqlite"), "forge": str(d / "forge.git")})
    return paths


def _fill(text: str, world: dict[str, str]) -> str:
    for k, v in world.items():
        text = text.replace("{" + k + "}", v)
    return text


def _with_json(args: list[str]) -> list[str]:
    """`--json` right after the command words, so it never becomes some option's value."""
    n = 0
    while n < len(args) and args[n] in COMMAND_WORDS:
        n += 1
    return args[:n] + ["--json"] + args[n:]


@pytest.fixture(scope="module")
def command():
    """The click command built once: typer rebuilds it on every CliRunner.invoke (130 ms, most of a case)."""
    from typer.main import get_command

    from server.cli import app

    return get_command(app)


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_bad_input(name, case, world, command, monkeypatch):
    import typer.testing

    from server.cli import app

    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: command)

    monkeypatch.setenv("SERVEWISE_KB", world["kb"])
    monkeypatch.setenv("SERVEWISE_LOCAL_FORGE", world["forge"])
    monkeypatch.setenv("SERVEWISE_FORGE_TOKEN", "not-a-real-token")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.chdir(world["cwd"])
    import server.mcp_server

    def must_not_serve(*a, **k):
        raise AssertionError(f"a bad input started the MCP server: {case['args']}")

    monkeypatch.setattr(server.mcp_server, "run_http", must_not_serve)
    monkeypatch.setattr(server.mcp_server, "run_stdio", must_not_serve)
    for k, v in case["env"].items():
        monkeypatch.setenv(k, _fill(v, world))
    args = [_fill(a, world) for a in case["args"]]
    as_json = case["index"] % 2 == 0 and args[:1] != [] and args[0] not in NO_JSON_OPTION and case["exit"] != "batch"
    if as_json:
        args = _with_json(args)
    # Also when a case types --json as some option's value; a batch answers in JSON Lines anyway.
    as_json = "--json" in args or "--batch" in args
    result = CliRunner().invoke(app, args, input=case["stdin"], catch_exceptions=True)

    out, err = result.stdout, result.stderr
    assert "Traceback" not in out + err, f"{args}: traceback\n{err[-2000:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{args}: {type(result.exception).__name__}: {result.exception}"
    if case["exit"] == "batch":
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert result.exit_code in (0, 2), (args, result.exit_code, err)
        assert lines and all("error" in line for line in lines), (args, out[:500])
        return
    assert result.exit_code == case["exit"], f"{args}: exit {result.exit_code}, expected {case['exit']}\n{out[-500:]}\n{err[-500:]}"
    if "Usage:" in out + err:
        return  # a command group without its subcommand prints its help (exit 2)
    if as_json:
        payload = json.loads(out)
        assert set(payload) == {"error"} and payload["error"]["code"] and payload["error"]["message"], out
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), f"{args}: stderr {err!r}"


def test_a_locked_knowledge_base_is_busy_not_corrupt(tmp_path, monkeypatch, cli):
    """Finding 12: another process holding the write lock is exit 4 'locked', never 'corrupt SQLite file'."""
    import kb.store
    from kb.catalog import open_kb

    path = tmp_path / "kb.sqlite"
    open_kb(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(kb.store, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(kb.store, "BUSY_RETRIES", 1)
    try:
        r = cli("kb", "gpus", "--json")
    finally:
        holder.close()
    assert r.exit_code == 4
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "busy" and "locked" in err["message"] and "corrupt" not in err["message"]
    assert cli("kb", "gpus", "--json").exit_code == 0


def test_debug_shows_the_traceback_of_an_unexpected_error(cli, monkeypatch):
    import server.actions

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(server.actions, "predict_query", broken)
    monkeypatch.setattr("server.commands.predict.predict_query", broken)
    args = ["predict", "--model", "llama-3.1-8b", "--gpu", "h100", "--isl", "10", "--osl", "10", "--qps", "1"]
    plain = cli(*args)
    assert plain.exit_code == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().startswith("error: internal error (RuntimeError: boom)")
    debug = cli(*args, "--debug")
    assert debug.exit_code == 1 and "Traceback" in debug.stderr and "boom" in debug.stderr
