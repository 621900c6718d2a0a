"""Offer decisions as Kafka messages: fired offers to ``shopkeeper.offers`` for the app,
suppressed ones to ``shopkeeper.signals`` (the audit trail, and the control group of the
uplift report).

Each message is keyed by the customer and carries the deterministic ``offer_id`` (also
in its headers): the sinks are at-least-once, so a replay after a crash may send an
offer again under the same id, and the app drops what it has seen. A fired offer carries
its ``content`` (items and discount, see ``flows._content``).
"""

from __future__ import annotations

from typing import Final

import orjson
from bytewax.connectors.kafka import KafkaSinkMessage

from flows._content import OfferContent
from flows._signals import tier_signals
from flows._state import ProfileOut
from flows.profile import Seed
from flows.profile._format import iso
from models.offers import Decision

__all__ = [
    "OFFER_TTL_S",
    "CrmMessages",
    "Routed",
    "is_offer",
    "offer_messages",
    "suppression_signals",
    "unrouted",
]

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


def offer_messages(
    updates: list[tuple[str, ProfileOut]], content: OfferContent | None = None
) -> list[Message]:
    """The fired offers, with their expiry (and content)."""
    fired: list[tuple[Decision, Seed | None]] = []
    for _, update in updates:
        seeds = {seed.offer_id: seed for seed in update.seeds}
        fired += ((d, seeds.get(d.offer_id)) for d in update.decisions if d.fired)
    contents = content.batch(fired) if content is not None else [None] * len(fired)
    out: list[Message] = []
    for (d, _), made in zip(fired, contents, strict=True):
        body = {**_body(d), "expires_at": iso(d.candidate.at + OFFER_TTL_S)}
        if made is not None:
            body["content"] = made
        out.append(_message(d, body))
    return out


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


Routed = tuple[bool, Message]
"""A message and whether it is a fired offer (else a CRM signal)."""


class CrmMessages:
    """Every message the customer updates of a batch raise, in one pass over them: tier
    changes and suppressed offers (signals), fired offers with their content. One step
    over the profile stream instead of three: each step costs every update its passage.
    """

    def __init__(self, content: OfferContent | None = None) -> None:
        self._content = content

    def __call__(self, updates: list[tuple[str, ProfileOut]]) -> list[Routed]:
        out: list[Routed] = [(False, m) for m in tier_signals(updates)]
        if any(update.decisions for _, update in updates):
            out += [(False, m) for m in suppression_signals(updates)]
            out += [(True, m) for m in offer_messages(updates, self._content)]
        return out


def is_offer(routed: Routed) -> bool:
    """Whether a routed message is a fired offer."""
    return routed[0]


def unrouted(routed: Routed) -> Message:
    """The message itself."""
    return routed[1]
