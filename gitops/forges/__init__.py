"""Git forges servewise opens pull requests on: a local bare repository, GitHub, GitLab."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from gitops.forges.base import Comment, Forge, PullRequest
from kb.store import KnowledgeBase
from planner.errors import BadInput

__all__ = ["Comment", "Forge", "ForgeConfig", "PullRequest", "open_forge"]


class ForgeConfig(BaseModel):
    kind: Literal["local", "github", "gitlab"] = "local"
    repo: str | None = None
    url: str | None = None
    token_env: str = "SERVEWISE_FORGE_TOKEN"
    token_file: Path | None = None
    local_path: Path
    timeout_s: float = 15.0
    retries: int = 5
    backoff_s: float = 0.5

    def token(self) -> str:
        """The forge token from the environment variable or file; never logged or printed."""
        value = os.environ.get(self.token_env, "")
        if not value and self.token_file:
            try:
                value = Path(self.token_file).expanduser().read_text().strip()
            except OSError as exc:
                raise BadInput(f"cannot read the forge token file {self.token_file}: {exc.strerror}") from None
        if not value:
            raise BadInput(f"no {self.kind} token: set ${self.token_env} or the token_file setting")
        return value


def open_forge(config: ForgeConfig, kb: KnowledgeBase) -> Forge:
    if config.kind == "local":
        from gitops.forges.local import LocalForge

        return LocalForge(config.local_path, kb)
    if not config.repo:
        raise BadInput(f"the {config.kind} forge needs a repository: --repo owner/name (or the repo setting)")
    if config.kind == "github":
        from gitops.forges.github import GitHubForge

        return GitHubForge(config)
    from gitops.forges.gitlab import GitLabForge

    return GitLabForge(config)
