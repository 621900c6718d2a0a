"""Settings of the serving API, read once where the app is built."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.loyalty import LoyaltyPolicy
from models.offer_value import OfferEconomics
from models.offers import Policy

__all__ = ["ServingSettings"]


class ServingSettings(BaseSettings):
    """Where serving reads features and models, and the rules of its answers.

    Every field can be set by a ``SHOPKEEPER_<FIELD>`` environment variable.
    """

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", extra="ignore", frozen=True)

    redis_url: str = Field(description="Redis URL of the feature store.")
    namespace: str = Field(default="shopkeeper", description="Redis key prefix.")
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers: the next best offers made go there as `Offer "
        "Sent` events, so the flow counts them toward the caps; unset: not reported.",
    )
    model_registry: Path = Field(
        default=Path("var/models/als"),
        description="Registry directory of recommender versions; CURRENT is served.",
    )
    model_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often each process looks for a newly promoted (or rolled back) model.",
    )
    catalog_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the catalogue change feed is read, and the stock, lifecycle "
        "and prices of the products on it re-read from Redis.",
    )
    trending_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the trending lists (24 h views and purchases) are re-read.",
    )
    redis_timeout_seconds: float = Field(
        default=0.05,
        gt=0,
        description="Connect and read timeout of a request's Redis call; past it, the "
        "answer falls back and says it is degraded.",
    )
    redis_retry_seconds: float = Field(
        default=1.0,
        ge=0,
        description="After a Redis failure, requests skip Redis this long (a circuit "
        "breaker), so an outage costs no request a timeout.",
    )
    default_k: int = Field(default=10, ge=1, le=100, description="Items when `k` is not given.")
    max_k: int = Field(default=100, ge=1, le=1000, description="The largest `k` accepted.")
    max_cart_items: int = Field(default=100, ge=1, description="Products a cart request may hold.")
    exclude_bought_days: int = Field(
        default=90,
        ge=0,
        description="Products bought this recently are not recommended again (consumables "
        "come back when due).",
    )
    replenishment_lead: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description="A consumable is due again after this share of its replenishment days.",
    )
    up_sell_band: tuple[float, float] = Field(
        default=(1.1, 2.0),
        description="Up-sells cost between these multiples of the product's price.",
    )
    personalization_requires_consent: bool = Field(
        default=False,
        description="True: personalise only for customers who granted `personalization`; "
        "false: for everyone but those who denied it.",
    )
    # -- next best offer: the guardrails mirror the flow's (the same variables) ----------
    offer_daily_cap: int = Field(
        default=2, ge=0, description="Offers per customer per local calendar day, all triggers."
    )
    offer_weekly_cap: int = Field(
        default=5, ge=0, description="Offers per customer per rolling 7 days, all triggers."
    )
    offer_quiet_hours: tuple[int, int] = Field(
        default=(21, 8),
        description="Local hours [start, end) when no promotion is offered; `[0, 0]`: none.",
    )
    offer_holdout_share: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Share of customers in the control group (deterministic by customer): "
        "they get no offer, and the answer says so.",
    )
    loyalty_tiers: str = Field(
        default="Bronze:0,Silver:500,Gold:1500,Platinum:5000",
        description="Loyalty tiers by trailing 12-month spend, as the flow has them: "
        "`name:threshold,...`.",
    )
    offer_daily_budget: float = Field(
        default=500.0,
        ge=0,
        description="Discounts the next best offers may grant per UTC day, in the shop's "
        "currency (face value, reserved per offer id).",
    )
    offer_margin_rate: float = Field(
        default=0.35, gt=0, le=1, description="Gross margin as a share of a basket."
    )
    offer_contact_cost: float = Field(
        default=0.02, ge=0, description="What sending one offer costs, in currency."
    )
    offer_discount_ladder: tuple[float, ...] = Field(
        default=(0.0, 0.05, 0.10, 0.15, 0.20),
        description="The discount rates an offer may carry, increasing from 0.",
    )
    offer_clv_share: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="A discount is at most this share of the customer's predicted 12-month "
        "CLV (`clv_12m`); without a CLV score, no discount.",
    )
    offer_churn_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A churn probability from which a retention offer (`churn_risk`) is eligible.",
    )
    near_tier_share: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="A near-tier nudge is eligible when the spend still missing for the next "
        "loyalty tier is at most this share of that tier's threshold (as in the flow).",
    )
    offer_default_basket: float = Field(
        default=30.0,
        gt=0,
        description="The basket assumed for a customer with no orders and no cart, in currency.",
    )
    offer_ttl_hours: float = Field(
        default=48.0, gt=0, description="How long an offer is valid after it is made."
    )

    def offer_policy(self) -> Policy:
        """The offer guardrails, as the flow's ``FlowSettings.offer_policy`` builds them."""
        return Policy(
            daily_cap=self.offer_daily_cap,
            weekly_cap=self.offer_weekly_cap,
            quiet_hours=self.offer_quiet_hours,
            holdout_share=self.offer_holdout_share,
        )

    def offer_economics(self) -> OfferEconomics:
        """The expected-value model of offers.

        Raises:
            ValueError: the ladder does not increase from 0 below 1.
        """
        return OfferEconomics(
            margin_rate=self.offer_margin_rate,
            contact_cost=self.offer_contact_cost,
            ladder=self.offer_discount_ladder,
            clv_share=self.offer_clv_share,
        )

    def loyalty_policy(self) -> LoyaltyPolicy:
        """The loyalty tiers (for near-tier nudges).

        Raises:
            ValueError: The tiers are not ``name:threshold`` pairs increasing from 0.
        """
        return LoyaltyPolicy.from_text(self.loyalty_tiers)
