"""Bring your own model: read a Hugging Face config.json and add the model to the knowledge base.

The config comes from a file, a model directory, the local Hugging Face cache, or the Hub (through
huggingface_hub, when it is reachable). The architecture is derived by `planner.hf_config`; the model is
stored beside the seed models (origin 'user'), survives re-seeding, and changes the kb version so plans
record that they used it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kb.store import KnowledgeBase
from planner.catalog import ModelArch
from planner.errors import BadInput, Unreachable
from planner.hf_config import arch_from_config

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_RECORDED = {"source", "license"}  # what a user states about a model, not what its config.json says
_MAX_CONFIG_BYTES = 5_000_000  # a config.json is kilobytes; anything far larger is not one


def _load(path: Path) -> dict[str, Any]:
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        raise BadInput(f"{path} is {path.stat().st_size:,} bytes: not a config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path} is not valid JSON: {exc}") from None


def read_config(where: str) -> tuple[dict[str, Any], str, str | None]:
    """(config dict, where it came from, the HF id when known) for a file, a directory, or an HF id."""
    path = Path(where).expanduser()
    if path.is_file():
        return _load(path), f"file:{path.name}", None
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BadInput(f"{path} has no config.json")
        return _load(path / "config.json"), f"directory:{path.name}/config.json", None
    if not _HF_ID.match(where):
        raise BadInput(f"{where!r} is neither a file, a directory with a config.json, nor a Hugging Face id (org/name)")
    return read_hub_config(where)


def read_hub_config(hf_id: str) -> tuple[dict[str, Any], str, str]:
    """The config.json of a Hugging Face model id: from the local HF cache, else the Hub when it is reachable.
    Never a path: an id with path parts ('..', a leading '.') is refused before huggingface_hub sees it."""
    if not _HF_ID.match(hf_id) or ".." in hf_id or "--" in hf_id or any(p.startswith(".") for p in hf_id.split("/")):
        raise BadInput(f"{hf_id[:120]!r} is not a Hugging Face model id: org/name with letters, digits, '-', '_', '.'")
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
    except ImportError:  # pragma: no cover - a declared dependency
        raise BadInput("reading from the Hugging Face Hub needs the huggingface_hub package") from None
    cached = try_to_load_from_cache(hf_id, "config.json")
    if isinstance(cached, str):
        return _load(Path(cached)), f"huggingface cache: {hf_id}/config.json", hf_id
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        downloaded = hf_hub_download(hf_id, "config.json")
    except LocalEntryNotFoundError:  # offline, or the network failed: only the cache was consulted
        raise Unreachable(f"could not reach the Hugging Face Hub for {hf_id} and it is not in the local cache; "
                          "download its config.json and pass the file or directory instead") from None
    except GatedRepoError:
        raise BadInput(f"{hf_id} is gated on the Hugging Face Hub: accept its licence and set HF_TOKEN, or pass "
                       "a downloaded config.json") from None
    except (RepositoryNotFoundError, EntryNotFoundError):
        raise BadInput(f"the Hugging Face Hub has no config.json for {hf_id!r}") from None
    except Exception as exc:  # offline mode, no network, timeouts, rate limits: the hub client raises many kinds
        raise Unreachable(f"could not reach the Hugging Face Hub for {hf_id} ({type(exc).__name__}); download its "
                          "config.json and pass the file or directory instead") from None
    return _load(Path(downloaded)), f"huggingface hub: {hf_id}/config.json", hf_id


def _default_name(cfg: dict[str, Any], hub_id: str | None, where: str) -> str:
    if hub_id:
        return hub_id
    if named := config_name(cfg):
        return named
    path = Path(where).expanduser()
    return f"local/{(path if path.is_dir() else path.parent).resolve().name or 'model'}"


def add_model(kb: KnowledgeBase, where: str, *, name: str | None = None, license: str | None = None,
              tasks: list[str] | None = None) -> ModelArch:
    """Read a config.json (file, directory, HF cache or Hub), derive the architecture and store it."""
    cfg, source, hub_id = read_config(where)
    model = model_from_config(cfg, source=source, name=name or _default_name(cfg, hub_id, where), license=license,
                              tasks=tasks)
    save_model(kb, model)
    return model


def model_from_config(cfg: dict[str, Any], *, source: str, name: str, license: str | None = None,
                      tasks: list[str] | None = None) -> ModelArch:
    """The user model a config.json describes, named `name` (an HF-style org/name id)."""
    hf_id = name.strip()
    if not _HF_ID.match(hf_id):
        raise BadInput(f"model name {hf_id[:120]!r} must look like a Hugging Face id: org/name")
    model = arch_from_config(cfg, hf_id=hf_id, source=f"user-added from {source}", license=license or "unknown")
    update: dict[str, Any] = {"origin": "user", "aliases": [hf_id.split("/")[-1].lower()],
                              "tasks": tasks or ["chat", "summarization", "rag", "translation", "batch", "agent", "code",
                                                 "completion"]}
    return ModelArch.model_validate({**model.model_dump(), **update})


def config_name(cfg: dict[str, Any]) -> str | None:
    """The HF id a config.json names itself by (`_name_or_path`), when it is one."""
    named = cfg.get("_name_or_path")
    return named if isinstance(named, str) and _HF_ID.match(named) else None


def save_model(kb: KnowledgeBase, model: ModelArch, *, replace: bool = True) -> tuple[ModelArch, bool]:
    """Store a user model and refresh the kb version, so plans record that they used it: (the stored model,
    whether it was written).

    With replace=False only additions happen, checked under the write lock: the same architecture already stored
    under the id is left as it is, with its licence and source, and a catalog model or a different architecture
    under that id is refused."""
    from kb.catalog import refresh_version

    with kb.transaction() as db:
        row = db.execute("SELECT data FROM models WHERE hf_id = ?", [model.hf_id]).fetchone()
        if row and not replace:
            before = ModelArch.model_validate_json(row[0])
            if before.origin != "user":
                raise BadInput(f"{model.hf_id} is a catalog model; add yours under another name (e.g. "
                               f"yourorg/{model.hf_id.split('/')[-1]}-ft)")
            if before.model_dump(exclude=_RECORDED) == model.model_dump(exclude=_RECORDED):
                return before, False
            raise BadInput(f"{model.hf_id} is already in the knowledge base with a different architecture; add this "
                           "one under another name (`servewise kb add-model PATH --name ID` replaces it)")
        db["models"].upsert({"hf_id": model.hf_id, "architecture": model.architecture, "license": model.license,
                             "source": model.source, "data": model.model_dump_json()}, pk="hf_id")
        refresh_version(kb, db)
    return model, True
