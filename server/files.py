"""Files the front doors read and write: plan and spec JSON, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ValidationError

from planner.catalog import Catalog
from planner.contracts import DeploymentSpec, Plan
from planner.errors import BadInput
from planner.plan_check import check_plan
from server.output import validation_message


def write_text_atomic(path: Path, text: str) -> None:
    if path.is_dir():
        raise BadInput(f"{path} is a directory; give a file path to write to")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create the directory of {path}: {exc.strerror}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


MAX_INPUT_BYTES = 16 * 1024 * 1024  # the largest plan is tens of KiB; more is not a servewise file


def read_input(path: Path, what: str, limit: int = MAX_INPUT_BYTES) -> str:
    """A file a person named, as text: bounded in size (`/dev/zero` ends), UTF-8, or one clear BadInput."""
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise BadInput(f"cannot read {what} file {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise BadInput(f"{what} file {path} is larger than {limit // (1024 * 1024)} MiB; not a servewise {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{what} file {path} is not UTF-8 text (a binary file?)") from None


def _load(path: Path, model: type[BaseModel], what: str) -> BaseModel:
    text = read_input(path, what)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise BadInput(f"{path} is not a servewise {what}: {validation_message(exc)}") from None


def load_plan(path: Path, catalog: Catalog) -> Plan:
    """A plan file, parsed and checked again (planner.plan_check): it may have been edited by hand."""
    return check_plan(_load(path, Plan, "plan"), catalog)


def load_spec(path: Path) -> DeploymentSpec:
    return _load(path, DeploymentSpec, "spec")
