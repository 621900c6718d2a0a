"""Event-time timers: one clock per shard of the customer topics, ticking customers.

Bytewax's own timers run on the wall clock, per key: a replay would not fire a silent
customer's timer at the right event time. So a step keyed by shard (the partition index
of the co-partitioned customer topics) sees the progress of every batch of its shard:
the latest event time, and the purchases, whose follow-ups are known in advance
(rescoring after days of silence, the churn label deadline). Its watermark is the latest
event time minus the allowed lateness; every due time the watermark passes becomes a
``Tick`` for its customer, merged into the customer stream ahead of the customer step.

A shard's events arrive in partition order, so its ticks are the same in a replay at
full speed and in a live run, and with one process or many.
"""

from __future__ import annotations

import heapq
import pickle
from collections.abc import Callable, Iterable
from typing import Final, Literal

import msgspec
from bytewax.operators import StatefulBatchLogic

from flows._segments import SEGMENT_REFRESH_S, SegmentOut, ShardSegments
from flows.metrics import FlowMetrics
from flows.profile import churn_due_offsets

__all__ = [
    "LOYALTY_WINDOW_S",
    "ClockLogic",
    "Clocked",
    "Progress",
    "Tick",
    "TickKind",
    "shard_key",
]

_DAY: Final = 86_400.0
LOYALTY_WINDOW_S: Final = 365 * _DAY
TickKind = Literal["churn", "loyalty", "cart"]
_Due = tuple[float, str, float, str, float]
"""A heap entry: (time, customer, window, kind, revenue); kinds are the ``TickKind``s,
``segment`` (an R-score timer), ``refresh`` (the daily quintile boundaries) and ``erase``."""


class Progress(msgspec.Struct, frozen=True, gc=False):
    """What one batch of a shard says about time: its latest customer event time, its
    purchases (customer, event time, revenue), erasures and cart changes (customer,
    event time)."""

    shard: int
    latest: float
    purchases: list[tuple[str, float, float]]
    erased: list[tuple[str, float]] = []
    carts: list[tuple[str, float]] = []


class Tick(msgspec.Struct, frozen=True, gc=False):
    """A customer's due time, passed by the watermark, of the purchase at ``window``.

    ``churn``: the purchase itself, a rescoring after days of silence, or the label
    deadline. ``loyalty``: the purchase leaves the trailing 12-month spend. ``cart``: the
    cart changed at ``window`` and the abandonment delay has passed.
    """

    at: float
    window: float
    kind: TickKind = "churn"


def shard_key(partition: int) -> str:
    """The state key of a customer-topic partition's clock."""
    return f"shard-{partition}"


class _Clock:
    __slots__ = ("due", "latest", "refreshing", "segments", "shard")

    def __init__(self) -> None:
        self.latest = float("-inf")
        self.due: list[_Due] = []
        self.segments = ShardSegments()
        self.refreshing = False  # a daily boundary refresh is scheduled
        self.shard = -1

    def __getstate__(self) -> tuple[object, ...]:
        return (self.latest, self.due, self.segments, self.refreshing, self.shard)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        self.latest, self.due, self.segments, self.refreshing, self.shard = state  # type: ignore[assignment]


Clocked = tuple[str, Tick | SegmentOut]
"""What a clock emits: a customer's tick, or their RFM placement."""


class ClockLogic(StatefulBatchLogic[Progress, Clocked, bytes | _Clock]):
    """Keep one shard's watermark and due times; emit ticks keyed by customer.

    Args:
        lateness: Seconds the watermark stays behind the latest event time.
        horizon_days: The churn horizon (the label deadline after a purchase).
        copy: Snapshots are copies (recovery is on).
        cart_after: Seconds after a cart change when an unchanged cart is abandoned;
            ``None``: no cart ticks (offers are off).
    """

    def __init__(
        self,
        clock: _Clock,
        *,
        lateness: float,
        horizon_days: float,
        copy: bool,
        metrics: FlowMetrics | None = None,
        cart_after: float | None = 1_800.0,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._lateness = lateness
        self._cart_after = cart_after
        # The purchase itself (its window opens in event-time order), the rescoring
        # times, the label deadline; the day it leaves the loyalty window.
        churn = churn_due_offsets(horizon_days)
        self._offsets: list[tuple[float, str]] = [(o, "churn") for o in churn]
        self._offsets.append((LOYALTY_WINDOW_S, "loyalty"))
        self._copy = copy

    @classmethod
    def builder(
        cls,
        *,
        lateness: float,
        horizon_days: float,
        copy: bool,
        metrics: FlowMetrics | None = None,
        cart_after: float | None = 1_800.0,
    ) -> Callable[[bytes | _Clock | None], ClockLogic]:
        """The ``stateful_batch`` builder: a new clock, or one restored from a snapshot."""

        def build(resume: bytes | _Clock | None) -> ClockLogic:
            if resume is None:
                clock = _Clock()
            elif isinstance(resume, bytes):
                clock = pickle.loads(resume)  # noqa: S301 - our own snapshot
            else:
                clock = resume
            return cls(
                clock,
                lateness=lateness,
                horizon_days=horizon_days,
                copy=copy,
                metrics=metrics,
                cart_after=cart_after,
            )

        return build

    def on_batch(self, values: list[Progress]) -> tuple[Iterable[Clocked], bool]:
        clock = self._clock
        due = clock.due
        push = heapq.heappush
        out: list[Clocked] = []
        for progress in values:
            self._schedule(progress)
        watermark = clock.latest - self._lateness
        while due and due[0][0] <= watermark:
            at, customer, window, kind, revenue = heapq.heappop(due)
            if kind == "refresh":
                for placed_customer, placed in clock.segments.refresh(at):
                    self._place(
                        out,
                        placed_customer,
                        placed,
                        clock.segments.values[placed_customer].last_purchase,
                    )
                push(due, (at + SEGMENT_REFRESH_S, "", 0.0, "refresh", 0.0))
                continue
            if kind == "erase":
                # On event time like the purchases, so the population, hence everyone's
                # quintiles, do not depend on when the deletion arrived. (The customer's
                # hash is erased at once by the customer step.)
                removed = clock.segments.erase(customer, at)
                if removed is not None:
                    out.append((customer, removed))
                continue
            if kind == "segment":
                self._place(out, customer, clock.segments.recheck(customer, at, window), window)
                continue
            if kind == "cart":
                out.append((customer, Tick(at, window, "cart")))
                continue
            out.append((customer, Tick(at, window, "loyalty" if kind == "loyalty" else "churn")))
            if kind == "churn" and at == window:  # the purchase itself
                self._place(out, customer, clock.segments.purchase(customer, at, revenue), at)
                if not clock.refreshing:
                    clock.refreshing = True
                    midnight = (at // SEGMENT_REFRESH_S + 1) * SEGMENT_REFRESH_S
                    push(due, (midnight, "", 0.0, "refresh", 0.0))
        self._report()
        return (out, StatefulBatchLogic.RETAIN)

    def _schedule(self, progress: Progress) -> None:
        """Move the shard's latest time; put the batch's follow-ups on the heap."""
        clock = self._clock
        due = clock.due
        push = heapq.heappush
        clock.shard = progress.shard
        clock.latest = max(clock.latest, progress.latest)
        for customer, t in progress.erased:
            push(due, (t, customer, t, "erase", 0.0))
        for customer, t, revenue in progress.purchases:
            for offset, kind in self._offsets:
                push(due, (t + offset, customer, t, kind, revenue if offset == 0 else 0.0))
        after = self._cart_after
        if after is None or not progress.carts:
            return
        carts = sorted(progress.carts)
        for i, (customer, t) in enumerate(carts):
            following = carts[i + 1] if i + 1 < len(carts) else None
            if following is not None and following[0] == customer and following[1] <= t + after:
                # The cart changes again before this tick: it could only say "changed",
                # whatever the batching, so it is not worth a tick.
                continue
            push(due, (t + after, customer, t, "cart", 0.0))

    def _place(
        self,
        out: list[Clocked],
        customer: str,
        placed: tuple[SegmentOut, float | None] | None,
        window: float,
    ) -> None:
        if placed is None:
            return
        segment, drop = placed
        out.append((customer, segment))
        if drop is not None:
            heapq.heappush(self._clock.due, (drop, customer, window, "segment", 0.0))
        if segment.moved and self._metrics is not None:
            self._metrics.segment_entries.labels(segment.segment).inc()

    def _report(self) -> None:
        if self._metrics is None or self._clock.shard < 0:
            return
        shard = str(self._clock.shard)
        for name, size in self._clock.segments.sizes.items():
            self._metrics.segment_size.labels(name, shard).set(size)

    def snapshot(self) -> bytes | _Clock:
        if self._copy:
            return pickle.dumps(self._clock, protocol=pickle.HIGHEST_PROTOCOL)
        return self._clock
