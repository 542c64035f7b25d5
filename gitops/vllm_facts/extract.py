"""Extract vLLM's command-line facts from its released wheel, without importing vLLM (it needs CUDA and torch).

    python gitops/vllm_facts/extract.py [--wheel vllm-0.19.0-...whl] [--version 0.19.0]

Without --wheel it runs `pip download vllm==VERSION --no-deps` into a temp dir. It reads, with Python's `ast`:
- every `add_argument` call of `vllm serve`'s parser (`entrypoints/openai/cli_args.py::make_arg_parser`,
  `engine/arg_utils.py::EngineArgs.add_cli_args`, `entrypoints/cli/serve.py`), and for arguments whose kwargs
  come from `get_kwargs(SomeConfig)["field"]` the field's annotation in `vllm/config/`, classified the way
  `arg_utils._compute_kwargs` classifies it (dataclass → json, bool → `--x/--no-x`, Literal → choices, ...);
- the frontend flags generated from `FrontendArgs` / `BaseFrontendArgs` fields;
- `QuantizationMethods` and `DEPRECATED_QUANTIZATION_METHODS` (`model_executor/layers/quantization/__init__.py`);
- the positional `model_tag` and the `--model` deprecation warning of `utils/argparse_utils.py`;
- the OpenAI server's batch defaults (`EngineArgs.get_batch_defaults`: `--max-num-seqs` and
  `--max-num-batched-tokens` for GPUs above a memory size whose name lacks a string, and for the rest);
- how many API-server processes `vllm serve` starts when `--api-server-count` is not given (`entrypoints/cli/serve.py`);
- what `--kv-cache-dtype auto` resolves to (`utils/torch_utils.py`: which checkpoint quantization configs name a KV
  dtype, and the names it maps).
Each fact keeps the wheel file and line it came from. Output: gitops/vllm_facts/vllm-VERSION.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent
ARG_UTILS = "vllm/engine/arg_utils.py"
CLI_ARGS = "vllm/entrypoints/openai/cli_args.py"
SERVE = "vllm/entrypoints/cli/serve.py"
ARGPARSE_UTILS = "vllm/utils/argparse_utils.py"
QUANT = "vllm/model_executor/layers/quantization/__init__.py"
TORCH_UTILS = "vllm/utils/torch_utils.py"


def _sources(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(n).decode() for n in z.namelist()
                if n.endswith(".py") and (n.startswith("vllm/config/") or n in (ARG_UTILS, CLI_ARGS, SERVE, ARGPARSE_UTILS, QUANT, TORCH_UTILS))}


def _literal_values(node: ast.expr) -> list | None:
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal":
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return [e.value for e in elts if isinstance(e, ast.Constant)]
    return None


class Types:
    """Literal aliases and config classes (with their fields) of the scanned files."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.literals: dict[str, list] = {}
        self.classes: dict[str, tuple[str, ast.ClassDef]] = {}
        for path, text in sources.items():
            for node in ast.parse(text).body:
                target, value = None, None
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    target, value = node.targets[0].id, node.value
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                    target, value = node.target.id, node.value
                if target and value is not None and (vals := _literal_values(value)) is not None:
                    self.literals[target] = vals
                if isinstance(node, ast.ClassDef):
                    self.classes[node.name] = (path, node)

    def field(self, cls: str, name: str) -> tuple[ast.expr, str, int] | None:
        """(annotation, file, line) of a dataclass field, searching base classes too."""
        if cls not in self.classes:
            return None
        path, node = self.classes[cls]
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name:
                return stmt.annotation, path, stmt.lineno
        for base in node.bases:
            if isinstance(base, ast.Name) and (found := self.field(base.id, name)):
                return found
        return None

    def fields(self, cls: str) -> list[tuple[str, ast.expr, str, int]]:
        path, node = self.classes[cls]
        inherited = [f for b in node.bases if isinstance(b, ast.Name) and b.id in self.classes for f in self.fields(b.id)]
        own = [(s.target.id, s.annotation, path, s.lineno) for s in node.body
               if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and not s.target.id.startswith("_")]
        return inherited + own

    def classify(self, annotation: ast.expr) -> dict:
        """Value kind of a field as `_compute_kwargs` derives it (same order of checks)."""
        names = {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}
        names |= {n.value for n in ast.walk(annotation) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                  and n.value in self.classes}
        if any(n in self.classes and n not in self.literals for n in names) and "bool" not in names:
            return {"kind": "json"}
        if "bool" in names:
            return {"kind": "bool", "negatable": True}
        literal = next((v for n in ast.walk(annotation) if (v := _literal_values(n)) is not None), None)
        if literal is None:
            literal = next((self.literals[n] for n in names if n in self.literals), None)
        if literal is not None:
            return {"kind": "choice", "choices": sorted(map(str, literal)), "open": "str" in names}
        for kind, py in (("list", "tuple"), ("list", "list"), ("list", "set"), ("int", "int"), ("float", "float"),
                         ("json", "dict")):
            if py in names:
                return {"kind": kind}
        return {"kind": "str"}


def _kwarg(call: ast.Call, key: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == key), None)


def _explicit_kind(call: ast.Call) -> dict | None:
    action, typ, choices = _kwarg(call, "action"), _kwarg(call, "type"), _kwarg(call, "choices")
    if action is not None:
        text = ast.unparse(action)
        if "BooleanOptionalAction" in text:
            return {"kind": "bool", "negatable": True}
        if "store_true" in text:
            return {"kind": "flag"}
    if choices is not None and isinstance(choices, (ast.List, ast.Tuple)):
        return {"kind": "choice", "choices": [str(e.value) for e in choices.elts if isinstance(e, ast.Constant)], "open": False}
    if typ is not None:
        text = ast.unparse(typ)
        return {"kind": {"int": "int", "float": "float", "str": "str"}.get(text, "json" if "json" in text else "str")}
    return None


def _add_argument_calls(tree: ast.AST, path: str, types: Types) -> list[dict]:
    """Every add_argument call, with the kwargs source resolved through `x = get_kwargs(Cls)` assignments."""
    out = []
    for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        kw_class: dict[str, str] = {}
        for node in ast.walk(func):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                    and node.value.func.id == "get_kwargs" and node.value.args and isinstance(node.value.args[0], ast.Name)):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        kw_class[t.id] = node.value.args[0].id
        for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
            if not (isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument"):
                continue
            names = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if not names:
                continue
            fact = {"file": path, "line": call.lineno}
            kind = None
            # `**kw["field"]`, or `**{**kw["field"], "default": None, ...}` (explicit keys override)
            spread = [k.value for k in call.keywords if k.arg is None]
            explicit = list(call.keywords)
            for value in list(spread):
                if isinstance(value, ast.Dict):
                    spread += [v for k, v in zip(value.keys, value.values) if k is None]
                    explicit += [ast.keyword(arg=k.value, value=v) for k, v in zip(value.keys, value.values)
                                 if isinstance(k, ast.Constant)]
            for value in spread:
                if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
                    cls, key = kw_class.get(value.value.id), value.slice
                    if cls and isinstance(key, ast.Constant) and (found := types.field(cls, key.value)):
                        kind = types.classify(found[0])
                        fact["field"] = f"{cls}.{key.value} ({found[1]}:{found[2]})"
            call = ast.Call(func=call.func, args=call.args, keywords=explicit, lineno=call.lineno)
            kind = _explicit_kind(call) or kind or {"kind": "str"}
            dep = _kwarg(call, "deprecated")
            if dep is not None and ast.unparse(dep) == "True":
                fact["deprecated"] = True
            out.append({"names": names, **kind, **fact})
    return out


def _function(tree: ast.AST, name: str) -> ast.FunctionDef:
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def _server_defaults(body: list[ast.stmt]) -> dict[str, int]:
    """{'max_num_seqs': .., 'max_num_batched_tokens': ..} from `default_X = {UsageContext.OPENAI_API_SERVER: N, ...}`."""
    out = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Dict):
            name = stmt.targets[0].id.removeprefix("default_")
            out.update({name: v.value for k, v in zip(stmt.value.keys, stmt.value.values)
                        if k is not None and ast.unparse(k) == "UsageContext.OPENAI_API_SERVER"})
    return out


def _batch_defaults(source: str) -> dict:
    """`if device_memory >= N * GiB_bytes and "x" not in device_name:` large defaults `else:` the rest."""
    branch = next(n for n in ast.walk(_function(ast.parse(source), "get_batch_defaults"))
                  if isinstance(n, ast.If) and "device_memory" in ast.unparse(n.test))
    memory = next(c for c in ast.walk(branch.test) if isinstance(c, ast.Compare) and ast.unparse(c.left) == "device_memory")
    size = memory.comparators[0]
    excluded = [c.left.value for c in ast.walk(branch.test) if isinstance(c, ast.Compare)
                and isinstance(c.ops[0], ast.NotIn) and isinstance(c.left, ast.Constant)]
    return {"file": ARG_UTILS, "line": branch.lineno, "usage_context": "OPENAI_API_SERVER",
            "large": {"min_memory_gib": size.left.value if isinstance(size, ast.BinOp) else None,
                      "name_excludes": excluded, **_server_defaults(branch.body)},
            "other": _server_defaults(branch.orelse)}


def _api_server_count_default(source: str) -> dict:
    """The value `args.api_server_count` takes when not given and no data-parallel load balancing is asked for: the
    last `else` of the `if`/`elif` chain under `if args.api_server_count is None:`."""
    block = next(n for n in ast.walk(ast.parse(source))
                 if isinstance(n, ast.If) and ast.unparse(n.test) == "args.api_server_count is None")
    branch = next(s for s in block.body if isinstance(s, ast.If))
    while branch.orelse and isinstance(branch.orelse[0], ast.If) and len(branch.orelse) == 1:
        branch = branch.orelse[0]
    assign = next(s for s in branch.orelse if isinstance(s, ast.Assign) and ast.unparse(s.targets[0]) == "args.api_server_count")
    return {"file": SERVE, "line": assign.lineno, "default": ast.unparse(assign.value)}


def _kv_cache_auto(source: str) -> dict:
    """The checkpoint quantization configs whose KV scheme `auto` adopts, and the names mapped to cache dtypes."""
    tree = ast.parse(source)
    algo = _function(tree, "get_kv_cache_quant_algo_string")
    prefixes = [c.args[0].value for c in ast.walk(algo) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                and c.func.attr == "startswith" and ast.unparse(c.func.value) == "quant_method"]
    mapping = next(n for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                   and n.targets[0].id == "MODELOPT_TO_VLLM_KV_CACHE_DTYPE_MAP")
    return {"file": TORCH_UTILS, "line": _function(tree, "resolve_kv_cache_dtype_string").lineno,
            "quant_method_prefixes": prefixes,
            "names": {k.value: v.value for k, v in zip(mapping.value.keys, mapping.value.values)},
            "names_line": mapping.lineno}


def extract(wheel: Path, version: str) -> dict:
    sources = _sources(wheel)
    types = Types(sources)
    flags: dict[str, dict] = {}
    positional: dict = {}

    def add(fact: dict) -> None:
        long = [n for n in fact["names"] if n.startswith("--")]
        if not long:
            if not fact["names"][0].startswith("-"):
                positional.update({"name": fact["names"][0], "file": fact["file"], "line": fact["line"]})
            return
        entry = {k: v for k, v in fact.items() if k != "names"}
        entry["aliases"] = [n for n in fact["names"] if n != long[0]]
        flags[long[0]] = entry
        if entry.get("negatable"):
            flags["--no-" + long[0][2:]] = {**entry, "kind": "negation", "of": long[0]}

    for path in (CLI_ARGS, SERVE, ARG_UTILS):
        for fact in _add_argument_calls(ast.parse(sources[path]), path, types):
            add(fact)
    # FrontendArgs.add_cli_args adds one flag per dataclass field: f"--{key.replace('_', '-')}"
    loop_line = next(n.lineno for n in ast.walk(ast.parse(sources[CLI_ARGS]))
                     if isinstance(n, ast.JoinedStr) and "--" in ast.unparse(n) and "replace" in ast.unparse(n))
    for name, annotation, path, line in types.fields("FrontendArgs"):
        add({"names": [f"--{name.replace('_', '-')}"], **types.classify(annotation), "file": path, "line": line,
             "field": f"FrontendArgs.{name} (flag built at {CLI_ARGS}:{loop_line})"})
    quant_tree = ast.parse(sources[QUANT])
    methods, deprecated = {}, {}
    for node in quant_tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "QuantizationMethods":
                methods = {"values": _literal_values(node.value), "file": QUANT, "line": node.lineno}
            if node.targets[0].id == "DEPRECATED_QUANTIZATION_METHODS":
                deprecated = {"values": [e.value for e in node.value.elts], "file": QUANT, "line": node.lineno}
    model_warning = next(i + 1 for i, line in enumerate(sources[ARGPARSE_UTILS].splitlines())
                         if "positional argument or in a config file instead of via" in line)
    return {
        "vllm_version": version, "source": f"PyPI wheel {wheel.name}, read by gitops/vllm_facts/extract.py",
        "entrypoint": "vllm serve",
        "positional_model": positional,
        "deprecated_usage": {"--model": {"file": ARGPARSE_UTILS, "line": model_warning,
                                         "reason": "with `vllm serve` the model is positional; --model is rewritten "
                                                   "with a deprecation warning"}},
        "quantization_methods": methods, "deprecated_quantization_methods": deprecated,
        "flags": dict(sorted(flags.items())),
        "batch_defaults": _batch_defaults(sources[ARG_UTILS]),
        "api_server_count": _api_server_count_default(sources[SERVE]),
        "kv_cache_auto": _kv_cache_auto(sources[TORCH_UTILS]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="0.19.0")
    ap.add_argument("--wheel", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", f"vllm=={args.version}", "--no-deps", "-d", tmp],
                           check=True)
            wheel = next(Path(tmp).glob("vllm-*.whl"))
        facts = extract(wheel, args.version)
    out = OUT_DIR / f"vllm-{args.version}.json"
    out.write_text(json.dumps(facts, indent=1) + "\n")
    print(f"{out}: {len(facts['flags'])} flags, {len(facts['quantization_methods']['values'])} quantization methods")


if __name__ == "__main__":
    main()
