"""What every front-door call needs: the settings in force, the knowledge base and its catalog.

Shared by the CLI and the MCP server so both open the same file the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from functools import cached_property

from kb.catalog import load_catalog, open_kb
from kb.store import KnowledgeBase
from planner.catalog import Catalog
from planner.contracts import Correction
from planner.errors import BadInput
from server.config import Settings, load_settings


@dataclass
class AppContext:
    settings: Settings

    @cached_property
    def kb(self) -> KnowledgeBase:
        return open_kb(self.settings.kb)

    @cached_property
    def catalog(self) -> Catalog:
        catalog = load_catalog(self.kb)
        providers = sorted({p.provider for g in catalog.gpus for p in g.prices})
        if self.settings.provider not in providers:
            # Caught here, not as an empty (infeasible) plan: a misspelt setting is bad input.
            raise BadInput(f"setting provider: no prices for {self.settings.provider!r} in the knowledge base; "
                           f"known providers: {', '.join(providers)} (set SERVEWISE_PROVIDER or the config file)")
        return catalog

    @cached_property
    def corrections(self) -> dict[tuple[str, str, int], Correction]:
        """Corrections learned from imported runs and observed outcomes, keyed by (model hf_id, GPU name, TP)."""
        from kb.corrections import corrections
        from kb.latency import load_latency_params

        return corrections(self.kb, self.catalog, load_latency_params())

    def correction(self, model: str, gpu: str, tp: int) -> Correction | None:
        return self.corrections.get((model, gpu, tp))

    def forge(self, kind: str | None = None, repo: str | None = None, url: str | None = None):
        """The configured forge (local bare repo, GitHub or GitLab); flags override settings."""
        from gitops.forges import DEFAULT_URLS, ForgeConfig, open_forge

        s = self.settings
        kind = kind or s.forge
        # For the local forge the repository is a path: --repo wins, then the repo setting when it is meant for
        # the local forge (forge setting local too), then the local_forge setting.
        path = repo or (s.repo if s.forge == "local" else None)
        local = Path(path).expanduser() if kind == "local" and path else s.local_forge
        config = ForgeConfig(kind=kind, repo=repo or s.repo, url=url or s.forge_url,
                             token_url=s.forge_url or DEFAULT_URLS.get(kind), token_env=s.token_env,
                             token_file=s.token_file, local_path=local)
        return open_forge(config, self.kb)


def app_context() -> AppContext:
    settings, _ = load_settings()
    return AppContext(settings)
