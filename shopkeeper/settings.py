"""Settings of the ``shopkeeper`` command line, read once at the edge.

Every field can be set by a ``SHOPKEEPER_<FIELD>`` environment variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


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
