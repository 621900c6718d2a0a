"""``shopkeeper train als``: fit ALS on a JSONL file of events, store a versioned artifact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import events
from models.als import AlsModel, AlsParams
from models.interactions import Interactions
from models.registry import ModelRegistry
from shopkeeper.churn_backtest import read_events

__all__ = ["TrainResult", "train_als"]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a training run stored."""

    version: str
    path: Path
    metadata: dict[str, Any]

    def describe(self) -> str:
        """One paragraph for the terminal."""
        m = self.metadata
        return (
            f"Trained {self.version}: {m['users']:,} customers x {m['items']:,} items, "
            f"{m['interactions']:,} interactions from {m['window']['from']} to "
            f"{m['window']['until']} in {m['fit_seconds']:.1f} s; stored in {self.path}"
        )


def train_als(
    path: Path,
    registry: ModelRegistry,
    *,
    params: AlsParams,
    now: dt.datetime,
    until: dt.datetime | None = None,
) -> TrainResult:
    """Fit on the views, adds and purchases of ``path`` up to ``until`` (default: the last
    event) and store the model with its metadata under a new version.

    Raises:
        ValueError: The file holds no interaction.
    """
    stream, rejected = read_events(path)
    if not stream:
        raise ValueError(f"{path} holds no valid event")
    end = until or stream[-1].timestamp
    data = Interactions.from_events(stream, until=end)
    if data.matrix.nnz == 0:
        raise ValueError(f"{path} holds no view, add or purchase before {end.isoformat()}")
    started = time.perf_counter()
    model = AlsModel.fit(data, params)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256(
        json.dumps([dataclasses.asdict(params), len(data.users), data.matrix.nnz]).encode()
        + model.item_factors.tobytes()[:4096]
    ).hexdigest()[:8]
    version = f"als-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{digest}"
    directory = registry.root / version
    model.save(directory)
    metadata: dict[str, Any] = {
        "version": version,
        "created_at": now.astimezone(dt.UTC).isoformat(),
        "params": dataclasses.asdict(params),
        "window": {"from": stream[0].timestamp.isoformat(), "until": end.isoformat()},
        "users": len(data.users),
        "items": len(data.items),
        "interactions": int(data.matrix.nnz),
        "rejected_lines": rejected,
        "fit_seconds": round(seconds, 3),
        "catalog": _catalog(stream),
    }
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return TrainResult(version, directory, metadata)


def _catalog(stream: list[events.Event]) -> dict[str, dict[str, object]]:
    """The latest catalogue attributes of each product (a snapshot for serving)."""
    catalog: dict[str, dict[str, object]] = {}
    for event in stream:
        if type(event) is events.ProductUpdated:
            props = event.properties
            fields = {
                name: getattr(props, name)
                for name in (
                    "price",
                    "category",
                    "brand",
                    "lifecycle_status",
                    "successor_product_id",
                )
                if getattr(props, name, None) is not None
            }
            catalog.setdefault(props.product_id, {}).update(fields)
    return catalog
