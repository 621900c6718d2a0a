"""Request parameters: parsed and checked, or a 422 that says what is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final

import msgspec

__all__ = [
    "CHANNELS",
    "CONTEXTS",
    "OFFER_K",
    "BadRequest",
    "CartRequest",
    "OfferRequest",
    "check_id",
    "context_of",
    "k_of",
    "parse_cart",
    "parse_offer_request",
]

ID_MAX_LENGTH: Final = 128
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")  # the event contract's rule for ids
CONTEXTS: Final = (
    "home",
    "product",
    "cart",
    "category",
    "search",
    "checkout",
    "account",
    "email",
    "app",
)
CHANNELS: Final = ("in_app", "push", "email", "sms")
"""Where an offer is shown or sent; the first is the default."""
OFFER_K: Final = 4
"""Items an offer carries when ``k`` is not given."""
_AT_FIELD: Final = re.compile(r"at `\$\.([A-Za-z_]+)")


class BadRequest(Exception):
    """A parameter that is missing, malformed or out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_id(value: str, field: str) -> str:
    """An id as the event contract has them: 1-128 characters, no control characters."""
    if not 1 <= len(value) <= ID_MAX_LENGTH:
        raise BadRequest(
            field, f"{field} must be 1 to {ID_MAX_LENGTH} characters, got {len(value)}"
        )
    if _CONTROL.search(value):
        raise BadRequest(field, f"{field} must not hold control characters")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape
        raise BadRequest(field, f"{field} must be valid Unicode") from None
    return value


def k_of(query: Mapping[str, str], default: int, most: int) -> int:
    """The ``k`` query parameter: how many items, 1 to ``most``."""
    raw = query.get("k")
    if raw is None:
        return default
    try:
        k = int(raw)
    except ValueError:
        raise BadRequest("k", f"k must be an integer from 1 to {most}, got {raw[:40]!r}") from None
    if not 1 <= k <= most:
        raise BadRequest("k", f"k must be from 1 to {most}, got {k}")
    return k


def context_of(query: Mapping[str, str], default: str) -> str:
    """The ``context`` query parameter: where the list is shown (a bounded set, so it
    can label metrics and attribution)."""
    context = query.get("context", default)
    if context not in CONTEXTS:
        raise BadRequest(
            "context", f"context must be one of {', '.join(CONTEXTS)}; got {context[:40]!r}"
        )
    return context


Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX_LENGTH)]


class CartRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The body of ``POST /v1/cart/cross-sell``."""

    items: Annotated[list[Id], msgspec.Meta(min_length=1)]
    k: int | float | None = None  # JSON Schema counts 6.0 as an integer, so do we
    customer_id: Id | None = None
    context: str = "cart"


_CART = msgspec.json.Decoder(CartRequest)


def parse_cart(body: bytes, *, default_k: int, most_k: int, most_items: int) -> CartRequest:
    """Decode and check a cart request body."""
    try:
        cart = _CART.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest("body", f"invalid cart request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest("body", f"the body is not JSON: {exc}") from None
    if len(cart.items) > most_items:
        raise BadRequest("items", f"a cart holds at most {most_items} items, got {len(cart.items)}")
    for item in cart.items:
        check_id(item, "items")
    if cart.customer_id is not None:
        check_id(cart.customer_id, "customer_id")
    k = default_k if cart.k is None else cart.k
    if isinstance(k, float) and not k.is_integer():
        raise BadRequest("k", f"k must be an integer, got {k}")
    if not 1 <= k <= most_k:
        raise BadRequest("k", f"k must be from 1 to {most_k}, got {k}")
    context_of({"context": cart.context}, "cart")
    return msgspec.structs.replace(cart, k=int(k))


class OfferRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The (optional) body of ``POST /v1/customers/{customer_id}/next-best-offer``."""

    channel: str = CHANNELS[0]
    context: str = "app"
    cart: list[Id] | None = None  # the app's cart, when fresher than the stored one
    k: int | float | None = None


_OFFER = msgspec.json.Decoder(OfferRequest)


def parse_offer_request(body: bytes, *, most_k: int, most_items: int) -> OfferRequest:
    """Decode and check a next-best-offer body; an empty body asks with the defaults."""
    if not body.strip():
        return OfferRequest(k=OFFER_K)
    try:
        ask = _OFFER.decode(body)
    except msgspec.ValidationError as exc:
        found = _AT_FIELD.search(str(exc))
        raise BadRequest(found.group(1) if found else "body", f"invalid request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest("body", f"the body is not JSON: {exc}") from None
    if ask.channel not in CHANNELS:
        raise BadRequest(
            "channel", f"channel must be one of {', '.join(CHANNELS)}; got {ask.channel[:40]!r}"
        )
    context_of({"context": ask.context}, "app")
    if ask.cart is not None:
        if len(ask.cart) > most_items:
            raise BadRequest(
                "cart", f"a cart holds at most {most_items} items, got {len(ask.cart)}"
            )
        for item in ask.cart:
            check_id(item, "cart")
    k = OFFER_K if ask.k is None else ask.k
    if isinstance(k, float) and not k.is_integer():
        raise BadRequest("k", f"k must be an integer, got {k}")
    if not 1 <= k <= most_k:
        raise BadRequest("k", f"k must be from 1 to {most_k}, got {k}")
    return msgspec.structs.replace(ask, k=int(k))
