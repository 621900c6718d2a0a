"""Helpers for the serving tests: a world with history, a trained and promoted model, the
flow's features in Redis, and the real app served by uvicorn on an ephemeral port."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from models.als import AlsParams
from models.registry import ModelRegistry
from serving import ServingSettings, create_app
from shopkeeper.api_server import serve_in_background
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import GeneratorConfig, World, write_history
from shopkeeper.train import train_als
from tests import flowkit

START = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
DAYS = 60


@dataclasses.dataclass(frozen=True)
class Shop:
    """A shop whose history trained the promoted model and went through the flow."""

    infra: Endpoints
    namespace: str
    registry: ModelRegistry
    version: str
    history: Path
    truth: dict[str, Any]
    now: float  # the serving clock: just after the last event

    def settings(self, **overrides: Any) -> ServingSettings:
        """Serving settings for this shop."""
        values: dict[str, Any] = {
            "redis_url": self.infra.redis_url,
            "namespace": self.namespace,
            "model_registry": self.registry.root,
        }
        values.update(overrides)
        return ServingSettings(**values)

    def app(self, **overrides: Any) -> Starlette:
        """The real app on this shop, its clock at ``now``."""
        return create_app(self.settings(**overrides), clock=lambda: self.now)


def build_shop(infra: Endpoints, namespace: str, directory: Path) -> Shop:
    """Generate history, train and promote a model on it, and run it through the flow."""
    world = World.build(GeneratorConfig(seed=21, customers=600, products=300, malformed_share=0))
    history = directory / "history.jsonl"
    write_history(world, history, start=START, days=DAYS, progress=False)
    registry = ModelRegistry(directory / "models")
    trained = train_als(
        history,
        registry,
        params=AlsParams(factors=16, iterations=8, seed=4),
        now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    registry.promote(trained.version)
    flowkit.prepare(infra, namespace)
    flowkit.send(infra, namespace, world.history(START, DAYS))
    flowkit.run_to_end(infra, namespace)
    end = dt.datetime.fromisoformat(trained.metadata["window"]["until"]).timestamp()
    return Shop(
        infra, namespace, registry, trained.version, history, world.ground_truth(), end + 60
    )


def serve(app: Starlette) -> contextlib.AbstractContextManager[str]:
    """Serve ``app`` with uvicorn in a thread; the block gets its base URL."""
    return serve_in_background(app)
