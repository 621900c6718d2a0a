"""Every event type, its name and the Kafka topic it travels on."""

from __future__ import annotations

from typing import Final

from events.browsing import ProductClicked, ProductListViewed, ProductsSearched, ProductViewed
from events.cart import CartViewed, CheckoutStarted, ProductAdded, ProductRemoved
from events.catalog import ProductUpdated
from events.customers import CustomerUpdated, DeletionRequested
from events.offers import OfferClicked, OfferRedeemed, OfferSent
from events.orders import OrderCompleted, OrderRefunded
from events.service import (
    NPSSurveyResponded,
    SatisfactionRated,
    SupportTicketCreated,
    SupportTicketUpdated,
)

__all__ = [
    "CUSTOMER_TOPICS",
    "EVENT_TYPES",
    "TOPICS",
    "Event",
    "event_type",
    "in_namespace",
    "topic_for",
]

Event = (
    ProductViewed
    | ProductClicked
    | ProductListViewed
    | ProductsSearched
    | ProductAdded
    | ProductRemoved
    | CartViewed
    | CheckoutStarted
    | OrderCompleted
    | OrderRefunded
    | CustomerUpdated
    | DeletionRequested
    | ProductUpdated
    | SupportTicketCreated
    | SupportTicketUpdated
    | SatisfactionRated
    | NPSSurveyResponded
    | OfferClicked
    | OfferSent
    | OfferRedeemed
)
"""Any event of the contract."""

CLICKSTREAM: Final = "shopkeeper.clickstream"
PURCHASES: Final = "shopkeeper.purchases"
CATALOG: Final = "shopkeeper.catalog"
CUSTOMERS: Final = "shopkeeper.customers"
DLQ: Final = "shopkeeper.dlq"
OFFERS: Final = "shopkeeper.offers"
SIGNALS: Final = "shopkeeper.signals"
"""CRM signals the flow derives, keyed by customer: segment entries, loyalty tier changes."""

_TOPIC_OF: Final[dict[type[Event], str]] = {
    ProductViewed: CLICKSTREAM,
    ProductClicked: CLICKSTREAM,
    ProductListViewed: CLICKSTREAM,
    ProductsSearched: CLICKSTREAM,
    ProductAdded: CLICKSTREAM,
    ProductRemoved: CLICKSTREAM,
    CartViewed: CLICKSTREAM,
    CheckoutStarted: CLICKSTREAM,
    OfferClicked: CLICKSTREAM,
    OrderCompleted: PURCHASES,
    OrderRefunded: PURCHASES,
    OfferRedeemed: PURCHASES,
    ProductUpdated: CATALOG,
    CustomerUpdated: CUSTOMERS,
    DeletionRequested: CUSTOMERS,
    SupportTicketCreated: CUSTOMERS,
    SupportTicketUpdated: CUSTOMERS,
    SatisfactionRated: CUSTOMERS,
    NPSSurveyResponded: CUSTOMERS,
    OfferSent: CUSTOMERS,
}

EVENT_TYPES: Final[tuple[type[Event], ...]] = tuple(_TOPIC_OF)
"""Every event class, in catalogue order."""

TOPICS: Final[tuple[str, ...]] = (CLICKSTREAM, PURCHASES, CATALOG, CUSTOMERS)
"""The input topics."""

CUSTOMER_TOPICS: Final[tuple[str, ...]] = (CUSTOMERS, PURCHASES, CLICKSTREAM)
"""The input topics keyed by customer, co-partitioned (same partition count). At equal
event times the flow takes them in this order: profile changes, then purchases, then
clicks."""

_BY_NAME: Final[dict[str, type[Event]]] = {
    t.__struct_config__.tag: t  # type: ignore[misc]
    for t in EVENT_TYPES
}


def topic_for(event: Event) -> str:
    """Return the input topic an event is produced to."""
    return _TOPIC_OF[type(event)]


def event_type(name: str) -> type[Event]:
    """Return the class of the event called ``name`` (e.g. ``"Order Completed"``).

    Raises:
        KeyError: ``name`` is not in the contract.
    """
    return _BY_NAME[name]


def in_namespace(topic: str, namespace: str) -> str:
    """Return ``topic`` renamed into ``namespace``: ``shopkeeper.dlq`` becomes ``<namespace>.dlq``.

    One Kafka cluster can host several engines (or tests) side by side this way.
    """
    return namespace + topic.removeprefix("shopkeeper")
