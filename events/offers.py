"""Responses to offers the engine sent (clicks on ``shopkeeper.clickstream``,
redemptions on ``shopkeeper.purchases``)."""

from __future__ import annotations

from events._envelope import EventBase, Properties
from events._types import Currency, Id, Money, ShortText

__all__ = ["OfferClicked", "OfferProperties", "OfferRedeemed"]


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
