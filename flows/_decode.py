"""Decode Kafka records into events; what does not decode becomes a dead-letter message."""

from __future__ import annotations

import dataclasses
from typing import Final

import msgspec
from bytewax.connectors.kafka import KafkaSinkMessage

import events
from flows._source import Record
from flows.metrics import FlowMetrics

__all__ = ["Accepted", "Decoder", "Rejected"]

_UNKNOWN_TOPIC: Final = "unknown"


class Accepted(msgspec.Struct, frozen=True, gc=False):
    """A valid event and the topic it came from.

    Never tracked by the garbage collector (it cannot be part of a cycle): tens of
    thousands are in flight between steps, and tracked they would trigger full
    collections that walk every profile in the state.
    """

    event: events.Event
    topic: str


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
