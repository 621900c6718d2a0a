"""One valid payload of every event in the contract, as JSON-ready dicts."""

from __future__ import annotations

from typing import Any

_PRODUCT = {
    "product_id": "P1",
    "sku": "COF-1KG",
    "variant_id": "P1-1kg",
    "name": "Espresso beans 1 kg",
    "brand": "Lavazza",
    "category": "Grocery/Coffee",
    "price": 18.0,
    "list_price": 20.0,
    "quantity": 3,
    "currency": "EUR",
}


def _event(name: str, properties: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "message_id": f"m-{name.lower().replace(' ', '-')}",
        "event": name,
        "customer_id": "C123",
        "anonymous_id": "a-77",
        "timestamp": "2025-05-01T12:02:03.120+02:00",
        "channel": "ios",
        "session_id": "s-9",
        "schema_version": "1-0-0",
        "context": {
            "campaign": {"source": "push", "name": "cart_abandon_v2"},
            "experiment": {"experiment_id": "ret-offer-07", "variant": "treatment"},
        },
        "properties": properties,
    }
    payload.update(envelope)
    return payload


SAMPLES: dict[str, dict[str, Any]] = {
    "Product Viewed": _event(
        "Product Viewed", {**_PRODUCT, "view_ms": 5400, "recommendation_id": "r-1"}
    ),
    "Product Clicked": _event(
        "Product Clicked", {**_PRODUCT, "list_id": "home-recs", "recommendation_id": "r-1"}
    ),
    "Product List Viewed": _event(
        "Product List Viewed",
        {"list_id": "coffee", "category": "Grocery/Coffee", "products": [_PRODUCT]},
    ),
    "Products Searched": _event("Products Searched", {"query": "espresso", "results_count": 12}),
    "Product Added": _event("Product Added", {**_PRODUCT, "cart_id": "k-1"}),
    "Product Removed": _event("Product Removed", {**_PRODUCT, "quantity": 1, "cart_id": "k-1"}),
    "Cart Viewed": _event("Cart Viewed", {"cart_id": "k-1", "products": [_PRODUCT]}),
    "Checkout Started": _event(
        "Checkout Started",
        {
            "checkout_id": "k-1",
            "order_id": "O-981",
            "value": 54.0,
            "revenue": 54.0,
            "currency": "EUR",
            "products": [_PRODUCT],
        },
    ),
    "Order Completed": _event(
        "Order Completed",
        {
            "checkout_id": "k-1",
            "order_id": "O-981",
            "currency": "EUR",
            "subtotal": 54.0,
            "discount": 6.0,
            "tax": 10.26,
            "shipping": 0.0,
            "total": 64.26,
            "revenue": 54.0,
            "coupon": "BACK10",
            "payment_method": "card",
            "fulfillment": "ship",
            "products": [_PRODUCT],
        },
    ),
    "Order Refunded": _event(
        "Order Refunded",
        {
            "order_id": "O-981",
            "return_id": "R-1",
            "refund_amount": 18.0,
            "currency": "EUR",
            "reason": "damaged",
            "restocked": False,
            "products": [{**_PRODUCT, "quantity": 1}],
        },
    ),
    "Customer Updated": _event(
        "Customer Updated",
        {
            "traits": {
                "email_sha256": "a" * 64,
                "first_name": "Ana",
                "birthday": "1990-04-01",
                "country": "PT",
                "timezone": "Europe/Lisbon",
                "language": "pt-PT",
                "created_at": "2024-01-01T00:00:00Z",
            },
            "consent": {"personalization": True, "marketing_email": False},
        },
    ),
    "Deletion Requested": _event("Deletion Requested", {"regulation": "suppress_with_delete"}),
    "Product Updated": {
        "message_id": "m-product-updated",
        "event": "Product Updated",
        "timestamp": "2025-05-01T10:00:00Z",
        "channel": "server",
        "properties": {
            "product_id": "P1",
            "price": 16.5,
            "list_price": 20.0,
            "currency": "EUR",
            "inventory_quantity": 120,
            "inventory_status": "in_stock",
            "lifecycle_status": "discontinued",
            "successor_product_id": "P2",
            "replenishment_days": 30,
            "is_consumable": True,
            "margin_rate": 0.35,
        },
    },
    "Support Ticket Created": _event(
        "Support Ticket Created",
        {"ticket_id": "Z-1", "priority": "high", "category": "delivery", "order_id": "O-981"},
    ),
    "Support Ticket Updated": _event(
        "Support Ticket Updated",
        {"ticket_id": "Z-1", "status": "solved", "previous_status": "open"},
    ),
    "Satisfaction Rated": _event("Satisfaction Rated", {"ticket_id": "Z-1", "rating": 2}),
    "NPS Survey Responded": _event(
        "NPS Survey Responded", {"survey_id": "nps-q2", "score": 4, "comment": "late\ndelivery"}
    ),
    "Offer Clicked": _event("Offer Clicked", {"offer_id": "o-1", "trigger": "cart_abandonment"}),
    "Offer Redeemed": _event(
        "Offer Redeemed",
        {"offer_id": "o-1", "order_id": "O-982", "revenue": 40.0, "currency": "EUR"},
    ),
    "Offer Sent": _event(
        "Offer Sent",
        {
            "offer_id": "of-1",
            "trigger": "cart_abandonment",
            "state": "9f2c",
            "channel": "in_app",
            "discount_amount": 2.5,
            "currency": "EUR",
        },
    ),
}
