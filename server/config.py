"""Settings: defaults, then the config file under the XDG config dir, then `SERVEWISE_*` variables.

Environment variables win. Secrets (forge tokens, Prometheus credentials) are never stored
here: only the *names* of the variables or files that hold them, so `config show` can print
everything without leaking anything.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from gitops.outbound import outbound_url, redact
from planner.errors import BadInput


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


class Settings(BaseModel):
    kb: Path = Field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "servewise" / "kb.sqlite",
                     description="knowledge-base SQLite file")
    provider: str = Field(default="aws", description="price list used for monthly cost: aws | coreweave")
    forge: str = Field(default="local", description="local | github | gitlab")
    repo: str | None = Field(default=None, description="forge repository (owner/name, or a path for local)")
    forge_url: str | None = Field(default=None, description="GitHub Enterprise / self-hosted GitLab base URL")
    token_env: str = Field(default="SERVEWISE_FORGE_TOKEN", description="variable holding the forge token")
    token_file: Path | None = Field(default=None, description="file holding the forge token")
    local_forge: Path = Field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "servewise" / "forge.git",
                              description="bare git repository of the local forge")
    prometheus: str = Field(default="http://127.0.0.1:9090", description="Prometheus base URL")
    prometheus_token_env: str = Field(default="SERVEWISE_PROMETHEUS_TOKEN",
                                      description="variable holding a Prometheus bearer token, if any")
    namespace: str = Field(default="llm-serving", description="Kubernetes namespace of deployments")
    kube_context: str | None = Field(default=None, description="kubeconfig context to read")
    monitor_labels: dict[str, str] = Field(default_factory=dict,
                                           description="labels the cluster's Prometheus selects monitors and rules by "
                                                       "(kube-prometheus-stack: release=<release>); as KEY=VALUE,KEY=VALUE "
                                                       "in SERVEWISE_MONITOR_LABELS")

    @field_validator("monitor_labels", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        """KEY=VALUE,KEY=VALUE (an environment variable) as a mapping; each label is checked where it is used."""
        if isinstance(value, str):
            pairs = [p.strip() for p in value.split(",") if p.strip()]
            if any("=" not in p for p in pairs):
                raise ValueError("give KEY=VALUE pairs separated by commas, e.g. release=kube-prometheus-stack")
            return dict(p.split("=", 1) for p in pairs)
        return value

    workspace: Path | None = Field(default=None, description="directory under which the MCP render tool may write "
                                   "bundles (as <workspace>/<namespace>/<name>); unset: it writes nothing")

    @field_validator("prometheus", "forge_url")
    @classmethod
    def _http_only(cls, url: str | None, info) -> str | None:
        if url is None:
            return None
        try:
            return outbound_url(url, info.field_name)
        except BadInput as exc:
            raise ValueError(exc.message) from None

    mcp_allowed_hosts: list[str] = Field(default_factory=list, description="Host names (or host:port) the MCP HTTP "
                                         "server answers besides loopback; comma-separated in the environment")
    mcp_allowed_origins: list[str] = Field(default_factory=list, description="browser Origins (scheme://host[:port]) "
                                           "allowed to call the MCP HTTP server; comma-separated in the environment")

    @field_validator("mcp_allowed_hosts", "mcp_allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


def config_path() -> Path:
    return Path(os.environ.get("SERVEWISE_CONFIG") or _xdg("XDG_CONFIG_HOME", ".config") / "servewise" / "config.toml")


def load_settings() -> tuple[Settings, dict[str, str]]:
    """The settings in force and, for each key, where its value came from."""
    values: dict[str, object] = {}
    origin: dict[str, str] = {k: "default" for k in Settings.model_fields}
    path = config_path()
    if path.exists():
        from server.files import read_input

        try:
            data = tomllib.loads(read_input(path, "config", 1024 * 1024))
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"config file {path} is not valid TOML: {exc}") from None
        unknown = set(data) - set(Settings.model_fields)
        if unknown:
            raise BadInput(f"config file {path}: unknown keys {sorted(unknown)}; known: {sorted(Settings.model_fields)}")
        values.update(data)
        origin.update({k: str(path) for k in data})
    for key in Settings.model_fields:
        env = f"SERVEWISE_{key.upper()}"
        if os.environ.get(env):
            values[key] = os.environ[env]
            origin[key] = f"${env}"
    try:
        return Settings.model_validate(values), origin
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"setting {err['loc'][0]}: {err['msg']} (from {origin[str(err['loc'][0])]})") from None


def settings_json(settings: Settings) -> str:
    return redact(json.dumps(settings.model_dump(mode="json"), indent=2))
