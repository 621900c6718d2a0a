"""Prometheus metrics of the feature flow.

Labels are bounded: topic, event name, outcome, reason, partition; never an id.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["FlowMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FRESHNESS_BUCKETS = (
    0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
    30.0, 300.0, 3600.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class FlowMetrics:
    """Every metric the feature flow moves.

    Args:
        registry: Where to register; tests pass a fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.events = Counter(
            "shopkeeper_flow_events_total",
            "Input messages by topic, event name and outcome "
            "(applied, duplicate, rejected, ignored_erased).",
            ["topic", "event", "outcome"],
            registry=registry,
        )
        self.dlq = Counter(
            "shopkeeper_flow_dlq_total",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.freshness = Histogram(
            "shopkeeper_flow_freshness_seconds",
            "Redis write time minus event time, per applied event.",
            buckets=_FRESHNESS_BUCKETS,
            registry=registry,
        )
        self.lag = Gauge(
            "shopkeeper_flow_consumer_lag_messages",
            "Messages behind the partition's high watermark.",
            ["topic", "partition"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "shopkeeper_flow_write_batch_size",
            "Feature writes per Redis pipeline.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.write_latency = Histogram(
            "shopkeeper_flow_redis_write_seconds",
            "Time of one pipelined feature write.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.write_errors = Counter(
            "shopkeeper_flow_redis_errors_total",
            "Failed feature writes (each retried).",
            registry=registry,
        )
        self.writes = Counter(
            "shopkeeper_flow_feature_writes_total",
            "Feature hash writes by kind and outcome (written, stale, refused_erased).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.churn_labels = Counter(
            "shopkeeper_churn_labels_total",
            "Churn examples labelled, by label (churned: no purchase within the horizon).",
            ["label"],
            registry=registry,
        )
        self.churn_scores = Counter(
            "shopkeeper_churn_scores_total",
            "Churn probabilities computed (one per customer per batch, and per rescoring).",
            registry=registry,
        )
        self.churn_health = Gauge(
            "shopkeeper_churn_model_health",
            "Prequential health of the online churn model: roc_auc and calibration over "
            "the latest 50,000 examples, log_loss and brier over all.",
            ["metric"],
            registry=registry,
        )
        self.churn_calibration = Gauge(
            "shopkeeper_churn_model_calibration_ratio",
            "Observed churn rate by decile of predicted probability (latest 50,000 examples).",
            ["decile"],
            registry=registry,
        )
        self.churn_examples = Gauge(
            "shopkeeper_churn_model_examples",
            "Examples the churn model has learned: its version.",
            registry=registry,
        )
        self.churn_checkpoints = Counter(
            "shopkeeper_churn_model_checkpoints_total",
            "Versioned churn model checkpoints written.",
            registry=registry,
        )
        self.offer_decisions = Counter(
            "shopkeeper_offers_decisions_total",
            "Offer decisions on event time, by trigger, outcome (fired, suppressed) and "
            "reason (the trigger's reason code, or why it was suppressed).",
            ["trigger", "outcome", "reason"],
            registry=registry,
        )
        self.offers_recorded = Counter(
            "shopkeeper_offers_recorded_total",
            "Offers made outside the flow (`Offer Sent`: the next best offer) recorded in "
            "the contact history, by trigger (`other` for one the flow does not know).",
            ["trigger"],
            registry=registry,
        )
        self.tier_changes = Counter(
            "shopkeeper_loyalty_tier_changes_total",
            "Loyalty tier changes on event time, by direction (upgrade, downgrade).",
            ["direction"],
            registry=registry,
        )
        self.segment_size = Gauge(
            "shopkeeper_segment_customers",
            "Customers in each RFM segment, by shard (sum over shards for the total).",
            ["segment", "shard"],
            registry=registry,
        )
        self.segment_entries = Counter(
            "shopkeeper_segment_entries_total",
            "Customers entering each RFM segment (on event time).",
            ["segment"],
            registry=registry,
        )
