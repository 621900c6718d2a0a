"""Knobs of the synthetic world."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["GeneratorConfig"]


@dataclass(frozen=True, kw_only=True)
class GeneratorConfig:
    """Everything that shapes the generated traffic; equal configs give identical bytes."""

    seed: int = 7
    """Root of every random stream."""
    customers: int = 10_000
    """Number of known customers."""
    products: int = 5_000
    """Number of products in the catalogue."""
    malformed_share: float = 0.005
    """Share of emitted items that are malformed payloads."""
    churn_share: float = 0.25
    """Share of customers who go quiet for good at some point in the period."""
    currency: str = "EUR"
    """ISO-4217 currency of every price and amount."""
    co_purchase_pairs: int = 200
    """Planted complement pairs (capped by what a small catalogue can hold)."""
    price_ladders: int = 100
    """Planted up-sell ladders of 3-4 products."""
    pair_same_order: float = 0.45
    """Probability that a buyer of A also buys its complement B in the same order."""
    pair_follow_up: float = 0.35
    """Probability that a buyer of A without B buys B within the following two weeks."""
    upsell: float = 0.35
    """Probability of buying a higher rung after looking at a lower rung of a ladder."""
    replenisher_share: float = 0.45
    """Share of customers with a consumable taste who repurchase on a cycle."""
    purchase_gap_days: float = 35.0
    """Median days between purchase visits of a customer of average activity."""
    browse_gap_days: float = 25.0
    """Median days between browse-only visits of a customer of average activity."""
    anonymous_share: float = 0.05
    """Share of sessions by visitors who are not identified."""
    tax_rate: float = 0.2
    """Tax charged on revenue."""
    deletions: int = 5
    """Customers who file a Deletion Requested (then go silent)."""
    start: dt.datetime = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    """Period start assumed by ``ground_truth`` before any ``history`` or ``live`` call."""
    days: int = 365
    """Period length assumed by ``ground_truth`` and ``live`` to place churn dates."""
    live_sessions: int = 256
    """Concurrent sessions interleaved by ``live``."""
    live_time_scale: float = 3600.0
    """How much faster follow-ups (refunds, tickets) arrive in ``live`` than in event time."""
