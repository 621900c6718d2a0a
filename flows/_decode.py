"""Decode Kafka records into events; what does not decode becomes a dead-letter message."""

from __future__ import annotations

import dataclasses
from typing import Final

import msgspec
from bytewax.connectors.kafka import KafkaSinkMessage

import events
from flows._clock import Progress, shard_key
from flows._source import Record
from flows.metrics import FlowMetrics

__all__ = ["Accepted", "Clocked", "Decoder", "Keyed", "Rejected"]

_UNKNOWN_TOPIC: Final = "unknown"
_CART_CHANGES: Final = (events.ProductAdded, events.ProductRemoved, events.CartViewed)
_ASKING: Final = (events.NPSSurveyResponded, events.SatisfactionRated)  # and orders
_Shard = tuple[
    list[float],
    list[tuple[str, float, float]],
    list[tuple[str, float]],
    list[tuple[str, float]],
    list[tuple[str, float, str, tuple[str, ...]]],
    list[tuple[str, float]],
]
"""A shard's event times, purchases, erasures, cart changes, the steps of browsing and
buying, and the events that may raise an offer, in one batch."""


class Accepted(msgspec.Struct, frozen=True, gc=False):
    """A valid event and the topic it came from.

    Never tracked by the garbage collector (it cannot be part of a cycle): tens of
    thousands are in flight between steps, and tracked they would trigger full
    collections that walk every profile in the state.
    """

    event: events.Event
    topic: str


Clocked = tuple[str, Progress]
"""A shard's progress in one batch, keyed by shard (see ``flows._clock``)."""

Keyed = tuple[str, list[Accepted]]
"""The accepted events of one state key in one batch, in order: a customer's, or one
product's catalogue events."""


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    """A message that broke the contract, on its way to the dead-letter topic."""

    record: Record
    code: str
    detail: str

    @property
    def dlq_id(self) -> str:
        """Deterministic id: a replayed rejection has the same id, so readers can dedupe."""
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"

    def to_message(self) -> KafkaSinkMessage[bytes | None, bytes | None]:
        """The dead-letter message: the original bytes, the reason and the origin in headers."""
        record = self.record
        return KafkaSinkMessage(
            key=self.dlq_id.encode(),
            value=record.value or b"",
            headers=[
                ("dlq_id", self.dlq_id.encode()),
                ("reason", self.code.encode()),
                ("detail", self.detail.encode()),
                ("source_topic", record.topic.encode()),
                ("source_partition", str(record.partition).encode()),
                ("source_offset", str(record.offset).encode()),
                ("source_key", record.key or b""),
            ],
        )


class Decoder:
    """The ``decode_event`` step: never raises, whatever the bytes.

    It takes a whole batch of records at a time and hands the accepted events on grouped
    by state key, so the steps after it move one item per customer per batch, not one
    per event (measured: 12% of a replay's time went to moving single events).

    Args:
        namespace: Topic namespace, to tell the input topics apart in metrics.
        metrics: Counters to move.
        decoder: The contract's decoder (its clock and limits).
    """

    def __init__(
        self, namespace: str, metrics: FlowMetrics, decoder: events.EventDecoder | None = None
    ) -> None:
        self._decoder = decoder or events.EventDecoder()
        self._metrics = metrics
        # Metric labels use the namespace-free topic name, so dashboards work for any namespace.
        self._topic_label = {events.in_namespace(t, namespace): t for t in events.TOPICS}

    def __call__(self, record: Record) -> Accepted | Rejected:
        """Decode one record."""
        topic = self._topic_label.get(record.topic, _UNKNOWN_TOPIC)
        try:
            event = self._decoder.decode(record.value)
        except events.DecodeError as error:
            self._metrics.events.labels(topic, "none", "rejected").inc()
            self._metrics.dlq.labels(error.code).inc()
            return Rejected(record, error.code, error.detail)
        except Exception as error:  # a decoder bug must not stop the flow
            self._metrics.events.labels(topic, "none", "rejected").inc()
            self._metrics.dlq.labels("internal_error").inc()
            return Rejected(record, "internal_error", f"{type(error).__name__}: {error}")
        return Accepted(event, topic)

    def batch(self, records: list[Record]) -> list[Keyed | Rejected | Clocked]:
        """Decode a batch: the rejected records, the accepted events grouped by customer
        (and catalogue events by product), each group in arrival order, and for each
        shard of the customer topics its ``Progress`` (latest event time, purchases)."""
        out: list[Keyed | Rejected | Clocked] = []
        customers: dict[str, list[Accepted]] = {}
        products: dict[str, list[Accepted]] = {}
        shards: dict[int, _Shard] = {}
        for record in records:
            decoded = self(record)
            if type(decoded) is Rejected:
                out.append(decoded)
                continue
            assert isinstance(decoded, Accepted)  # noqa: S101 - for the type checker
            event = decoded.event
            key = event.customer_key
            if key is not None:
                group = customers.get(key)
                if group is None:
                    customers[key] = [decoded]
                else:
                    group.append(decoded)
                shard = shards.get(record.partition)
                if shard is None:
                    shard = shards[record.partition] = ([], [], [], [], [], [])
                t = event.timestamp.timestamp()
                shard[0].append(t)
                if type(event) is events.ProductViewed:
                    shard[4].append((key, t, event.properties.product_id, ()))
                elif type(event) in _CART_CHANGES:
                    shard[3].append((key, t))
                    shard[4].append((key, t, "", ()))
                elif type(event) is events.OrderCompleted:
                    shard[1].append((key, t, event.properties.revenue))
                    bought = tuple(x.product_id for x in event.properties.products)
                    shard[4].append((key, t, "", bought))
                    shard[5].append((key, t))
                elif type(event) in _ASKING:
                    shard[5].append((key, t))
                elif type(event) is events.DeletionRequested:
                    shard[2].append((key, t))
                continue
            # The contract: only catalogue events are about no customer.
            product = event.properties.product_id  # type: ignore[union-attr]
            products.setdefault(product, []).append(decoded)
        out += customers.items()
        out += products.items()
        out += (
            (
                shard_key(partition),
                Progress(partition, max(times), orders, erased, carts, steps, asks),
            )
            for partition, (times, orders, erased, carts, steps, asks) in shards.items()
        )
        return out
