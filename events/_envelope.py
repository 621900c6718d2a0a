"""The envelope every event carries, and the product object events share."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta, Struct

from events._types import Channel, Currency, Id, Money, Quantity, ShortText, Timestamp

__all__ = [
    "SCHEMA_VERSION",
    "Campaign",
    "Context",
    "EventBase",
    "Experiment",
    "Product",
    "Properties",
]

SCHEMA_VERSION = "1-0-0"
"""SchemaVer ``MODEL-REVISION-ADDITION`` this code writes; it reads every ``1-*-*``."""

_UTC = dt.UTC


class Properties(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Base of every event's ``properties`` object."""


class Campaign(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """UTM parameters, for campaign attribution."""

    source: ShortText | None = None
    medium: ShortText | None = None
    name: ShortText | None = None
    term: ShortText | None = None
    content: ShortText | None = None


class Experiment(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The A/B test or holdout arm the customer saw."""

    experiment_id: Id
    variant: Id


class Context(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Optional context of where the event happened."""

    campaign: Campaign | None = None
    experiment: Experiment | None = None
    store_id: Id | None = None
    locale: Annotated[str, Meta(max_length=35)] | None = None
    page_path: ShortText | None = None


class Product(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The Segment product object: one product, or one line of a cart or an order.

    ``price`` is the unit price actually charged, after item-level discounts;
    ``list_price`` the regular price.
    """

    product_id: Id
    price: Money
    currency: Currency
    quantity: Quantity = 1
    sku: Id | None = None
    variant_id: Id | None = None
    name: ShortText | None = None
    brand: ShortText | None = None
    category: ShortText | None = None
    list_price: Money | None = None
    coupon: Id | None = None
    position: Annotated[int, Meta(ge=0, le=10_000)] | None = None
    inventory_status: Literal["in_stock", "out_of_stock", "preorder", "backorder"] | None = None


class EventBase(Struct, tag_field="event", frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The envelope. Subclasses set the ``event`` tag and type ``properties``.

    Attributes:
        message_id: Unique per event; the dedupe and idempotency key.
        timestamp: Event time, normalised to UTC.
        channel: Where it happened.
        customer_id: The known customer (Segment ``userId``).
        anonymous_id: The device or cookie id, for customers not yet identified.
        session_id: The web or app session.
        received_at: When the collector received it (UTC), for ingest lag.
        schema_version: SchemaVer of the producer; every ``1-*-*`` is read.
        context: Campaign, experiment, store.
    """

    requires_customer: ClassVar[bool] = True

    message_id: Id
    timestamp: Timestamp
    channel: Channel
    customer_id: Id | None = None
    anonymous_id: Id | None = None
    session_id: Id | None = None
    received_at: Timestamp | None = None
    schema_version: Annotated[str, Meta(pattern=r"^\d{1,3}-\d{1,3}-\d{1,3}$")] = SCHEMA_VERSION
    context: Context | None = None

    def __post_init__(self) -> None:
        # Most producers send UTC ("Z"), which decodes to the ``dt.UTC`` singleton.
        timestamp = self.timestamp
        if timestamp.tzinfo is not _UTC and timestamp.utcoffset():
            msgspec.structs.force_setattr(self, "timestamp", timestamp.astimezone(_UTC))
        received_at = self.received_at
        if received_at is not None and received_at.tzinfo is not _UTC and received_at.utcoffset():
            msgspec.structs.force_setattr(self, "received_at", received_at.astimezone(_UTC))
        if not self.schema_version.startswith("1-"):
            raise ValueError(
                f"unsupported schema_version {self.schema_version!r}: this decoder reads 1-*-*"
            )
        if self.requires_customer and self.customer_id is None and self.anonymous_id is None:
            raise ValueError("missing customer: set `customer_id` or `anonymous_id`")

    @property
    def name(self) -> str:
        """The event name, e.g. ``"Order Completed"``."""
        return type(self).__struct_config__.tag  # type: ignore[return-value]

    @property
    def customer_key(self) -> str | None:
        """Who the event is about: ``customer_id`` if known, else ``anonymous_id``."""
        return self.customer_id if self.customer_id is not None else self.anonymous_id


def check_currency(currency: str, lines: list[Product]) -> None:
    """Raise ``ValueError`` if any line is priced in another currency than the event."""
    for i, line in enumerate(lines):
        if line.currency != currency:
            raise ValueError(
                f"products[{i}].currency {line.currency!r} differs from currency {currency!r}"
            )
