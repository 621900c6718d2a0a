"""Offers and the responses to them: offers sent outside the flow (``Offer Sent``, on
``shopkeeper.customers``), clicks (``shopkeeper.clickstream``) and redemptions
(``shopkeeper.purchases``)."""

from __future__ import annotations

from typing import Literal

from events._envelope import EventBase, Properties
from events._types import Currency, Id, Money, ShortText

__all__ = ["OfferClicked", "OfferProperties", "OfferRedeemed", "OfferSent", "OfferSentProperties"]


class OfferProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """Which offer; a redemption names the order and the value it carried."""

    offer_id: Id
    decision_id: Id | None = None
    trigger: ShortText | None = None
    order_id: Id | None = None
    revenue: Money | None = None
    currency: Currency | None = None

    def __post_init__(self) -> None:
        if self.revenue is not None and self.currency is None:
            raise ValueError("`revenue` needs its `currency`")


class OfferClicked(EventBase, tag="Offer Clicked", frozen=True):
    """The customer opened an offer."""

    properties: OfferProperties


class OfferRedeemed(EventBase, tag="Offer Redeemed", frozen=True):
    """The customer used an offer in an order."""

    properties: OfferProperties


class OfferSentProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """An offer made to the customer outside the flow (the next-best-offer route): the
    flow counts it toward the customer's caps, cool-downs and once-per-state like its
    own. ``state`` is the offer's guardrail state (what it is once per)."""

    offer_id: Id
    trigger: ShortText
    state: ShortText
    channel: Literal["push", "in_app", "email", "sms"]
    discount_amount: Money | None = None
    currency: Currency | None = None

    def __post_init__(self) -> None:
        if self.discount_amount is not None and self.currency is None:
            raise ValueError("`discount_amount` needs its `currency`")


class OfferSent(EventBase, tag="Offer Sent", frozen=True):
    """The engine made an offer (a server event: not the customer's activity)."""

    properties: OfferSentProperties
