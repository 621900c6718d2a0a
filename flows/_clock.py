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

from flows.profile import RESCORE_AFTER_DAYS

__all__ = ["LOYALTY_WINDOW_S", "ClockLogic", "Progress", "Tick", "TickKind", "shard_key"]

_DAY: Final = 86_400.0
LOYALTY_WINDOW_S: Final = 365 * _DAY
TickKind = Literal["churn", "loyalty"]


class Progress(msgspec.Struct, frozen=True, gc=False):
    """What one batch of a shard says about time: its latest customer event time and
    its purchases (customer, event time)."""

    latest: float
    purchases: list[tuple[str, float]]


class Tick(msgspec.Struct, frozen=True, gc=False):
    """A customer's due time, passed by the watermark, of the purchase at ``window``.

    ``churn``: the purchase itself, a rescoring after days of silence, or the label
    deadline. ``loyalty``: the purchase leaves the trailing 12-month spend.
    """

    at: float
    window: float
    kind: TickKind = "churn"


def shard_key(partition: int) -> str:
    """The state key of a customer-topic partition's clock."""
    return f"shard-{partition}"


class _Clock:
    __slots__ = ("due", "latest")

    def __init__(self) -> None:
        self.latest = float("-inf")
        # heap of (time, customer, window, kind)
        self.due: list[tuple[float, str, float, TickKind]] = []

    def __getstate__(self) -> tuple[float, list[tuple[float, str, float, TickKind]]]:
        return (self.latest, self.due)

    def __setstate__(self, state: tuple[float, list[tuple[float, str, float, TickKind]]]) -> None:
        self.latest, self.due = state


class ClockLogic(StatefulBatchLogic[Progress, tuple[str, Tick], bytes | _Clock]):
    """Keep one shard's watermark and due times; emit ticks keyed by customer.

    Args:
        lateness: Seconds the watermark stays behind the latest event time.
        horizon_days: The churn horizon (the label deadline after a purchase).
        copy: Snapshots are copies (recovery is on).
    """

    def __init__(self, clock: _Clock, *, lateness: float, horizon_days: float, copy: bool) -> None:
        self._clock = clock
        self._lateness = lateness
        # The purchase itself (its window opens in event-time order), the rescoring
        # times, the label deadline; the day it leaves the loyalty window.
        churn = [0.0, *(d * _DAY for d in RESCORE_AFTER_DAYS), horizon_days * _DAY]
        self._offsets: list[tuple[float, TickKind]] = [(o, "churn") for o in churn]
        self._offsets.append((LOYALTY_WINDOW_S, "loyalty"))
        self._copy = copy

    @classmethod
    def builder(
        cls, *, lateness: float, horizon_days: float, copy: bool
    ) -> Callable[[bytes | _Clock | None], ClockLogic]:
        """The ``stateful_batch`` builder: a new clock, or one restored from a snapshot."""

        def build(resume: bytes | _Clock | None) -> ClockLogic:
            if resume is None:
                clock = _Clock()
            elif isinstance(resume, bytes):
                clock = pickle.loads(resume)  # noqa: S301 - our own snapshot
            else:
                clock = resume
            return cls(clock, lateness=lateness, horizon_days=horizon_days, copy=copy)

        return build

    def on_batch(self, values: list[Progress]) -> tuple[Iterable[tuple[str, Tick]], bool]:
        clock = self._clock
        due = clock.due
        push = heapq.heappush
        for progress in values:
            clock.latest = max(clock.latest, progress.latest)
            for customer, t in progress.purchases:
                for offset, kind in self._offsets:
                    push(due, (t + offset, customer, t, kind))
        watermark = clock.latest - self._lateness
        ticks: list[tuple[str, Tick]] = []
        while due and due[0][0] <= watermark:
            at, customer, window, kind = heapq.heappop(due)
            ticks.append((customer, Tick(at, window, kind)))
        return (ticks, StatefulBatchLogic.RETAIN)

    def snapshot(self) -> bytes | _Clock:
        if self._copy:
            return pickle.dumps(self._clock, protocol=pickle.HIGHEST_PROTOCOL)
        return self._clock
