"""Time-decayed scores of the top categories or brands of one customer."""

from __future__ import annotations

import datetime as dt
from typing import Final

__all__ = ["HALF_LIFE", "DecayedScores"]

HALF_LIFE: Final = 30 * 86_400.0
"""Seconds for a score to halve."""

# Scores are stored as their value at a fixed reference time: a contribution at ``t`` is
# stored as ``w * 2**((t - REF) / HALF_LIFE)``. Adding is then order-independent (a sum),
# ranking needs no decay at all, and reading at ``T`` multiplies by
# ``2**(-(T - REF) / HALF_LIFE)``. The exponent stays within float range until about 2100.
_REF: Final = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()


class DecayedScores:
    """Exponentially decayed scores (half-life 30 days), keeping the ``capacity`` best.

    When a new name arrives at capacity, the lowest score makes room if the new one is
    higher; otherwise the new name is dropped. Beyond ``capacity`` names the ranking is
    therefore approximate, and it depends on arrival order.

    Example:
        >>> day = 86_400.0
        >>> scores = DecayedScores()
        >>> scores.add("Coffee", 5.0, 1_746_000_000.0)
        >>> scores.add("Tea", 1.0, 1_746_000_000.0 + 30 * day)
        >>> scores.top(5, at=1_746_000_000.0 + 30 * day)
        [['Coffee', 2.5], ['Tea', 1.0]]
    """

    __slots__ = ("_capacity", "_order", "_scores")

    def __init__(self, capacity: int = 20) -> None:
        self._capacity = capacity
        self._scores: dict[str, float] = {}
        # Names by stored score, best first: a contribution only raises one score, so
        # keeping this sorted is a short bubble up, cheaper than sorting on every read.
        self._order: list[str] = []

    def add(self, name: str, weight: float, t: float) -> None:
        """Add ``weight`` to ``name`` at event time ``t`` (epoch seconds)."""
        scores = self._scores
        order = self._order
        scaled = weight * 2.0 ** ((t - _REF) / HALF_LIFE)
        old = scores.get(name)
        if old is not None:
            score = scores[name] = old + scaled
            i = order.index(name)
        else:
            if len(order) >= self._capacity:
                if scores[order[-1]] >= scaled:
                    return
                del scores[order.pop()]
            score = scores[name] = scaled
            i = len(order)
            order.append(name)
        while i and scores[order[i - 1]] < score:
            order[i] = order[i - 1]
            i -= 1
        order[i] = name

    def top(self, n: int, at: float) -> list[list[str | float]]:
        """Return the ``n`` best ``[name, score]`` decayed to ``at``, 4 dp, best first."""
        scores = self._scores
        order = self._order
        k = min(n, len(order))
        if k < len(order):
            # Sums of the same contributions in another order may differ in the last bit:
            # keep every near-tie of the n-th so the cut does not depend on arrival order.
            cut = scores[order[k - 1]] * (1 - 1e-9)
            while k < len(order) and scores[order[k]] >= cut:
                k += 1
        # Scaled to 1/10,000 and rounded to an int: exact ties, and 5x faster than round(x, 4).
        factor = 2.0 ** (-(at - _REF) / HALF_LIFE) * 10_000
        decayed = sorted([(-round(scores[name] * factor), name) for name in order[:k]])
        return [[name, -negative / 10_000] for negative, name in decayed[:n]]

    def __bool__(self) -> bool:
        return bool(self._scores)

    def __getstate__(self) -> tuple[int, dict[str, float]]:
        return (self._capacity, self._scores)

    def __setstate__(self, state: tuple[int, dict[str, float]]) -> None:
        self._capacity, self._scores = state
        self._order = sorted(self._scores, key=self._scores.__getitem__, reverse=True)
