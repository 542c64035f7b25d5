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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, model: type[BaseModel], what: str) -> BaseModel:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {what} file {path}: {exc.strerror}") from None
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise BadInput(f"{path} is not a servewise {what}: {validation_message(exc)}") from None


def load_plan(path: Path, catalog: Catalog) -> Plan:
    """A plan file, parsed and checked again (planner.plan_check): it may have been edited by hand."""
    return check_plan(_load(path, Plan, "plan"), catalog)


def load_spec(path: Path) -> DeploymentSpec:
    return _load(path, DeploymentSpec, "spec")
