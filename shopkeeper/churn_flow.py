"""Replay a file of events through the real feature flow and read the churn model's
prequential health: the streaming model as it runs in production, beside the backtest.

Embedded Kafka and Redis (or the ones configured), a fresh namespace, one flow process
replaying to the end with the churn model checkpointing into a scratch directory; the
final checkpoint carries the model's prequential health (test-then-train: each labelled
example is predicted just before it is learned).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import events
from models.churn import ChurnModel
from shopkeeper.embedded import endpoints
from shopkeeper.flow_runner import flow_settings, start_flow
from shopkeeper.produce import produce
from shopkeeper.topics import ALL_TOPICS, ensure_topics, retained

__all__ = ["FlowHealth", "through_flow"]


@dataclasses.dataclass(frozen=True)
class FlowHealth:
    """The churn model's state at the end of a replay through the flow."""

    version: str
    examples: int
    health: dict[str, Any]


def through_flow(
    stream: Sequence[events.Event],
    *,
    horizon_days: float = 60,
    model_kind: str = "logistic",
    kafka_bootstrap: str | None = None,
    redis_url: str | None = None,
    timeout_s: float = 1_800,
) -> FlowHealth:
    """Produce ``stream`` to Kafka, replay it through the flow, return the model's health.

    Raises:
        RuntimeError: The broker dropped messages, or the flow failed.
    """
    namespace = f"churneval{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory() as scratch,
        endpoints(
            kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, data_dir=Path(scratch)
        ) as found,
    ):
        topics = [events.in_namespace(t, namespace) for t in ALL_TOPICS]
        ensure_topics(found.kafka_bootstrap, topics, embedded=found.embedded_kafka)
        summary = produce(stream, bootstrap=found.kafka_bootstrap, namespace=namespace)
        held, dropped = retained(
            found.kafka_bootstrap, [events.in_namespace(t, namespace) for t in events.TOPICS]
        )
        if dropped or held != summary.total:
            raise RuntimeError(f"the broker kept {held:,} of {summary.total:,} messages")
        checkpoints = Path(scratch) / "churn"
        env = flow_settings(
            kafka_bootstrap=found.kafka_bootstrap,
            redis_url=found.redis_url,
            namespace=namespace,
            tail=False,
        )
        env |= {
            "SHOPKEEPER_CHURN_HORIZON_DAYS": str(horizon_days),
            "SHOPKEEPER_CHURN_MODEL": model_kind,
            "SHOPKEEPER_CHURN_CHECKPOINT_DIR": str(checkpoints),
            "SHOPKEEPER_CHURN_CHECKPOINT_EVERY": str(10**9),
        }
        run = start_flow(env, stderr=subprocess.DEVNULL)
        if run.wait(timeout=timeout_s) != 0:
            raise RuntimeError("the flow failed")
        try:
            meta = json.loads(ChurnModel.newest(checkpoints).read_text())
        except FileNotFoundError:
            raise RuntimeError("the flow learned no churn example") from None
    return FlowHealth(meta["version"], meta["examples"], meta["health"])
