"""The world: a catalogue and customers with planted structure, and its ground truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np

import events
from shopkeeper.generator._catalog import Catalog, build_catalog
from shopkeeper.generator._config import GeneratorConfig
from shopkeeper.generator._customers import Customers, build_customers
from shopkeeper.generator._draws import streams
from shopkeeper.generator._run import Item, Run
from shopkeeper.generator._schedule import history_items, live_items

__all__ = ["World"]

_TIERS = ("budget", "mid", "premium")
_HISTORY, _LIVE = 1, 2


class World:
    """A deterministic synthetic shop: build it once, then replay history or stream live.

    Example:
        >>> import datetime as dt
        >>> world = World.build(GeneratorConfig(customers=50, products=200, seed=1))
        >>> items = list(world.history(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=2))
        >>> items[0].name
        'Product Updated'
    """

    def __init__(self, config: GeneratorConfig, catalog: Catalog, customers: Customers) -> None:
        self.config = config
        self.catalog = catalog
        self.customers = customers
        self._run: Run | None = None

    @classmethod
    def build(cls, config: GeneratorConfig) -> World:
        """Build the catalogue, customers and planted structure, deterministically in ``config``."""
        if not _valid_currency(config.currency):
            raise ValueError(f"currency {config.currency!r} is not an ISO-4217 code")
        if not 0 <= config.malformed_share < 1 or not 0 <= config.churn_share <= 1:
            raise ValueError("malformed_share must be in [0, 1) and churn_share in [0, 1]")
        rngs = streams(config.seed)
        catalog = build_catalog(
            config.products, config.price_ladders, config.co_purchase_pairs, rngs["catalog"]
        )
        customers = build_customers(
            config.customers,
            catalog,
            seed=config.seed,
            churn_share=config.churn_share,
            deletions=config.deletions,
            replenisher_share=config.replenisher_share,
            purchase_gap_days=config.purchase_gap_days,
            browse_gap_days=config.browse_gap_days,
            rng=rngs["customers"],
        )
        return cls(config, catalog, customers)

    def history(self, start: dt.datetime, days: int) -> Iterator[Item]:
        """Yield ``days`` days of traffic from ``start`` in event-time order.

        First every product's ``Product Updated`` and every customer's ``Customer Updated``
        at ``start``, then one day at a time (generated, sorted, yielded: memory stays bounded).
        """
        run = Run(self, start, days, _HISTORY)
        self._run = run
        return history_items(run, days)

    def live(self, start: dt.datetime, rate: float) -> Iterator[Item]:
        """Yield an endless stream: the preamble at ``start``, then item n at start + n / rate s.

        Visits of many customers are interleaved (a pool of concurrent sessions), so each
        customer's own events stay in time order. Follow-ups (refunds, tickets) arrive
        ``live_time_scale`` times sooner than in event time.
        """
        if rate <= 0:
            raise ValueError("rate must be positive")
        run = Run(self, start, self.config.days, _LIVE)
        self._run = run
        return live_items(run, start, rate)

    def ground_truth(self) -> dict[str, Any]:
        """Return the planted structure and the counts of the latest run, JSON-serialisable."""
        run = self._run or Run(self, self.config.start, self.config.days, _HISTORY)
        catalog, customers = self.catalog, self.customers
        ids, cids = catalog.ids, customers.ids
        config = dataclasses.asdict(self.config)
        config["start"] = self.config.start.isoformat()
        return {
            "config": config,
            "period": {"start": run.start.isoformat(), "days": run.days},
            "customers": len(customers),
            "products": len(catalog),
            "co_purchase_pairs": [[ids[a], ids[b]] for a, b in catalog.pairs],
            "price_ladders": [[ids[p] for p in ladder] for ladder in catalog.ladders],
            "churners": _dates(run.churn_at, cids),
            "deletions": _dates(run.deleted_at, cids),
            "replenishment": [
                {"customer_id": cids[c], "product_id": ids[p], "cycle_days": k}
                for c, p, k in customers.replenishment
            ],
            "taste": {
                cids[c]: {
                    "categories": [catalog.leaves[k].path for k in customers.top_cats[c][0][:3]],
                    "tier": _TIERS[int(customers.tier[c])],
                    "brand_loyalty": round(float(customers.loyalty[c]), 3),
                    "mean_purchase_gap_days": round(float(customers.purchase_gap[c]), 1),
                }
                for c in range(len(customers))
            },
            "counts": run.event_counts(),
            "malformed": dict(run.malformer.counts),
        }


def _dates(at: np.ndarray, cids: list[str]) -> dict[str, str]:
    return {
        cids[c]: dt.datetime.fromtimestamp(float(at[c]), dt.UTC).isoformat()
        for c in np.flatnonzero(~np.isnan(at)).tolist()
        if math.isfinite(float(at[c]))
    }


def _valid_currency(code: str) -> bool:
    try:
        msgspec.convert({"product_id": "p", "price": 0, "currency": code}, events.Product)
    except msgspec.ValidationError:
        return False
    return True
