"""The next best offer, pure: which actions a customer is eligible for, what each is
worth, and which one the guardrails let through. No HTTP, no Redis, no clock.

Actions (each a trigger with the state it is made for, so one state is offered once):

=====================  ===========================================  =====================
trigger                eligible when                                state (once per)
=====================  ===========================================  =====================
``cart_abandonment``   the cart holds something                     cart contents (the
                                                                    flow's key)
``churn_risk``         churn probability >= the threshold           purchase window
``near_tier``          the spend missing for the next loyalty tier  tier and year (the
                       is at most a share of its threshold          flow's key)
``replenishment``      a consumable bought is due again             products and purchases
``cross_sell``         the recommender has items for the customer   UTC day
=====================  ===========================================  =====================

Each action gets the discount of highest expected value (``models.offer_value``) and
they are ranked by it. Every action then goes through the flow's guardrails
(``models.offers.ContactBook.decide``, on the book rebuilt from the customer's contact
history, as of ``now``): the best one that is not suppressed is the offer, unless the
customer is in the hold-out group (then nothing is offered, and the answer says so); an
action worth nothing (expected value <= 0) is never offered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Final

from models.loyalty import LoyaltyPolicy
from models.offer_value import CustomerNumbers, Discount, OfferEconomics, choose_discount
from models.offers import Candidate, Policy, near_tier_state, offer_id
from serving.catalog import Catalog
from serving.offer_profile import OfferProfile, contact_book
from serving.recommend import Recommender, Suggestion, Trending
from serving.settings import ServingSettings

__all__ = [
    "TRIGGERS",
    "WHY_NOT",
    "Action",
    "OfferRules",
    "Plan",
    "Scored",
    "eligible_actions",
    "plan_offer",
    "with_grant",
]

TRIGGERS: Final = ("cart_abandonment", "replenishment", "near_tier", "churn_risk", "cross_sell")
"""The actions, in the order that breaks ties of expected value (a bounded label)."""
_NOT_WORTH_IT: Final = "negative_expected_value"
_LOWER: Final = "lower_expected_value"
WHY_NOT: Final = (_LOWER, _NOT_WORTH_IT)
"""Why an action that passed the guardrails (or was never put to them) was not offered."""


@dataclasses.dataclass(frozen=True)
class OfferRules:
    """What decides the next best offer (from the serving settings)."""

    policy: Policy = dataclasses.field(default_factory=Policy)
    economics: OfferEconomics = dataclasses.field(default_factory=OfferEconomics)
    loyalty: LoyaltyPolicy = dataclasses.field(default_factory=LoyaltyPolicy)
    churn_threshold: float = 0.5
    near_tier_share: float = 0.1
    default_basket: float = 30.0

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> OfferRules:
        """The rules the settings describe.

        Raises:
            ValueError: the ladder or the loyalty tiers are malformed.
        """
        return cls(
            policy=settings.offer_policy(),
            economics=settings.offer_economics(),
            loyalty=settings.loyalty_policy(),
            churn_threshold=settings.offer_churn_threshold,
            near_tier_share=settings.near_tier_share,
            default_basket=settings.offer_default_basket,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    """An action the customer is eligible for: its trigger, the state it is made for, a
    reason code, the basket it is about and the items to show."""

    trigger: str
    state_key: str
    reason: str
    basket_value: float
    items: list[Suggestion]


@dataclasses.dataclass(frozen=True, slots=True)
class Scored:
    """An action with its offer id, its numbers and discount, and why it was not chosen
    (None for the offer)."""

    action: Action
    offer_id: str
    numbers: CustomerNumbers
    discount: Discount
    why: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """The decision: the offer (or None), whether the customer is held out, why there is
    no offer, and every other action scored, best first."""

    offer: Scored | None
    holdout: bool
    suppressed: str | None
    alternatives: list[Scored]


def eligible_actions(
    profile: OfferProfile,
    *,
    rules: OfferRules,
    recommender: Recommender | None,
    trending: Trending,
    customer_id: str,
    now: float,
    k: int,
    cart: Sequence[str] | None = None,
) -> list[Action]:
    """The actions the customer is eligible for now, with their items.

    ``cart`` is the app's own view of the cart (product ids), which replaces the stored
    one when given.
    """
    catalog = recommender.catalog if recommender is not None else None
    usual = profile.aov or rules.default_basket
    since = _stamp(profile.last_purchase_at)
    out: list[Action] = []
    lines = profile.cart if cart is None else {p: (1, _price(catalog, p) or 0.0) for p in cart}
    if lines:
        # The flow's state for a cart: a hash of its sorted "product:quantity" lines and
        # when it was filled (the app's own cart is a filling of its own).
        contents = ",".join(f"{p}:{q}" for p, (q, _) in sorted(lines.items()))
        value = sum(q * price for q, price in lines.values())
        items = recommender.basket(list(lines), k, trending=trending).items if recommender else []
        filled = profile.cart_since if cart is None else ""
        key = hashlib.sha256(f"{contents}|{filled}".encode()).hexdigest()[:16]
        out.append(Action("cart_abandonment", key, "cart_waiting", value or usual, items))
    if recommender is not None:
        due = recommender.replenishment(profile.view, k, now=now).items
        if due:
            bought = _last_purchases(profile)
            key = ",".join(sorted(f"{s.related}@{bought.get(s.related or '', 0)}" for s in due))
            value = sum(_price(catalog, s.product_id) or 0.0 for s in due)
            out.append(Action("replenishment", key, "due_again", value or usual, due))
    personal = (
        recommender.for_customer(customer_id, profile.view, k, now=now, trending=trending).items
        if recommender is not None
        else []
    )
    nudge = _near_tier(profile, rules)
    if nudge is not None:
        # The flow's state and reason: one nudge per tier, (UTC) year and spell in a tier.
        tier, missing = nudge
        year = dt.datetime.fromtimestamp(now, dt.UTC).year
        state = near_tier_state(tier, year, profile.loyalty_tier_changed_at)
        reason = f"near_{tier.lower()}"
        out.append(Action("near_tier", state, reason, max(usual, missing), personal))
    churn = profile.churn_probability
    if churn is not None and churn >= rules.churn_threshold:
        out.append(Action("churn_risk", f"since@{since}", "churn_risk_high", usual, personal))
    if personal:
        day = dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()
        out.append(Action("cross_sell", day, "recommended_for_you", usual, personal))
    return out


def plan_offer(
    profile: OfferProfile,
    actions: Sequence[Action],
    *,
    rules: OfferRules,
    customer_id: str,
    channel: str,
    now: float,
    budget_left: float,
) -> Plan:
    """Score the actions, rank them by expected value, and let the guardrails pick."""
    recency = profile.recency_days(now)
    scored: list[Scored] = []
    for action in actions:
        numbers = CustomerNumbers(
            basket_value=round(action.basket_value, 2),
            churn_probability=profile.churn_probability,
            recency_days=recency,
            clv_12m=profile.clv_12m,
        )
        discount = choose_discount(action.trigger, numbers, budget_left, rules.economics)
        oid = offer_id(customer_id, action.trigger, action.state_key)
        scored.append(Scored(action, oid, numbers, discount))
    scored.sort(key=lambda s: (-s.discount.expected_value, TRIGGERS.index(s.action.trigger)))
    context = profile.context()
    offer: Scored | None = None
    holdout = False
    rest: list[Scored] = []
    for s in scored:
        if s.discount.expected_value <= 0:
            rest.append(dataclasses.replace(s, why=_NOT_WORTH_IT))
            continue
        candidate = Candidate(
            customer_id, s.action.trigger, now, s.action.state_key, s.action.reason,
            {"basket_value": f"{s.numbers.basket_value:.2f}"}, channel=channel,
        )  # fmt: skip
        # A fresh book per action: a decision records what it consumed.
        decision = contact_book(profile, now=now).decide(candidate, context, rules.policy)
        if offer is not None or holdout:
            why = _LOWER if decision.fired or decision.reason == "holdout" else decision.reason
            rest.append(dataclasses.replace(s, why=why))
        elif decision.fired:
            offer = s
        else:
            holdout = decision.reason == "holdout"
            rest.append(dataclasses.replace(s, why=decision.reason))
    suppressed = None
    if holdout:
        suppressed = "holdout"
    elif offer is None:
        suppressed = rest[0].why if rest else "no_eligible_action"
    return Plan(offer, holdout, suppressed, rest)


def with_grant(scored: Scored, granted: float, economics: OfferEconomics) -> Scored:
    """The offer with the best discount that fits what the budget granted it (itself when
    the grant covers its discount)."""
    if granted >= scored.discount.amount:
        return scored
    discount = choose_discount(scored.action.trigger, scored.numbers, granted, economics)
    return dataclasses.replace(scored, discount=discount)


def _near_tier(profile: OfferProfile, rules: OfferRules) -> tuple[str, float] | None:
    """The next tier and the spend it still needs, when that is little enough."""
    if profile.loyalty_tier is None:
        return None
    spend = profile.loyalty_spend_12m or 0.0
    for name, threshold in rules.loyalty.tiers:
        if threshold > spend:
            missing = threshold - spend
            close = missing <= rules.near_tier_share * threshold
            return (name, round(missing, 2)) if close else None
    return None


def _last_purchases(profile: OfferProfile) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in profile.view.recent:  # newest first
        if r.kind == "purchase":
            out.setdefault(r.product_id, int(r.at))
    return out


def _price(catalog: Catalog | None, product_id: str) -> float | None:
    facts = catalog.get(product_id) if catalog is not None else None
    return facts.price if facts is not None else None


def _stamp(at: float | None) -> str:
    return "never" if at is None else str(int(at))
