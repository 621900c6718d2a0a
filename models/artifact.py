"""A recommender artifact: what one trained version holds, written and read as one.

A version directory holds the ALS model (``factors.npz``, ``model.json``), the basket
complements (``complements.npz``) and ``metadata.json``: parameters, data window, sizes,
metrics, creation time, the catalogue snapshot (price, category, brand, lifecycle,
successor, consumable and replenishment days, stock) and the most bought items of the
window's last 30 days, which serving uses before Redis has anything newer.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from models.als import AlsModel
from models.baskets import Complements

__all__ = ["RecommenderArtifact"]


@dataclasses.dataclass(frozen=True)
class RecommenderArtifact:
    """One trained version: ALS, complements and metadata."""

    version: str
    als: AlsModel
    complements: Complements
    metadata: dict[str, Any]

    @property
    def catalog(self) -> dict[str, dict[str, Any]]:
        """The catalogue snapshot taken at training: product id -> attributes."""
        catalog: dict[str, dict[str, Any]] = self.metadata.get("catalog", {})
        return catalog

    @property
    def popular(self) -> list[str]:
        """The most bought products at the end of the training window, best first."""
        return list(self.metadata.get("popular", []))

    def save(self, directory: Path) -> None:
        """Write the version's files into ``directory``."""
        self.als.save(directory)
        self.complements.save(directory / "complements.npz")
        (directory / "metadata.json").write_text(json.dumps(self.metadata, indent=2))

    @classmethod
    def load(cls, directory: Path) -> RecommenderArtifact:
        """Read a version written by ``save``; the version is the directory's name."""
        metadata = json.loads((directory / "metadata.json").read_text())
        return cls(
            directory.name,
            AlsModel.load(directory),
            Complements.load(directory / "complements.npz"),
            metadata,
        )
