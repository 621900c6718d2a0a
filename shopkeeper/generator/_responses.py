"""Customers' responses to offer decisions, with a planted treatment effect per trigger.

Given the decisions the flow made (read back from Kafka, ``shopkeeper.offer_log``), the
responder decides for each one whether the customer orders within the attribution window,
with probability ``PlantedEffect.treated`` when the offer was sent and
``PlantedEffect.control`` when it was held out, so each trigger's true uplift is
``treated - control`` (proportion points) by construction.

What it emits, all after the decision's time and inside the window:

- each conversion: one ``Order Completed`` (the only thing the uplift counts, alike in
  both arms);
- a sent offer's conversion, with probability ``redeem_share``: an ``Offer Clicked``
  halfway to the order and an ``Offer Redeemed`` with the order's id and revenue (a held-
  out customer never got the offer, so never clicks or redeems it);
- a sent offer without a conversion, with probability ``click_without_order``: an
  ``Offer Clicked`` alone.

The truth is exact when the responder owns every order in the windows: give each
customer at most one decision per window, and no other orders inside it (the order that
triggered a post-purchase offer sits at the decision's own time, outside its window).
Then the report's conversions per arm equal ``PlantedResponses.truth``'s counts, and the
difference of the planted probabilities is the uplift the report estimates. A customer
with two decisions in one window converts both with one order.

Draws come from a hash of the seed, the offer id and what is drawn, so the responses do
not depend on the order the decisions were read in, and the same seed gives the same
events.

Example:
    >>> from models.attribution import Exposure
    >>> decisions = [Exposure(f"of-{i}", f"c-{i}", "post_purchase", 1.7e9, treated=i % 2 == 0)
    ...              for i in range(1000)]
    >>> planted = plant_responses(decisions, {"post_purchase": PlantedEffect(0.1, 0.3)})
    >>> truth = planted.truth["post_purchase"]
    >>> truth["uplift"], truth["treated"], truth["control"]
    (0.2, 500, 500)
    >>> truth["treated_conversions"], truth["control_conversions"]
    (136, 65)
    >>> first = planted.events[0]
    >>> first.name, first.timestamp > dt.datetime.fromtimestamp(1.7e9, dt.UTC)
    ('Offer Clicked', True)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import events
from models.attribution import Exposure

__all__ = ["PlantedEffect", "PlantedResponses", "plant_responses"]

_OFFER_TTL_S: Final = 48 * 3_600.0


@dataclasses.dataclass(frozen=True)
class PlantedEffect:
    """What a trigger's offer does: the probability that a decision converts within the
    window, held out (``control``) and sent (``treated``).

    Raises:
        ValueError: a probability is outside [0, 1].
    """

    control: float
    treated: float
    redeem_share: float = 0.8
    """Of the sent offers' conversions, the share placed with the offer (clicked and
    redeemed); the rest order without it."""
    click_without_order: float = 0.05
    """Of the sent offers that do not convert, the share clicked all the same."""

    def __post_init__(self) -> None:
        for name in ("control", "treated", "redeem_share", "click_without_order"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")

    @property
    def uplift(self) -> float:
        """The true uplift: treated minus control conversion probability."""
        return round(self.treated - self.control, 12)


@dataclasses.dataclass(frozen=True)
class PlantedResponses:
    """The events to produce (in event-time order) and, by trigger, what was planted:
    the probabilities, the true ``uplift``, and the decisions, conversions, clicked and
    redeemed offers and redeemed revenue the responder made per arm."""

    events: list[events.Event]
    truth: dict[str, dict[str, Any]]


def _uniform(seed: int, offer_id: str, what: str) -> float:
    """A uniform draw in [0, 1) fixed by the seed, the offer and what is drawn."""
    digest = hashlib.sha256(f"{seed}|{offer_id}|{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _at(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(t, 3), dt.UTC)


def plant_responses(
    decisions: Iterable[Exposure],
    effects: Mapping[str, PlantedEffect],
    *,
    seed: int = 7,
    window_s: float = _OFFER_TTL_S,
    products: Sequence[str] = ("P-RESPONSE",),
    order_value: float = 40.0,
    currency: str = "EUR",
) -> PlantedResponses:
    """Respond to each decision of a trigger in ``effects`` (others get no response).

    Args:
        decisions: The decisions of both arms; repeats of an ``offer_id`` count once.
        effects: The planted effect, by trigger.
        seed: Fixes every draw.
        window_s: The attribution window (default: the offers' 48 h time to live); orders
            land in ``(at + 1 s, at + window_s)``.
        products: The products an order may hold (one per order).
        order_value: The median order revenue; revenues spread over 0.5-1.5 times it.
        currency: The currency of every amount.

    Raises:
        ValueError: the window is shorter than 2 seconds or no products are given.
    """
    if window_s < 2.0 or not products:
        raise ValueError("the window must be at least 2 s and products non-empty")
    unique: dict[str, Exposure] = {}
    for decision in decisions:
        if decision.trigger in effects:
            unique.setdefault(decision.offer_id, decision)
    out: list[events.Event] = []
    truth = {trigger: _truth(effect) for trigger, effect in effects.items()}
    for offer_id in sorted(unique):
        d = unique[offer_id]
        effect, counts = effects[d.trigger], truth[d.trigger]
        arm = "treated" if d.treated else "control"
        counts[arm] += 1
        draw = _uniform(seed, offer_id, "convert")
        if draw >= (effect.treated if d.treated else effect.control):
            if d.treated and _uniform(seed, offer_id, "click") < effect.click_without_order:
                click = d.at + 1.0 + (window_s - 2.0) * _uniform(seed, offer_id, "click_at")
                out.append(_offer_event(events.OfferClicked, d, click))
                counts["clicked"] += 1
            continue
        counts[f"{arm}_conversions"] += 1
        ordered = d.at + 1.0 + (window_s - 2.0) * _uniform(seed, offer_id, "order_at")
        revenue = round(order_value * (0.5 + _uniform(seed, offer_id, "value")), 2)
        product = products[int(_uniform(seed, offer_id, "product") * len(products))]
        order_id = f"o-{offer_id}"
        out.append(
            _order(
                d, ordered, order_id=order_id, product=product, revenue=revenue, currency=currency
            )
        )
        if d.treated and _uniform(seed, offer_id, "redeem") < effect.redeem_share:
            out.append(_offer_event(events.OfferClicked, d, (d.at + ordered) / 2))
            props = {"order_id": order_id, "revenue": revenue, "currency": currency}
            out.append(_offer_event(events.OfferRedeemed, d, ordered, **props))
            counts["clicked"] += 1
            counts["redeemed"] += 1
            counts["redeemed_revenue"] = round(counts["redeemed_revenue"] + revenue, 2)
    out.sort(key=lambda e: e.timestamp)
    return PlantedResponses(out, truth)


def _truth(effect: PlantedEffect) -> dict[str, Any]:
    return {
        "control_rate": effect.control,
        "treated_rate": effect.treated,
        "uplift": effect.uplift,
        "treated": 0,
        "control": 0,
        "treated_conversions": 0,
        "control_conversions": 0,
        "clicked": 0,
        "redeemed": 0,
        "redeemed_revenue": 0.0,
    }


def _order(
    d: Exposure, t: float, *, order_id: str, product: str, revenue: float, currency: str
) -> events.OrderCompleted:
    line = events.Product(product_id=product, price=revenue, currency=currency)  # type: ignore[arg-type]
    return events.OrderCompleted(
        message_id=f"resp-{d.offer_id}-order",
        timestamp=_at(t),
        channel="web",
        customer_id=d.customer_id,
        properties=events.OrderCompletedProperties(
            order_id=order_id,
            revenue=revenue,
            subtotal=revenue,
            currency=currency,  # type: ignore[arg-type]
            products=[line],
        ),
    )


def _offer_event(
    cls: type[events.OfferClicked] | type[events.OfferRedeemed],
    d: Exposure,
    t: float,
    **props: Any,
) -> events.Event:
    kind = "click" if cls is events.OfferClicked else "redeem"
    return cls(
        message_id=f"resp-{d.offer_id}-{kind}",
        timestamp=_at(t),
        channel="web",
        customer_id=d.customer_id,
        properties=events.OfferProperties(offer_id=d.offer_id, trigger=d.trigger, **props),
    )
