"""A replay of Kafka topics: every message from the start up to the end at start time."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from tqdm import tqdm

import events
from shopkeeper.history._history import History, HistoryError

__all__ = ["read_topics", "replay_topics"]

_BATCH: Final = 10_000

Partition = tuple[str, int]


def read_topics(
    bootstrap: str,
    topics: Sequence[str],
    *,
    timeout_s: float = 30.0,
    progress: bool = False,
    desc: str = "replay",
) -> Iterator[Message]:
    """Yield every message of Kafka topics from their start up to their end (high
    watermark) at the moment the read starts, then stop.

    What is produced during the read is left for the next one, so a read of a busy topic
    ends too, and an empty topic ends at once. No consumer group offsets are committed:
    a read changes nothing on the broker. Parallelism: one consumer reads every
    partition; messages come in order within a partition, interleaved across them.

    Args:
        bootstrap: Kafka bootstrap servers.
        topics: The topics, e.g. ``shopkeeper.clickstream`` and ``shopkeeper.purchases``.
        timeout_s: How long the broker may stay silent before the read gives up.
        progress: Show a progress bar over the messages.
        desc: The progress bar's label.

    Raises:
        HistoryError: A topic does not exist, or the broker stopped answering.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"shopkeeper-replay-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # Retention may delete the first offsets before they are read: start at what is left.
            "auto.offset.reset": "earliest",
            "log_level": 4,
        }
    )
    try:
        starts, ends = _extent(consumer, topics, timeout_s)
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in starts.items()])
        total = sum(ends[where] - starts[where] for where in ends)
        with tqdm(total=total, unit="msg", desc=desc, disable=not progress) as bar:
            yield from _consume(consumer, ends, timeout_s, bar)
    finally:
        consumer.close()


def replay_topics(
    bootstrap: str,
    topics: Sequence[str],
    *,
    timeout_s: float = 30.0,
    progress: bool = False,
    keep: Callable[[events.Event], bool] | None = None,
) -> History:
    """Read Kafka topics from their start up to their end at the moment the replay starts
    (see ``read_topics``) and decode their events.

    Args:
        bootstrap: Kafka bootstrap servers.
        topics: The topics, e.g. ``shopkeeper.clickstream`` and ``shopkeeper.purchases``.
        timeout_s: How long the broker may stay silent before the replay gives up.
        progress: Show a progress bar over the messages.
        keep: Keep only the events it accepts (all when ``None``), to hold less in memory.

    Raises:
        HistoryError: A topic does not exist, or the broker stopped answering.
    """
    decoder = events.EventDecoder()
    decoded: list[events.Event] = []
    rejected: Counter[str] = Counter()
    for message in read_topics(bootstrap, topics, timeout_s=timeout_s, progress=progress):
        try:
            event = decoder.decode(message.value())
        except events.DecodeError as exc:
            rejected[exc.code] += 1
            continue
        if keep is None or keep(event):
            decoded.append(event)
    decoded.sort(key=lambda e: e.timestamp)
    return History(decoded, dict(rejected), f"Kafka topics {', '.join(topics)}")


def _extent(
    consumer: Consumer, topics: Sequence[str], timeout_s: float
) -> tuple[dict[Partition, int], dict[Partition, int]]:
    """The first offset and the end (high watermark) of every partition holding messages."""
    starts: dict[Partition, int] = {}
    ends: dict[Partition, int] = {}
    for topic in dict.fromkeys(topics):
        found = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise HistoryError(f"Kafka topic {topic!r} does not exist")
        for partition in found.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                starts[topic, partition] = low
                ends[topic, partition] = high
    return starts, ends


def _consume(
    consumer: Consumer, ends: dict[Partition, int], timeout_s: float, bar: tqdm[Any]
) -> Iterator[Message]:
    remaining = dict(ends)
    heard = time.monotonic()
    while remaining:
        batch = consumer.consume(num_messages=_BATCH, timeout=0.5)
        if batch:
            heard = time.monotonic()
        elif time.monotonic() - heard > timeout_s:
            raise HistoryError(
                f"Kafka sent nothing for {timeout_s:.0f} s with {len(remaining)} partitions left"
            )
        for message in batch:
            where = (message.topic() or "", message.partition() or 0)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    # Also ends a partition whose last offsets are transaction markers.
                    _finish(consumer, remaining, where)
                elif error.fatal():
                    raise HistoryError(f"Kafka: {error.str()}")
                continue  # librdkafka retries transient errors itself
            end = remaining.get(where)
            offset = message.offset() or 0
            if end is None or offset >= end:
                continue  # produced after the replay started
            yield message
            bar.update(1)
            if offset >= end - 1:
                _finish(consumer, remaining, where)


def _finish(consumer: Consumer, remaining: dict[Partition, int], where: Partition) -> None:
    """Stop reading a partition that reached its end."""
    if remaining.pop(where, None) is not None:
        consumer.pause([TopicPartition(*where)])
