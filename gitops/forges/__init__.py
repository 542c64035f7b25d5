"""Git forges servewise opens pull requests on: a local bare repository, GitHub, GitLab."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from gitops.forges.base import Comment, Forge, PullRequest
from gitops.outbound import outbound_url, read_token_file, redact, same_origin
from kb.store import KnowledgeBase
from planner.errors import BadInput

__all__ = ["Comment", "DEFAULT_URLS", "Forge", "ForgeConfig", "PullRequest", "open_forge"]

DEFAULT_URLS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com"}


class ForgeConfig(BaseModel):
    kind: Literal["local", "github", "gitlab"] = "local"
    repo: str | None = None
    url: str | None = None
    token_url: str | None = Field(default=None, description="the forge URL the token is configured for (the "
                                  "forge_url setting or the forge's public URL); None: `url` itself")
    token_env: str = "SERVEWISE_FORGE_TOKEN"
    token_file: Path | None = None
    local_path: Path
    timeout_s: float = 15.0
    retries: int = 5
    backoff_s: float = 0.5

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str | None) -> str | None:
        try:
            return None if url is None else outbound_url(url, "forge URL")
        except BadInput as exc:
            raise ValueError(exc.message) from None

    def base_url(self) -> str:
        """The API base URL, after checking that the token configured for one host is not sent to another."""
        url = (self.url or DEFAULT_URLS[self.kind]).rstrip("/")
        configured = self.token_url or url
        if not same_origin(url, configured):
            raise BadInput(f"the {self.kind} token is configured for {redact(configured)}; it is not sent to "
                           f"{redact(url)}. To use that forge, set the forge_url setting (SERVEWISE_FORGE_URL) to it")
        return url

    def token(self) -> str:
        """The forge token from the environment variable or file; never logged or printed."""
        value = os.environ.get(self.token_env, "")
        if not value and self.token_file:
            value = read_token_file(self.token_file, "the forge token file")
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
