"""Churn labels on event time: one customer's open examples and when they resolve.

The label of a purchase is whether the customer buys again within the horizon ``H``:
0 when the next ``Order Completed`` comes within ``H``, 1 when event time passes the
purchase plus ``H`` first. Each score made in that window (on the purchase, and again as
the silence grows) is an example with that label, its features as they were when it was
scored, and the probability then predicted (for prequential evaluation).

Everything is decided by event times, never by arrival or wall-clock time, so a replay at
full speed labels exactly as living through it did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final, NamedTuple

__all__ = ["RESCORE_AFTER_DAYS", "ChurnTracker", "Example", "Resolved"]

_DAY: Final = 86_400.0
RESCORE_AFTER_DAYS: Final = (7, 14, 30, 45)
"""Days of silence after a purchase at which a customer is scored again."""


class Example(NamedTuple):
    """A scored moment waiting for its label."""

    at: float  # event time of the score (epoch seconds)
    features: Mapping[str, float]
    predicted: float  # the churn probability given then
    model_version: str


class Resolved(NamedTuple):
    """An example with its label, ready to evaluate and learn."""

    example: Example
    churned: bool
    resolved_at: float  # event time that decided the label


class ChurnTracker:
    """One customer's churn window: the latest purchase and the examples scored since.

    Args:
        horizon_days: ``H``: no purchase within this many days of a purchase is churn.

    Example:
        >>> tracker = ChurnTracker(horizon_days=60)
        >>> day = 86_400.0
        >>> tracker.purchase(0.0)
        []
        >>> tracker.add(Example(0.0, {"recency_days": 0.0}, 0.3, "v1"))
        >>> tracker.due()  # rescoring times, then the label deadline
        [604800.0, 1209600.0, 2592000.0, 3888000.0, 5184000.0]
        >>> [r.churned for r in tracker.purchase(10 * day)]
        [False]
        >>> tracker.add(Example(10 * day, {"recency_days": 0.0}, 0.2, "v1"))
        >>> [(r.churned, r.resolved_at / day) for r in tracker.expire(70 * day)]
        [(True, 70.0)]
    """

    __slots__ = ("_horizon", "_last_purchase", "_pending")

    def __init__(self, *, horizon_days: float = 60) -> None:
        self._horizon = horizon_days * _DAY
        self._last_purchase = -math.inf
        self._pending: list[Example] = []

    @property
    def last_purchase(self) -> float | None:
        """Event time of the latest purchase, if any."""
        return None if self._last_purchase == -math.inf else self._last_purchase

    @property
    def deadline(self) -> float | None:
        """When the open window's examples resolve as churned if nothing else happens."""
        last = self.last_purchase
        return None if last is None else last + self._horizon

    @property
    def pending(self) -> int:
        """Examples waiting for their label."""
        return len(self._pending)

    def purchase(self, t: float) -> list[Resolved]:
        """A purchase at ``t``: it labels the open window's examples and opens a new window.

        A purchase older than the latest one (late) changes no window.
        """
        if t <= self._last_purchase:
            return []
        resolved: list[Resolved] = []
        if self._pending:
            churned = t - self._last_purchase > self._horizon
            at = self._last_purchase + self._horizon if churned else t
            resolved = [Resolved(e, churned, at) for e in self._pending]
            self._pending = []
        self._last_purchase = t
        return resolved

    def add(self, example: Example) -> None:
        """Keep a scored moment of the open window (ignored when no purchase opened one,
        or when it is after the deadline, where its label is already decided)."""
        deadline = self.deadline
        if deadline is not None and example.at < deadline:
            self._pending.append(example)

    def expire(self, watermark: float) -> list[Resolved]:
        """Resolve the open window as churned if event time has passed its deadline."""
        deadline = self.deadline
        if deadline is None or watermark < deadline or not self._pending:
            return []
        resolved = [Resolved(e, True, deadline) for e in self._pending]
        self._pending = []
        return resolved

    def due(self) -> list[float]:
        """The event times at which this customer needs attention, in order: rescoring
        after days of silence, then the label deadline."""
        last = self.last_purchase
        if last is None:
            return []
        return [last + d * _DAY for d in RESCORE_AFTER_DAYS] + [last + self._horizon]

    def __getstate__(self) -> tuple[float, float, list[Example]]:
        return (self._horizon, self._last_purchase, self._pending)

    def __setstate__(self, state: tuple[float, float, list[Example]]) -> None:
        self._horizon, self._last_purchase, self._pending = state
