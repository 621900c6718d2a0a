"""Settings of the feature flow, read once where the flow is built."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows._clock import OfferTimers
from flows.profile import TRIGGERS, TriggerRules
from models.clv import CLVParams
from models.loyalty import LoyaltyPolicy
from models.offer_value import DEFAULT_BASE_RATES, OfferEconomics
from models.offers import Policy

__all__ = ["OFFER_BASE_RATES", "FlowSettings"]

OFFER_BASE_RATES: Final = {
    **DEFAULT_BASE_RATES,
    "browse_abandonment": 0.05,
    "winback": 0.03,
    "tier_expiry": 0.05,
}
"""Conversion with no discount, by trigger: the model's defaults and the flow's triggers."""


class FlowSettings(BaseSettings):
    """Where the flow reads and writes, and how it batches, recovers and reports.

    Every field can be set by a ``SHOPKEEPER_<FIELD>`` environment variable.
    """

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", extra="forbid", frozen=True)

    kafka_bootstrap: str = Field(description="Kafka bootstrap servers, `host:port,host:port`.")
    redis_url: str = Field(description="Redis URL of the feature store.")
    namespace: str = Field(
        default="shopkeeper",
        description="Topic namespace (`<ns>.clickstream`, ...) and Redis key prefix.",
    )
    tail: bool = Field(
        default=True,
        description="Keep waiting for new events; false stops at the end of every partition "
        "(a bounded replay).",
    )
    batch_size: int = Field(
        default=20_000,
        ge=1,
        description="Most messages read per poll. A live stream reads what is there; a "
        "replay or a catch-up reads this many, and the events of one customer in a batch "
        "make one Redis write.",
    )
    allowed_lateness: dt.timedelta = Field(
        default=dt.timedelta(hours=1),
        description="How late an event may be and still land in its window buckets.",
    )
    dedupe_horizon: dt.timedelta = Field(
        default=dt.timedelta(days=7),
        description="How long a message_id is remembered to drop duplicates.",
    )
    recovery: bool = Field(
        default=False,
        description="Bytewax recovery is on (`bytewax.run -r`): state snapshots are then "
        "copied; set by `shopkeeper flow run --recovery`.",
    )
    metrics_port: int | None = Field(
        default=None,
        description="Serve Prometheus /metrics on this port (+ the process index); unset: off.",
    )
    process_id: int = Field(
        default=0,
        ge=0,
        validation_alias="BYTEWAX_PROCESS_ID",
        description="This process's index in a cluster (set by `bytewax.run -i`).",
    )
    intelligence: bool = Field(
        default=True,
        description="Run customer intelligence beside the features: event-time clocks, "
        "churn labels and the online churn model; false runs the features only.",
    )
    churn_horizon_days: float = Field(
        default=60,
        gt=0,
        description="A customer has churned when no purchase follows one within this many days.",
    )
    churn_model: str = Field(
        default="logistic",
        description="The online churn learner: `logistic` (StandardScaler + "
        "LogisticRegression) or `hoeffding_tree`.",
    )
    churn_checkpoint_dir: Path | None = Field(
        default=None,
        description="Where the churn model's versioned checkpoints go (and the newest is "
        "loaded from at start, so a restart continues learning); unset: none.",
    )
    churn_checkpoint_every: int = Field(
        default=10_000, ge=1, description="Labelled examples between two churn checkpoints."
    )
    clv_params: Path | None = Field(
        default=None,
        description="CLV parameters written by `shopkeeper clv fit`; each purchase and "
        "rescoring then scores the customer's expected purchases, P(alive) and CLV.",
    )
    loyalty_points_per_unit: float = Field(
        default=1.0, gt=0, description="Loyalty points earned per unit of revenue."
    )
    loyalty_tiers: str = Field(
        default="Bronze:0,Silver:500,Gold:1500,Platinum:5000",
        description="Loyalty tiers by trailing 12-month spend: `name:threshold,...`, "
        "thresholds increasing from 0.",
    )
    offers: bool = Field(
        default=True,
        description="Fire real-time offers from triggers (with intelligence on); false: none.",
    )
    offer_triggers: str = Field(
        default=",".join(TRIGGERS),
        description="The offer triggers that fire, comma-separated; by default all of "
        f"{', '.join(TRIGGERS)}.",
    )
    idle_heartbeat: dt.timedelta = Field(
        default=dt.timedelta(milliseconds=100),
        gt=dt.timedelta(0),
        description="While tailing, how often a shard whose source is caught up moves its "
        "clock on by the wall time since its latest event, so timers (abandonment, "
        "rescoring) fire on a quiet shop too.",
    )
    offer_trigger_lateness: dt.timedelta = Field(
        default=dt.timedelta(milliseconds=250),
        description="How long timer triggers (cart and browse abandonment, win-back, tier "
        "expiry, replenishment, price drop, back in stock) wait behind a shard's latest "
        "event time: an event later than this may count differently toward their "
        "decisions in a replay than live.",
    )
    cart_abandonment_minutes: float = Field(
        default=30, gt=0, description="A cart unchanged this long after a change is abandoned."
    )
    browse_abandonment_minutes: float = Field(
        default=30,
        gt=0,
        description="A customer who viewed nothing for this long after viewing a product "
        "repeatedly (and did not add it) abandoned browsing.",
    )
    browse_min_views: int = Field(
        default=2, ge=1, description="Views of one product that make browse abandonment."
    )
    winback_factor: float = Field(
        default=2.0,
        gt=0,
        description="A repeat customer silent for this many times their mean interval "
        "between orders (and `winback_min_days` at least) is lapsed.",
    )
    winback_min_days: float = Field(default=30, ge=0, description="See `winback_factor`.")
    winback_min_revenue: float = Field(
        default=150,
        ge=0,
        description="Win-back targets customers whose 12-month revenue reached this.",
    )
    near_tier_share: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="Nudge a customer whose spend is this share of the next loyalty "
        "tier's threshold away from it, or less.",
    )
    churn_risk_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="The churn risk (1 - P(alive) of the CLV model; needs `clv_params`) "
        "whose crossing, in a silence after an order, raises a retention offer.",
    )
    replenishment_lead_days: float = Field(
        default=5,
        ge=0,
        description="A product bought three times or more is due again its median interval "
        "after the last purchase, less this lead (half the interval at most).",
    )
    interest_days: float = Field(
        default=14,
        gt=0,
        description="A price drop or a restock concerns the customers who viewed the product "
        "this many days before it and did not buy it since.",
    )
    price_drop_min: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="The least relative price cut that raises a price-drop offer.",
    )
    tier_notice_days: float = Field(
        default=14,
        gt=0,
        description="Warn this many days before an order leaving the trailing 12 months "
        "drops the customer's tier.",
    )
    offer_daily_cap: int = Field(
        default=2, ge=0, description="Offers per customer per local calendar day, all triggers."
    )
    offer_weekly_cap: int = Field(
        default=5, ge=0, description="Offers per customer per rolling 7 days, all triggers."
    )
    offer_quiet_hours: tuple[int, int] = Field(
        default=(21, 8),
        description="Local hours [start, end) when no promotion fires, e.g. `[21, 8]`; "
        "`[0, 0]`: none.",
    )
    offer_holdout_share: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Share of customers in the control group (deterministic by customer): "
        "their offers are logged as suppressed, for uplift.",
    )
    offer_daily_budget: float = Field(
        default=500.0,
        ge=0,
        description="Discounts offers may grant per UTC day of their time, in the shop's "
        "currency; shared with serving's next best offer (face value, reserved per offer).",
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
        description="A discount is at most this share of the customer's 12-month CLV (the "
        "CLV model's with `clv_params`, else their revenue per year to date).",
    )
    offer_default_basket: float = Field(
        default=30.0,
        gt=0,
        description="The basket assumed for a customer with no orders and no cart.",
    )
    model_registry: Path | None = Field(
        default=None,
        description="The recommender registry whose promoted version names the complements "
        "in offers; unset: offers name their own products only.",
    )
    redis_retry_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a batch write retries while Redis is unavailable before the "
        "flow stops (recovery then resumes it without loss).",
    )

    def trigger_rules(self) -> TriggerRules:
        """The offer triggers these settings describe.

        Raises:
            ValueError: ``offer_triggers`` names an unknown trigger.
        """
        enabled = frozenset(t.strip() for t in self.offer_triggers.split(",") if t.strip())
        unknown = enabled - set(TRIGGERS)
        if unknown:
            raise ValueError(
                f"unknown offer trigger(s) {sorted(unknown)}; known: {', '.join(TRIGGERS)}"
            )
        return TriggerRules(
            enabled=enabled,
            lateness=self.offer_trigger_lateness.total_seconds(),
            cart_after=self.cart_abandonment_minutes * 60,
            browse_after=self.browse_abandonment_minutes * 60,
            browse_min_views=self.browse_min_views,
            winback_min_revenue=self.winback_min_revenue,
            near_tier_share=self.near_tier_share,
            tier_notice_s=self.tier_notice_days * 86_400,
            churn_risk=self.churn_risk_threshold,
        )

    def offer_timers(self) -> OfferTimers | None:
        """The clock's offer timers; ``None`` with offers off."""
        if not (self.intelligence and self.offers):
            return None
        rules = self.trigger_rules()
        on = rules.enabled
        return OfferTimers(
            lateness=rules.lateness,
            cart_after=rules.cart_after if "cart_abandonment" in on else None,
            browse_after=rules.browse_after if "browse_abandonment" in on else None,
            winback_factor=self.winback_factor if "winback" in on else None,
            winback_min_s=self.winback_min_days * 86_400,
            tier_notice_s=rules.tier_notice_s if "tier_expiry" in on else None,
            churn_risk=rules.churn_risk if "churn_risk" in on else None,
            replenish_lead_s=self.replenishment_lead_days * 86_400
            if "replenishment" in on
            else None,
            clv=self.clv(),
            interest_s=self.interest_days * 86_400
            if {"price_drop", "back_in_stock"} & on
            else None,
            price_drop_min=self.price_drop_min,
            price_drop="price_drop" in on,
            back_in_stock="back_in_stock" in on,
        )

    def clv(self) -> CLVParams | None:
        """The fitted CLV parameters ``clv_params`` names (with intelligence on)."""
        if self.clv_params is None or not self.intelligence:
            return None
        return CLVParams.from_json(self.clv_params.read_bytes())

    def offer_economics(self) -> OfferEconomics:
        """The expected-value model of offer discounts.

        Raises:
            ValueError: the ladder does not increase from 0 below 1.
        """
        return OfferEconomics(
            base_rates={**OFFER_BASE_RATES},
            margin_rate=self.offer_margin_rate,
            contact_cost=self.offer_contact_cost,
            ladder=self.offer_discount_ladder,
            clv_share=self.offer_clv_share,
        )

    def offer_policy(self) -> Policy:
        """The offer guardrails these settings describe."""
        return Policy(
            daily_cap=self.offer_daily_cap,
            weekly_cap=self.offer_weekly_cap,
            quiet_hours=self.offer_quiet_hours,
            holdout_share=self.offer_holdout_share,
            # Event triggers decide as events arrive, timers up to a delay later (and
            # the churn ticks that raise churn risk, up to a lateness later).
            disorder_s=self.allowed_lateness.total_seconds()
            + self.offer_trigger_lateness.total_seconds()
            + max(self.cart_abandonment_minutes, self.browse_abandonment_minutes) * 60,
        )

    def loyalty_policy(self) -> LoyaltyPolicy:
        """The loyalty policy these settings describe.

        Raises:
            ValueError: The tiers are not ``name:threshold`` pairs increasing from 0.
        """
        return LoyaltyPolicy.from_text(self.loyalty_tiers, self.loyalty_points_per_unit)
