"""Decode Kafka records into events; what does not decode becomes a dead-letter message."""

from __future__ import annotations

import dataclasses
import math
from typing import Final

from bytewax.connectors.kafka import KafkaSinkMessage

import events
from flows._accepted import Accepted
from flows._clock import CatalogChange, Progress, shard_key
from flows._source import Record
from flows.metrics import FlowMetrics

__all__ = ["Accepted", "Clocked", "Decoder", "Keyed", "Rejected"]

_UNKNOWN_TOPIC: Final = "unknown"
_CART_CHANGES: Final = (events.ProductAdded, events.ProductRemoved, events.CartViewed)
_ASKING: Final = (events.NPSSurveyResponded, events.SatisfactionRated)  # and orders


class _ShardBatch:
    """What one batch says about one shard: its event times, purchases, erasures, cart
    changes, the steps of browsing and buying, the events that may raise an offer, and
    (when clocked) its customers' events."""

    __slots__ = (
        "asks", "carts", "catalog", "customers", "erased", "idle", "orders", "steps", "times",
    )  # fmt: skip

    def __init__(self) -> None:
        self.times: list[float] = []
        self.orders: list[tuple[str, float, float]] = []
        self.erased: list[tuple[str, float]] = []
        self.carts: list[tuple[str, float]] = []
        self.steps: list[tuple[str, float, str, tuple[str, ...]]] = []
        self.asks: list[tuple[str, float]] = []
        self.customers: dict[str, list[Accepted]] = {}
        self.catalog: list[CatalogChange] = []
        self.idle = -math.inf  # the event time a caught-up source vouches for

    def note(self, key: str, event: events.Event) -> None:
        t = event.timestamp.timestamp()
        self.times.append(t)
        if type(event) is events.ProductViewed:
            self.steps.append((key, t, event.properties.product_id, ()))
        elif type(event) in _CART_CHANGES:
            self.carts.append((key, t))
            self.steps.append((key, t, "", ()))
        elif type(event) is events.OrderCompleted:
            self.orders.append((key, t, event.properties.revenue))
            bought = tuple(x.product_id for x in event.properties.products)
            self.steps.append((key, t, "", bought))
            self.asks.append((key, t))
        elif type(event) in _ASKING:
            self.asks.append((key, t))
        elif type(event) is events.DeletionRequested:
            self.erased.append((key, t))

    def progress(self, partition: int) -> Progress:
        return Progress(
            partition, max(self.times, default=-math.inf), self.orders, self.erased,
            self.carts, self.steps, self.asks, list(self.customers.items()), self.catalog,
            self.idle,
        )  # fmt: skip


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


def _shard(shards: dict[int, _ShardBatch], partition: int) -> _ShardBatch:
    """The batch's record of shard ``partition``, made on first use."""
    shard = shards.get(partition)
    if shard is None:
        shard = shards[partition] = _ShardBatch()
    return shard


def _catalog_change(event: events.ProductUpdated) -> CatalogChange | None:
    """The price, stock or successor change a catalogue update makes, if any (a status of
    preorder or backorder says nothing about stock on hand)."""
    props = event.properties
    in_stock = None
    if props.inventory_status in ("in_stock", "out_of_stock"):
        in_stock = props.inventory_status == "in_stock"
    elif props.inventory_status is None and props.inventory_quantity is not None:
        in_stock = props.inventory_quantity > 0
    successor = props.successor_product_id
    if props.price is None and in_stock is None and successor is None:
        return None
    at = event.timestamp.timestamp()
    return CatalogChange(props.product_id, at, props.price, props.currency, in_stock, successor)


class Decoder:
    """The ``decode_event`` step: never raises, whatever the bytes.

    It takes a whole batch of records at a time and hands the accepted events on grouped
    by state key, so the steps after it move one item per customer per batch, not one
    per event (measured: 12% of a replay's time went to moving single events).

    With ``clocked``, a customer's events ride with their shard's ``Progress`` to the
    shard's clock, which hands them on to the customer step ahead of the ticks they come
    before: the one path keeps them in order, so a tick never overtakes the events it is
    about (with several workers, two paths would race).

    Args:
        namespace: Topic namespace, to tell the input topics apart in metrics.
        metrics: Counters to move.
        decoder: The contract's decoder (its clock and limits).
        clocked: Customer events go with their shard's progress (the clocks are on).

    A catalogue message read along a shard's customer topics (``Record.mirror``) only
    tells that shard's clock of a price or stock change, in its event-time place; the
    catalogue's own partitions bring the same message to the item step (and, if it
    breaks the contract, to the dead letters), once.
    """

    def __init__(
        self,
        namespace: str,
        metrics: FlowMetrics,
        decoder: events.EventDecoder | None = None,
        *,
        clocked: bool = False,
    ) -> None:
        self._decoder = decoder or events.EventDecoder()
        self._clocked = clocked
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

    def _mirrored(self, record: Record, shard: _ShardBatch) -> None:
        """A catalogue message read along shard ``record.partition``: its price, stock or
        successor change goes to that shard's clock (nothing else: not counted, no dead
        letter)."""
        try:
            event = self._decoder.decode(record.value)
        except Exception:  # the catalogue's own read reports it (dead letters, metrics)
            return
        if type(event) is not events.ProductUpdated:
            return
        change = _catalog_change(event)
        if change is not None:
            shard.catalog.append(change)

    def batch(self, records: list[Record]) -> list[Keyed | Rejected | Clocked]:
        """Decode a batch: the rejected records, the accepted events grouped by customer
        (and catalogue events by product), each group in arrival order, and for each
        shard of the customer topics its ``Progress`` (latest event time, purchases; with
        ``clocked``, the customer groups too)."""
        out: list[Keyed | Rejected | Clocked] = []
        customers: dict[str, list[Accepted]] = {}
        products: dict[str, list[Accepted]] = {}
        shards: dict[int, _ShardBatch] = {}
        clocked = self._clocked
        for record in records:
            if record.mirror or record.heartbeat:
                shard = _shard(shards, record.partition)
                if record.heartbeat:
                    shard.idle = max(shard.idle, record.timestamp_ms / 1000)
                else:
                    self._mirrored(record, shard)
                continue
            decoded = self(record)
            if type(decoded) is Rejected:
                out.append(decoded)
                continue
            assert isinstance(decoded, Accepted)  # noqa: S101 - for the type checker
            event = decoded.event
            key = event.customer_key
            if key is None:  # the contract: only catalogue events are about no customer
                product = event.properties.product_id  # type: ignore[union-attr]
                products.setdefault(product, []).append(decoded)
                continue
            shard = _shard(shards, record.partition)
            shard.note(key, event)
            grouped = shard.customers if clocked else customers
            group = grouped.get(key)
            if group is None:
                grouped[key] = [decoded]
            else:
                group.append(decoded)
        out += customers.items()
        out += products.items()
        out += ((shard_key(p), shard.progress(p)) for p, shard in shards.items())
        return out
