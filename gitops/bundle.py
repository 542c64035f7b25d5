"""A rendered deployment bundle: the files of one deployment, ready to commit or write to disk.

On disk a bundle directory carries a marker file naming the bundle and the hash of every file servewise
wrote. Only such a directory, unchanged since, is ever replaced: anything else (a project, a home
directory, a bundle someone edited or added files to) is left untouched and the write refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from planner.contracts import Plan
from planner.errors import BadInput

MARKER_FILE = ".servewise-bundle.json"


class Bundle(BaseModel):
    """Files of one deployment, keyed by path relative to the bundle root (e.g. `inferenceservice.yaml`).

    `namespace` and `name` are DNS-1123 names; in a GitOps repository the bundle lives under
    `deployments/<namespace>/<name>/`.
    """

    namespace: str
    name: str
    plan: Plan
    files: dict[str, str] = Field(description="relative path -> file content; includes plan.json")

    @property
    def repo_path(self) -> str:
        return f"deployments/{self.namespace}/{self.name}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _marker(bundle: Bundle) -> str:
    files = {rel: _sha256(content.encode()) for rel, content in bundle.files.items()}
    digest = _sha256(json.dumps(files, sort_keys=True).encode())
    return json.dumps({"servewise_bundle": f"{bundle.namespace}/{bundle.name}", "plan_id": bundle.plan.id,
                       "hash": digest, "files": files}, indent=2) + "\n"


def _why_not_ours(directory: Path) -> str | None:
    """None when `directory` holds exactly what servewise wrote there (per its marker), else the reason."""
    try:
        marker = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
        recorded: dict[str, str] = marker["files"]
        if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
            raise TypeError
    except FileNotFoundError:
        return "it was not written by servewise (no marker file)"
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {MARKER_FILE} is not servewise's"
    for root, dirs, names in os.walk(directory, followlinks=False):
        for entry in (*dirs, *names):
            path = Path(root) / entry
            rel = path.relative_to(directory).as_posix()
            if path.is_symlink():
                return f"it holds {rel}, a symbolic link servewise did not write"
            if path.is_dir():
                if not any(f.startswith(rel + "/") for f in recorded):
                    return f"it holds {rel}/, which servewise did not write"
                continue
            if rel == MARKER_FILE:
                continue
            if rel not in recorded:
                return f"it holds {rel}, which servewise did not write"
            if _sha256(path.read_bytes()) != recorded[rel]:
                return f"{rel} was changed after servewise wrote it"
    return None


def write_bundle(bundle: Bundle, out_dir: Path) -> list[Path]:
    """Write atomically: everything goes to a temp dir beside `out_dir`, then one rename. An existing
    `out_dir` is replaced only when it is empty or exactly a bundle servewise wrote; otherwise BadInput and
    nothing on disk changes. Returns the paths written, the marker file last."""
    out_dir = Path(out_dir).absolute()
    if out_dir.parent == out_dir:
        raise BadInput(f"{out_dir} cannot be a bundle directory; name a new directory, e.g. deploy/{bundle.name}")
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise BadInput(f"{out_dir} exists and is not a directory servewise wrote; nothing was written: choose a new "
                       "or empty directory")
    if out_dir.exists() and any(out_dir.iterdir()) and (why := _why_not_ours(out_dir)):
        raise BadInput(f"{out_dir} is not replaced: {why}; nothing was written. Choose a new or empty directory "
                       f"(e.g. {out_dir / bundle.name})")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:
        raise BadInput(f"cannot write under {out_dir.parent}: {exc.strerror}") from None
    old = None
    try:
        for rel, content in bundle.files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(content, encoding="utf-8")
        (tmp / MARKER_FILE).write_text(_marker(bundle), encoding="utf-8")
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            old.rmdir()
            out_dir.rename(old)
            # Checked again once moved aside, where nothing else can add to it: a file that appeared since
            # the first check puts the directory back untouched.
            if any(old.iterdir()) and (why := _why_not_ours(old)):
                old.rename(out_dir)
                old = None
                raise BadInput(f"{out_dir} is not replaced: {why}; nothing was written")
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out_dir.exists():
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old)
    return [out_dir / rel for rel in bundle.files] + [out_dir / MARKER_FILE]
