"""Offer triggers read off a customer's profile at an event-time tick, and the context
the guardrails need (consent, time zone, open tickets). Pure: no clock, no I/O.

Cart abandonment: the clock ticks a customer ``delay`` after each cart change (Product
Added or Removed, Cart Viewed); if the cart holds something and has not changed since
(an order would have moved it), the cart is abandoned. Its state is the cart's
contents, so one cart fires once however often it is left.

Triggers on the event itself (``event_triggers``), decided as it is folded:

========================  ====================================  =========================
trigger                   when                                  state (fires once per)
========================  ====================================  =========================
``post_purchase``         Order Completed                       order
``tier_upgrade``          the order lifts the loyalty tier      tier reached
``service_recovery``      an NPS detractor (0-6) or a CSAT of   survey answer / ticket
                          1-2; a service message, not a
                          promotion
========================  ====================================  =========================
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import events
from flows.profile._format import iso
from models.loyalty import TierChange
from models.offers import Candidate, Context

_DETRACTOR: Final = 6  # NPS 0-6
_BAD_CSAT: Final = 2  # CSAT 1-2 of 5

if TYPE_CHECKING:
    from flows.profile._customer import CustomerProfile

__all__ = ["ContextLog", "cart_abandonment", "event_triggers", "guardrail_context"]

_MAX_ENTRIES = 200  # context changes kept with their times; older ones fold into a base


class ContextLog:
    """The guardrails' inputs (consent flags, time zone, tickets) that a newer value
    replaced, with their event times, so a trigger reads them as of its own time (see
    ``guardrail_context``): a live run has folded later events by then, a replay may not
    have, and both must decide alike.

    Example:
        >>> log = ContextLog()
        >>> log.record(20.0, 1, "consent:marketing_push", False)
        >>> log.record(10.0, 2, "consent:marketing_push", True)  # arrives late
        >>> [(t, value) for t, _, _, value in log.entries]
        [(10.0, True), (20.0, False)]
    """

    __slots__ = ("_base", "_entries")

    def __init__(self) -> None:
        self._base: dict[str, object] = {}
        self._entries: list[tuple[float, int, str, object]] = []

    def record(self, t: float, tie: int, key: str, value: object) -> None:
        """Note that ``key`` became ``value`` at event time ``t``."""
        entries = self._entries
        bisect.insort(entries, (t, tie, key, value), key=lambda e: (e[0], e[1], e[2]))
        if len(entries) > _MAX_ENTRIES:
            _, _, old_key, old_value = entries.pop(0)
            self._base[old_key] = old_value

    @property
    def base(self) -> dict[str, object]:
        """The values folded out of the log (older than every entry), by key."""
        return self._base

    @property
    def entries(self) -> list[tuple[float, int, str, object]]:
        """The logged values with their times, in time order."""
        return self._entries

    def __getstate__(self) -> tuple[dict[str, object], list[tuple[float, int, str, object]]]:
        return (self._base, self._entries)

    def __setstate__(
        self, state: tuple[dict[str, object], list[tuple[float, int, str, object]]]
    ) -> None:
        self._base, self._entries = state


def cart_abandonment(
    p: CustomerProfile, at: float, changed: float, delay_s: float
) -> Candidate | None:
    """The cart-abandonment candidate at ``at`` for the cart change at ``changed``, or
    ``None`` when the cart was empty then or changed again by ``at`` (a later change has
    its own tick). Read from the cart's past states, so a replay that has already folded
    later events decides as a live run did."""
    if p.erased:
        return None
    state = p._cart.between(changed, at)
    p._cart.settle(changed)
    if state is None or state[2] or not state[0]:
        return None
    contents, value, _ = state
    lines = [entry.rpartition(":") for entry in contents.split(",")]
    features = {
        "cart_value": value,
        "cart_items": str(sum(int(quantity) for _, _, quantity in lines)),
        "cart_products": ",".join(product for product, _, _ in lines),
        "cart_updated_at": iso(changed),
        "idle_minutes": str(round(delay_s / 60)),
    }
    key = hashlib.sha256(contents.encode()).hexdigest()[:16]
    reason = f"cart_idle_{round(delay_s / 60)}m"
    return Candidate(p._customer, "cart_abandonment", at, key, reason, features)


def event_triggers(
    p: CustomerProfile, event: events.Event, t: float, tiers: Sequence[TierChange]
) -> list[Candidate]:
    """The candidates an event just folded raises (``tiers``: the tier changes it made)."""
    customer = p._customer
    out: list[Candidate] = []
    if type(event) is events.OrderCompleted:
        props = event.properties
        features = {
            "order_id": props.order_id,
            "revenue": f"{props.revenue:.2f}",
            "products": ",".join(line.product_id for line in props.products),
        }
        out.append(
            Candidate(
                customer,
                "post_purchase",
                t,
                props.order_id,
                "order_completed",
                features,
                channel="email",
            )
        )
    elif type(event) is events.NPSSurveyResponded and event.properties.score <= _DETRACTOR:
        features = {"nps": str(event.properties.score)}
        out.append(
            Candidate(
                customer,
                "service_recovery",
                t,
                f"nps:{event.message_id}",
                "nps_detractor",
                features,
                channel="email",
                promotional=False,
            )
        )
    elif type(event) is events.SatisfactionRated and event.properties.rating <= _BAD_CSAT:
        features = {"csat": str(event.properties.rating), "ticket_id": event.properties.ticket_id}
        out.append(
            Candidate(
                customer,
                "service_recovery",
                t,
                f"csat:{event.properties.ticket_id}",
                "csat_bad",
                features,
                channel="email",
                promotional=False,
            )
        )
    for change in tiers:
        if str(change.direction) == "upgrade":
            features = {"tier": change.new, "previous_tier": change.old}
            out.append(
                Candidate(
                    customer,
                    "tier_upgrade",
                    change.t,
                    change.new,
                    f"tier_{change.new.lower()}",
                    features,
                )
            )
    return out


def guardrail_context(p: CustomerProfile, at: float) -> Context:
    """Consent flags, time zone and open support tickets as of event time ``at``: each
    register's latest value if set by then, else the latest earlier one in the log."""
    best: dict[str, tuple[float, int, object]] = {}

    def offer(key: str, t: float, tie: int, value: object) -> None:
        known = best.get(key)
        if t <= at and (known is None or (t, tie) > known[:2]):
            best[key] = (t, tie, value)

    for name, flag in p._consent.items():
        offer(f"consent:{name}", *flag)
    timezone = p._traits.get("timezone")
    if timezone is not None:
        offer("timezone", *timezone)
    for ticket, status in p._tickets.items():
        offer(f"ticket:{ticket}", *status)
    log = p._context
    if log is not None:
        for key, old in log.base.items():  # folded out of the log: older than all in it
            best.setdefault(key, (-math.inf, 0, old))
        for entry in log.entries:
            offer(entry[2], entry[0], entry[1], entry[3])
    state = {key: entry[2] for key, entry in best.items()}
    consent = {k[8:]: bool(v) for k, v in state.items() if k.startswith("consent:")}
    zone = state.get("timezone")
    return Context(
        consent=consent,
        timezone=zone if isinstance(zone, str) else None,
        open_tickets=sum(1 for k, v in state.items() if k.startswith("ticket:") and v),
    )
