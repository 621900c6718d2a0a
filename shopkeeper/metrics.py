"""Prometheus metrics of the ``shopkeeper`` tools (the traffic generator)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter

__all__ = ["ToolMetrics"]


class ToolMetrics:
    """The counters the command-line tools move.

    Args:
        registry: Where to register; tests pass a fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.produced = Counter(
            "shopkeeper_generator_events_total",
            "Generated items handed to Kafka, by topic and whether the payload is valid.",
            ["topic", "validity"],
            registry=registry,
        )
        self.delivery_errors = Counter(
            "shopkeeper_generator_delivery_errors_total",
            "Generated items Kafka failed to store, by topic.",
            ["topic"],
            registry=registry,
        )
