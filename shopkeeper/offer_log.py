"""The flow's offer decisions read back from Kafka: the two arms of every trigger.

The flow writes each decision once per delivery (at-least-once), keyed by customer:

- a fired offer to ``<ns>.offers``: the treated arm;
- a suppressed one to ``<ns>.signals`` as an ``offer_suppressed`` signal with its reason.
  Reason ``holdout`` is the control arm: the hold-out is the last guardrail, so a held-out
  decision is exactly an offer that would have gone out. Other reasons are counted, for
  the record, and are in neither arm. Other signals (segment entries, tier changes) are
  skipped.

Both bodies carry ``offer_id``, ``customer_id``, ``trigger``, ``reason`` and ``at`` (the
decision's event time, ISO-8601 UTC); unknown keys are ignored, so the flow may add
fields. A message that does not read as a decision is counted in ``rejected``, never fatal.

Example:
    >>> log = DecisionLog()
    >>> log.add(b'{"offer_id":"of-1","customer_id":"c-1","trigger":"post_purchase",'
    ...         b'"reason":"order_completed","at":"2025-05-06T12:00:00Z"}', fired=True)
    >>> log.add(b'{"signal":"tier_upgraded","customer_id":"c-1"}', fired=False)
    >>> log.add(b'not json', fired=True)
    >>> log.exposures[0].treated, log.exposures[0].at, log.rejected
    (True, 1746532800.0, 1)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

import msgspec

import events
from models.attribution import Exposure
from shopkeeper.history import read_topics

__all__ = ["CONTROL_REASON", "DecisionLog", "read_decisions"]

CONTROL_REASON: Final = "holdout"
"""The suppression reason of the control arm."""

_SUPPRESSED: Final = "offer_suppressed"


class _Signal(msgspec.Struct, frozen=True):
    signal: str | None = None


class _Decision(msgspec.Struct, frozen=True):
    offer_id: str
    customer_id: str
    trigger: str
    reason: str
    at: dt.datetime
    signal_id: str | None = None


_signal = msgspec.json.Decoder(_Signal)
_decision = msgspec.json.Decoder(_Decision)


@dataclasses.dataclass
class DecisionLog:
    """Decisions read so far: the exposures of both arms, the other suppressions by
    trigger and reason, and the messages that did not read as decisions."""

    exposures: list[Exposure] = dataclasses.field(default_factory=list)
    suppressed: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    rejected: int = 0
    _signals_seen: set[str] = dataclasses.field(default_factory=set, init=False, repr=False)

    def add(self, value: bytes | None, *, fired: bool) -> None:
        """Read one message: from the offers topic (``fired``) or the signals topic."""
        try:
            if not fired and _signal.decode(value or b"").signal != _SUPPRESSED:
                return
            decision = _decision.decode(value or b"")
        except msgspec.DecodeError:  # also a ValidationError
            self.rejected += 1
            return
        at = decision.at
        if at.tzinfo is None:
            self.rejected += 1
            return
        if fired or decision.reason == CONTROL_REASON:
            self.exposures.append(
                Exposure(
                    decision.offer_id, decision.customer_id, decision.trigger, at.timestamp(), fired
                )
            )
            return
        # At-least-once: a repeated signal carries the same id.
        seen = decision.signal_id or f"{decision.offer_id}/{decision.reason}/{at.isoformat()}"
        if seen in self._signals_seen:
            return
        self._signals_seen.add(seen)
        reasons = self.suppressed.setdefault(decision.trigger, {})
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1


def read_decisions(
    bootstrap: str, namespace: str, *, progress: bool = False, timeout_s: float = 30.0
) -> DecisionLog:
    """Read every decision on the namespace's offers and signals topics, from their start
    to their end when the read starts (see ``shopkeeper.history.read_topics``).

    Raises:
        shopkeeper.history.HistoryError: A topic does not exist, or Kafka stopped answering.
    """
    log = DecisionLog()
    for name, fired in ((events.OFFERS, True), (events.SIGNALS, False)):
        topic = events.in_namespace(name, namespace)
        for message in read_topics(
            bootstrap, [topic], timeout_s=timeout_s, progress=progress, desc=topic
        ):
            log.add(message.value(), fired=fired)
    return log
