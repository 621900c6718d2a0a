"""The Kafka source of the flow: co-partitioned topics merged in event-time order.

Every customer topic is keyed by customer id with the same partition count, so partition
``k`` of each holds the same customers (Kafka Streams calls this co-partitioning). One
source partition reads partition ``k`` of every customer topic and merges them by the
message timestamp (producers set it to the event time), so each customer's events reach
the state in event-time order whatever the topics' sizes or speeds: replaying a year in
minutes gives the same state as living through it. The catalogue topic, keyed by product,
is read partition by partition.

A partition that has nothing buffered holds the merge back only while it is behind its
high watermark; one that is caught up (end of partition) does not, so an idle topic never
stalls the others.

While tailing, a customer partition caught up on every stream sends a heartbeat (a
``Record`` with ``heartbeat`` set) every ``heartbeat_s``: its latest event time plus the
wall time since that event was read. Its shard's clock moves on with it, so a quiet shop's
abandoned cart still fires on time, not at the next event. A replay (not tailing) sends
none: there, only events move time.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import heapq
import time
from collections.abc import Sequence
from typing import Any, Final

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from flows.metrics import FlowMetrics

__all__ = ["KafkaInput", "Record"]

_LAG_EVERY_S: Final = 1.0
_IDLE_BACKOFF: Final = dt.timedelta(milliseconds=5)
_LATEST: Final = "#latest"  # the snapshot's latest event time (no topic name has a "#")
_CUSTOMERS: Final = "customers"
_CATALOG: Final = "catalog"

Offsets = dict[str, int]
"""Next offset to emit, by stream (and ``#latest``, its latest event time in ms): a source
partition's snapshot."""


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One Kafka message, with where it came from (for the dead-letter topic)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = 0
    # A catalogue message read along shard ``partition``'s customer topics, for its clock
    # only (the catalogue's own partitions carry it to the item step and the dead letters).
    mirror: bool = False
    # No message: shard ``partition`` is caught up, and its event time is ``timestamp_ms``.
    heartbeat: bool = False


class _MergedPartition(StatefulSourcePartition[Record, Offsets]):
    """Partition ``index`` of several topics, and whole ``mirrors`` (topic, partition)
    beside them, emitted in (timestamp, stream, offset) order."""

    def __init__(
        self,
        *,
        config: dict[str, Any],
        topics: Sequence[str],
        index: int,
        resume: Offsets | None,
        tail: bool,
        batch_size: int,
        buffer_cap: int,
        metrics: FlowMetrics,
        mirrors: Sequence[tuple[str, int]] = (),
        heartbeat_s: float | None = None,
    ) -> None:
        resume = resume or {}
        self._heartbeat_s = heartbeat_s if tail else None
        # The latest event time emitted (ms; kept in the snapshot, so heartbeats go on
        # after a restart with no new event), and when (monotonic seconds).
        self._stamp = resume.get(_LATEST, -1)
        self._stamped_at = time.monotonic()
        self._beat_at = time.monotonic()  # the first heartbeat after one interval
        # Streams by name: a topic's partition ``index``, or "topic#partition" of a mirror.
        streams = [(t, t, index) for t in topics]
        streams += [(f"{t}#{k}", t, k) for t, k in mirrors]
        self._consumer = Consumer(config)
        self._tps = {
            name: TopicPartition(topic, k, resume.get(name, OFFSET_BEGINNING))
            for name, topic, k in streams
        }
        self._consumer.assign(list(self._tps.values()))
        self._names = {(topic, k): name for name, topic, k in streams}
        self._mirrored = {f"{t}#{k}" for t, k in mirrors}
        self._rank = {name: i for i, (name, _, _) in enumerate(streams)}
        self._index = index
        self._next = {name: resume.get(name, OFFSET_BEGINNING) for name, _, _ in streams}
        self._buffers: dict[str, collections.deque[Record]] = {
            name: collections.deque() for name, _, _ in streams
        }
        self._caught_up: set[str] = set()
        self._paused: set[str] = set()
        self._tail = tail
        self._batch_size = batch_size
        self._cap = buffer_cap
        self._idle = False
        self._lag = {name: metrics.lag.labels(name, str(index)) for name in self._next}
        self._lag_at = 0.0

    def next_batch(self) -> list[Record]:
        # Never block: an idle partition is polled again after next_awake, not by waiting
        # here while the other partitions and steps of this worker starve.
        for message in self._consumer.consume(self._batch_size, 0):
            self._take(message)
        batch = self._merge()
        self._flow_control()
        self._report_lag()
        if not batch and not self._tail and self._finished():
            raise StopIteration
        self._idle = not batch
        if batch:
            self._stamp = max(self._stamp, batch[-1].timestamp_ms)  # merged in order
            self._stamped_at = time.monotonic()
        elif self._heartbeat_s is not None and self._stamp >= 0 and self._finished():
            now = time.monotonic()
            if now - self._beat_at >= self._heartbeat_s:
                self._beat_at = now
                stamp = self._stamp + int((now - self._stamped_at) * 1000)
                return [Record("", self._index, -1, None, None, stamp, heartbeat=True)]
        return batch

    def _take(self, message: Message) -> None:
        topic = message.topic() or ""
        name = self._names.get((topic, message.partition() or 0), topic)
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._caught_up.add(name)
            # Other errors are transient broker errors librdkafka retries; the offset only
            # moves past messages that were read, so nothing is lost.
            return
        self._caught_up.discard(name)
        _, stamp = message.timestamp()
        offset: int = message.offset() or 0
        mirror = name in self._mirrored
        self._buffers[name].append(
            Record(topic, self._index, offset, message.key(), message.value(), stamp, mirror)
        )

    def _merge(self) -> list[Record]:
        """Emit buffered records in event-time order while no topic may still hold an
        earlier one: every topic has a buffered record or is caught up.

        "Caught up" is the consumer's end-of-partition event, not the high watermark
        cached from the last fetch: that one lags messages in flight, and an order that
        depends on fetch timing would make a live run differ from a replay.
        """
        buffers = self._buffers
        caught_up = self._caught_up
        rank = self._rank
        heads: list[tuple[int, int, int, str]] = []
        for name, buffer in buffers.items():
            if buffer:
                head = buffer[0]
                heads.append((head.timestamp_ms, rank[name], head.offset, name))
            elif name not in caught_up:
                return []  # this stream may deliver an earlier record: wait for it
        heapq.heapify(heads)
        out: list[Record] = []
        next_offsets = self._next
        while heads:
            name = heads[0][3]
            buffer = buffers[name]
            record = buffer.popleft()
            next_offsets[name] = record.offset + 1
            out.append(record)
            if buffer:
                head = buffer[0]
                heapq.heapreplace(heads, (head.timestamp_ms, rank[name], head.offset, name))
            elif name in caught_up:
                heapq.heappop(heads)
            else:
                break
        return out

    def _flow_control(self) -> None:
        # A topic far ahead of the others would buffer without bound: pause its fetches.
        for name, buffer in self._buffers.items():
            if len(buffer) > self._cap and name not in self._paused:
                self._consumer.pause([self._tps[name]])
                self._paused.add(name)
            elif len(buffer) < self._cap // 2 and name in self._paused:
                self._consumer.resume([self._tps[name]])
                self._paused.discard(name)

    def _finished(self) -> bool:
        return all(not b for b in self._buffers.values()) and len(self._caught_up) == len(
            self._buffers
        )

    def next_awake(self) -> dt.datetime | None:
        # Back off a little when idle instead of spinning on empty partitions.
        return dt.datetime.now(dt.UTC) + _IDLE_BACKOFF if self._idle else None

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < _LAG_EVERY_S:
            return
        self._lag_at = now
        for topic, tp in self._tps.items():
            try:
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except Exception:  # noqa: S112 - lag is best effort; never stop the flow for it
                continue
            position = self._next[topic]
            if position >= 0:  # before the first message the offset is symbolic
                self._lag[topic].set(max(high - position, 0))

    def snapshot(self) -> Offsets:
        return {**self._next, _LATEST: self._stamp}

    def close(self) -> None:
        self._consumer.close()


def _metadata(bootstrap: str, wanted: Sequence[str], config: dict[str, Any]) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap, **config})
    metadata = admin.list_topics(timeout=10).topics
    missing = [t for t in wanted if t not in metadata or metadata[t].error is not None]
    if missing:
        raise RuntimeError(
            f"topics missing on {bootstrap}: {', '.join(missing)} "
            "(create them with `shopkeeper topics create`)"
        )
    return dict(metadata)


def _co_partitioned(metadata: dict[str, Any], topics: Sequence[str]) -> int:
    counts = {t: len(metadata[t].partitions) for t in topics}
    if len(set(counts.values())) > 1:
        raise RuntimeError(
            f"customer topics must be co-partitioned (same partition count): {counts}"
        )
    return next(iter(counts.values()), 0)


class KafkaInput(FixedPartitionedSource[Record, Offsets]):
    """Read the customer topics co-partitioned and merged by event time, and the catalogue.

    Parallelism: one source partition per customer-topic partition index, plus one per
    catalogue partition, spread over the workers. Delivery: each partition's offsets are
    part of the Bytewax snapshot, so with recovery the state sees every message exactly
    once. No consumer-group offsets are committed; lag behind the high watermark is
    exported as ``shopkeeper_flow_consumer_lag_messages``.

    Args:
        bootstrap: Kafka bootstrap servers.
        customer_topics: Topics keyed by customer, all with the same partition count.
        catalog_topics: Topics keyed by product.
        mirror_catalog: Each customer partition also reads every catalogue partition,
            merged with its customer topics by event time, for its shard's clock (price
            and stock changes meet the views before them in the same order in a replay
            as live).
        tail: Keep waiting for new messages; ``False`` stops at the end of each partition.
        batch_size: Most messages per poll.
        metrics: Where to report lag.
        buffer_cap: Records buffered per topic before its fetches pause.
        config: Extra librdkafka settings (security, timeouts).
        heartbeat_s: While tailing, how often a caught-up customer partition tells its
            shard that event time moves on (``None``: never; see the module's doc).
    """

    def __init__(
        self,
        bootstrap: str,
        customer_topics: Sequence[str],
        catalog_topics: Sequence[str],
        *,
        mirror_catalog: bool = False,
        tail: bool,
        batch_size: int,
        metrics: FlowMetrics,
        buffer_cap: int = 20_000,
        config: dict[str, Any] | None = None,
        heartbeat_s: float | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._heartbeat_s = heartbeat_s
        self._customer_topics = list(customer_topics)
        self._catalog_topics = list(catalog_topics)
        self._mirror = mirror_catalog
        self._tail = tail
        self._batch_size = batch_size
        self._metrics = metrics
        self._cap = buffer_cap
        self._config = config or {}

    def list_parts(self) -> list[str]:
        metadata = _metadata(
            self._bootstrap, self._customer_topics + self._catalog_topics, self._config
        )
        shards = _co_partitioned(metadata, self._customer_topics)
        parts = [f"{_CUSTOMERS}-{k}" for k in range(shards)]
        for topic in self._catalog_topics:
            parts += [f"{_CATALOG}-{k}-{topic}" for k in sorted(metadata[topic].partitions)]
        return parts

    def build_part(
        self, step_id: str, for_part: str, resume_state: Offsets | None
    ) -> _MergedPartition:
        kind, index, *rest = for_part.split("-", 2)
        topics = self._customer_topics if kind == _CUSTOMERS else rest
        mirrors: list[tuple[str, int]] = []
        if kind == _CUSTOMERS and self._mirror:
            metadata = _metadata(self._bootstrap, self._catalog_topics, self._config)
            for topic in self._catalog_topics:
                mirrors += [(topic, k) for k in sorted(metadata[topic].partitions)]
        config = {
            "bootstrap.servers": self._bootstrap,
            "group.id": "shopkeeper-flow-unused",  # offsets live in Bytewax snapshots
            "enable.auto.commit": False,
            "enable.partition.eof": True,  # "caught up" lets the merge go past idle topics
            # Offsets below the log start (deleted by retention before they were read):
            # resume at the oldest message kept rather than skip to the end.
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 5,
            "log_level": 4,
            **self._config,
        }
        return _MergedPartition(
            config=config,
            topics=topics,
            mirrors=mirrors,
            heartbeat_s=self._heartbeat_s if kind == _CUSTOMERS else None,
            index=int(index),
            resume=resume_state,
            tail=self._tail,
            batch_size=self._batch_size,
            buffer_cap=self._cap,
            metrics=self._metrics,
        )
