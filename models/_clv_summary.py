"""Frequency, recency, age and spend of every customer: the input of BG/NBD and Gamma-Gamma."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

import events

__all__ = ["DAYS_PER_UNIT", "RFMSummary", "TimeUnit", "summarise_orders", "summarise_purchases"]

TimeUnit = Literal["days", "weeks"]
DAYS_PER_UNIT: Final[dict[str, float]] = {"days": 1.0, "weeks": 7.0}
"""Length of one time unit in days."""

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True, eq=False)
class RFMSummary:
    """One row per customer, in the time unit ``unit``, observed until ``observation_end``.

    The conventions are Fader and Hardie's, and those of the ``lifetimes`` library: time is
    counted in whole days (UTC dates), several purchases on one day are one purchase of
    their summed amount, and the first purchase day is not a repeat.

    Attributes:
        customer_ids: Customer of each row, in order of first purchase (ties by id).
        frequency: Repeat purchase days: distinct purchase days minus one (``x``).
        recency: From the first to the last purchase day (``t_x``).
        T: From the first purchase day to the observation end, which is included.
        monetary_value: Mean amount of the repeat purchase days; 0 when ``frequency`` is 0.
        unit: ``"days"`` or ``"weeks"``.
        observation_end: The last day observed (purchases on it count).

    Example:
        >>> import datetime as dt
        >>> noon = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
        >>> summary = summarise_purchases(
        ...     [("ann", noon, 10.0), ("ann", noon + dt.timedelta(weeks=2), 20.0),
        ...      ("bob", noon, 5.0)], until=dt.date(2025, 1, 29))
        >>> len(summary), summary.returning().customer_ids, summary.T.tolist()
        (2, ('ann',), [4.0, 4.0])
    """

    customer_ids: tuple[str, ...]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    unit: TimeUnit
    observation_end: dt.date

    def __len__(self) -> int:
        return len(self.customer_ids)

    def returning(self) -> RFMSummary:
        """The customers with at least one repeat purchase (what Gamma-Gamma is fitted on)."""
        keep = self.frequency > 0
        return dataclasses.replace(
            self,
            customer_ids=tuple(c for c, k in zip(self.customer_ids, keep, strict=True) if k),
            frequency=self.frequency[keep],
            recency=self.recency[keep],
            T=self.T[keep],
            monetary_value=self.monetary_value[keep],
        )


def summarise_purchases(
    purchases: Iterable[tuple[str, dt.datetime, float]],
    *,
    until: dt.date | None = None,
    unit: TimeUnit = "weeks",
) -> RFMSummary:
    """Summarise ``(customer_id, timestamp, amount)`` purchases for BG/NBD and Gamma-Gamma.

    Args:
        purchases: Purchases in any order; timestamps must be timezone-aware.
        until: Last day of the observation period, included; later purchases are
            ignored. Default: the day of the last purchase.
        unit: Time unit of ``recency`` and ``T``.

    Returns:
        The summary; customers whose first purchase is after ``until`` are absent.

    Raises:
        ValueError: A naive timestamp, a negative amount, an unknown unit, or no purchase
            on or before ``until``.

    Example:
        >>> import datetime as dt
        >>> def day(d): return dt.datetime(2025, 1, d, 12, tzinfo=dt.UTC)
        >>> s = summarise_purchases(
        ...     [("ann", day(1), 10.0), ("ann", day(8), 30.0), ("ann", day(8), 2.0),
        ...      ("bob", day(3), 5.0)],
        ...     until=dt.date(2025, 1, 15), unit="days")
        >>> s.customer_ids, s.frequency.tolist(), s.recency.tolist(), s.T.tolist()
        (('ann', 'bob'), [1.0, 0.0], [7.0, 0.0], [14.0, 12.0])
        >>> s.monetary_value.tolist()
        [32.0, 0.0]
    """
    if unit not in DAYS_PER_UNIT:
        raise ValueError(f"unknown time unit {unit!r}: use one of {sorted(DAYS_PER_UNIT)}")
    last_day = until.toordinal() if until is not None else None
    # customer -> {day ordinal -> summed amount}
    days: dict[str, dict[int, float]] = {}
    for customer, timestamp, amount in purchases:
        if timestamp.tzinfo is None:
            raise ValueError(f"naive timestamp {timestamp.isoformat()} of {customer!r}")
        if amount < 0:
            raise ValueError(f"negative amount {amount} of {customer!r}")
        day = timestamp.astimezone(dt.UTC).toordinal()
        if last_day is not None and day > last_day:
            continue
        spend = days.setdefault(customer, {})
        spend[day] = spend.get(day, 0.0) + amount
    if not days:
        raise ValueError("no purchase on or before the observation end")
    end = last_day if last_day is not None else max(max(d) for d in days.values())
    return _summary(days, end, unit)


def summarise_orders(
    orders: Iterable[events.Event],
    *,
    until: dt.date | None = None,
    unit: TimeUnit = "weeks",
) -> RFMSummary:
    """Summarise the ``Order Completed`` events among ``orders`` (other events are skipped).

    The customer is ``customer_key`` (the anonymous id when no customer id is known) and
    the amount is ``properties.revenue``. Refunds are not subtracted.

    Args:
        orders: Decoded events; all orders must share one currency.
        until: Last day of the observation period, included. Default: the last order's day.
        unit: Time unit of ``recency`` and ``T``.

    Raises:
        ValueError: Orders in more than one currency, or no order on or before ``until``.

    Example:
        >>> import datetime as dt, events
        >>> line = events.Product(product_id="p-1", price=20.0, currency="EUR")
        >>> order = events.OrderCompleted(
        ...     message_id="m-1", timestamp=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
        ...     channel="web", customer_id="c-1", properties=events.OrderCompletedProperties(
        ...         order_id="o-1", revenue=20.0, currency="EUR", products=[line]))
        >>> s = summarise_orders([order], until=dt.date(2025, 3, 15))
        >>> s.customer_ids, s.T.tolist()
        (('c-1',), [2.0])
    """
    currencies: set[str] = set()

    def purchases() -> Iterable[tuple[str, dt.datetime, float]]:
        for event in orders:
            if isinstance(event, events.OrderCompleted) and event.customer_key is not None:
                currencies.add(event.properties.currency)
                if len(currencies) > 1:
                    raise ValueError(f"orders in several currencies: {sorted(currencies)}")
                yield event.customer_key, event.timestamp, event.properties.revenue

    return summarise_purchases(purchases(), until=until, unit=unit)


def _summary(days: dict[str, dict[int, float]], end: int, unit: TimeUnit) -> RFMSummary:
    ids = sorted(days, key=lambda c: (min(days[c]), c))
    n = len(ids)
    frequency = np.empty(n)
    recency = np.empty(n)
    age = np.empty(n)
    monetary = np.empty(n)
    for i, customer in enumerate(ids):
        spend = days[customer]
        first = min(spend)
        frequency[i] = len(spend) - 1
        recency[i] = max(spend) - first
        age[i] = end - first
        repeat = sum(amount for day, amount in spend.items() if day != first)
        monetary[i] = repeat / (len(spend) - 1) if len(spend) > 1 else 0.0
    scale = DAYS_PER_UNIT[unit]
    return RFMSummary(
        customer_ids=tuple(ids),
        frequency=frequency,
        recency=recency / scale,
        T=age / scale,
        monetary_value=monetary,
        unit=unit,
        observation_end=dt.date.fromordinal(end),
    )
