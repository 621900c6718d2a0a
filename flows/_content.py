"""The content of fired offers: the items they name, and a discount within a daily budget.

Items: the products the trigger is about (the cart's, the order's, the product browsed)
and, for those, their basket complements from the recommender version promoted in the
model registry (``SHOPKEEPER_MODEL_REGISTRY``, re-read when ``CURRENT`` moves): what
people buy with them. Without a promoted version an offer names its own products only.

Discount: ``models.offer_value.choose_discount`` picks the rate of highest expected value
for the trigger and the customer (basket, CLV, churn risk, recency, from the offer's
``Seed``) that fits both a share of the customer's CLV and what is left of the day's
budget. The day is the offer's event-time day (UTC), and the budget is the one serving's
next-best-offer route draws from (``feature_store.DiscountBudget``, idempotent by
``offer_id``): a replayed offer gets the grant it got the first time, never a second one.
Service messages carry no discount (``"discount": null``); nor does an offer whose budget
Redis did not answer for: it goes out without one rather than with one never granted.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Final

import redis

from feature_store import DiscountBudget, FeatureStoreUnavailable, KeyLayout
from flows.profile import Seed
from flows.settings import FlowSettings
from models.baskets import Complements
from models.offer_value import CustomerNumbers, Discount, OfferEconomics, choose_discount
from models.offers import Decision
from models.registry import ModelRegistry

__all__ = ["OfferContent"]

log = logging.getLogger(__name__)

_RECHECK_S: Final = 30.0  # how often the registry's CURRENT is looked at
_COMPLEMENTS: Final = 3  # complements an offer names, at most


class OfferContent:
    """Make the ``content`` of fired offers (see the module docstring).

    Args:
        economics: The expected-value model.
        daily_budget: Discounts granted per UTC day, in the shop's currency.
        budget: The daily budget in Redis; ``None``: no discounts.
        registry: Where promoted recommender versions live; ``None``: no complements.
        default_basket: The basket of a customer with no orders and no cart.
    """

    def __init__(
        self,
        economics: OfferEconomics,
        daily_budget: float,
        budget: DiscountBudget | None,
        registry: ModelRegistry | None = None,
        default_basket: float = 30.0,
    ) -> None:
        self._economics = economics
        self._daily = daily_budget
        self._budget = budget
        self._registry = registry
        self._default_basket = default_basket
        self._version: str | None = None
        self._complements: Complements | None = None
        self._checked = -float("inf")

    @classmethod
    def from_settings(cls, settings: FlowSettings) -> OfferContent:
        """Content backed by the flow's Redis and the model registry it names."""
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        registry = settings.model_registry
        return cls(
            settings.offer_economics(),
            settings.offer_daily_budget,
            DiscountBudget(client, KeyLayout(settings.namespace)),
            None if registry is None else ModelRegistry(registry),
            settings.offer_default_basket,
        )

    def batch(self, offers: list[tuple[Decision, Seed | None]]) -> list[dict[str, Any]]:
        """The ``content`` of each fired offer, in order; the budget is read and drawn on
        in one round trip each."""
        contents: list[dict[str, Any]] = []
        priced: list[tuple[int, Decision, CustomerNumbers]] = []
        for decision, seed in offers:
            products = [] if seed is None else seed.products
            items = [{"product_id": p, "role": "subject"} for p in products]
            items += [
                {"product_id": p, "role": "complement"} for p in self._complements_of(products)
            ]
            content: dict[str, Any] = {"items": items, "discount": None}
            contents.append(content)
            if not decision.candidate.promotional or seed is None:
                continue  # a service message: no discount
            content["customer"] = {
                "clv_12m": seed.clv_12m,
                "clv_source": seed.clv_source,
                "churn": seed.churn,
                "recency_days": seed.recency_days,
            }
            try:
                customer = CustomerNumbers(
                    basket_value=seed.basket_value or self._default_basket,
                    churn_probability=seed.churn,
                    recency_days=seed.recency_days,
                    clv_12m=seed.clv_12m,
                )
            except ValueError as error:  # numbers the model cannot take: no discount
                log.warning("offer %s goes out with no discount: %s", decision.offer_id, error)
                continue
            priced.append((len(contents) - 1, decision, customer))
        for (index, _, _), discount in zip(priced, self._discounts(priced), strict=True):
            contents[index]["discount"] = _discount_body(discount)
        return contents

    def _discounts(
        self, priced: list[tuple[int, Decision, CustomerNumbers]]
    ) -> list[Discount | None]:
        economics, budget = self._economics, self._budget
        if not priced:
            return []
        if budget is None:
            return [
                choose_discount(d.candidate.trigger, customer, 0.0, economics)
                for _, d, customer in priced
            ]
        days = [
            dt.datetime.fromtimestamp(d.candidate.at, dt.UTC).date().isoformat()
            for _, d, _ in priced
        ]
        try:
            spent = budget.spent_many(sorted(set(days)))
            wanted = [
                choose_discount(
                    d.candidate.trigger, customer, max(self._daily - spent[day], 0.0), economics
                )
                for (_, d, customer), day in zip(priced, days, strict=True)
            ]
            granted = budget.reserve_many(
                [
                    (day, d.offer_id, want.amount)
                    for (_, d, _), day, want in zip(priced, days, wanted, strict=True)
                ],
                self._daily,
            )
        except FeatureStoreUnavailable as error:
            log.warning("%d offers go out with no discount: %s", len(priced), error)
            return [None] * len(priced)
        # The grant is what counts: the best rate within it is the one chosen the first
        # time (a retry or a replay gets the same grant back, hence the same discount).
        return [
            choose_discount(d.candidate.trigger, customer, grant, economics)
            for (_, d, customer), grant in zip(priced, granted, strict=True)
        ]

    def _complements_of(self, products: list[str]) -> list[str]:
        complements = self._current()
        if complements is None or not products:
            return []
        seen = set(products)
        found: dict[str, float] = {}
        for product in products:
            for other, score, _ in complements.of(product, _COMPLEMENTS):
                if other not in seen:
                    found[other] = max(found.get(other, 0.0), score)
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
        return [product for product, _ in ranked[:_COMPLEMENTS]]

    def _current(self) -> Complements | None:
        registry = self._registry
        if registry is None:
            return None
        now = time.monotonic()
        if now - self._checked < _RECHECK_S:
            return self._complements
        self._checked = now
        version = registry.current()
        if version is None or version == self._version:
            return self._complements
        try:
            self._complements = Complements.load(registry.path(version) / "complements.npz")
            self._version = version
        except Exception as error:  # a half-written version: keep the one we have
            log.warning("recommender version %s not loaded: %s", version, error)
        return self._complements


def _discount_body(discount: Discount | None) -> dict[str, Any] | None:
    if discount is None:
        return None
    return {
        "rate": discount.rate,
        "amount": discount.amount,
        "limited_by": discount.limited_by,
        "expected_value": discount.expected_value,
        "conversion_probability": discount.conversion_probability,
    }
