"""The Kafka source of the flow: one consumer per partition, offsets kept by Bytewax."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, Final, cast

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from flows.metrics import FlowMetrics

__all__ = ["KafkaInput", "Record"]

_LAG_EVERY_S: Final = 1.0
_IDLE_BACKOFF: Final = dt.timedelta(milliseconds=5)


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One Kafka message, with where it came from (for the dead-letter topic)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _Partition(StatefulSourcePartition[Record, int]):
    def __init__(
        self,
        *,
        config: dict[str, Any],
        topic: str,
        partition: int,
        offset: int,
        batch_size: int,
        metrics: FlowMetrics,
    ) -> None:
        self._consumer = Consumer(config)
        self._tp = TopicPartition(topic, partition, offset)
        self._consumer.assign([self._tp])
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._batch_size = batch_size
        self._eof = False
        self._idle = False
        self._lag = metrics.lag.labels(topic, str(partition))
        self._lag_at = 0.0

    def next_batch(self) -> list[Record]:
        if self._eof:
            raise StopIteration
        messages = self._consumer.consume(self._batch_size, 0.001)
        batch: list[Record] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._eof = True
                    break
                # A broker-side error on one fetch: librdkafka retries; nothing is lost
                # because the offset only moves past messages that were read.
                continue
            offset = cast(int, message.offset())  # always set on a message without error
            batch.append(
                Record(self._topic, self._partition, offset, message.key(), message.value())
            )
            self._offset = offset + 1
        self._idle = not batch
        self._report_lag()
        return batch

    def next_awake(self) -> dt.datetime | None:
        # Back off a little when idle instead of spinning on an empty partition.
        return dt.datetime.now(dt.UTC) + _IDLE_BACKOFF if self._idle else None

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < _LAG_EVERY_S:
            return
        self._lag_at = now
        try:
            _, high = self._consumer.get_watermark_offsets(self._tp, timeout=1.0, cached=False)
        except Exception:  # lag is best effort; never stop the flow for it
            return
        if self._offset >= 0:  # before the first message the offset is symbolic
            self._lag.set(max(high - self._offset, 0))

    def snapshot(self) -> int:
        return self._offset

    def close(self) -> None:
        self._consumer.close()


class KafkaInput(FixedPartitionedSource[Record, int]):
    """Read topics from Kafka, one consumer per partition, spread over the workers.

    Parallelism: the Kafka partitions. Delivery: each partition's offset is part of the
    Bytewax snapshot, so with recovery the state sees every message exactly once. No
    consumer-group offsets are committed; lag behind the high watermark is exported as
    ``shopkeeper_flow_consumer_lag_messages``.

    Args:
        bootstrap: Kafka bootstrap servers.
        topics: Topics to read.
        tail: Keep waiting for new messages; ``False`` stops at the end of each partition.
        batch_size: Most messages per poll.
        metrics: Where to report lag.
        config: Extra librdkafka settings (security, timeouts).
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        *,
        tail: bool,
        batch_size: int,
        metrics: FlowMetrics,
        config: dict[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._topics = list(topics)
        self._tail = tail
        self._batch_size = batch_size
        self._metrics = metrics
        self._config = config or {}

    def list_parts(self) -> list[str]:
        admin = AdminClient({"bootstrap.servers": self._bootstrap, **self._config})
        metadata = admin.list_topics(timeout=10).topics
        missing = [t for t in self._topics if t not in metadata or metadata[t].error is not None]
        if missing:
            raise RuntimeError(
                f"topics missing on {self._bootstrap}: {', '.join(missing)} "
                "(create them with `shopkeeper topics create`)"
            )
        return [f"{p}-{t}" for t in self._topics for p in sorted(metadata[t].partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Partition:
        index, topic = for_part.split("-", 1)
        config = {
            "bootstrap.servers": self._bootstrap,
            "group.id": "shopkeeper-flow-unused",  # offsets live in Bytewax snapshots
            "enable.auto.commit": False,
            "enable.partition.eof": not self._tail,
            "fetch.wait.max.ms": 5,
            "log_level": 4,
            **self._config,
        }
        offset = resume_state if resume_state is not None else OFFSET_BEGINNING
        return _Partition(
            config=config,
            topic=topic,
            partition=int(index),
            offset=offset,
            batch_size=self._batch_size,
            metrics=self._metrics,
        )
