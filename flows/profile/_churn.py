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

__all__ = ["RESCORE_AFTER_DAYS", "ChurnTracker", "Example", "Resolved", "churn_due_offsets"]

_DAY: Final = 86_400.0
RESCORE_AFTER_DAYS: Final = (7, 14, 30, 45)
"""Days of silence after a purchase at which a customer is scored again."""


def churn_due_offsets(horizon_days: float) -> list[float]:
    """Seconds after a purchase at which its window needs attention: the purchase itself
    (its window opens), each rescoring, the label deadline."""
    return [0.0, *(d * _DAY for d in RESCORE_AFTER_DAYS), horizon_days * _DAY]


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

    __slots__ = (
        "_closed", "_horizon", "_last_purchase", "_last_tick", "_pending", "churned", "resolved",
    )  # fmt: skip

    def __init__(self, *, horizon_days: float = 60) -> None:
        self._horizon = horizon_days * _DAY
        self._last_purchase = -math.inf
        self._pending: list[Example] = []
        # The last closed window: (its purchase, churned, when it resolved).
        self._closed: tuple[float, bool, float] | None = None
        self.resolved = 0  # windows labelled
        self.churned = 0  # of which churned
        self._last_tick = (-math.inf, -math.inf)  # (at, window) of the latest tick taken

    def take_tick(self, at: float, window: float) -> bool:
        """Whether a tick is new: ticks come in time order, so one not after the latest
        taken is a repeat (or too late to change anything)."""
        if (at, window) <= self._last_tick:
            return False
        self._last_tick = (at, window)
        return True

    @property
    def horizon_days(self) -> float:
        """Days of silence after a purchase that label its window as churned."""
        return self._horizon / _DAY

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
        if self._last_purchase != -math.inf and not self.is_closed:
            churned = t - self._last_purchase > self._horizon
            at = self._last_purchase + self._horizon if churned else t
            resolved = self._close(churned, at)
        self._last_purchase = t
        return resolved

    def _close(self, churned: bool, at: float) -> list[Resolved]:
        resolved = [Resolved(e, churned, at) for e in self._pending]
        self._pending = []
        self._closed = (self._last_purchase, churned, at)
        self.resolved += 1
        self.churned += churned
        return resolved

    def rescore(self, window: float, example: Example) -> list[Resolved]:
        """A score of window ``window`` (its purchase time) at ``example.at``.

        Kept for the open window; for the window just closed by a later purchase (a tick
        that arrived after it, as happens live) labelled at once, as it would have been
        had the tick come first; otherwise (older windows, after the deadline) ignored.
        So the examples are the same whatever the arrival order.
        """
        if window == self._last_purchase:
            if self._closed is None or self._closed[0] != window:
                self.add(example)
            elif example.at < self._closed[2]:  # already expired, tick late
                return [Resolved(example, self._closed[1], self._closed[2])]
            return []
        closed = self._closed
        if closed is not None and closed[0] == window and example.at < closed[2]:
            return [Resolved(example, closed[1], closed[2])]
        return []

    def add(self, example: Example) -> None:
        """Keep a scored moment of the open window (ignored when no purchase opened one,
        or when it is after the deadline, where its label is already decided)."""
        deadline = self.deadline
        if deadline is not None and example.at < deadline and not self.is_closed:
            self._pending.append(example)

    def expire(self, watermark: float) -> list[Resolved]:
        """Resolve the open window as churned if event time has passed its deadline."""
        deadline = self.deadline
        if deadline is None or watermark < deadline or self.is_closed:
            return []
        return self._close(True, deadline)

    @property
    def is_closed(self) -> bool:
        """Whether the latest window is labelled already (churned; a purchase opens one)."""
        return self._closed is not None and self._closed[0] == self._last_purchase

    def due(self) -> list[float]:
        """The event times at which this customer needs attention, in order: rescoring
        after days of silence, then the label deadline."""
        last = self.last_purchase
        if last is None:
            return []
        return [last + o for o in churn_due_offsets(self._horizon / _DAY)[1:]]

    def __getstate__(self) -> tuple[object, ...]:
        return (
            self._horizon, self._last_purchase, self._pending, self._closed, self.resolved,
            self.churned, self._last_tick,
        )  # fmt: skip

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (
            self._horizon, self._last_purchase, self._pending, self._closed, self.resolved,
            self.churned, self._last_tick,
        ) = state  # type: ignore[assignment]  # fmt: skip
