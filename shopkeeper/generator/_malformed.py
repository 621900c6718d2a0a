"""Broken payloads, made by mutating valid encoded events the way real producers break them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

import events
from shopkeeper.generator._draws import Draws

__all__ = ["KINDS", "Malformed", "Malformer"]

KINDS: Final = (
    "truncated_json",
    "negative_price",
    "unknown_event",
    "missing_customer",
    "id_too_long",
    "control_char_in_id",
    "future_timestamp",
    "oversized",
    "wrong_type",
    "naive_timestamp",
)


@dataclass(frozen=True)
class Malformed:
    """A payload that breaks the contract, produced like an event so the DLQ path is exercised.

    Attributes:
        topic: The input topic it is produced to.
        key: The Kafka key.
        value: The broken payload; never contains a raw newline.
        kind: What is broken, one of :data:`KINDS`.
    """

    topic: str
    key: bytes | None
    value: bytes
    kind: str


class Malformer:
    """Turns a valid event into a :class:`Malformed` of a drawn kind."""

    def __init__(self, draws: Draws) -> None:
        self._draws = draws
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)

    def make(self, event: events.Event) -> Malformed:
        """Break ``event`` in one of the ways in :data:`KINDS`."""
        d = self._draws
        encoded = events.encode(event)
        doc: dict[str, Any] = msgspec.json.decode(encoded)
        kind = KINDS[d.below(len(KINDS))]
        if (
            kind == "missing_customer"
            and doc.get("customer_id") is None
            and (doc.get("anonymous_id") is None)
        ):
            kind = "unknown_event"  # a catalogue event has no customer to drop
        props = doc.get("properties") or {}
        if kind == "negative_price" and "price" not in props and not props.get("products"):
            kind = "wrong_type"  # unknown fields are ignored, so a price must go where one is read
        if kind == "truncated_json":
            value = encoded[: 1 + d.below(len(encoded) - 2)]
        else:
            _MUTATIONS[kind](doc, d)
            value = msgspec.json.encode(doc)
        # One payload a line in history files: a raw newline would split it.
        value = value.replace(b"\n", b"\\n")
        self.counts[kind] += 1
        return Malformed(events.topic_for(event), events.partition_key(event), value, kind)


def _negative_price(doc: dict[str, Any], d: Draws) -> None:
    props = doc["properties"]
    target = props if "price" in props else props["products"][0]
    target["price"] = -round(1 + 99 * d.u(), 2)


def _unknown_event(doc: dict[str, Any], d: Draws) -> None:
    doc["event"] = ("Product Teleported", "order completed", "Cart Exploded")[d.below(3)]


def _missing_customer(doc: dict[str, Any], d: Draws) -> None:
    doc.pop("customer_id", None)
    doc.pop("anonymous_id", None)


def _id_too_long(doc: dict[str, Any], d: Draws) -> None:
    field = "customer_id" if "customer_id" in doc else "message_id"
    doc[field] = (str(doc[field]) + "-") * 40


def _control_char(doc: dict[str, Any], d: Draws) -> None:
    field = "customer_id" if "customer_id" in doc else "message_id"
    doc[field] = f"{doc[field]}\u0001x"


def _future(doc: dict[str, Any], d: Draws) -> None:
    # Judged against the decoder's wall clock, so "future" must be far away to stay future.
    doc["timestamp"] = "2099-" + str(doc["timestamp"])[5:]


def _oversized(doc: dict[str, Any], d: Draws) -> None:
    doc["context"] = {
        **doc.get("context", {}),
        "page_path": "/" + "x" * (events.MAX_EVENT_BYTES + 100),
    }


def _wrong_type(doc: dict[str, Any], d: Draws) -> None:
    doc["channel" if d.u() < 0.5 else "timestamp"] = 1_700_000_000


def _naive(doc: dict[str, Any], d: Draws) -> None:
    doc["timestamp"] = str(doc["timestamp"]).rstrip("Z").split("+")[0]


_MUTATIONS = {
    "negative_price": _negative_price,
    "unknown_event": _unknown_event,
    "missing_customer": _missing_customer,
    "id_too_long": _id_too_long,
    "control_char_in_id": _control_char,
    "future_timestamp": _future,
    "oversized": _oversized,
    "wrong_type": _wrong_type,
    "naive_timestamp": _naive,
}
