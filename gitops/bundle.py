"""A rendered deployment bundle: the files of one deployment, ready to commit or write to disk."""

from __future__ import annotations

from pydantic import BaseModel, Field

from planner.contracts import Plan


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
