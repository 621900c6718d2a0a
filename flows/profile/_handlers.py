"""How each event folds into a ``CustomerProfile`` (one function per event type).

``CustomerProfile.apply`` does what every event shares (dedupe, times, channel, session);
the handler here does the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import events
from feature_store import encode_log
from flows.profile._features import CONSENT, ORDERS, RETURNS, SERVICE, TRAITS
from flows.profile._format import MONEY_SCALE, iso, to_units

if TYPE_CHECKING:
    from flows.profile._customer import CustomerProfile

__all__ = ["HANDLERS", "ORDERS_MAX", "YEAR"]

ORDERS_MAX: Final = 1_000
"""Orders kept in the 365-day log; a customer beyond this undercounts ``orders_365d``."""
REFUNDED_IDS_MAX: Final = 1_000
TICKETS_MAX: Final = 100
YEAR: Final = 365 * 86_400.0
_CLOSED: Final = frozenset({"solved", "closed"})
_HIDDEN_TRAITS: Final = frozenset({"email_sha256", "phone_sha256"})  # identity keys, not features
_TRAITS: Final = tuple(f for f in events.Traits.__struct_fields__ if f not in _HIDDEN_TRAITS)
_CONSENT: Final = events.Consent.__struct_fields__
_WEIGHT_VIEW, _WEIGHT_ADD, _WEIGHT_PURCHASE = 1.0, 3.0, 5.0


def _on_view(p: CustomerProfile, e: events.ProductViewed, t: float, tie: int) -> None:
    p._count(0, t)
    p._like(e.properties, _WEIGHT_VIEW, t)
    p._interact(t, tie, 0, e.properties.product_id, "view")


def _on_click(p: CustomerProfile, e: events.ProductClicked, t: float, tie: int) -> None:
    p._interact(t, tie, 0, e.properties.product_id, "click")


def _on_add(p: CustomerProfile, e: events.ProductAdded, t: float, tie: int) -> None:
    line = e.properties
    p._count(1, t)
    p._like(line, _WEIGHT_ADD * line.quantity, t)
    p._cart_op(t, tie, "add", (line.product_id, line.quantity, line.price))
    p._interact(t, tie, 0, line.product_id, "add")


def _on_remove(p: CustomerProfile, e: events.ProductRemoved, t: float, tie: int) -> None:
    line = e.properties
    p._cart_op(t, tie, "remove", (line.product_id, line.quantity))
    p._interact(t, tie, 0, line.product_id, "remove")


def _on_cart(p: CustomerProfile, e: events.CartViewed, t: float, tie: int) -> None:
    lines = tuple((x.product_id, x.quantity, x.price) for x in e.properties.products)
    p._cart_op(t, tie, "replace", lines)


def _on_order(p: CustomerProfile, e: events.OrderCompleted, t: float, tie: int) -> None:
    props = e.properties
    units = to_units(props.revenue)
    p._orders_total += 1
    p._revenue += units
    p._last_purchase = max(p._last_purchase, t)
    if t > p._last - p._lateness - YEAR:
        _log_order(p, props.order_id, t, units)
    p._count(2, t)
    if e.channel == "pos" and e.session_id is None:
        p._count(3, t)  # a till visit is a session of its own
    p._touch(ORDERS, t)
    p._cache[RETURNS] = None  # return_rate divides by orders_total
    p._cart_op(t, tie, "purchase", tuple(x.product_id for x in props.products))
    for i, line in enumerate(props.products):
        p._like(line, _WEIGHT_PURCHASE * line.quantity, t)
        p._interact(t, tie, i, line.product_id, "purchase")
    p._tier_changed(p._loyalty.purchase(props.order_id, t, props.revenue), t)


def _log_order(p: CustomerProfile, order_id: str, t: float, units: int) -> None:
    orders = p._orders
    orders[order_id] = (t, units)
    p._orders_oldest = min(p._orders_oldest, t)
    if len(orders) > ORDERS_MAX:
        del orders[min(orders, key=lambda k: (orders[k][0], k))]
        p._orders_oldest = min(v[0] for v in orders.values())
        p._log_text = p._o365 = None
        return
    # Keep the encoded log and the 365-day values up to date instead of redoing them:
    # a heavy buyer's log holds hundreds of orders.
    if p._o365 is not None and t > p._last - YEAR:
        p._o365 = (p._o365[0] + 1, p._o365[1] + units)
        p._o365_until = min(p._o365_until, t)
    text, last = p._log_text, p._log_last
    if text is not None and (last is None or (t, order_id) > last):
        piece = encode_log([(t, units / MONEY_SCALE, order_id)])[1:-1]
        p._log_text = f"{text[:-1]},{piece}]" if last is not None else f"[{piece}]"
        p._log_last = (t, order_id)
    else:
        p._log_text = None


def _on_refund(p: CustomerProfile, e: events.OrderRefunded, t: float, tie: int) -> None:
    props = e.properties
    p._refunds += 1
    p._refunded += to_units(props.refund_amount)
    if props.order_id not in p._refunded_ids:
        p._refunded_ids[props.order_id] = None
        p._refunded_orders += 1
        if len(p._refunded_ids) > REFUNDED_IDS_MAX:
            del p._refunded_ids[next(iter(p._refunded_ids))]
    p._touch(RETURNS, t)
    change = p._loyalty.refund(props.order_id, t, props.refund_amount, refund_id=props.return_id)
    p._tier_changed(change, t)


def _on_ticket(
    p: CustomerProfile,
    e: events.SupportTicketCreated | events.SupportTicketUpdated,
    t: float,
    tie: int,
) -> None:
    props = e.properties
    tickets = p._tickets
    is_open = props.status not in _CLOSED
    if p._latest_noted(tickets, props.ticket_id, t, tie, is_open, prefix="ticket:"):
        if len(tickets) > TICKETS_MAX:
            del tickets[min(tickets, key=lambda k: (tickets[k][0], k))]
        p._touch(SERVICE, t)


def _on_nps(p: CustomerProfile, e: events.NPSSurveyResponded, t: float, tie: int) -> None:
    if p._nps is None or (p._nps[0], p._nps[1]) < (t, tie):
        p._nps = (t, tie, e.properties.score)
        p._touch(SERVICE, t)


def _on_csat(p: CustomerProfile, e: events.SatisfactionRated, t: float, tie: int) -> None:
    if p._csat is None or (p._csat[0], p._csat[1]) < (t, tie):
        p._csat = (t, tie, e.properties.rating)
        p._touch(SERVICE, t)


def _trait_text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return iso(value.timestamp())
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _on_customer(p: CustomerProfile, e: events.CustomerUpdated, t: float, tie: int) -> None:
    traits = e.properties.traits
    for name in _TRAITS:
        value = getattr(traits, name)
        if value is None:
            continue
        if name == "timezone":  # the guardrails read it as of a trigger's time
            changed = p._latest_noted(p._traits, name, t, tie, _trait_text(value), prefix="")
        else:
            changed = p._latest(p._traits, name, t, tie, _trait_text(value))
        if changed:
            p._touch(TRAITS, t)
    consent = e.properties.consent
    if consent is not None:
        for name in _CONSENT:
            value = getattr(consent, name)
            if value is None:
                continue
            if p._latest_noted(p._consent, name, t, tie, value, prefix="consent:"):
                p._touch(CONSENT, t)


def _on_activity(p: CustomerProfile, e: events.Event, t: float, tie: int) -> None:
    """Searches, list views, checkouts and offers: activity only (done by ``apply``)."""


HANDLERS: Final[dict[type, Callable[[CustomerProfile, Any, float, int], None]]] = {
    events.ProductViewed: _on_view,
    events.ProductClicked: _on_click,
    events.ProductListViewed: _on_activity,
    events.ProductsSearched: _on_activity,
    events.ProductAdded: _on_add,
    events.ProductRemoved: _on_remove,
    events.CartViewed: _on_cart,
    events.CheckoutStarted: _on_activity,
    events.OrderCompleted: _on_order,
    events.OrderRefunded: _on_refund,
    events.CustomerUpdated: _on_customer,
    events.DeletionRequested: _on_activity,
    events.SupportTicketCreated: _on_ticket,
    events.SupportTicketUpdated: _on_ticket,
    events.SatisfactionRated: _on_csat,
    events.NPSSurveyResponded: _on_nps,
    events.OfferClicked: _on_activity,
    events.OfferRedeemed: _on_activity,
    events.OfferSent: _on_activity,  # (folded before the handlers: see ``fold``)
}
