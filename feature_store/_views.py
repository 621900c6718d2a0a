"""Read-time folding: turn stored features into values as of a reader's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

from feature_store._windows import WINDOWS, fold, fold_log

__all__ = ["WINDOWED", "folded"]

WINDOWED: Final = ("views", "adds", "orders", "sessions")
"""Activity counted in windows: ``<name>_1h``, ``_24h``, ``_7d``, ``_30d``."""

_YEAR: Final = dt.timedelta(days=365)
_DAY_S: Final = 86_400.0


def folded(features: Mapping[str, str], now: dt.datetime) -> dict[str, int | float | None]:
    """Return the time-relative features of a customer as of ``now``.

    Windows are folded from their buckets, the 365-day order count and revenue from the
    orders log, and recencies in days from the stored times, so they are right whatever
    time has passed since the last event (seven days after the last order, ``orders_7d``
    is 0).

    Example:
        >>> at = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
        >>> folded({"last_purchase_at": "2025-04-21T00:00:00Z"}, at)["recency_days"]
        10.0
    """
    out: dict[str, int | float | None] = {}
    for name in WINDOWED:
        raw = features.get(f"win:{name}")
        counts = fold(raw, now) if raw else dict.fromkeys(WINDOWS, 0)
        for window, count in counts.items():
            out[f"{name}_{window}"] = count
    log = features.get("orders_log")
    count, revenue = fold_log(log, now, _YEAR) if log else (0, 0.0)
    out["orders_365d"] = count
    out["revenue_365d"] = round(revenue, 2)
    out["recency_days"] = _days_since(features.get("last_purchase_at"), now)
    out["days_since_seen"] = _days_since(features.get("last_seen"), now)
    return out


def _days_since(stamp: str | None, now: dt.datetime) -> float | None:
    if not stamp:
        return None
    then = dt.datetime.fromisoformat(stamp)
    return round((now - then).total_seconds() / _DAY_S, 4)
