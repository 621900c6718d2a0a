"""The OpenAPI 3.1 document of the serving API (served at ``/openapi.json``).

Written out rather than generated: it is the contract the website and the app code
against, and the property-based tests check every response against it.
"""

from __future__ import annotations

from typing import Any

from serving._params import CONTEXTS, ID_MAX_LENGTH
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
            "description": "Recommendations, cross-sell, up-sell and the live customer profile.",
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
