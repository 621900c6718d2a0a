"""The event contract: typed retail events, strict decoding, encoding.

Names follow Segment e-commerce v2 (``Product Viewed``, ``Order Completed``, ...) plus
the CRM events no spec covers (``Customer Updated``, ``Product Updated``, service,
offers, ``Deletion Requested``). Every event is an immutable ``msgspec.Struct``.
"""

from events._codec import MAX_EVENT_BYTES, EventDecoder, decode, encode, partition_key
from events._envelope import SCHEMA_VERSION, Campaign, Context, EventBase, Experiment, Product
from events._errors import ContractError, DecodeError, ReasonCode
from events._registry import (
    CATALOG,
    CLICKSTREAM,
    CUSTOMERS,
    DLQ,
    EVENT_TYPES,
    OFFERS,
    PURCHASES,
    TOPICS,
    Event,
    event_type,
    in_namespace,
    topic_for,
)
from events.browsing import (
    ProductClicked,
    ProductClickedProperties,
    ProductListViewed,
    ProductListViewedProperties,
    ProductsSearched,
    ProductsSearchedProperties,
    ProductViewed,
    ProductViewedProperties,
)
from events.cart import (
    CartProductProperties,
    CartViewed,
    CartViewedProperties,
    CheckoutStarted,
    CheckoutStartedProperties,
    ProductAdded,
    ProductRemoved,
)
from events.catalog import ProductUpdated, ProductUpdatedProperties
from events.customers import (
    Consent,
    CustomerUpdated,
    CustomerUpdatedProperties,
    DeletionRequested,
    DeletionRequestedProperties,
    Traits,
)
from events.offers import OfferClicked, OfferProperties, OfferRedeemed
from events.orders import (
    OrderCompleted,
    OrderCompletedProperties,
    OrderRefunded,
    OrderRefundedProperties,
)
from events.service import (
    NPSSurveyResponded,
    NPSSurveyRespondedProperties,
    SatisfactionRated,
    SatisfactionRatedProperties,
    SupportTicketCreated,
    SupportTicketProperties,
    SupportTicketUpdated,
)

__all__ = [
    "CATALOG",
    "CLICKSTREAM",
    "CUSTOMERS",
    "DLQ",
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "OFFERS",
    "PURCHASES",
    "SCHEMA_VERSION",
    "TOPICS",
    "Campaign",
    "CartProductProperties",
    "CartViewed",
    "CartViewedProperties",
    "CheckoutStarted",
    "CheckoutStartedProperties",
    "Consent",
    "Context",
    "ContractError",
    "CustomerUpdated",
    "CustomerUpdatedProperties",
    "DecodeError",
    "DeletionRequested",
    "DeletionRequestedProperties",
    "Event",
    "EventBase",
    "EventDecoder",
    "Experiment",
    "NPSSurveyResponded",
    "NPSSurveyRespondedProperties",
    "OfferClicked",
    "OfferProperties",
    "OfferRedeemed",
    "OrderCompleted",
    "OrderCompletedProperties",
    "OrderRefunded",
    "OrderRefundedProperties",
    "Product",
    "ProductAdded",
    "ProductClicked",
    "ProductClickedProperties",
    "ProductListViewed",
    "ProductListViewedProperties",
    "ProductRemoved",
    "ProductUpdated",
    "ProductUpdatedProperties",
    "ProductViewed",
    "ProductViewedProperties",
    "ProductsSearched",
    "ProductsSearchedProperties",
    "ReasonCode",
    "SatisfactionRated",
    "SatisfactionRatedProperties",
    "SupportTicketCreated",
    "SupportTicketProperties",
    "SupportTicketUpdated",
    "Traits",
    "decode",
    "encode",
    "event_type",
    "in_namespace",
    "partition_key",
    "topic_for",
]
