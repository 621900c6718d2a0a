"""Order money and what follows an order: refunds, support tickets, CSAT, NPS."""

from __future__ import annotations

from typing import Any

import events
from shopkeeper.generator._draws import Draws

__all__ = ["FollowUp", "follow_ups", "order_properties"]

FollowUp = tuple[float, str, type[events.Event], Any]
"""(seconds after the order, channel, event class, properties)."""

_DAY = 86_400.0
_FREE_SHIPPING = 49.0
_SHIPPING = 4.99
_COUPON = 0.08
_REFUND = 0.06
_TICKET = 0.04
_NPS = 0.08
_REASONS = ("damaged", "wrong_size", "not_as_described", "changed_mind", "late", "other")
_CATEGORIES = ("delivery", "return", "product_quality", "billing", "account", "other")


def order_properties(
    lines: list[events.Product],
    *,
    order_id: str,
    currency: Any,
    tax_rate: float,
    draws: Draws,
    pos_store: str | None = None,
) -> events.OrderCompletedProperties:
    """Price an order: revenue = subtotal = sum(price * qty) - discount; total adds the rest."""
    merchandise = round(sum(round(line.price * line.quantity, 2) for line in lines), 2)
    coupon = "WELCOME10" if draws.chance(_COUPON) else None
    discount = round(merchandise * 0.1, 2) if coupon else 0.0
    revenue = round(merchandise - discount, 2)
    tax = round(revenue * tax_rate, 2)
    shipping = 0.0 if pos_store or revenue >= _FREE_SHIPPING else _SHIPPING
    return events.OrderCompletedProperties(
        order_id=order_id,
        checkout_id=None if pos_store else f"k-{order_id[2:]}",
        revenue=revenue,
        subtotal=revenue,
        discount=discount,
        tax=tax,
        shipping=shipping,
        total=round(revenue + tax + shipping, 2),
        currency=currency,
        coupon=coupon,
        products=lines,
        payment_method=("card", "paypal", "cash" if pos_store else "klarna")[draws.below(3)],
        fulfillment="in_store" if pos_store else ("ship", "click_and_collect")[draws.u() < 0.15],
        store_id=pos_store,
    )


def follow_ups(
    order: events.OrderCompletedProperties, *, near_churn: bool, draws: Draws
) -> list[FollowUp]:
    """Return the events an order causes later, in time order per kind.

    Customers close to churning open more tickets and answer surveys more harshly,
    which is the early signal a churn model can pick up.
    """
    out: list[FollowUp] = []
    order_id = order.order_id
    if draws.chance(_REFUND):
        out.append(_refund(order, draws))
    if draws.chance(_TICKET * (4 if near_churn else 1)):
        out.extend(_ticket(order, near_churn, draws))
    if draws.chance(_NPS * (2 if near_churn else 1)):
        score = min(10, int(draws.u() * 7)) if near_churn else min(10, 6 + int(draws.u() * 5))
        out.append(
            (
                (3 + 4 * draws.u()) * _DAY,
                "email",
                events.NPSSurveyResponded,
                events.NPSSurveyRespondedProperties(
                    score=score, survey_id="nps-post-order", touchpoint=f"order {order_id}"
                ),
            )
        )
    return out


def _refund(order: events.OrderCompletedProperties, draws: Draws) -> FollowUp:
    lines = order.products[: 1 + draws.below(len(order.products))]
    merchandise = sum(line.price * line.quantity for line in order.products)
    share = sum(line.price * line.quantity for line in lines) / merchandise if merchandise else 1.0
    amount = min(order.revenue, round(order.revenue * share, 2))
    return (
        (2 + 18 * draws.u()) * _DAY,
        "web",
        events.OrderRefunded,
        events.OrderRefundedProperties(
            order_id=order.order_id,
            return_id=f"r-{order.order_id[2:]}",
            refund_amount=amount,
            currency=order.currency,
            reason=_REASONS[draws.below(len(_REASONS))],  # type: ignore[arg-type]
            restocked=draws.chance(0.7),
            products=lines,
        ),
    )


def _ticket(
    order: events.OrderCompletedProperties, near_churn: bool, draws: Draws
) -> list[FollowUp]:
    ticket_id = f"t-{order.order_id[2:]}"
    common: dict[str, Any] = {
        "ticket_id": ticket_id,
        "priority": ("low", "normal", "high", "urgent")[min(3, int(draws.u() * 3.3))],
        "type": ("question", "incident", "problem")[draws.below(3)],
        "category": _CATEGORIES[draws.below(len(_CATEGORIES))],
        "order_id": order.order_id,
        "product_ids": [line.product_id for line in order.products[:3]],
    }
    opened = (0.5 + 9.5 * draws.u()) * _DAY
    in_work = opened + (2 + 18 * draws.u()) * 3600
    solved = in_work + (1 + 4 * draws.u()) * _DAY
    props = events.SupportTicketProperties
    out: list[FollowUp] = [
        (opened, "call_center", events.SupportTicketCreated, props(status="new", **common)),
        (
            in_work,
            "call_center",
            events.SupportTicketUpdated,
            props(status="open", previous_status="new", **common),
        ),
        (
            solved,
            "call_center",
            events.SupportTicketUpdated,
            props(status="solved", previous_status="open", **common),
        ),
    ]
    if draws.chance(0.6):
        rating = 1 + min(4, int(draws.u() * (3 if near_churn else 6)))
        out.append(
            (
                solved + (1 + 23 * draws.u()) * 3600,
                "email",
                events.SatisfactionRated,
                events.SatisfactionRatedProperties(ticket_id=ticket_id, rating=rating),
            )
        )
    return out
