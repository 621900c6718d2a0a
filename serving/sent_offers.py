"""Tell the flow of the offers this server makes.

The next-best-offer route decides with the flow's guardrails, on the contact history the
flow keeps. So that its own offers count toward the same caps, cool-downs and
once-per-state, each offer it makes goes to ``shopkeeper.customers`` as an ``Offer Sent``
event keyed by customer; the flow folds it into that history like its own offers.

Produced asynchronously (librdkafka batches and retries; the request never waits on
Kafka). A message that cannot be queued is counted, and the answer stands: the customer
still gets the offer; the flow just will not count it.

This is the one serving module that imports Kafka, and it only produces (the import
contract in ``pyproject.toml`` names it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Final

from confluent_kafka import KafkaException, Producer

import events
from serving.metrics import ServingMetrics

__all__ = ["SentOffers"]

_FLUSH_S: Final = 5.0


class SentOffers:
    """Report offers as ``Offer Sent`` events.

    Args:
        bootstrap: Kafka bootstrap servers.
        namespace: Topic namespace.
        metrics: Where to count (``shopkeeper_serving_offers_sent_total{outcome}``).
        config: Extra librdkafka settings (security).
    """

    def __init__(
        self,
        bootstrap: str,
        namespace: str,
        metrics: ServingMetrics,
        config: dict[str, Any] | None = None,
    ) -> None:
        self._topic = events.in_namespace(events.CUSTOMERS, namespace)
        self._metrics = metrics
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "log_level": 4,
                **(config or {}),
            }
        )

    def send(
        self,
        customer_id: str,
        *,
        at: float,
        offer_id: str,
        trigger: str,
        state: str,
        channel: str,
    ) -> None:
        """Queue the ``Offer Sent`` of an offer made at ``at`` (epoch seconds)."""
        event = events.OfferSent(
            message_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"offer-sent:{offer_id}:{at}")),
            timestamp=dt.datetime.fromtimestamp(at, dt.UTC),
            channel="server",
            customer_id=customer_id,
            properties=events.OfferSentProperties(
                offer_id=offer_id,
                trigger=trigger,
                state=state,
                channel=channel,  # type: ignore[arg-type]  # checked by the request parser
            ),
        )
        try:
            self._producer.produce(
                self._topic,
                events.encode(event),
                events.partition_key(event),
                timestamp=int(at * 1000),
                on_delivery=self._delivered,
            )
        except (BufferError, KafkaException):
            self._metrics.offers_sent.labels("not_queued").inc()
        self._producer.poll(0)  # serve the delivery reports due

    def _delivered(self, error: object, _: object) -> None:
        self._metrics.offers_sent.labels("failed" if error is not None else "delivered").inc()

    def close(self) -> None:
        """Deliver what is queued (a few seconds at most), then let the broker go."""
        self._producer.flush(_FLUSH_S)
        self._producer.close()
