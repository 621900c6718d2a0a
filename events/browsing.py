"""Browsing events: what the customer looked at (topic ``shopkeeper.clickstream``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from events._envelope import EventBase, Product, Properties
from events._types import Count, Id, ShortText

__all__ = [
    "ProductClicked",
    "ProductClickedProperties",
    "ProductListViewed",
    "ProductListViewedProperties",
    "ProductViewed",
    "ProductViewedProperties",
    "ProductsSearched",
    "ProductsSearchedProperties",
]

ListOfProducts = Annotated[list[Product], Meta(max_length=500)]


class ProductViewedProperties(Product, frozen=True, kw_only=True, omit_defaults=True):
    """A product page seen; ``view_ms`` is the dwell time when the tracker knows it."""

    view_ms: Annotated[int, Meta(ge=0, le=86_400_000)] | None = None
    recommendation_id: Id | None = None


class ProductViewed(EventBase, tag="Product Viewed", frozen=True):
    """Segment ``Product Viewed``."""

    properties: ProductViewedProperties


class ProductClickedProperties(Product, frozen=True, kw_only=True, omit_defaults=True):
    """A product clicked in a list; ``recommendation_id`` attributes it to a served slot."""

    list_id: Id | None = None
    recommendation_id: Id | None = None


class ProductClicked(EventBase, tag="Product Clicked", frozen=True):
    """Segment ``Product Clicked``."""

    properties: ProductClickedProperties


class ProductListViewedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """A category page, search result or recommendation slot seen."""

    list_id: Id | None = None
    category: ShortText | None = None
    products: ListOfProducts = msgspec.field(default_factory=list)
    recommendation_id: Id | None = None


class ProductListViewed(EventBase, tag="Product List Viewed", frozen=True):
    """Segment ``Product List Viewed``."""

    properties: ProductListViewedProperties


class ProductsSearchedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """A search query and how many results it had."""

    query: ShortText
    results_count: Count | None = None


class ProductsSearched(EventBase, tag="Products Searched", frozen=True):
    """Segment ``Products Searched``."""

    properties: ProductsSearchedProperties
