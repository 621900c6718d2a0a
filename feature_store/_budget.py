"""The daily discount budget: idempotent reservations, each one Lua script in Redis.

Offers draw their discount from a budget per day. ``reserve`` grants an offer at most
what is left, atomically (one script: no two callers see the same remainder), and
remembers the grant under the offer's id: asked again for the same offer on the same day
(a retry, a replayed message, a second request), it returns the stored grant and spends
nothing more. So concurrent callers in any number of processes never grant more than the
budget in total, and the day's total is exactly the sum of its grants.

Money is kept in integer cents in Redis, so sums are exact: ``wanted`` is rounded to the
cent, the budget rounded down to it. The day's hash (``KeyLayout.budget``) expires a few
days after its last reservation.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Final, cast

import redis

from feature_store._errors import FeatureStoreUnavailable
from feature_store._keys import KeyLayout

__all__ = ["DiscountBudget"]

# KEYS[1] the day's hash; ARGV: the offer's field, wanted cents, budget cents, TTL seconds.
# Returns the cents granted to the offer (stored ones when it already has a grant).
_RESERVE: Final = """
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then return tonumber(stored) end
local spent = tonumber(redis.call('HGET', KEYS[1], '_spent') or '0')
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - spent)
if grant < 0 then grant = 0 end
redis.call('HSET', KEYS[1], ARGV[1], grant)
redis.call('HINCRBY', KEYS[1], '_spent', grant)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return grant
"""

_SPENT: Final = "_spent"
_DAY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MOST_CENTS: Final = 10**13  # Lua prints numbers with 14 digits: keep totals within them


def _day(day: str) -> str:
    if not _DAY.match(day):
        raise ValueError(f"day must be YYYY-MM-DD, got {day!r}")
    dt.date.fromisoformat(day)  # a real date
    return day


def _cents(amount: float, name: str, *, down: bool = False) -> int:
    if not (math.isfinite(amount) and amount >= 0):
        raise ValueError(f"{name} must be a finite amount >= 0, got {amount!r}")
    # Round away float noise first (0.29 * 100 is 28.999...), then to a whole cent.
    scaled = round(amount * 100, 6)
    cents = math.floor(scaled) if down else round(scaled)
    if cents > _MOST_CENTS:
        raise ValueError(f"{name} {amount!r} is too large")
    return cents


class DiscountBudget:
    """Reservations against a daily discount budget.

    Args:
        client: A redis-py client.
        layout: The key layout (and namespace).
        ttl_seconds: How long a day's reservations are kept after the latest one.

    Example::

        budget = DiscountBudget(redis.Redis.from_url(url), KeyLayout("shop"))
        budget.reserve("2025-05-01", "of-1", wanted=8.0, budget=10.0)  # 8.0
        budget.reserve("2025-05-01", "of-2", wanted=5.0, budget=10.0)  # 2.0: what is left
        budget.reserve("2025-05-01", "of-1", wanted=9.0, budget=10.0)  # 8.0 again, a retry
        budget.spent("2025-05-01")                                     # 10.0
    """

    def __init__(
        self,
        client: redis.Redis,
        layout: KeyLayout | None = None,
        *,
        ttl_seconds: int = 3 * 86_400,
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be >= 1, got {ttl_seconds!r}")
        self._client = client
        self.keys = layout or KeyLayout()
        self.ttl_seconds = ttl_seconds
        self._reserve = client.register_script(_RESERVE)

    def reserve(self, day: str, offer_id: str, wanted: float, budget: float) -> float:
        """Grant ``offer_id`` up to ``wanted`` from ``day``'s ``budget``; return the grant.

        The first reservation of an offer on a day grants ``min(wanted, budget - spent)``
        (never below 0) and records it; every later one returns that grant unchanged,
        whatever it asks for.

        Raises:
            ValueError: ``day`` is not ``YYYY-MM-DD``, or an amount is negative, not
                finite or too large.
            FeatureStoreUnavailable: Redis did not answer.
        """
        key = self.keys.budget(_day(day))
        args = (
            f"o:{offer_id}",
            _cents(wanted, "wanted"),
            _cents(budget, "budget", down=True),
            self.ttl_seconds,
        )
        try:
            granted = self._reserve(keys=[key], args=args)
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reserving a discount failed: {exc}") from exc
        return int(cast(int, granted)) / 100

    def reserve_many(self, wanted: list[tuple[str, str, float]], budget: float) -> list[float]:
        """``reserve`` for each ``(day, offer_id, wanted)``, in order, in one round trip.

        Raises:
            ValueError: as ``reserve``.
            FeatureStoreUnavailable: Redis did not answer.
        """
        if not wanted:
            return []
        cents = _cents(budget, "budget", down=True)
        pipe = self._client.pipeline(transaction=False)
        for day, offer_id, amount in wanted:
            key = self.keys.budget(_day(day))
            args = (f"o:{offer_id}", _cents(amount, "wanted"), cents, self.ttl_seconds)
            self._reserve(keys=[key], args=args, client=pipe)
        try:
            granted = pipe.execute()
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reserving discounts failed: {exc}") from exc
        return [int(cast(int, g)) / 100 for g in granted]

    def spent_many(self, days: list[str]) -> dict[str, float]:
        """``spent`` of each day, in one round trip.

        Raises:
            ValueError: a day is not ``YYYY-MM-DD``.
            FeatureStoreUnavailable: Redis did not answer.
        """
        pipe = self._client.pipeline(transaction=False)
        for day in days:
            pipe.hget(self.keys.budget(_day(day)), _SPENT)
        try:
            totals = pipe.execute() if days else []
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading the discount budget failed: {exc}") from exc
        return {day: int(total or 0) / 100 for day, total in zip(days, totals, strict=True)}

    def spent(self, day: str) -> float:
        """What ``day``'s reservations granted in total.

        Raises:
            ValueError: ``day`` is not ``YYYY-MM-DD``.
            FeatureStoreUnavailable: Redis did not answer.
        """
        try:
            total = cast("bytes | None", self._client.hget(self.keys.budget(_day(day)), _SPENT))
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"reading the discount budget failed: {exc}") from exc
        return int(total or 0) / 100
