"""Loyalty points and tiers on event time: one ``LoyaltyAccount`` per customer.

Pure: no clock, no I/O; every method takes the event time (epoch seconds or an aware
datetime). The account's clock is the latest event time it has seen.

Rules, as a function of the set of purchases and refunds (``W`` is the policy's window,
365 days by default):

* **Points.** An order holds ``floor(net * points_per_unit)`` points, where ``net`` is its
  revenue minus the refunds that apply to it, never below zero. Points are lifetime: they
  stay when the order ages out of the window. Money is kept in integer 1/10,000 units and
  the rate as an exact fraction, so ``floor`` never suffers from float rounding and sums do
  not depend on order.
* **Refunds** apply to the order with their ``order_id`` when the two are less than ``W``
  apart in event time. Refunds are deduplicated by ``refund_id`` (the event's
  ``return_id``; the first copy wins), or by ``(time, amount)`` without one; together they
  take the order's net down to zero at most, so a second full refund changes nothing. A
  refund of an order the account does not know is kept for ``W + lateness`` in case the
  order arrives late; until then it removes no points and no spend.
* **Spend and tier.** Trailing spend at the clock ``T`` is the net of the orders with
  ``T - W < t <= T``; the tier is the highest one whose threshold the spend reaches. A
  tier can therefore drop with no event at all: ``next_change_at`` says when, for a timer,
  and ``advance`` moves the clock.
* **Duplicates.** A second purchase with a remembered ``order_id`` is ignored (the first
  one wins), as is a refund with a remembered key.

Points are only earned and refunded here: redemption and expiry are not modelled.

Order independence: any arrival order in which every event is less than ``lateness``
behind the clock when it arrives ends in the same state as the in-order one; so does any
order of events that all lie within one window. Memory: purchases and refunds are
remembered for ``W + lateness`` after their event time, then forgotten (an order's points
stay, in a running total); a duplicate or refund arriving later than that is not
recognised.

Example:
    >>> day = 86_400.0
    >>> account = LoyaltyAccount()
    >>> account.purchase("O-1", 0.0, 450.0) is None
    True
    >>> account.purchase("O-2", 30 * day, 120.5)
    TierChange(old='Bronze', new='Silver', t=2592000.0, direction='upgrade')
    >>> account.points, account.spend, account.tier
    (570, 570.5, 'Silver')
    >>> account.next_change_at() / day  # O-1 leaves the trailing year
    365.0
    >>> account.advance(365 * day)
    TierChange(old='Silver', new='Bronze', t=31536000.0, direction='downgrade')
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, Literal

__all__ = [
    "DEFAULT_TIERS",
    "LoyaltyAccount",
    "LoyaltyPolicy",
    "TierChange",
]

Moment = float | dt.datetime
"""An event time: epoch seconds, or a timezone-aware datetime."""

MONEY_SCALE: Final = 10_000
"""Money is kept in integer 1/10,000 units, so sums are exact in any order."""

DEFAULT_TIERS: Final[tuple[tuple[str, float], ...]] = (
    ("Bronze", 0.0),
    ("Silver", 500.0),
    ("Gold", 1_500.0),
    ("Platinum", 5_000.0),
)
"""Tier names and the trailing-window spend each needs, lowest first."""

_NEVER: Final = float("-inf")

_RefundKey = str | tuple[float, int]
"""A refund's dedupe key: its ``refund_id``, or ``(time, amount in units)``."""


def _seconds(moment: Moment) -> float:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment.isoformat()}: use timezone-aware UTC")
        return moment.timestamp()
    seconds = float(moment)
    if not math.isfinite(seconds):
        raise ValueError(f"event time {moment!r} is not finite")
    return seconds


def _units(amount: float, name: str) -> int:
    value = float(amount)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite amount >= 0, got {amount!r}")
    return round(value * MONEY_SCALE)


@dataclass(frozen=True, slots=True)
class LoyaltyPolicy:
    """How points are earned and which trailing spend each tier needs.

    Attributes:
        points_per_unit: Points per 1.00 of revenue (taken as the decimal it prints as).
        tiers: ``(name, spend threshold)`` pairs, lowest first; the first threshold is 0.
        window: How far back spend counts towards the tier.

    Raises:
        ValueError: a rate is negative or not finite, the tiers are empty, a name is empty
            or repeated, the first threshold is not 0, the thresholds do not increase, or
            the window is not positive.

    Example:
        >>> policy = LoyaltyPolicy(points_per_unit=2.5)
        >>> policy.points_for(19.99), policy.tier_for(1_499.99), policy.tier_for(1_500)
        (49, 'Silver', 'Gold')
        >>> LoyaltyPolicy(tiers=(("Member", 0.0), ("VIP", 0.0)))
        Traceback (most recent call last):
        ...
        ValueError: tier thresholds must increase, got [0.0, 0.0]
    """

    points_per_unit: float = 1.0
    tiers: tuple[tuple[str, float], ...] = DEFAULT_TIERS
    window: dt.timedelta = dt.timedelta(days=365)
    _rate: tuple[int, int] = field(init=False, repr=False, compare=False)

    @classmethod
    def from_text(cls, tiers: str, points_per_unit: float = 1.0) -> LoyaltyPolicy:
        """The policy of tiers written ``name:threshold,...`` (as settings hold them).

        Raises:
            ValueError: a part is not ``name:threshold``, or the tiers break a rule above.

        Example:
            >>> LoyaltyPolicy.from_text("Member:0, VIP:1000").tiers
            (('Member', 0.0), ('VIP', 1000.0))
        """
        parsed: list[tuple[str, float]] = []
        for part in tiers.split(","):
            name, sep, threshold = part.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"loyalty tier {part!r} is not name:threshold")
            parsed.append((name.strip(), float(threshold)))
        return cls(points_per_unit=points_per_unit, tiers=tuple(parsed))

    _thresholds: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rate = float(self.points_per_unit)
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"points_per_unit must be finite and >= 0, got {rate!r}")
        tiers = tuple((name, float(limit)) for name, limit in self.tiers)
        object.__setattr__(self, "tiers", tiers)  # a list given is stored as a tuple
        if not tiers:
            raise ValueError("a policy needs at least one tier")
        names = [name for name, _ in tiers]
        if any(not name for name in names) or len(set(names)) != len(names):
            raise ValueError(f"tier names must be non-empty and unique, got {names!r}")
        limits = [limit for _, limit in tiers]
        if not all(math.isfinite(x) for x in limits):
            raise ValueError(f"tier thresholds must be finite, got {limits!r}")
        if limits[0] != 0:
            raise ValueError(f"the first tier threshold must be 0, got {limits[0]!r}")
        if any(b <= a for a, b in itertools.pairwise(limits)):
            raise ValueError(f"tier thresholds must increase, got {limits!r}")
        if self.window <= dt.timedelta(0):
            raise ValueError("window must be positive")
        # 0.1 is taken as 1/10, not as the binary fraction nearest to it.
        exact = Fraction(repr(rate))
        object.__setattr__(self, "_rate", (exact.numerator, exact.denominator * MONEY_SCALE))
        object.__setattr__(self, "_thresholds", tuple(round(x * MONEY_SCALE) for x in limits))

    def _points(self, units: int) -> int:
        numerator, denominator = self._rate
        return units * numerator // denominator

    def _tier_index(self, units: int) -> int:
        return bisect.bisect_right(self._thresholds, units) - 1

    def points_for(self, amount: float) -> int:
        """Points an order of ``amount`` earns: ``floor(amount * points_per_unit)``."""
        return self._points(_units(amount, "amount"))

    def tier_for(self, spend: float) -> str:
        """The tier a trailing spend of ``spend`` qualifies for."""
        return self.tiers[self._tier_index(_units(spend, "spend"))][0]


@dataclass(frozen=True, slots=True)
class TierChange:
    """A customer's tier changed at event time ``t`` (epoch seconds): the account's clock.

    ``direction`` is ``"upgrade"`` or ``"downgrade"``; it names no customer.
    """

    old: str
    new: str
    t: float
    direction: Literal["upgrade", "downgrade"]


@dataclass(slots=True)
class _Order:
    t: float
    revenue: int  # units
    refunded: int  # units of the refunds applied so far, at most ``revenue``


class LoyaltyAccount:
    """One customer's points, trailing spend and tier, folded from orders on event time.

    Each call returns the ``TierChange`` between the tier before and after it, if any
    (several steps in one call, say after a long silence, are reported as one change at
    the call's time; call ``advance`` at ``next_change_at`` to see each at its own time).
    The module docstring gives the rules, order independence and memory bounds.

    Args:
        policy: Earning rate, tiers and window.
        lateness: An event arriving less than this behind the clock still gives exactly
            the in-order state; purchases and refunds are remembered this much longer
            than the window. Use the flow's allowed lateness.

    Example:
        >>> import datetime as dt
        >>> t0 = dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC)
        >>> account = LoyaltyAccount()
        >>> account.purchase("O-1", t0, 1_600.00)
        TierChange(old='Bronze', new='Gold', t=1746100800.0, direction='upgrade')
        >>> account.purchase("O-1", t0, 1_600.00) is None  # a duplicate
        True
        >>> account.refund("O-1", t0 + dt.timedelta(days=3), 200.0, refund_id="R-1")
        TierChange(old='Gold', new='Silver', t=1746360000.0, direction='downgrade')
        >>> account.points, account.spend
        (1400, 1400.0)
    """

    __slots__ = (
        "_banked",
        "_clock",
        "_due",
        "_lateness",
        "_live",
        "_orders",
        "_policy",
        "_refunds",
        "_spend",
        "_window",
    )

    def __init__(
        self,
        policy: LoyaltyPolicy | None = None,
        *,
        lateness: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        if lateness < dt.timedelta(0):
            raise ValueError("lateness must not be negative")
        self._policy = policy if policy is not None else LoyaltyPolicy()
        self._window = self._policy.window.total_seconds()
        self._lateness = lateness.total_seconds()
        self._clock = _NEVER
        self._banked = 0  # points of forgotten orders
        self._live = 0  # points of remembered orders
        self._spend = 0  # units of net revenue in the trailing window
        self._orders: dict[str, _Order] = {}
        self._refunds: dict[str, dict[_RefundKey, tuple[float, int]]] = {}
        # The earliest clock at which something ages out or is forgotten (derived).
        self._due = math.inf

    @property
    def policy(self) -> LoyaltyPolicy:
        """The account's policy."""
        return self._policy

    @property
    def clock(self) -> float:
        """The latest event time seen (epoch seconds); ``-inf`` before the first."""
        return self._clock

    @property
    def points(self) -> int:
        """The points balance."""
        return self._banked + self._live

    @property
    def spend(self) -> float:
        """Net revenue of the orders in the trailing window at the clock."""
        return self._spend / MONEY_SCALE

    @property
    def tier(self) -> str:
        """The current tier's name."""
        return self._policy.tiers[self._policy._tier_index(self._spend)][0]

    def purchase(self, order_id: str, t: Moment, revenue: float) -> TierChange | None:
        """Earn the points and spend of an order at event time ``t``.

        Raises:
            ValueError: ``revenue`` is negative or not finite, or ``t`` is not a valid time
                (nothing changes then).
        """
        at = _seconds(t)
        units = _units(revenue, "revenue")
        before = self._tier_index()
        self._advance(at)
        if order_id not in self._orders:
            self._add_order(order_id, at, units)
        return self._change(before)

    def refund(
        self, order_id: str, t: Moment, amount: float, *, refund_id: str | None = None
    ) -> TierChange | None:
        """Give back ``amount`` of an order at event time ``t``: its points and its spend.

        Raises:
            ValueError: ``amount`` is negative or not finite, or ``t`` is not a valid time
                (nothing changes then).
        """
        at = _seconds(t)
        units = _units(amount, "amount")
        before = self._tier_index()
        self._advance(at)
        key: _RefundKey = refund_id if refund_id is not None else (at, units)
        known = self._refunds.setdefault(order_id, {})
        if key not in known:
            if at + self._window + self._lateness > self._clock:
                known[key] = (at, units)
                self._due = min(self._due, at + self._window + self._lateness)
            order = self._orders.get(order_id)
            if order is not None and abs(at - order.t) < self._window:
                self._settle(order, order.refunded + units)
        if not known:
            del self._refunds[order_id]
        return self._change(before)

    def advance(self, t: Moment) -> TierChange | None:
        """Move the clock to event time ``t`` (if later), ageing spend out of the window."""
        before = self._tier_index()
        self._advance(_seconds(t))
        return self._change(before)

    def next_change_at(self) -> float | None:
        """Event time at which the tier drops if nothing else happens; ``None`` if never.

        At that time (epoch seconds) ``advance`` reports the drop, so a timer set for it
        fires once per step down.
        """
        policy = self._policy
        index = policy._tier_index(self._spend)
        if index == 0:
            return None
        floor = policy._thresholds[index]
        window = self._window
        clock = self._clock
        remaining = self._spend
        counted = sorted(
            (o.t, o.revenue - o.refunded)
            for o in self._orders.values()
            if o.t + window > clock and o.revenue > o.refunded
        )
        for t, net in counted:
            remaining -= net
            if remaining < floor:
                return t + window
        return None  # pragma: no cover - spend is the sum of the counted nets

    def _tier_index(self) -> int:
        return self._policy._tier_index(self._spend)

    def _change(self, before: int) -> TierChange | None:
        after = self._tier_index()
        if after == before:
            return None
        tiers = self._policy.tiers
        direction: Literal["upgrade", "downgrade"] = "upgrade" if after > before else "downgrade"
        return TierChange(tiers[before][0], tiers[after][0], self._clock, direction)

    def _add_order(self, order_id: str, at: float, units: int) -> None:
        window, clock = self._window, self._clock
        refunded = sum(
            amount
            for when, amount in self._refunds.get(order_id, {}).values()
            if abs(when - at) < window
        )
        net = units - min(units, refunded)
        points = self._policy._points(net)
        if at + window + self._lateness <= clock:
            # Later than any guarantee: the points count, nothing is remembered.
            self._banked += points
            return
        self._orders[order_id] = _Order(at, units, units - net)
        self._live += points
        if at + window > clock:
            self._spend += net
            self._due = min(self._due, at + window)
        else:
            self._due = min(self._due, at + window + self._lateness)

    def _settle(self, order: _Order, refunded: int) -> None:
        """Set an order's applied refunds (capped at its revenue) and move its deltas."""
        refunded = min(order.revenue, refunded)
        if refunded == order.refunded:
            return
        points = self._policy._points
        old_net, new_net = order.revenue - order.refunded, order.revenue - refunded
        self._live += points(new_net) - points(old_net)
        if order.t + self._window > self._clock:
            self._spend += new_net - old_net
        order.refunded = refunded

    def _advance(self, at: float) -> None:
        old = self._clock
        if at <= old:
            return
        self._clock = at
        if at >= self._due:
            self._expire(old, at)

    def _expire(self, old: float, clock: float) -> None:
        """Age orders out of the spend and forget what is older than window + lateness."""
        window, keep = self._window, self._window + self._lateness
        due = math.inf
        for order_id, order in list(self._orders.items()):
            aged = order.t + window
            if old < aged <= clock:
                self._spend -= order.revenue - order.refunded
            if order.t + keep <= clock:
                points = self._policy._points(order.revenue - order.refunded)
                self._live -= points
                self._banked += points
                del self._orders[order_id]
            else:
                due = min(due, aged if aged > clock else order.t + keep)
        for order_id, refunds in list(self._refunds.items()):
            stale = [key for key, (when, _) in refunds.items() if when + keep <= clock]
            for key in stale:
                del refunds[key]
            if not refunds:
                del self._refunds[order_id]
            else:
                due = min(due, *(when + keep for when, _ in refunds.values()))
        self._due = due

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoyaltyAccount):
            return NotImplemented
        return (
            self._policy == other._policy
            and self._lateness == other._lateness
            and self._clock == other._clock
            and self._banked == other._banked
            and self._live == other._live
            and self._spend == other._spend
            and self._orders == other._orders
            and self._refunds == other._refunds
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"LoyaltyAccount(tier={self.tier!r}, points={self.points}, spend={self.spend:.2f}, "
            f"clock={self._clock!r})"
        )
