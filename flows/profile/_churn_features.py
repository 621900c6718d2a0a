"""The churn model's inputs: numbers read off a customer's profile as of an event time."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Final

from flows.profile._format import MONEY_SCALE, NEVER

if TYPE_CHECKING:
    from flows.profile._customer import CustomerProfile

__all__ = ["CHURN_FEATURES", "churn_features"]

_DAY: Final = 86_400.0
_YEAR: Final = 365 * _DAY

CHURN_FEATURES: Final = (
    "recency_days",
    "days_since_seen",
    "tenure_days",
    "orders_total",
    "orders_365d",
    "revenue_365d",
    "aov",
    "purchase_gap_days",
    "overdue_ratio",
    "orders_30d",
    "views_7d",
    "views_30d",
    "adds_30d",
    "sessions_30d",
    "return_rate",
    "open_tickets",
    "nps_detractor",
)
"""The feature names, in a fixed order (a batch model's columns)."""


def churn_features(p: CustomerProfile, t: float) -> dict[str, float]:
    """Return the churn model's features of profile ``p`` as read at event time ``t``.

    Everything is as of ``t``, not of the latest event: a silent customer's features age
    as time passes (``recency_days`` grows, ``views_7d`` falls to 0), and orders after
    ``t`` (folded already when a score arrives late) are left out. ``purchase_gap_days``
    is the customer's mean time between orders over the year, and ``overdue_ratio`` the
    current gap over it: the strongest signal of a lapse.
    """
    now = dt.datetime.fromtimestamp(t, dt.UTC)
    first = p._first if p._first != NEVER else t
    since = t - _YEAR
    year: list[float] = []
    revenue_year = 0
    after, revenue_after = 0, 0  # orders after t (all recent, so all in p._orders)
    for ts, units in p._orders.values():
        if ts > t:
            after += 1
            revenue_after += units
        elif ts > since:
            year.append(ts)
            revenue_year += units
    year.sort()
    last_purchase = year[-1] if year else p._last_purchase if p._last_purchase <= t else NEVER
    if last_purchase == NEVER:
        last_purchase = first
    recency = max(t - last_purchase, 0.0) / _DAY
    gap = (year[-1] - year[0]) / _DAY / (len(year) - 1) if len(year) > 1 else 0.0
    views = p._views.fold(now)
    orders_total = p._orders_total - after
    revenue_total = p._revenue - revenue_after
    open_tickets = sum(1 for _, _, is_open in p._tickets.values() if is_open)
    return {
        "recency_days": recency,
        "days_since_seen": max(t - (p._last if p._last != NEVER else t), 0.0) / _DAY,
        "tenure_days": max(t - first, 0.0) / _DAY,
        "orders_total": float(orders_total),
        "orders_365d": float(len(year)),
        "revenue_365d": revenue_year / MONEY_SCALE,
        "aov": revenue_total / MONEY_SCALE / orders_total if orders_total > 0 else 0.0,
        "purchase_gap_days": gap,
        "overdue_ratio": recency / gap if gap > 0 else 0.0,
        "orders_30d": float(p._orders_win.fold(now)["30d"]),
        "views_7d": float(views["7d"]),
        "views_30d": float(views["30d"]),
        "adds_30d": float(p._adds.fold(now)["30d"]),
        "sessions_30d": float(p._session_win.fold(now)["30d"]),
        "return_rate": min(p._refunded_orders / orders_total, 1.0) if orders_total > 0 else 0.0,
        "open_tickets": float(open_tickets),
        "nps_detractor": 1.0 if p._nps is not None and p._nps[2] <= 6 else 0.0,
    }
