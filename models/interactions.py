"""Implicit feedback from events: who interacted with what, how strongly, as a sparse matrix.

Purchases weigh more than adds to cart, adds more than views; every interaction decays
with its age at the end of the window (half-life setting), so last month's purchase
outweighs last year's. Pure: it takes decoded events and returns arrays.

Example:
    >>> import datetime as dt, events
    >>> at = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    >>> view = events.ProductViewed(
    ...     message_id="m-1", timestamp=at, channel="web", customer_id="c-1",
    ...     properties=events.ProductViewedProperties(product_id="P1", price=1.0, currency="EUR"))
    >>> m = Interactions.from_events([view], until=at)
    >>> m.users, m.items, float(m.matrix[0, 0])
    (['c-1'], ['P1'], 1.0)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from typing import Final

import numpy as np
import scipy.sparse as sp

import events

__all__ = ["Interactions", "Weights"]

_DAY: Final = 86_400.0


@dataclasses.dataclass(frozen=True)
class Weights:
    """How much each kind of interaction counts, and how fast it fades."""

    view: float = 1.0
    add: float = 3.0
    purchase: float = 10.0
    half_life_days: float = 90.0


@dataclasses.dataclass(frozen=True)
class Interactions:
    """A users x items matrix of decayed interaction strength, with the id maps."""

    users: list[str]
    items: list[str]
    matrix: sp.csr_matrix

    @classmethod
    def from_events(
        cls,
        stream: Iterable[events.Event],
        *,
        until: dt.datetime,
        since: dt.datetime | None = None,
        weights: Weights | None = None,
    ) -> Interactions:
        """Fold views, adds and purchases with ``since <= time < until`` (``until``
        included when equal to the last event) into decayed strengths. A customer with a
        ``Deletion Requested`` anywhere in the stream is left out entirely: a model must
        not keep what the customer asked to erase."""
        w = weights or Weights()
        end = until.timestamp()
        start = since.timestamp() if since is not None else -math.inf
        decay = math.log(2) / (w.half_life_days * _DAY)
        user_ix: dict[str, int] = {}
        item_ix: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        erased: set[str] = set()
        for event in stream:
            if type(event) is events.DeletionRequested and event.customer_key is not None:
                erased.add(event.customer_key)
                continue
            t = event.timestamp.timestamp()
            if not start <= t <= end or event.customer_key is None:
                continue
            for product, weight in _touched(event, w):
                user = user_ix.setdefault(event.customer_key, len(user_ix))
                item = item_ix.setdefault(product, len(item_ix))
                rows.append(user)
                cols.append(item)
                vals.append(weight * math.exp(-decay * (end - t)))
        matrix = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),
            shape=(len(user_ix), len(item_ix)),
        )
        matrix.sum_duplicates()
        users = list(user_ix)
        if erased & user_ix.keys():
            keep = [i for i, user in enumerate(users) if user not in erased]
            matrix = matrix[keep]
            users = [users[i] for i in keep]
        return cls(users, list(item_ix), matrix)

    def pairs(self) -> set[tuple[str, str]]:
        """Every (user, item) with an interaction."""
        coo = self.matrix.tocoo()
        return {(self.users[r], self.items[c]) for r, c in zip(coo.row, coo.col, strict=True)}


def _touched(event: events.Event, w: Weights) -> list[tuple[str, float]]:
    if type(event) is events.ProductViewed:
        return [(event.properties.product_id, w.view)]
    if type(event) is events.ProductAdded:
        return [(event.properties.product_id, w.add * event.properties.quantity)]
    if type(event) is events.OrderCompleted:
        return [(line.product_id, w.purchase) for line in event.properties.products]
    return []
