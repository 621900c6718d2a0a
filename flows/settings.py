"""Settings of the feature flow, read once where the flow is built."""

from __future__ import annotations

import datetime as dt

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["FlowSettings"]


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
    redis_retry_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a batch write retries while Redis is unavailable before the "
        "flow stops (recovery then resumes it without loss).",
    )
