"""RFM segments of one shard, on event time (held by the shard's clock).

A shard's clock sees every purchase of its customers in event-time order (each on its
tick), so it keeps the shard's population of RFM values (last purchase, orders, revenue)
in a ``models.segments.RfmQuantiles`` and each customer's segment. Quintile boundaries are
refreshed once a day of event time; a customer is placed again on each purchase and when
their recency reaches the next cut point (a timer), so a silent Champion slides to At Risk
at the right event time, in a replay as live.

The population is the shard's: the customer topics are partitioned by a hash of the
customer id, so each shard is a random sample of the customers and its quintiles estimate
the whole population's; and they are the same with any number of processes.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from models.segments import (
    RfmBoundaries,
    RfmQuantiles,
    RfmScores,
    RfmValues,
    SegmentTracker,
    next_recency_drop,
)

__all__ = ["SEGMENT_REFRESH_S", "SegmentOut", "ShardSegments"]

SEGMENT_REFRESH_S: Final = 86_400.0
"""How often (event time) the shard's quintile boundaries are recomputed."""
MIN_POPULATION: Final = 20
"""Buyers a shard needs before its quintiles mean anything; until then nobody is placed,
and the first refresh past it places everyone."""


class SegmentOut(msgspec.Struct, frozen=True, gc=False):
    """A customer's RFM scores and segment as of event time ``at``; ``previous`` is the
    segment they left (``None``: none), ``moved`` whether the segment changed. An empty
    ``segment`` takes an erased customer out of ``previous``."""

    segment: str
    previous: str | None
    r: int
    f: int
    m: int
    at: float
    moved: bool


class ShardSegments:
    """The RFM population and segments of one shard."""

    __slots__ = ("boundaries", "erased", "quantiles", "sizes", "trackers", "values")

    def __init__(self) -> None:
        self.quantiles = RfmQuantiles()
        self.values: dict[str, RfmValues] = {}
        self.trackers: dict[str, SegmentTracker] = {}
        self.boundaries: RfmBoundaries | None = None
        self.sizes: dict[str, int] = {}
        self.erased: set[str] = set()

    def erase(self, customer: str, t: float) -> SegmentOut | None:
        """Take an erased customer out of the population and their segment, for good."""
        self.erased.add(customer)
        values = self.values.pop(customer, None)
        if values is not None:
            self.quantiles.remove(values)
        tracker = self.trackers.pop(customer, None)
        if tracker is None or tracker.segment is None:
            return None
        previous = str(tracker.segment)
        self.sizes[previous] -= 1
        return SegmentOut("", previous, 0, 0, 0, t, True)

    def purchase(
        self, customer: str, t: float, amount: float
    ) -> tuple[SegmentOut, float | None] | None:
        """A purchase at ``t`` (in event-time order): update the values and place the
        customer. Returns their placement and when their R score next drops (None for an
        erased customer)."""
        old = self.values.get(customer)
        if customer in self.erased or (old is not None and t <= old.last_purchase):
            return None  # erased, or a repeat of the latest purchase (a duplicate message)
        new = RfmValues(
            max(t, old.last_purchase) if old else t,
            (old.frequency if old else 0) + 1,
            (old.monetary if old else 0.0) + amount,
        )
        self.quantiles.replace(old, new)
        self.values[customer] = new
        return self._place(customer, t)

    def recheck(
        self, customer: str, t: float, since: float
    ) -> tuple[SegmentOut, float | None] | None:
        """The R-score timer of the window that began with the purchase at ``since``."""
        values = self.values.get(customer)
        if values is None or values.last_purchase != since:
            return None  # a later purchase placed the customer since
        return self._place(customer, t)

    def refresh(self, t: float) -> list[tuple[str, tuple[SegmentOut, float | None]]]:
        """Recompute the quintile boundaries as of ``t``; place the buyers never placed
        (those who bought while the population was too small)."""
        if self.quantiles.population < MIN_POPULATION:
            return []
        self.boundaries = self.quantiles.boundaries(t)
        placed: list[tuple[str, tuple[SegmentOut, float | None]]] = []
        for customer in sorted(c for c in self.values if c not in self.trackers):
            found = self._place(customer, t)
            if found is not None:
                placed.append((customer, found))
        return placed

    def _place(self, customer: str, t: float) -> tuple[SegmentOut, float | None] | None:
        boundaries = self.boundaries
        if boundaries is None:
            if self.quantiles.population < MIN_POPULATION:
                return None
            boundaries = self.boundaries = self.quantiles.boundaries(t)
        values = self.values[customer]
        # R counts the cut points the recency has strictly passed, as F and M count the
        # ones their values strictly exceed: a customer who just bought is at recency 0,
        # and must not share R with the oldest when a small population's cuts are all 0.
        recency = t - values.last_purchase
        cuts = boundaries.recency_seconds
        r = 5 - sum(1 for c in cuts if c < recency) if cuts else 3
        scores = RfmScores(
            r,
            boundaries.frequency_score(values.frequency),
            boundaries.monetary_score(values.monetary),
        )
        tracker = self.trackers.get(customer)
        if tracker is None:
            tracker = self.trackers[customer] = SegmentTracker()
        update = tracker.update(scores, t)
        segment = str(update.segment)
        previous = None
        if update.transition is not None:
            previous = update.transition.previous
            if previous is not None:
                self.sizes[previous] -= 1
            self.sizes[segment] = self.sizes.get(segment, 0) + 1
        out = SegmentOut(
            segment,
            None if previous is None else str(previous),
            scores.r,
            scores.f,
            scores.m,
            t,
            update.transition is not None,
        )
        drop = next_recency_drop(boundaries, values.last_purchase, t)
        if drop is None or math.isinf(drop):
            return out, None
        return out, drop + 1.0  # one second past the cut: strictly passed
