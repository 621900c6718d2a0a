"""Produce generated traffic to Kafka at a steady rate."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from tqdm import tqdm

import events
from shopkeeper.generator import Item, Malformed, to_record
from shopkeeper.metrics import ToolMetrics

__all__ = ["ProduceSummary", "produce", "producer_config"]

_PACE_STEP_S = 0.005


def producer_config(bootstrap: str) -> dict[str, Any]:
    """Producer settings: idempotent, acknowledged by all replicas, batched."""
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "zstd",
        "batch.size": 1_000_000,
        "log_level": 4,
    }


@dataclasses.dataclass
class ProduceSummary:
    """What was produced: counts by topic and by validity, delivery errors, elapsed time."""

    by_topic: Counter[str] = dataclasses.field(default_factory=Counter)
    valid: int = 0
    malformed: int = 0
    delivery_errors: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Items handed to Kafka."""
        return self.valid + self.malformed


def produce(
    items: Iterable[Item],
    *,
    bootstrap: str,
    namespace: str = "shopkeeper",
    rate: float | None = None,
    limit: int | None = None,
    duration: float | None = None,
    metrics: ToolMetrics | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> ProduceSummary:
    """Produce ``items`` keyed by customer (or product), at ``rate`` items per second.

    Each message's timestamp is its event's time (``CreateTime``), which the feature
    flow uses to merge topics in event-time order.

    Delivery is at-least-once (idempotent producer, ``acks=all``); the call returns after
    every item is acknowledged or failed.

    Args:
        items: Generated events and malformed payloads.
        bootstrap: Kafka bootstrap servers.
        namespace: Topic namespace: ``<namespace>.clickstream`` and so on.
        rate: Items per second; ``None`` produces as fast as Kafka takes them.
        limit: Stop after this many items.
        duration: Stop after this many seconds.
        metrics: Counters to move.
        progress: Show a progress bar.
        clock: Monotonic seconds, for pacing.
    """
    summary = ProduceSummary()
    producer = Producer(producer_config(bootstrap))

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            summary.delivery_errors += 1
            if metrics is not None:
                metrics.delivery_errors.labels(message.topic()).inc()

    if rate is not None and duration is not None:
        # Paced: the duration is a count, so the run is exactly rate x duration items.
        paced = round(rate * duration)
        limit = paced if limit is None else min(limit, paced)
        duration = None
    total = limit
    bar = tqdm(total=total, unit="ev", disable=not progress, desc="produce", smoothing=0.1)
    start = clock()
    next_pause = start
    stamp = 0  # a malformed payload takes the time of the event before it
    try:
        for n, item in enumerate(items):
            if (limit is not None and n >= limit) or (
                duration is not None and clock() - start >= duration
            ):
                break
            if rate is not None:
                due = start + n / rate
                if due > next_pause:
                    # Sleep in small steps, so the rate is steady at any size.
                    wait = due - clock()
                    if wait > 0:
                        producer.poll(0)
                        time.sleep(wait)
                    next_pause = due + _PACE_STEP_S
            topic, key, value = to_record(item)
            topic = events.in_namespace(topic, namespace)
            if not isinstance(item, Malformed):
                # The message timestamp is the event time: the flow merges topics by it.
                stamp = int(item.timestamp.timestamp() * 1000)
            _produce_one(
                producer, topic=topic, key=key, value=value, stamp=stamp, on_delivery=on_delivery
            )
            summary.by_topic[topic] += 1
            if isinstance(item, Malformed):
                summary.malformed += 1
            else:
                summary.valid += 1
            if metrics is not None:
                metrics.produced.labels(
                    topic, "malformed" if isinstance(item, Malformed) else "valid"
                ).inc()
            if n % 1000 == 999:
                producer.poll(0)
                bar.update(1000)
        bar.update(summary.total - bar.n)
        producer.flush()
    finally:
        bar.close()
    summary.seconds = clock() - start
    return summary


def _produce_one(
    producer: Producer,
    *,
    topic: str,
    key: bytes | None,
    value: bytes,
    stamp: int,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    while True:
        try:
            producer.produce(topic, value, key, timestamp=stamp, on_delivery=on_delivery)
            return
        except BufferError:
            # The local queue is full: let librdkafka send, then try again.
            producer.poll(0.05)
