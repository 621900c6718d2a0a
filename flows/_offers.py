"""Offer decisions as Kafka messages: fired offers to ``shopkeeper.offers`` for the app,
suppressed ones to ``shopkeeper.signals`` (the audit trail, and the control group of the
uplift report).

Each message is keyed by the customer and carries the deterministic ``offer_id`` (also
in its headers): the sinks are at-least-once, so a replay after a crash may send an
offer again under the same id, and the app drops what it has seen.
"""

from __future__ import annotations

from typing import Final

import orjson
from bytewax.connectors.kafka import KafkaSinkMessage

from flows._state import ProfileOut
from flows.profile._format import iso
from models.offers import Decision

__all__ = ["OFFER_TTL_S", "offer_messages", "suppression_signals"]

Message = KafkaSinkMessage[bytes | None, bytes | None]
OFFER_TTL_S: Final = 48 * 3_600.0  # an offer expires two days after its trigger


def _body(decision: Decision) -> dict[str, object]:
    c = decision.candidate
    return {
        "offer_id": decision.offer_id,
        "customer_id": c.customer_id,
        "trigger": c.trigger,
        "reason": decision.reason,
        "at": iso(c.at),
        "channel": c.channel,
        "state": c.state_key,
        "features": c.features,
    }


def _message(decision: Decision, body: dict[str, object]) -> Message:
    return KafkaSinkMessage(
        key=decision.candidate.customer_id.encode(),
        value=orjson.dumps(body),
        headers=[("offer_id", decision.offer_id.encode())],
    )


def offer_messages(updates: list[tuple[str, ProfileOut]]) -> list[Message]:
    """The fired offers, with their expiry."""
    return [
        _message(d, {**_body(d), "expires_at": iso(d.candidate.at + OFFER_TTL_S)})
        for _, update in updates
        for d in update.decisions
        if d.fired
    ]


def suppression_signals(updates: list[tuple[str, ProfileOut]]) -> list[Message]:
    """``offer_suppressed`` for each decision a guardrail stopped, with its reason."""
    return [
        _message(
            d,
            {
                "signal": "offer_suppressed",
                # One state may be held back several times, for different reasons.
                "signal_id": f"suppressed/{d.offer_id}/{d.reason}/{round(d.candidate.at * 1000)}",
                **_body(d),
            },
        )
        for _, update in updates
        for d in update.decisions
        if not d.fired
    ]
