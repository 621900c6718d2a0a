"""Cart and checkout events (topic ``shopkeeper.clickstream``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from events._envelope import EventBase, Product, Properties, check_currency
from events._types import Currency, Id, Money

__all__ = [
    "CartProductProperties",
    "CartViewed",
    "CartViewedProperties",
    "CheckoutStarted",
    "CheckoutStartedProperties",
    "ProductAdded",
    "ProductRemoved",
]

Lines = Annotated[list[Product], Meta(max_length=500)]


class CartProductProperties(Product, frozen=True, kw_only=True, omit_defaults=True):
    """One product put in or taken out of a cart; ``quantity`` is how many were moved."""

    cart_id: Id | None = None


class ProductAdded(EventBase, tag="Product Added", frozen=True):
    """Segment ``Product Added``."""

    properties: CartProductProperties


class ProductRemoved(EventBase, tag="Product Removed", frozen=True):
    """Segment ``Product Removed``."""

    properties: CartProductProperties


class CartViewedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """The whole cart as the customer saw it."""

    cart_id: Id | None = None
    products: Lines = msgspec.field(default_factory=list)


class CartViewed(EventBase, tag="Cart Viewed", frozen=True):
    """Segment ``Cart Viewed``."""

    properties: CartViewedProperties


class CheckoutStartedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """The cart entering checkout. Money follows ``Order Completed``."""

    currency: Currency
    checkout_id: Id | None = None
    order_id: Id | None = None
    value: Money | None = None
    revenue: Money | None = None
    discount: Money | None = None
    shipping: Money | None = None
    tax: Money | None = None
    coupon: Id | None = None
    products: Lines = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        check_currency(self.currency, self.products)


class CheckoutStarted(EventBase, tag="Checkout Started", frozen=True):
    """Segment ``Checkout Started``."""

    properties: CheckoutStartedProperties
