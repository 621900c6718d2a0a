"""Settings of the serving API, read once where the app is built."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServingSettings"]


class ServingSettings(BaseSettings):
    """Where serving reads features and models, and the rules of its answers.

    Every field can be set by a ``SHOPKEEPER_<FIELD>`` environment variable.
    """

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", extra="ignore", frozen=True)

    redis_url: str = Field(description="Redis URL of the feature store.")
    namespace: str = Field(default="shopkeeper", description="Redis key prefix.")
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
