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

The shard's customer events come with its progress, and the clock hands them on to the
customer step ahead of its ticks: on one path, a tick never overtakes the events it is
about.

Offer timers (cart and browse abandonment, win-back, tier expiry, replenishment) and
catalogue changes (a price, a stock status, a successor: the shard's source reads the
catalogue merged with its customer topics by event time) run on a second heap
with a watermark of their own, the latest event time minus the *trigger* lateness: a
fraction of a second by default, so an offer fires as its deadline passes, not an hour
later. Their decisions read the profile as of the deadline, so a replay decides as the
live run did for every event that was not later than that lateness. The events that
raise offers themselves (orders, survey answers) get a ``decide`` tick at their own
time: a customer's offers are then all decided in event-time order, as the clock emits
their ticks, so caps and cool-downs shared between triggers go to the same offers in a
replay as live. Both heaps are released in event-time order, between the steps of a
browsing session in their arrival order, so what a timer sees does not depend on
where batches end. A price drop or a restock ticks the shard's customers who viewed the
product within the interest window before it and did not buy it since.

While the flow tails, a caught-up source's heartbeat (``Progress.idle``) moves a quiet
shard's time on by the wall clock, so its timers fire without new events.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import math
import pickle
import statistics
from collections.abc import Callable, Iterable
from typing import Final, Literal

import msgspec
from bytewax.operators import StatefulBatchLogic

from flows._accepted import Accepted
from flows._segments import SEGMENT_REFRESH_S, SegmentOut, ShardSegments
from flows.metrics import FlowMetrics
from flows.profile import churn_due_offsets
from models.clv import CLVParams

__all__ = [
    "LOYALTY_WINDOW_S",
    "OFFER_TIMERS",
    "Browsed",
    "CatalogChange",
    "ClockLogic",
    "Clocked",
    "OfferTimers",
    "Progress",
    "Tick",
    "TickKind",
    "shard_key",
]

_DAY: Final = 86_400.0
LOYALTY_WINDOW_S: Final = 365 * _DAY
TickKind = Literal[
    "churn", "loyalty", "cart", "browse", "winback", "tier_expiry", "churn_risk",
    "replenishment", "price_drop", "back_in_stock", "decide",
]  # fmt: skip
OFFER_TIMERS: Final = frozenset(
    {
        "cart", "browse", "winback", "tier_expiry", "churn_risk", "replenishment",
        "price_drop", "back_in_stock", "decide",
    }
)  # fmt: skip
"""The tick kinds of offer triggers (the customer step decides offers on them)."""
_REPLENISH: Final = "replenishment:"  # a heap entry's kind: the prefix, then the product
_PRICE: Final = "price:"  # a catalogue price change: the prefix, then the product
_STOCK: Final = "stock:"  # a catalogue stock change (value 1: in stock, 0: out)
_SUCCESSOR: Final = "successor:"  # a retired product: the prefix, product, US, successor
_US: Final = "\x1f"  # ids hold no control characters
_CHAIN_MAX: Final = 5  # successors followed from a retired product
_VIEWS_KEPT: Final = 3  # view times kept per customer and product (for catalogue triggers)
_BOUGHT_KEPT: Final = 4  # purchase times kept per customer and product
_PRODUCTS_KEPT: Final = 100  # products followed per customer
_Due = tuple[float, str, float, str, float]
"""A heap entry: (time, customer, window, kind, revenue); kinds are the ``TickKind``s,
``segment`` (an R-score timer), ``refresh`` (the daily quintile boundaries) and ``erase``."""


class Progress(msgspec.Struct, frozen=True, gc=False):
    """What one batch of a shard says about time: its latest customer event time, its
    purchases (customer, event time, revenue), erasures and cart changes (customer, event
    time), the steps of browsing and buying (customer, event time, the product viewed or
    "", the products ordered or ()), and the events that may raise an offer (customer,
    event time), each in arrival order."""

    shard: int
    latest: float
    purchases: list[tuple[str, float, float]]
    erased: list[tuple[str, float]] = []
    carts: list[tuple[str, float]] = []
    # Views (the product), cart changes and orders (the products bought), in order.
    browsing: list[tuple[str, float, str, tuple[str, ...]]] = []
    asks: list[tuple[str, float]] = []  # events that may raise an offer
    # The customers' events themselves, by customer, each in arrival order: the clock
    # hands them on ahead of its ticks (see ``flows._decode.Decoder``).
    events: list[tuple[str, list[Accepted]]] = []
    # Catalogue changes (prices, stock, successors) read along the shard's customer
    # topics: the clock joins each, at its event time, to the shard's customers.
    catalog: list[CatalogChange] = []
    # While live and idle, the event time the shard's source vouches for (its latest
    # event plus the wall time since): time moves on without events.
    idle: float = -math.inf


class CatalogChange(msgspec.Struct, frozen=True, gc=False):
    """A product's new price (in ``currency``), stock (``True``: in stock, ``False``: out
    of stock) or successor (it is retired) at event time ``at``; ``None``: unchanged by
    this update."""

    product_id: str
    at: float
    price: float | None = None
    currency: str | None = None
    in_stock: bool | None = None
    successor: str | None = None  # the product replacing this retired one


class Browsed(msgspec.Struct, frozen=True, gc=False):
    """The product viewed most in a browsing session: its views, first and last view."""

    product_id: str
    views: int
    first: float
    last: float


class Tick(msgspec.Struct, frozen=True, gc=False):
    """A customer's due time, passed by the watermark, of the purchase at ``window``.

    ``churn``: the purchase itself, a rescoring after days of silence, or the label
    deadline. ``loyalty``: the purchase leaves the trailing 12-month spend. ``cart``: the
    cart changed at ``window`` and the abandonment delay has passed. ``browse``: the last
    product view was at ``window`` and the same delay has passed with no other. ``winback``:
    the customer has not bought since ``window`` for longer than their usual interval.
    ``tier_expiry``: the purchase at ``window`` leaves the trailing 12 months soon.
    ``churn_risk``: with no purchase since ``window``, the CLV model's churn risk
    (``1 - P(alive)``) reaches the threshold now; ``risk`` is its value.
    ``replenishment``: ``product``, bought at ``window`` and regularly every ``cycle``
    seconds before, is due again (less a lead time) and was not bought since; if it was
    retired by then, ``successor`` replaces it.
    ``price_drop``: ``product``, viewed at ``window`` (within the interest window, not
    bought since), is now sold at ``price``, down from ``previous``. ``back_in_stock``:
    ``product``, viewed at ``window`` while out of stock or before, is in stock again.
    ``decide``: an event that may have raised an offer is passed: offers raised up to
    ``at`` are decided now, in event-time order with the timers'.
    """

    at: float
    window: float
    kind: TickKind = "churn"
    browsed: Browsed | None = None  # a browse tick's product
    risk: float | None = None  # a churn-risk tick's risk
    product: str | None = None  # a replenishment or catalogue tick's product...
    cycle: float | None = None  # ...and its repurchase cycle (seconds)
    price: float | None = None  # a price drop's new price...
    previous: float | None = None  # ...and the price before it
    successor: str | None = None  # a replenishment tick's product, retired, replaced by


@dataclasses.dataclass(frozen=True, slots=True)
class OfferTimers:
    """When the offer timers are due (seconds of event time); ``None``: that timer is off.

    Attributes:
        lateness: The trigger watermark's lateness behind the shard's latest event time.
        cart_after: A cart unchanged this long after a change is abandoned.
        browse_after: A customer who viewed nothing for this long after a view has left.
        browse_min_views: Views of one product in the session a browse tick needs.
        winback_factor: Silent for this many times their mean interval between orders
            (two orders at least), a customer is lapsed...
        winback_min_s: ...and for this long at least.
        tier_notice_s: This long before an order leaves the trailing 12 months.
        replenish_lead_s: A product bought three times or more is due again its median
            interval after the last purchase, less this lead (half the interval at most).
        churn_risk: The churn risk (``1 - P(alive)`` of the CLV model's BG/NBD, on
            distinct purchase days) whose crossing raises a retention offer.
        clv: The fitted CLV parameters; ``None``: no churn-risk timer.
        interest_s: A price drop or a restock concerns the customers who viewed the
            product this long before it (and did not buy it since); ``None``: neither.
        price_drop_min: The least relative drop that is a price drop.
        price_drop: Price drops raise offers...
        back_in_stock: ...and so do restocks.
    """

    lateness: float = 0.25
    cart_after: float | None = 1_800.0
    browse_after: float | None = 1_800.0
    browse_min_views: int = 2
    winback_factor: float | None = 2.0
    winback_min_s: float = 30 * _DAY
    tier_notice_s: float | None = 14 * _DAY
    replenish_lead_s: float | None = 5 * _DAY
    churn_risk: float | None = 0.5
    clv: CLVParams | None = None
    interest_s: float | None = 14 * _DAY
    price_drop_min: float = 0.05
    price_drop: bool = True
    back_in_stock: bool = True


def _alive(clv: CLVParams, days: tuple[int, int, int], at: float) -> float:
    """BG/NBD ``P(alive)`` at ``at`` of a customer's (first, last, distinct) purchase days,
    counted as the customer step counts them for the CLV fields."""
    first, last, count = days
    per = 7.0 if clv.unit == "weeks" else 1.0
    age = max(at / _DAY - first, 0.0)
    return clv.probability_alive(count - 1, (last - first) / per, age / per)


def _risk_crossing(clv: CLVParams, days: tuple[int, int, int], risk: float) -> float | None:
    """When, with no purchase after the last one, the churn risk ``1 - P(alive)`` first
    reaches ``risk`` (P(alive) only falls with silence); ``None``: not within 10 years,
    or never (a single purchase day: BG/NBD holds such a customer alive)."""
    _, last, count = days
    if count < 2:
        return None
    low, high = (last + 1) * _DAY, (last + 3_650) * _DAY
    if 1.0 - _alive(clv, days, high) < risk:
        return None
    if 1.0 - _alive(clv, days, low) >= risk:
        return low
    while high - low > 1.0:  # to the second
        middle = (low + high) / 2
        if 1.0 - _alive(clv, days, middle) >= risk:
            high = middle
        else:
            low = middle
    return high


def shard_key(partition: int) -> str:
    """The state key of a customer-topic partition's clock."""
    return f"shard-{partition}"


class _Clock:
    __slots__ = (
        "bought", "browsing", "buying_days", "due", "first_purchase", "interest", "latest",
        "products", "refreshing", "released", "segments", "shard", "successors", "swept",
        "timers",
    )  # fmt: skip

    def __init__(self) -> None:
        self.latest = float("-inf")
        self.due: list[_Due] = []
        self.segments = ShardSegments()
        self.refreshing = False  # a daily boundary refresh is scheduled
        self.shard = -1
        self.timers: list[_Due] = []  # offer timers, on the trigger watermark
        self.released = float("-inf")  # the trigger watermark so far
        self.browsing: dict[str, _Session] = {}  # customer -> session, while a timer is armed
        self.first_purchase: dict[str, float] = {}  # of the buyers (for their interval)
        # (first, last, distinct) purchase days of the buyers, for their churn risk
        self.buying_days: dict[str, tuple[int, int, int]] = {}
        # customer -> product -> its latest purchase times (replenishment, catalogue)
        self.bought: dict[str, dict[str, list[float]]] = {}
        # product -> customer -> their latest view times, within the interest window
        self.interest: dict[str, dict[str, list[float]]] = {}
        # product -> (price, currency, in stock) as of the catalogue changes released
        self.products: dict[str, tuple[float | None, str | None, bool | None]] = {}
        self.swept = -math.inf  # the day the interest was last swept of old views
        self.successors: dict[str, str] = {}  # retired product -> its successor

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _CLOCK_STATE)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(_CLOCK_STATE, state, strict=True):
            setattr(self, name, value)


_CLOCK_STATE: Final = _Clock.__slots__
"""A clock's snapshot: every slot, in this order."""


class _Session:
    """A customer's browsing session: their last view, the views by product
    (count, first, last), and whether something went into the cart or was bought."""

    __slots__ = ("last", "stopped", "views")

    def __init__(self, t: float) -> None:
        self.last = t
        self.views: dict[str, tuple[int, float, float]] = {}
        self.stopped = False

    def __getstate__(self) -> tuple[float, dict[str, tuple[int, float, float]], bool]:
        return (self.last, self.views, self.stopped)

    def __setstate__(self, state: tuple[float, dict[str, tuple[int, float, float]], bool]) -> None:
        self.last, self.views, self.stopped = state

    def view(self, t: float, product_id: str) -> None:
        self.last = max(self.last, t)
        seen = self.views.get(product_id)
        if seen is None:
            self.views[product_id] = (1, t, t)
        else:
            self.views[product_id] = (seen[0] + 1, min(seen[1], t), max(seen[2], t))

    def most_viewed(self) -> Browsed:
        product, (views, first, last) = max(
            self.views.items(), key=lambda item: (item[1][0], item[1][2], item[0])
        )
        return Browsed(product, views, first, last)


Clocked = tuple[str, Tick | SegmentOut | list[Accepted]]
"""What a clock emits: a customer's events (handed on), tick, or RFM placement."""


class ClockLogic(StatefulBatchLogic[Progress, Clocked, bytes | _Clock]):
    """Keep one shard's watermark and due times; emit ticks keyed by customer.

    Args:
        lateness: Seconds the watermark stays behind the latest event time.
        horizon_days: The churn horizon (the label deadline after a purchase).
        copy: Snapshots are copies (recovery is on).
        offers: The offer timers; ``None``: none (offers are off).
    """

    def __init__(
        self,
        clock: _Clock,
        *,
        lateness: float,
        horizon_days: float,
        copy: bool,
        metrics: FlowMetrics | None = None,
        offers: OfferTimers | None = None,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._lateness = lateness
        self._offers = offers
        self._browse_min_views = offers.browse_min_views if offers is not None else 1
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
        offers: OfferTimers | None = None,
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
                offers=offers,
            )

        return build

    def on_batch(self, values: list[Progress]) -> tuple[Iterable[Clocked], bool]:
        out: list[Clocked] = []
        for progress in values:
            out += progress.events  # ahead of every tick they may come before
            self._schedule(progress, out)
        self._advance(self._clock.latest, out)
        self._sweep(self._clock.released)
        self._report()
        return (out, StatefulBatchLogic.RETAIN)

    def _advance(self, now: float, out: list[Clocked]) -> None:
        """Emit what the watermarks of a latest event time ``now`` pass, both heaps in
        event-time order: an offer timer sees the purchases before it, never after."""
        clock = self._clock
        due, timers = clock.due, clock.timers
        due_mark = now - self._lateness
        timer_mark = -math.inf
        if self._offers is not None:
            timer_mark = clock.released = max(clock.released, now - self._offers.lateness)
        while True:
            next_due = due[0][0] if due and due[0][0] <= due_mark else math.inf
            next_timer = timers[0][0] if timers and timers[0][0] <= timer_mark else math.inf
            if next_due == next_timer == math.inf:
                return
            if next_due <= next_timer:
                self._pop_due(out)
            else:
                self._pop_timer(out)

    def _pop_due(self, out: list[Clocked]) -> None:
        clock = self._clock
        due = clock.due
        at, customer, window, kind, revenue = heapq.heappop(due)
        if kind == "refresh":
            for placed_customer, placed in clock.segments.refresh(at):
                self._place(
                    out,
                    placed_customer,
                    placed,
                    clock.segments.values[placed_customer].last_purchase,
                )
            heapq.heappush(due, (at + SEGMENT_REFRESH_S, "", 0.0, "refresh", 0.0))
            return
        if kind == "erase":
            # On event time like the purchases, so the population, hence everyone's
            # quintiles, do not depend on when the deletion arrived. (The customer's
            # hash is erased at once by the customer step.)
            removed = clock.segments.erase(customer, at)
            clock.first_purchase.pop(customer, None)
            clock.buying_days.pop(customer, None)
            clock.bought.pop(customer, None)
            clock.browsing.pop(customer, None)
            for viewers in clock.interest.values():  # (erasures are rare)
                viewers.pop(customer, None)
            if removed is not None:
                out.append((customer, removed))
            return
        if kind == "segment":
            self._place(out, customer, clock.segments.recheck(customer, at, window), window)
            return
        out.append((customer, Tick(at, window, "loyalty" if kind == "loyalty" else "churn")))
        if kind == "churn" and at == window:  # the purchase itself
            before = clock.segments.values.get(customer)
            self._place(out, customer, clock.segments.purchase(customer, at, revenue), at)
            if clock.segments.values.get(customer, before) is not before:  # a new one
                self._arm_purchase(customer, at)
            if not clock.refreshing:
                clock.refreshing = True
                midnight = (at // SEGMENT_REFRESH_S + 1) * SEGMENT_REFRESH_S
                heapq.heappush(due, (midnight, "", 0.0, "refresh", 0.0))

    def _arm_purchase(self, customer: str, at: float) -> None:
        """The offer timers a purchase (in event-time order) arms: win-back after the
        customer's usual interval, the tier notice before it leaves the 12 months."""
        offers = self._offers
        if offers is None:
            return
        clock = self._clock
        first = clock.first_purchase.setdefault(customer, at)
        values = clock.segments.values[customer]
        if offers.winback_factor is not None and values.frequency >= 2:
            gap = (values.last_purchase - first) / (values.frequency - 1)
            deadline = values.last_purchase + max(offers.winback_factor * gap, offers.winback_min_s)
            heapq.heappush(clock.timers, (deadline, customer, values.last_purchase, "winback", 0.0))
        if offers.tier_notice_s is not None:
            notice = at + LOYALTY_WINDOW_S - offers.tier_notice_s
            heapq.heappush(clock.timers, (notice, customer, at, "tier_expiry", 0.0))
        day = int(at // _DAY)
        first_day, last_day, count = clock.buying_days.get(customer, (day, day, 0))
        days = clock.buying_days[customer] = (
            min(first_day, day),
            max(last_day, day),
            count + (day != last_day or count == 0),
        )
        if offers.churn_risk is not None and offers.clv is not None:
            crossing = _risk_crossing(offers.clv, days, offers.churn_risk)
            if crossing is not None:  # with the risk then, as of this order's days
                risk = 1.0 - _alive(offers.clv, days, crossing)
                heapq.heappush(clock.timers, (crossing, customer, at, "churn_risk", risk))

    def _pop_timer(self, out: list[Clocked]) -> None:
        """Emit the next offer timer (a browse timer whose customer viewed again since is
        re-armed from that view instead)."""
        clock = self._clock
        timers = clock.timers
        at, customer, window, kind, value = heapq.heappop(timers)  # value: cycle, or risk
        if kind.startswith((_PRICE, _STOCK)):
            self._catalog_change(at, kind, value, out)
            return
        if kind.startswith(_SUCCESSOR):
            product, successor = kind[len(_SUCCESSOR) :].split(_US, 1)
            clock.successors[product] = successor
            return
        browsed = None
        if kind == "browse":
            session = clock.browsing.get(customer)
            if session is None:
                return
            if session.last > window:
                heapq.heappush(
                    timers, (session.last + at - window, customer, session.last, "browse", 0.0)
                )
                return
            del clock.browsing[customer]
            browsed = session.most_viewed()
            if session.stopped or browsed.views < self._browse_min_views:
                return
        if kind.startswith(_REPLENISH):
            product = kind[len(_REPLENISH) :]
            times = clock.bought.get(customer, {}).get(product, [])
            if not any(window < bought <= at for bought in times):  # not bought since
                tick = Tick(
                    at, window, "replenishment", product=product, cycle=value,
                    successor=self._successor(product),
                )  # fmt: skip
                out.append((customer, tick))
            return
        # Win-back and churn risk: the customer step checks no order came since ``window``
        # (the clock learns of orders an hour of lateness behind these timers).
        risk = round(value, 4) if kind == "churn_risk" else None
        out.append((customer, Tick(at, window, kind, browsed, risk)))  # type: ignore[arg-type]

    def _schedule(self, progress: Progress, out: list[Clocked]) -> None:
        """Move the shard's latest time; put the batch's follow-ups on the heaps."""
        clock = self._clock
        due = clock.due
        push = heapq.heappush
        clock.shard = progress.shard
        clock.latest = max(clock.latest, progress.latest, progress.idle)
        for customer, t in progress.erased:
            push(due, (t, customer, t, "erase", 0.0))
        for customer, t, revenue in progress.purchases:
            for offset, kind in self._offsets:
                push(due, (t + offset, customer, t, kind, revenue if offset == 0 else 0.0))
        offers = self._offers
        if offers is None:
            return
        after = offers.cart_after
        if after is not None and progress.carts:
            self._arm_carts(progress.carts, after)
        for customer, t in progress.asks:
            push(clock.timers, (t, customer, t, "decide", 0.0))
        for change in progress.catalog:  # on the trigger watermark, as the timers
            if change.successor is not None and offers.replenish_lead_s is not None:
                kind = f"{_SUCCESSOR}{change.product_id}{_US}{change.successor}"
                push(clock.timers, (change.at, "", 0.0, kind, 0.0))
            if offers.interest_s is not None:
                if change.price is not None and change.currency is not None:
                    kind = f"{_PRICE}{change.currency}:{change.product_id}"
                    push(clock.timers, (change.at, "", 0.0, kind, change.price))
                if change.in_stock is not None:
                    kind = _STOCK + change.product_id
                    push(clock.timers, (change.at, "", 0.0, kind, float(change.in_stock)))
        if progress.browsing and (
            offers.browse_after is not None
            or offers.replenish_lead_s is not None
            or offers.interest_s is not None
        ):
            self._steps(progress.browsing, offers, out)

    def _steps(
        self,
        steps: list[tuple[str, float, str, tuple[str, ...]]],
        offers: OfferTimers,
        out: list[Clocked],
    ) -> None:
        """Follow browsing sessions and what customers buy, in arrival order, releasing
        the timers each step passes first: what a timer sees then depends on the order of
        the steps only, not on where batches end."""
        clock = self._clock
        browsing = clock.browsing
        after = offers.browse_after
        interest = clock.interest if offers.interest_s is not None else None
        for customer, t, product_id, ordered in steps:
            self._advance(t, out)
            if ordered and (offers.replenish_lead_s is not None or interest is not None):
                self._bought(customer, t, ordered, offers.replenish_lead_s)
            if interest is not None and product_id:
                times = interest.setdefault(product_id, {}).setdefault(customer, [])
                if t not in times:
                    bisect.insort(times, t)
                    del times[:-_VIEWS_KEPT]
            if after is None:
                continue
            session = browsing.get(customer)
            if not product_id:  # a cart change or an order
                if session is not None:
                    session.stopped = True
                continue
            if session is None:
                session = browsing[customer] = _Session(t)
                heapq.heappush(clock.timers, (t + after, customer, t, "browse", 0.0))
            session.view(t, product_id)

    def _bought(
        self, customer: str, t: float, products: tuple[str, ...], lead: float | None
    ) -> None:
        """Note an order's products; with a ``lead``, a product bought three times or
        more is due again its median interval after the last purchase, less the lead."""
        clock = self._clock
        mine = clock.bought.setdefault(customer, {})
        for product in products:
            times = mine.pop(product, [])  # re-inserted: the dict keeps the latest last
            if t not in times:
                bisect.insort(times, t)
                del times[:-_BOUGHT_KEPT]
            mine[product] = times
            if lead is not None and len(times) >= 3 and times[-1] == t:  # two intervals
                cycle = statistics.median(b - a for a, b in itertools.pairwise(times))
                if cycle >= _DAY:
                    due = t + cycle - min(lead, cycle / 2)
                    heapq.heappush(clock.timers, (due, customer, t, _REPLENISH + product, cycle))
        while len(mine) > _PRODUCTS_KEPT:
            del mine[next(iter(mine))]

    def _catalog_change(self, at: float, kind: str, value: float, out: list[Clocked]) -> None:
        """Apply a catalogue change at its event time; a price drop (by ``price_drop_min``
        at least, in the same currency) or a restock ticks every customer of the shard
        who viewed the product within the interest window before it and did not buy it
        since (their latest such view is the tick's ``window``)."""
        offers = self._offers
        if offers is None or offers.interest_s is None:
            return
        products = self._clock.products
        if kind.startswith(_PRICE):
            currency, product = kind[len(_PRICE) :].split(":", 1)
            previous, was_currency, in_stock = products.get(product, (None, None, None))
            products[product] = (value, currency, in_stock)
            if not (offers.price_drop and previous is not None and was_currency == currency):
                return
            if value > previous * (1.0 - offers.price_drop_min):
                return
            self._tick_viewers(at, product, offers.interest_s, out, price=value, previous=previous)
        else:
            product = kind[len(_STOCK) :]
            price, priced_in, was_in_stock = products.get(product, (None, None, None))
            products[product] = (price, priced_in, value == 1.0)
            if offers.back_in_stock and value == 1.0 and was_in_stock is False:
                self._tick_viewers(at, product, offers.interest_s, out)

    def _tick_viewers(
        self,
        at: float,
        product: str,
        interest_s: float,
        out: list[Clocked],
        *,
        price: float | None = None,
        previous: float | None = None,
    ) -> None:
        """Tick the viewers of ``product`` at ``at``: a price drop with ``price``, else a
        restock; forget views older than the interest window on the way."""
        clock = self._clock
        viewers = clock.interest.get(product)
        if not viewers:
            return
        kind: TickKind = "price_drop" if price is not None else "back_in_stock"
        since = at - interest_s
        for customer in sorted(viewers):
            times = viewers[customer]
            seen = [t for t in times if since <= t <= at]
            if not seen:
                if times[-1] < since:
                    del viewers[customer]
                continue
            bought = clock.bought.get(customer, {}).get(product, ())
            if any(seen[-1] < t <= at for t in bought):
                continue  # they bought it after looking at it
            tick = Tick(at, seen[-1], kind, product=product, price=price, previous=previous)
            out.append((customer, tick))
        if not viewers:
            del clock.interest[product]

    def _successor(self, product: str) -> str | None:
        """What replaces ``product`` if it was retired (through a chain of retirements)."""
        successors = self._clock.successors
        current = successors.get(product)
        for _ in range(_CHAIN_MAX):
            following = successors.get(current) if current is not None else None
            if following is None or following == product:
                break
            current = following
        return current

    def _sweep(self, now: float) -> None:
        """Once a day of event time, forget the views older than the interest window."""
        offers = self._offers
        if offers is None or offers.interest_s is None:
            return
        clock = self._clock
        day = now // _DAY
        if day <= clock.swept:
            return
        clock.swept = day
        since = now - offers.interest_s
        for product in list(clock.interest):
            viewers = clock.interest[product]
            for customer in [c for c, times in viewers.items() if times[-1] < since]:
                del viewers[customer]
            if not viewers:
                del clock.interest[product]

    def _arm_carts(self, changes: list[tuple[str, float]], after: float) -> None:
        """A timer ``after`` each cart change, but those the next change of the same
        batch supersedes."""
        carts = sorted(changes)
        for i, (customer, t) in enumerate(carts):
            following = carts[i + 1] if i + 1 < len(carts) else None
            if following is not None and following[0] == customer and following[1] <= t + after:
                # The cart changes again before this tick: it could only say "changed",
                # whatever the batching, so it is not worth a tick.
                continue
            heapq.heappush(self._clock.timers, (t + after, customer, t, "cart", 0.0))

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
