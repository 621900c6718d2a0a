"""Shared fixtures: a real Redis server and a Kafka-protocol broker for the whole session.

Both are embedded unless ``SHOPKEEPER_KAFKA_BOOTSTRAP`` / ``SHOPKEEPER_REDIS_URL`` point the
suite at external ones. Every test gets its own topic names and Redis key prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import redis

from shopkeeper.embedded import Endpoints, endpoints

# Deterministic examples in CI, so a red build is reproducible; random ones on a laptop.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, deadline=None)
hypothesis.settings.register_profile("dev", deadline=None)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """The Kafka and Redis every test shares (embedded unless configured)."""
    with endpoints(
        kafka_bootstrap=os.environ.get("SHOPKEEPER_KAFKA_BOOTSTRAP"),
        redis_url=os.environ.get("SHOPKEEPER_REDIS_URL"),
        data_dir=tmp_path_factory.mktemp("infra"),
    ) as found:
        yield found


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Endpoints) -> str:
    """Bootstrap address of the session's Kafka."""
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
def infra_redis_url(infra: Endpoints) -> str:
    """URL of the session's Redis."""
    return infra.redis_url


@pytest.fixture
def unique() -> str:
    """A short id unique to this test, for topic names and key prefixes."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_prefix(unique: str) -> str:
    """A topic prefix no other test uses: topics are named ``<prefix>.clickstream`` etc."""
    return f"t{unique}"


@pytest.fixture
def redis_client(infra: Endpoints) -> Iterator[redis.Redis]:
    """A client of the session's Redis."""
    client = redis.Redis.from_url(infra.redis_url)
    yield client
    client.close()


@pytest.fixture
def key_prefix(unique: str) -> str:
    """A Redis key prefix no other test uses."""
    return f"test:{unique}:"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A scratch directory for this test."""
    return tmp_path
