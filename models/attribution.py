"""Attribution of customer responses to offer decisions and recommendation clicks.

Pure: records with ids and epoch seconds in, counts out; no clock, no I/O.

Offers (``attribute_offers``). A decision is an ``Exposure`` in one of two arms: treated
(the offer was sent) or control (held out by the deterministic hold-out, the last
guardrail, so the control arm holds exactly the offers that would have gone out). The
rules, the same for both arms so their difference is the offer's effect:

- A decision converts when the customer completes an order in ``(at, at + window]``:
  an order at the decision's own time is the one that triggered it (post-purchase) and
  does not count; one at exactly ``at + window`` does.
- A decision converts at most once, however many orders follow it. An order converts
  every decision whose window holds it (two triggers close together share it).
- Clicks and redemptions are counted per sent offer, by ``offer_id``, within the same
  window: an offer clicked three times is one clicked offer; redeemed revenue adds up
  every redemption. A response that names a held-out offer (the customer never got it),
  an unknown offer, or falls outside its window counts for nothing and is tallied in
  ``OfferAttribution.ignored``.
- Decisions repeat under at-least-once delivery with the same ``offer_id``: the first
  one read stands.
- A decision whose window has not closed by ``until`` (the report's time) is still
  open: counting it would understate both arms' conversion and shrink their difference,
  so it is left out of the arms (counted in ``TriggerCounts.open``), and so are its
  responses.

Recommendations (``attribute_recommendations``): a click on a recommended product,
labelled by the context of its ``recommendation_id`` (``rec.<surface>.<context>``),
converts when the customer orders that product in ``(at, at + window]`` (24 h by
default); each click converts at most once.

Example:
    >>> sent = Exposure("of-1", "c-1", "post_purchase", 0.0, treated=True)
    >>> held = Exposure("of-2", "c-2", "post_purchase", 0.0, treated=False)
    >>> orders = [Order("c-1", 3_600.0, ("P1",)), Order("c-2", 0.0, ("P2",))]
    >>> clicks = [OfferResponse("of-1", 60.0), OfferResponse("of-2", 60.0)]
    >>> result = attribute_offers([sent, held], orders, clicks, window_s=48 * 3_600)
    >>> counts = result.triggers["post_purchase"]
    >>> counts.treated, counts.treated_conversions, counts.control, counts.control_conversions
    (1, 1, 1, 0)
    >>> counts.clicked, result.ignored["control_offer"]
    (1, 1)
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "IGNORED_REASONS",
    "OTHER_CONTEXT",
    "ContextCounts",
    "Exposure",
    "OfferAttribution",
    "OfferResponse",
    "Order",
    "RecommendationClick",
    "TriggerCounts",
    "attribute_offers",
    "attribute_recommendations",
    "recommendation_context",
]

IGNORED_REASONS: Final = ("unknown_offer", "control_offer", "open_offer", "outside_window")
"""Why an offer response counted for nothing."""

OTHER_CONTEXT: Final = "other"
"""The context of a recommendation id that does not read ``rec.<surface>.<context>.<id>``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Exposure:
    """One offer decision in one arm: ``treated`` (sent) or not (held out)."""

    offer_id: str
    customer_id: str
    trigger: str
    at: float
    treated: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Order:
    """A completed order: who, when, which products."""

    customer_id: str
    at: float
    products: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class OfferResponse:
    """A click on an offer, or (``redeemed``) its use in an order worth ``revenue``."""

    offer_id: str
    at: float
    redeemed: bool = False
    revenue: float = 0.0
    currency: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RecommendationClick:
    """A click on a recommended product."""

    customer_id: str
    at: float
    product_id: str
    recommendation_id: str


@dataclasses.dataclass(slots=True)
class TriggerCounts:
    """One trigger's decisions and responses, by arm.

    ``open`` counts the decisions of both arms whose window had not closed yet.
    ``redeemed_revenue`` is by currency: amounts in different currencies do not add up.
    """

    treated: int = 0
    treated_conversions: int = 0
    control: int = 0
    control_conversions: int = 0
    clicked: int = 0
    redeemed: int = 0
    redeemed_revenue: dict[str, float] = dataclasses.field(default_factory=dict)
    open: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class OfferAttribution:
    """Counts by trigger, and the responses that counted for nothing, by reason."""

    triggers: dict[str, TriggerCounts]
    ignored: dict[str, int]


@dataclasses.dataclass(slots=True)
class ContextCounts:
    """Clicks on one recommendation context's products, and how many were bought."""

    clicks: int = 0
    conversions: int = 0


def _converted(times: Sequence[float], at: float, window_s: float) -> bool:
    """Whether a sorted list of times holds one in ``(at, at + window_s]``."""
    i = bisect.bisect_right(times, at)
    return i < len(times) and times[i] <= at + window_s


def attribute_offers(
    exposures: Iterable[Exposure],
    orders: Iterable[Order],
    responses: Iterable[OfferResponse],
    *,
    window_s: float,
    until: float = math.inf,
) -> OfferAttribution:
    """Count each trigger's decisions, conversions, clicks and redemptions by arm.

    Args:
        exposures: The decisions, sent and held out, in any order.
        orders: Completed orders, in any order.
        responses: Offer clicks and redemptions, in any order.
        window_s: The attribution window after each decision, in seconds.
        until: Decisions whose window ends later are open: left out (default: none).

    Raises:
        ValueError: the window is negative.
    """
    if window_s < 0:
        raise ValueError(f"window_s must be >= 0, got {window_s!r}")
    decisions: dict[str, Exposure] = {}
    for exposure in exposures:
        decisions.setdefault(exposure.offer_id, exposure)
    times: defaultdict[str, list[float]] = defaultdict(list)
    for order in orders:
        times[order.customer_id].append(order.at)
    for customer_times in times.values():
        customer_times.sort()
    triggers: dict[str, TriggerCounts] = {}
    for d in sorted(decisions.values(), key=lambda d: d.trigger):
        counts = triggers.setdefault(d.trigger, TriggerCounts())
        if d.at + window_s > until:
            counts.open += 1
            continue
        converted = _converted(times.get(d.customer_id, ()), d.at, window_s)
        if d.treated:
            counts.treated += 1
            counts.treated_conversions += converted
        else:
            counts.control += 1
            counts.control_conversions += converted
    ignored = _count_responses(responses, decisions, triggers, window_s, until)
    return OfferAttribution(triggers=triggers, ignored=ignored)


def _count_responses(
    responses: Iterable[OfferResponse],
    decisions: dict[str, Exposure],
    triggers: dict[str, TriggerCounts],
    window_s: float,
    until: float,
) -> dict[str, int]:
    """Add clicked and redeemed offers and redeemed revenue to ``triggers``; return the
    responses that counted for nothing, by reason."""
    ignored = dict.fromkeys(IGNORED_REASONS, 0)
    clicked: set[str] = set()
    redeemed: set[str] = set()
    for r in responses:
        d = decisions.get(r.offer_id)
        if d is None:
            ignored["unknown_offer"] += 1
        elif not d.treated:
            ignored["control_offer"] += 1
        elif d.at + window_s > until:
            ignored["open_offer"] += 1
        elif not d.at < r.at <= d.at + window_s:
            ignored["outside_window"] += 1
        elif r.redeemed:
            redeemed.add(r.offer_id)
            revenue = triggers[d.trigger].redeemed_revenue
            currency = r.currency or "unknown"
            revenue[currency] = round(revenue.get(currency, 0.0) + r.revenue, 2)
        else:
            clicked.add(r.offer_id)
    for offer in clicked:
        triggers[decisions[offer].trigger].clicked += 1
    for offer in redeemed:
        triggers[decisions[offer].trigger].redeemed += 1
    return ignored


def recommendation_context(recommendation_id: str) -> str:
    """Return ``rec.<surface>.<context>`` of a recommendation id, or ``"other"``.

    Example:
        >>> recommendation_context("rec.customer.home.0f3a9c")
        'rec.customer.home'
        >>> recommendation_context("r-1")
        'other'
    """
    parts = recommendation_id.split(".")
    if len(parts) == 4 and parts[0] == "rec" and all(parts):
        return ".".join(parts[:3])
    return OTHER_CONTEXT


def attribute_recommendations(
    clicks: Iterable[RecommendationClick],
    orders: Iterable[Order],
    *,
    window_s: float = 86_400.0,
) -> dict[str, ContextCounts]:
    """Count clicks on recommended products by context, and the clicks whose product the
    customer ordered within the window after the click.

    Example:
        >>> click = RecommendationClick("c-1", 0.0, "P1", "rec.cart.cart.9b1d")
        >>> bought = Order("c-1", 600.0, ("P7", "P1"))
        >>> later = RecommendationClick("c-1", 900.0, "P1", "rec.customer.home.77ac")
        >>> for context, counts in attribute_recommendations([click, later], [bought]).items():
        ...     print(context, counts.clicks, counts.conversions)
        rec.cart.cart 1 1
        rec.customer.home 1 0
    """
    bought: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    for order in orders:
        for product in set(order.products):
            bought[order.customer_id, product].append(order.at)
    for product_times in bought.values():
        product_times.sort()
    contexts: dict[str, ContextCounts] = {}
    for click in clicks:
        counts = contexts.setdefault(
            recommendation_context(click.recommendation_id), ContextCounts()
        )
        counts.clicks += 1
        times: Sequence[float] = bought.get((click.customer_id, click.product_id), ())
        counts.conversions += _converted(times, click.at, window_s)
    return dict(sorted(contexts.items()))
