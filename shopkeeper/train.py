"""``shopkeeper train als``: fit ALS and basket complements on history, store a versioned
artifact in the model registry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

import events
from models.als import AlsModel, AlsParams
from models.artifact import RecommenderArtifact
from models.baskets import Complements, baskets_of
from models.interactions import Interactions
from models.registry import ModelRegistry
from shopkeeper.history import History, read_jsonl

__all__ = ["TrainResult", "fit_als", "train_als"]

_CATALOG_FIELDS = (
    "name",
    "price",
    "category",
    "brand",
    "lifecycle_status",
    "successor_product_id",
    "is_consumable",
    "replenishment_days",
    "inventory_status",
    "inventory_quantity",
    "margin_rate",
)


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
    source: Path | History,
    registry: ModelRegistry,
    *,
    params: AlsParams,
    now: dt.datetime,
    until: dt.datetime | None = None,
    progress: bool = False,
) -> TrainResult:
    """Fit on the views, adds and purchases of ``source`` up to ``until`` (default: the
    last event) and store the model, the complements and the metadata under a new version.

    Args:
        source: History from ``shopkeeper.history``, or a JSONL file of events.
        registry: Where the version goes.
        params: ALS hyperparameters.
        now: The creation time, stamped on the version.
        until: The end of the training window.
        progress: Show a progress bar over the ALS iterations (on stderr).

    Raises:
        ValueError: The history holds no interaction.
    """
    history = source if isinstance(source, History) else read_jsonl(source)
    stream = history.events
    if not stream:
        raise ValueError(f"{history.source} holds no valid event")
    end = until or stream[-1].timestamp
    data = Interactions.from_events(stream, until=end)
    if data.matrix.nnz == 0:
        raise ValueError(
            f"{history.source} holds no view, add or purchase before {end.isoformat()}"
        )
    started = time.perf_counter()
    model = fit_als(data, params, progress=progress)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256(
        json.dumps([dataclasses.asdict(params), len(data.users), data.matrix.nnz]).encode()
        + model.item_factors.tobytes()[:4096]
    ).hexdigest()[:8]
    version = f"als-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{digest}"
    # The same data and parameters again within a second: a new version all the same.
    taken = 1
    while (registry.root / version).exists():
        taken += 1
        version = f"{version.rsplit('.', 1)[0]}.{taken}"
    directory = registry.root / version
    window = [e for e in stream if e.timestamp <= end]
    complements = Complements.from_baskets(baskets_of(window), items=data.items)
    metadata: dict[str, Any] = {
        "version": version,
        "created_at": now.astimezone(dt.UTC).isoformat(),
        "params": dataclasses.asdict(params),
        "window": {"from": stream[0].timestamp.isoformat(), "until": end.isoformat()},
        "users": len(data.users),
        "items": len(data.items),
        "interactions": int(data.matrix.nnz),
        "source": history.source,
        "rejected_lines": history.rejected_total,
        "rejected": history.rejected,
        "fit_seconds": round(seconds, 3),
        "complement_pairs": int(complements.scores.nnz),
        "popular": _popular(window, end),
        "catalog": _catalog(window),
    }
    # Written aside and renamed: a half-written version is never listed.
    scratch = registry.root / f".{version}.partial"
    RecommenderArtifact(version, model, complements, metadata).save(scratch)
    scratch.rename(directory)
    return TrainResult(version, directory, metadata)


def fit_als(data: Interactions, params: AlsParams, *, progress: bool = False) -> AlsModel:
    """``AlsModel.fit`` with a progress bar over the iterations (on stderr) if ``progress``."""
    with tqdm(total=params.iterations, desc="als", unit="it", disable=not progress) as bar:

        def advance(done: int) -> None:
            bar.update(done - bar.n)

        return AlsModel.fit(data, params, progress=advance)


def _popular(stream: list[events.Event], end: dt.datetime, keep: int = 200) -> list[str]:
    """The most bought products over the 30 days before ``end``, best first."""
    since = end - dt.timedelta(days=30)
    counts: Counter[str] = Counter()
    for e in stream:
        if type(e) is events.OrderCompleted and e.timestamp >= since:
            counts.update({line.product_id: line.quantity for line in e.properties.products})
    return [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]]


def _catalog(stream: list[events.Event]) -> dict[str, dict[str, object]]:
    """The latest catalogue attributes of each product (a snapshot for serving)."""
    catalog: dict[str, dict[str, object]] = {}
    for event in stream:
        if type(event) is events.ProductUpdated:
            props = event.properties
            fields = {
                name: getattr(props, name)
                for name in _CATALOG_FIELDS
                if getattr(props, name, None) is not None
            }
            catalog.setdefault(props.product_id, {}).update(fields)
    return catalog
