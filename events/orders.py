"""Purchase events (topic ``shopkeeper.purchases``).

Money follows Segment: ``subtotal`` and ``revenue`` are after discounts and before tax and
shipping; ``total`` is what the customer paid (``subtotal + tax + shipping``). Refunds
carry ``refund_amount``. Every amount is in ``currency``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from events._envelope import EventBase, Product, Properties, check_currency
from events._types import Currency, Id, Money, ShortText

__all__ = [
    "OrderCompleted",
    "OrderCompletedProperties",
    "OrderRefunded",
    "OrderRefundedProperties",
]

_CENT = 0.011  # rounding of 2-dp amounts, with room for float error


class OrderCompletedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """A completed order with its lines."""

    order_id: Id
    revenue: Money
    currency: Currency
    products: Annotated[list[Product], Meta(min_length=1, max_length=500)]
    checkout_id: Id | None = None
    subtotal: Money | None = None
    discount: Money | None = None
    tax: Money | None = None
    shipping: Money | None = None
    total: Money | None = None
    coupon: Id | None = None
    payment_method: ShortText | None = None
    fulfillment: Literal["ship", "click_and_collect", "in_store"] | None = None
    store_id: Id | None = None

    def __post_init__(self) -> None:
        check_currency(self.currency, self.products)
        if self.subtotal is not None and abs(self.subtotal - self.revenue) > _CENT:
            raise ValueError(
                f"revenue {self.revenue} differs from subtotal {self.subtotal}: "
                "both are after discounts and before tax and shipping"
            )
        if self.total is not None:
            paid = self.revenue + (self.tax or 0.0) + (self.shipping or 0.0)
            if abs(self.total - paid) > _CENT:
                raise ValueError(
                    f"total {self.total} differs from revenue + tax + shipping = {paid:.2f}"
                )


class OrderCompleted(EventBase, tag="Order Completed", frozen=True):
    """Segment ``Order Completed``."""

    properties: OrderCompletedProperties


class OrderRefundedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """Money given back for an order; ``products`` lists only the refunded lines."""

    order_id: Id
    refund_amount: Money
    currency: Currency
    return_id: Id | None = None
    reason: (
        Literal["damaged", "wrong_size", "not_as_described", "changed_mind", "late", "other"] | None
    ) = None
    restocked: bool | None = None
    products: Annotated[list[Product], Meta(max_length=500)] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        check_currency(self.currency, self.products)


class OrderRefunded(EventBase, tag="Order Refunded", frozen=True):
    """Segment ``Order Refunded``."""

    properties: OrderRefundedProperties
