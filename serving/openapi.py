"""The OpenAPI 3.1 document of the serving API (served at ``/openapi.json``).

Written out rather than generated: it is the contract the website and the app code
against, and the property-based tests check every response against it.
"""

from __future__ import annotations

from typing import Any

from models.offers import SUPPRESSION_REASONS
from serving._params import CHANNELS, CONTEXTS, ID_MAX_LENGTH, OFFER_K
from serving.next_best_offer import TRIGGERS, WHY_NOT
from serving.recommend import REASONS
from serving.settings import ServingSettings

__all__ = ["spec"]


def _id(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": ID_MAX_LENGTH,
        "pattern": r"^[^\x00-\x1f\x7f/]+$",
        "description": description,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def spec(settings: ServingSettings) -> dict[str, Any]:
    """The document, with the limits of ``settings`` (``k``'s range, cart size)."""
    k = {
        "name": "k",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": settings.max_k},
        "description": f"How many items (default {settings.default_k}).",
    }

    def context(default: str) -> dict[str, Any]:
        return {
            "name": "context",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(CONTEXTS), "default": default},
            "description": "Where the list is shown; part of the recommendation_id.",
        }

    customer = {"name": "customer_id", "in": "path", "required": True, "schema": _id("Customer")}
    product = {"name": "product_id", "in": "path", "required": True, "schema": _id("Product")}
    invalid = _json(_ref("Problem"), "A parameter is missing, malformed or out of range.")
    listing = _json(_ref("Recommendations"), "A ranked list.")

    def get(summary: str, params: list[dict[str, Any]], ok: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": params,
                        "responses": {"200": ok, "422": invalid}}}  # fmt: skip

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shopkeeper serving API",
            "version": "1",
            "description": "Recommendations, cross-sell, up-sell, the next best offer and the "
            "live customer profile.",
        },
        "paths": {
            "/v1/customers/{customer_id}/recommendations": get(
                "What this customer should see next (unknown customers get a fallback).",
                [customer, k, context("home")],
                listing,
            ),
            "/v1/items/{product_id}/cross-sell": get(
                "Products bought together with this one.", [product, k, context("product")], listing
            ),
            "/v1/items/{product_id}/up-sell": get(
                "Dearer products of the same category, close in taste.",
                [product, k, context("product")],
                listing,
            ),
            "/v1/cart/cross-sell": {
                "post": {
                    "summary": "Products that complete a cart.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("CartRequest")}},
                    },
                    "responses": {"200": listing, "422": invalid},
                }
            },
            "/v1/customers/{customer_id}/next-best-offer": {
                "post": {
                    "summary": "The offer to make this customer now, if any, and why.",
                    "description": (
                        "Scores every action the customer is eligible for (cart recovery, "
                        "replenishment, near-tier nudge, retention, cross-sell) by expected "
                        "value with its best discount, applies the flow's guardrails (consent "
                        "for the channel, open ticket, quiet hours, cool-down, caps, hold-out) "
                        "and reserves the discount in the daily budget, idempotently by "
                        "offer_id. No offer is a 200 with `offer: null` and `suppressed`."
                    ),
                    "parameters": [customer],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("OfferRequest")}},
                    },
                    "responses": {
                        "200": _json(_ref("NextBestOffer"), "The offer, or none and why."),
                        "422": invalid,
                    },
                }
            },
            "/v1/customers/{customer_id}": {
                "get": {
                    "summary": "The live profile: features, segment, churn, CLV, loyalty.",
                    "parameters": [customer],
                    "responses": {
                        "200": _json(_ref("Profile"), "The profile."),
                        "404": _json(_ref("Problem"), "Unknown or erased customer."),
                        "422": invalid,
                        "503": _json(_ref("Problem"), "The feature store is not answering."),
                    },
                }
            },
            "/v1/ping": get(
                "A static answer: the framework's floor.",
                [],
                _json({"type": "object", "properties": {"ok": {"type": "boolean"}}}, "Always ok."),
            ),
            "/healthz": {"get": {"summary": "Alive.", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {
                "get": {
                    "summary": "Ready: a model loaded and Redis answering.",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
        },
        "components": {"schemas": _schemas(settings)},
    }


def _schemas(settings: ServingSettings) -> dict[str, Any]:
    nullable_text = {"type": ["string", "null"]}
    return {
        "Problem": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {
                "error": {"type": "string"},
                "detail": {"type": "string"},
                "field": {"type": "string"},
            },
        },
        "Item": {
            "type": "object",
            "required": ["product_id", "score", "reason", "reason_text", "related_product_id"],
            "properties": {
                "product_id": {"type": "string"},
                "name": nullable_text,
                "score": {"type": "number"},
                "reason": {"type": "string", "enum": list(REASONS)},
                "reason_text": {"type": "string"},
                "related_product_id": nullable_text,
            },
        },
        "Recommendations": {
            "type": "object",
            "required": [
                "recommendation_id",
                "model_version",
                "context",
                "source",
                "personalized",
                "degraded",
                "fallback",
                "items",
            ],
            "properties": {
                "recommendation_id": {"type": "string", "maxLength": ID_MAX_LENGTH},
                "model_version": nullable_text,
                "context": {"type": "string", "enum": list(CONTEXTS)},
                "source": {"type": "string"},
                "personalized": {"type": "boolean"},
                "degraded": {"type": "boolean"},
                "fallback": nullable_text,
                "customer_id": {"type": "string"},
                "product_id": {"type": "string"},
                "items": {"type": "array", "items": _ref("Item"), "maxItems": settings.max_k},
            },
        },
        "CartRequest": {
            "type": "object",
            "required": ["items"],
            "additionalProperties": False,
            "properties": {
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": settings.max_cart_items,
                    "items": _id("Product in the cart"),
                },
                "k": {"type": "integer", "minimum": 1, "maximum": settings.max_k},
                "customer_id": _id("Customer"),
                "context": {"type": "string", "enum": list(CONTEXTS), "default": "cart"},
            },
        },
        **_offer_schemas(settings),
        "Profile": {
            "type": "object",
            "required": ["customer_id", "as_of", "summary", "features"],
            "properties": {
                "customer_id": {"type": "string"},
                "as_of": {"type": "string"},
                "summary": {"type": "object"},
                "features": {"type": "object"},
            },
        },
    }


def _offer_schemas(settings: ServingSettings) -> dict[str, Any]:
    nullable_text = {"type": ["string", "null"]}
    number = {"type": "number"}
    scored = {
        "offer_id": {"type": "string"},
        "trigger": {"type": "string", "enum": list(TRIGGERS)},
        "reason": {"type": "string"},
        "discount": _ref("OfferDiscount"),
        "basket_value": number,
        "expected_value": number,
        "conversion_probability": {"type": "number", "minimum": 0, "maximum": 1},
    }
    return {
        "OfferRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "channel": {"type": "string", "enum": list(CHANNELS), "default": CHANNELS[0]},
                "context": {"type": "string", "enum": list(CONTEXTS), "default": "app"},
                "cart": {
                    "type": "array",
                    "maxItems": settings.max_cart_items,
                    "items": _id("Product in the cart"),
                    "description": "The app's cart, when fresher than the stored one.",
                },
                "k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": settings.max_k,
                    "description": f"Items the offer carries (default {OFFER_K}).",
                },
            },
        },
        "OfferDiscount": {
            "type": "object",
            "required": ["rate", "amount", "limited_by"],
            "properties": {
                "rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                "amount": {"type": "number", "minimum": 0},
                "limited_by": {"type": ["string", "null"], "enum": ["clv", "budget", None]},
            },
        },
        "Offer": {
            "type": "object",
            "required": [*scored, "channel", "items", "expires_at"],
            "properties": {
                **scored,
                "channel": {"type": "string", "enum": list(CHANNELS)},
                "items": {"type": "array", "items": _ref("Item"), "maxItems": settings.max_k},
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "RejectedAction": {
            "type": "object",
            "required": [*scored, "why"],
            "properties": {
                **scored,
                "why": {"type": "string", "enum": [*SUPPRESSION_REASONS, *WHY_NOT]},
            },
        },
        "NextBestOffer": {
            "type": "object",
            "required": [
                "customer_id",
                "as_of",
                "channel",
                "context",
                "model_version",
                "personalized",
                "degraded",
                "fallback",
                "offer",
                "holdout",
                "suppressed",
                "alternatives",
            ],
            "properties": {
                "customer_id": {"type": "string"},
                "as_of": {"type": "string", "format": "date-time"},
                "channel": {"type": "string", "enum": list(CHANNELS)},
                "context": {"type": "string", "enum": list(CONTEXTS)},
                "model_version": nullable_text,
                "personalized": {"type": "boolean"},
                "degraded": {"type": "boolean"},
                "fallback": nullable_text,
                "offer": {"oneOf": [_ref("Offer"), {"type": "null"}]},
                "holdout": {"type": "boolean"},
                "suppressed": nullable_text,
                "alternatives": {"type": "array", "items": _ref("RejectedAction")},
            },
        },
    }
