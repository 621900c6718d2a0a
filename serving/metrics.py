"""Prometheus metrics of the serving API.

With several worker processes (``shopkeeper serve --workers N``) set
``PROMETHEUS_MULTIPROC_DIR``: every process then writes its values to files there and
``/metrics`` adds them up (``prometheus_client`` multiprocess mode), so a scrape sees the
whole server, whichever worker answers it. Gauges say how processes combine.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

__all__ = ["ServingMetrics", "exposition_registry"]


def exposition_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What ``/metrics`` shows: every worker's values in multiprocess mode, else ``own``."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return own
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return combined


# Sub-millisecond resolution where the budget is (p99 <= 5 ms), coarse beyond.
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


class ServingMetrics:
    """What the serving processes export.

    Args:
        registry: Where to register; tests pass a fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.latency = Histogram(
            "shopkeeper_serving_request_duration_seconds",
            "Time from request to response, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.responses = Counter(
            "shopkeeper_serving_responses_total",
            "Responses by route template and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "shopkeeper_serving_fallbacks_total",
            "Answers not made by the model, by route and reason (unknown_customer, "
            "no_consent, no_history, no_model, redis_unavailable, ...).",
            ["route", "reason"],
            registry=registry,
        )
        self.sources = Counter(
            "shopkeeper_serving_answers_total",
            "Answers by route and what made them (als, fold_in, complements, trending, ...).",
            ["route", "source"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "shopkeeper_serving_redis_errors_total",
            "Redis calls that failed or timed out, by operation.",
            ["operation"],
            registry=registry,
        )
        self.model_info = Gauge(
            "shopkeeper_serving_model_info",
            "1 for the model version this process serves.",
            ["version"],
            registry=registry,
            multiprocess_mode="liveall",  # one series per process: do they all agree?
        )
        self.model_age = Gauge(
            "shopkeeper_serving_model_age_seconds",
            "Seconds since the served model was trained (its creation time).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.model_loads = Counter(
            "shopkeeper_serving_model_loads_total",
            "Model versions loaded after a promotion or rollback, by outcome (loaded, failed).",
            ["outcome"],
            registry=registry,
        )
        self.catalog_items = Gauge(
            "shopkeeper_serving_catalog_items",
            "Products whose live catalogue facts (stock, lifecycle, price) serving knows.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.unavailable_items = Gauge(
            "shopkeeper_serving_unavailable_items",
            "Model items not recommended now: out of stock or retired.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.trending_age = Gauge(
            "shopkeeper_serving_trending_age_seconds",
            "Seconds since the trending lists were last read from Redis.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.offers_sent = Counter(
            "shopkeeper_serving_offers_sent_total",
            "Next best offers reported to the flow as `Offer Sent` events, by outcome "
            "(delivered, failed, not_queued).",
            ["outcome"],
            registry=registry,
        )
        self.next_best_offers = Counter(
            "shopkeeper_serving_next_best_offer_total",
            "Next-best-offer answers by outcome (offered, holdout, suppressed, not_worth_it, "
            "no_action, unknown_customer, no_consent, redis_unavailable, corrupt_profile) and "
            "the trigger of the offer or of the best action held back (none without one).",
            ["outcome", "trigger"],
            registry=registry,
        )
        self.offer_rejections = Counter(
            "shopkeeper_serving_next_best_offer_rejections_total",
            "Eligible actions not offered, by trigger and why (a guardrail's reason, "
            "lower_expected_value, negative_expected_value).",
            ["trigger", "reason"],
            registry=registry,
        )
        self.offer_budget_spent = Gauge(
            "shopkeeper_serving_offer_budget_spent",
            "Discount granted today (UTC) from the daily offer budget, in the shop's "
            "currency, as last read by a next-best-offer request.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.offer_budget_short = Counter(
            "shopkeeper_serving_offer_budget_short_total",
            "Offers whose discount the daily budget could not cover in full, by trigger.",
            ["trigger"],
            registry=registry,
        )
