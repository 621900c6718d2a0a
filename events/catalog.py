"""Catalogue events (topic ``shopkeeper.catalog``, keyed by ``product_id``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from msgspec import Meta

from events._envelope import EventBase, Properties
from events._types import Count, Currency, Id, Money, Rate, ShortText

__all__ = ["ProductUpdated", "ProductUpdatedProperties"]


class ProductUpdatedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """The current state of a product. Fields left out are unchanged.

    ``replenishment_days`` is the usual repurchase cycle of a consumable;
    ``successor_product_id`` replaces a retired product.
    """

    product_id: Id
    sku: Id | None = None
    name: ShortText | None = None
    brand: ShortText | None = None
    category: ShortText | None = None
    price: Money | None = None
    list_price: Money | None = None
    currency: Currency | None = None
    inventory_quantity: Count | None = None
    inventory_status: Literal["in_stock", "out_of_stock", "preorder", "backorder"] | None = None
    lifecycle_status: Literal["active", "discontinued", "end_of_life"] | None = None
    successor_product_id: Id | None = None
    replenishment_days: Annotated[int, Meta(ge=1, le=3650)] | None = None
    is_consumable: bool | None = None
    margin_rate: Rate | None = None

    def __post_init__(self) -> None:
        if (self.price is not None or self.list_price is not None) and self.currency is None:
            raise ValueError("a price needs its `currency`")
        if self.successor_product_id == self.product_id:
            raise ValueError("a product cannot be its own successor")


class ProductUpdated(EventBase, tag="Product Updated", frozen=True):
    """A catalogue change; it concerns no customer."""

    requires_customer: ClassVar[bool] = False

    properties: ProductUpdatedProperties
