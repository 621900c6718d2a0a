"""Create the engine's Kafka topics."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

import events

__all__ = ["ALL_TOPICS", "ensure_topics", "retained"]

_CONTROLLER_WAIT_S = 3.0

ALL_TOPICS = (*events.TOPICS, events.DLQ, events.OFFERS, events.SIGNALS)
"""Every topic the engine reads or writes, in the default namespace."""


def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int = 4,
    replication: int = -1,
    embedded: bool = False,
    timeout: float = 10.0,
) -> dict[str, int]:
    """Create the topics that do not exist yet; return every topic's partition count.

    Args:
        bootstrap: Kafka bootstrap servers.
        topics: Topic names.
        partitions: Partitions of a new topic (the unit of parallelism: at least the
            number of flow processes you will run).
        replication: Replication factor of a new topic; -1 takes the broker default.
        embedded: The broker is librdkafka's mock cluster, which has no controller to
            create topics; it creates them on a producer's metadata request instead.
            A broker whose controller does not answer is taken for one.
        timeout: Seconds to wait for the broker.
    """
    wanted = list(dict.fromkeys(topics))
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    missing = [t for t in wanted if t not in admin.list_topics(timeout=timeout).topics]
    if missing and not embedded:
        futures = admin.create_topics(
            [NewTopic(t, partitions, replication) for t in missing],
            request_timeout=_CONTROLLER_WAIT_S,
        )
        for future in futures.values():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                code = exc.args[0].code()
                if code == KafkaError._TIMED_OUT:
                    embedded = True  # no controller answered: a mock cluster
                elif code != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    if missing and embedded:
        producer = Producer({"bootstrap.servers": bootstrap, "log_level": 4})
        for topic in missing:
            producer.list_topics(topic=topic, timeout=timeout)
    metadata = admin.list_topics(timeout=timeout).topics
    absent = [t for t in wanted if t not in metadata or not metadata[t].partitions]
    if absent:
        raise RuntimeError(f"topics could not be created: {', '.join(absent)}")
    return {t: len(metadata[t].partitions) for t in wanted}


def retained(bootstrap: str, topics: Iterable[str], *, timeout: float = 10.0) -> tuple[int, int]:
    """Return ``(messages held, messages dropped)`` across the topics' partitions.

    Dropped messages are those below a partition's low watermark: deleted by retention
    (the embedded broker keeps at most 5 MiB of compressed batches per partition).
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "retained", "log_level": 4})
    held = dropped = 0
    try:
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
            for partition in metadata.partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                held += high - low
                dropped += low
    finally:
        consumer.close()
    return held, dropped
