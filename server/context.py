"""What every front-door call needs: the settings in force, the knowledge base and its catalog.

Shared by the CLI and the MCP server so both open the same file the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from kb.catalog import load_catalog, open_kb
from kb.store import KnowledgeBase
from planner.catalog import Catalog
from planner.contracts import Correction
from server.config import Settings, load_settings


@dataclass
class AppContext:
    settings: Settings

    @cached_property
    def kb(self) -> KnowledgeBase:
        return open_kb(self.settings.kb)

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.kb)

    @cached_property
    def corrections(self) -> dict[tuple[str, str, int], Correction]:
        """Corrections learned from observed outcomes, keyed by (model hf_id, GPU name, TP)."""
        from kb.outcomes import corrections

        return corrections(self.kb)

    def correction(self, model: str, gpu: str, tp: int) -> Correction | None:
        return self.corrections.get((model, gpu, tp))


def app_context() -> AppContext:
    settings, _ = load_settings()
    return AppContext(settings)
