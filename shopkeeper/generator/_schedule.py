"""Two schedulers over one behaviour model: a day-by-day history, and an endless live stream."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np

import events
from shopkeeper.generator._behaviour import Plan
from shopkeeper.generator._malformed import Malformed
from shopkeeper.generator._profiles import consent_change
from shopkeeper.generator._run import Item, Run

__all__ = ["history_items", "live_items"]

_DAY = 86_400.0
_NEAR_CHURN = 45 * _DAY
_CONSENT_CHANGES = 0.0004
# Local-time visit rhythm by hour: quiet nights, a lunch bump, an evening peak.
_HOURLY = (
    1,
    0.5,
    0.3,
    0.2,
    0.2,
    0.4,
    1,
    2,
    3,
    4,
    4.5,
    5,
    6,
    5.5,
    5,
    5,
    5.5,
    6,
    7,
    8.5,
    9,
    8,
    5,
    2.5,
)
_HOURLY_CUM = list(itertools.accumulate(_HOURLY))

Timed = tuple[float, int, Any]


class _History:
    """Event-time scheduler: visits come from each customer's renewal rhythm, a day at a time."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.seq = itertools.count()
        self.pending: list[Timed] = []
        self.visits_heap: list[tuple[float, int, str, int, int]] = []
        customers = run.world.customers
        self.replenish: dict[tuple[int, int], int] = {
            (c, p): k for c, p, k in customers.replenishment
        }
        self.replenish_due: dict[tuple[int, int], float] = {}
        for (c, p), cycle in self.replenish.items():
            self._due(c, p, run.t0 + run.schedule.u() * cycle * _DAY)
        self.deletions: dict[int, list[tuple[float, int]]] = {}
        for c in np.flatnonzero(~np.isnan(run.deleted_at)).tolist():
            t = float(run.deleted_at[c])
            self.deletions.setdefault(int((t - run.t0) // _DAY), []).append((t, c))

    def _due(self, c: int, p: int, t: float) -> None:
        self.replenish_due[c, p] = t
        heapq.heappush(self.visits_heap, (t, next(self.seq), "replenish", c, p))

    def _time_of_day(self, c: int) -> float:
        draws = self.run.schedule
        hour = draws.pick(_HOURLY_CUM) + draws.u()
        return ((hour - float(self.run.world.customers.utc_offset[c])) * 3600.0) % _DAY

    def days(self, days: int) -> Iterator[events.Event]:
        run = self.run
        customers = run.world.customers
        n = len(customers)
        rng = run.schedule_rng
        silent_day = (np.array(run.silent_at) - run.t0) / _DAY
        rhythms = (
            ("shop", rng.random(n) * customers.purchase_gap, customers.purchase_gap, 4.0),
            ("browse", rng.exponential(customers.browse_gap), customers.browse_gap, 1.0),
        )
        anonymous_odds = run.world.config.anonymous_share / (1 - run.world.config.anonymous_share)
        for day in range(days):
            day_start = run.t0 + day * _DAY
            day_end = day_start + _DAY
            out: list[Timed] = []
            self._catalogue(day, day_start, out)
            self._customers(day, day_start, out)
            visits: list[tuple[float, str, int, int]] = []
            for kind, next_at, gap, shape in rhythms:
                due = np.flatnonzero(next_at < day + 1)
                while due.size:
                    for c in due[next_at[due] < silent_day[due]].tolist():
                        visits.append((day_start + self._time_of_day(c), kind, c, -1))
                    # Gamma gaps: shape 4 makes purchase visits regular (a rhythm to learn).
                    next_at[due] += gap[due] * rng.gamma(shape, 1.0 / shape, size=due.size)
                    due = due[next_at[due] < day + 1]
            while self.visits_heap and self.visits_heap[0][0] < day_end:
                t, _, kind, c, p = heapq.heappop(self.visits_heap)
                if kind == "replenish":
                    if self.replenish_due.get((c, p)) != t:
                        continue  # superseded by a purchase made since
                    # If this visit buys nothing, the need comes back a cycle later.
                    self._due(c, p, t + self.replenish[c, p] * _DAY)
                if t < run.silent_at[c]:
                    visits.append((t, kind, c, p))
            for _ in range(int(len(visits) * anonymous_odds + run.schedule.u())):
                c = run.schedule.below(n)
                visits.append((day_start + self._time_of_day(c), "anonymous", c, -1))
            for t, kind, c, p in visits:
                self._visit(t, kind, c, p, day_end=day_end, out=out)
            while self.pending and self.pending[0][0] < day_end:
                out.append(heapq.heappop(self.pending))
            out.sort(key=_by_time)
            for item in out:
                yield item[2]

    def _catalogue(self, day: int, day_start: float, out: list[Timed]) -> None:
        run = self.run
        envelope = ("server", None, None, None, None)
        for offset, props in run.inventory.daily(day, run.schedule):
            t = day_start + offset
            out.append((t, next(self.seq), run.event(t, envelope, events.ProductUpdated, props)))

    def _customers(self, day: int, day_start: float, out: list[Timed]) -> None:
        run = self.run
        customers = run.world.customers
        draws = run.schedule
        expected = _CONSENT_CHANGES * len(customers)
        for _ in range(int(expected + draws.u())):
            c = draws.below(len(customers))
            t = day_start + draws.u() * _DAY
            if t < run.silent_at[c]:
                envelope = (
                    ("web", "ios", "android")[draws.below(3)],
                    customers.ids[c],
                    None,
                    None,
                    None,
                )
                event = run.event(t, envelope, events.CustomerUpdated, consent_change(draws))
                out.append((t, next(self.seq), event))
        for t, c in self.deletions.get(day, []):
            props = events.DeletionRequestedProperties()
            event = run.event(
                t, ("web", customers.ids[c], None, None, None), events.DeletionRequested, props
            )
            out.append((t, next(self.seq), event))

    def _visit(
        self, t: float, kind: str, c: int, p: int, *, day_end: float, out: list[Timed]
    ) -> None:
        run = self.run
        customers = run.world.customers
        if kind == "shop" and customers.channel[c] == 3 and run.schedule.u() < 0.7:
            kind = "pos"
        limit = run.silent_at[c] if kind != "anonymous" else math.inf
        plan = run.behaviour.plan(kind, c, product=p, near_churn=run.churn_at[c] - t < _NEAR_CHURN)
        seq = self.seq
        for offset, cls, props in plan.steps:
            ts = t + offset
            if ts >= limit:
                return
            item = (ts, next(seq), run.event(ts, plan.envelope, cls, props))
            if ts < day_end:
                out.append(item)
            else:
                heapq.heappush(self.pending, item)
        customer_id = plan.envelope[1]
        for offset, channel, cls, props in plan.follow_ups:
            ts = t + offset
            if ts < limit:
                envelope = (channel, customer_id, None, None, None)
                heapq.heappush(self.pending, (ts, next(seq), run.event(ts, envelope, cls, props)))
        self._effects(plan, t, c, limit)

    def _effects(self, plan: Plan, t: float, c: int, limit: float) -> None:
        for offset, p in plan.purchases:
            cycle = self.replenish.get((c, p))
            if cycle is not None:
                jitter = 1.0 + 0.06 * self.run.schedule.normal()
                self._due(c, p, t + offset + cycle * jitter * _DAY)
        for offset, p in plan.intents:
            if t + offset < limit:
                heapq.heappush(self.visits_heap, (t + offset, next(self.seq), "intent", c, p))


def _by_time(item: Timed) -> tuple[float, int]:
    return item[0], item[1]


def history_items(run: Run, days: int) -> Iterator[Item]:
    """Yield the preamble, then ``days`` days of traffic, in event-time order."""
    scheduler = _History(run)
    yield from run.emit(itertools.chain(run.preamble(), scheduler.days(days)))


class _Live:
    """Wall-clock scheduler: a pool of concurrent visits, one step at a time."""

    def __init__(self, run: Run) -> None:
        self.run = run
        customers = run.world.customers
        weight = 1.0 / customers.purchase_gap + 1.0 / customers.browse_gap
        self.cum_weight: list[float] = np.cumsum(weight).tolist()
        self.replenish: dict[int, list[int]] = {}
        for c, p, _ in customers.replenishment:
            self.replenish.setdefault(c, []).append(p)
        self.intents: dict[int, int] = {}

    def new_plan(self, now: float) -> Plan:
        run = self.run
        draws = run.schedule
        customers = run.world.customers
        config = run.world.config
        while True:
            c = draws.pick(self.cum_weight)
            if run.silent_at[c] <= now:
                continue
            if draws.u() < config.anonymous_share:
                kind, p = "anonymous", -1
            elif c in self.intents:
                kind, p = "intent", self.intents.pop(c)
            elif c in self.replenish and draws.u() < 0.15:
                products = self.replenish[c]
                kind, p = "replenish", products[draws.below(len(products))]
            else:
                shop = 1.0 / customers.purchase_gap[c]
                kind = (
                    "shop"
                    if draws.u() * (shop + 1.0 / customers.browse_gap[c]) < shop
                    else "browse"
                )
                p = -1
                if kind == "shop" and customers.channel[c] == 3 and draws.u() < 0.7:
                    kind = "pos"
            near = run.churn_at[c] - now < _NEAR_CHURN
            plan = run.behaviour.plan(kind, c, product=p, near_churn=bool(near))
            if plan.steps:
                return plan

    def items(self, start: dt.datetime, rate: float) -> Iterator[Item]:
        run = self.run
        config = run.world.config
        t0 = start.timestamp()
        plans = [self.new_plan(t0) for _ in range(config.live_sessions)]
        cursors = [0] * len(plans)
        deferred: list[tuple[int, int, tuple[Any, ...], type[events.Event], Any]] = []
        seq = itertools.count()
        last: events.Event | None = None
        for n in itertools.count():
            ts = start + dt.timedelta(seconds=n / rate)
            if last is not None and run.malformed_due():
                restamped = msgspec.structs.replace(last, timestamp=ts, message_id=run.ids.next())
                yield run.malformed(restamped)
                continue
            if deferred and deferred[0][0] <= n:
                _, _, envelope, cls, props = heapq.heappop(deferred)
            else:
                slot = run.schedule.below(len(plans))
                plan = plans[slot]
                _, cls, props = plan.steps[cursors[slot]]
                envelope = plan.envelope
                cursors[slot] += 1
                if cursors[slot] == len(plan.steps):
                    self._finish(plan, n, rate, deferred, seq)
                    plans[slot], cursors[slot] = self.new_plan(t0 + n / rate), 0
            event = cls(
                message_id=run.ids.next(),
                timestamp=ts,
                channel=envelope[0],
                customer_id=envelope[1],
                anonymous_id=envelope[2],
                session_id=envelope[3],
                context=envelope[4],
                properties=props,
            )
            run.counts[cls] += 1
            last = event
            yield event

    def _finish(self, plan: Plan, n: int, rate: float, deferred: list[Any], seq: Any) -> None:
        scale = self.run.world.config.live_time_scale
        customer_id = plan.envelope[1]
        for offset, channel, cls, props in plan.follow_ups:
            due = n + math.ceil(offset / scale * rate)
            envelope = (channel, customer_id, None, None, None)
            heapq.heappush(deferred, (due, next(seq), envelope, cls, props))
        for _, p in plan.intents:
            self.intents[plan.customer] = p


def live_items(run: Run, start: dt.datetime, rate: float) -> Iterator[Item]:
    """Yield item ``n`` at ``start + n / rate`` seconds, forever: first the preamble (the
    catalogue and the customers' profiles), then the sessions.

    Every item is stamped with the moment a producer pacing at ``rate`` sends it, so the
    time from an event to its effect is measured from its true sending time.
    """
    n = 0
    for item in run.emit(run.preamble()):
        stamp = start + dt.timedelta(seconds=n / rate)
        if isinstance(item, Malformed):
            yield item
        else:
            yield msgspec.structs.replace(item, timestamp=stamp)
        n += 1
    yield from _Live(run).items(start + dt.timedelta(seconds=n / rate), rate)
