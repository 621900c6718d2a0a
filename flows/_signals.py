"""CRM signals: segment entries and loyalty tier changes, as Kafka messages.

Each signal is a JSON object keyed by the customer id, with a deterministic
``signal_id`` (kind, customer, event time in milliseconds) in its headers: the sink is
at-least-once, so a replay after a crash may send a signal again under the same id, and
consumers (the offers engine, campaign tools) drop what they have seen.
"""

from __future__ import annotations

import orjson
from bytewax.connectors.kafka import KafkaSinkMessage

from flows._segments import SegmentOut
from flows._state import ProfileOut
from flows.profile._format import iso

__all__ = ["segment_signals", "tier_signals"]

Message = KafkaSinkMessage[bytes | None, bytes | None]


def _message(kind: str, customer: str, at: float, body: dict[str, object]) -> Message:
    signal_id = f"{kind}/{customer}/{round(at * 1000)}"
    payload = {"signal": kind, "signal_id": signal_id, "customer_id": customer, "at": iso(at)}
    return KafkaSinkMessage(
        key=customer.encode(),
        value=orjson.dumps({**payload, **body}),
        headers=[("signal_id", signal_id.encode())],
    )


def segment_signals(placed: list[tuple[str, SegmentOut]]) -> list[Message]:
    """``segment_entered`` for each customer who changed RFM segment (``segment`` is
    null when an erased customer left ``previous``)."""
    return [
        _message(
            "segment_entered",
            customer,
            out.at,
            {"segment": out.segment or None, "previous": out.previous},
        )
        for customer, out in placed
        if out.moved
    ]


def tier_signals(updates: list[tuple[str, ProfileOut]]) -> list[Message]:
    """``tier_upgraded`` / ``tier_downgraded`` for each loyalty tier change."""
    return [
        _message(f"tier_{direction}d", customer, t, {"tier": new, "previous": old})
        for customer, update in updates
        for old, new, direction, t in update.tier_changes
    ]
