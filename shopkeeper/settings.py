"""Settings of the ``shopkeeper`` command line, read once at the edge.

Every field can be set by a ``SHOPKEEPER_<FIELD>`` environment variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AlsSettings", "Settings"]


class Settings(BaseSettings):
    """Where Kafka and Redis are, and where local state lives.

    Leave ``kafka_bootstrap`` and ``redis_url`` unset to run on the embedded broker
    and Redis server (development, demo, tests); set them to run on real ones.
    """

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", extra="forbid", frozen=True)

    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers, e.g. `kafka-1:9092,kafka-2:9092`. Unset: embedded.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL, e.g. `redis://redis:6379/0` or `unix:///run/redis.sock`. "
        "Unset: embedded.",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Directory for local state: the embedded Redis database, recovery, models.",
    )
    namespace: str = Field(
        default="shopkeeper",
        description="Topic namespace (`<ns>.offers`, ...) that `report offers` reads unless "
        "`--namespace` says otherwise.",
    )


class AlsSettings(BaseSettings):
    """ALS hyperparameters of ``shopkeeper train als`` and ``shopkeeper evaluate``.

    Every field can be set by a ``SHOPKEEPER_ALS_<FIELD>`` environment variable; the
    command's flags override them. The defaults are ``models.als.AlsParams``'s.
    """

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_ALS_", extra="forbid", frozen=True)

    factors: int = Field(default=64, ge=1, description="Latent factors per customer and item.")
    regularization: float = Field(default=0.05, ge=0, description="L2 penalty on the factors.")
    alpha: float = Field(
        default=2.0, gt=0, description="Confidence per unit of interaction strength."
    )
    iterations: int = Field(default=15, ge=1, description="Alternating least-squares sweeps.")
    seed: int = Field(default=7, description="Random seed of the initial factors.")
