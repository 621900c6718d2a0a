"""``shopkeeper demo``: the engine on embedded Kafka and Redis with synthetic traffic.

At this stage the demo produces live traffic and reads it back with a minimal consumer
that decodes every event and keeps counts by event name in Redis. Later stages replace
the consumer by the feature flow, the churn model, offers and serving.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import events
from shopkeeper.embedded import endpoints
from shopkeeper.generator import GeneratorConfig, World
from shopkeeper.metrics import ToolMetrics
from shopkeeper.produce import ProduceSummary, produce
from shopkeeper.settings import Settings
from shopkeeper.topics import ALL_TOPICS, ensure_topics

__all__ = ["DemoReport", "counts_key", "run_demo"]

_CATCH_UP_S = 30.0


def counts_key(namespace: str) -> str:
    """The Redis hash where the demo keeps its counts by event name."""
    return f"{namespace}:demo:events"


@dataclasses.dataclass
class DemoReport:
    """What the demo produced, consumed and stored."""

    produced: ProduceSummary
    consumed: Counter[str]
    rejected: Counter[str]
    stored: dict[str, int]


class _CountingConsumer(threading.Thread):
    """Read the input topics, decode, and keep absolute counts in one Redis hash."""

    def __init__(
        self,
        bootstrap: str,
        redis_url: str,
        namespace: str,
        partitions: dict[str, int],
        metrics: ToolMetrics,
    ) -> None:
        super().__init__(name="demo-consumer", daemon=True)
        # Partitions are assigned, not balanced by a consumer group, as Bytewax does.
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{namespace}.demo",
                "enable.auto.commit": False,
                "log_level": 4,
            }
        )
        self._consumer.assign(
            [
                TopicPartition(topic, partition, OFFSET_BEGINNING)
                for topic, count in partitions.items()
                for partition in range(count)
            ]
        )
        self._redis = redis.Redis.from_url(redis_url)
        self._key = counts_key(namespace)
        self._metrics = metrics
        self._decoder = events.EventDecoder()
        self._stopping = threading.Event()
        self.consumed: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._poll()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self._consumer.close()
            self._redis.close()

    def _poll(self) -> None:
        messages = self._consumer.consume(num_messages=1000, timeout=0.2)
        if not messages:
            return
        for message in messages:
            if message.error() is not None:
                continue
            try:
                event = self._decoder.decode(message.value())
            except events.DecodeError as error:
                self.rejected[error.code] += 1
                self.consumed["malformed"] += 1
                self._metrics.consumed.labels("malformed").inc()
                continue
            self.consumed[event.name] += 1
            self._metrics.consumed.labels(event.name).inc()
        if not self.consumed:
            return
        # Absolute values, one round trip per batch: a replayed batch changes nothing.
        counts: dict[Any, Any] = dict(self.consumed)
        self._redis.hset(self._key, mapping=counts)

    def caught_up(self, expected: int) -> bool:
        return sum(self.consumed.values()) >= expected

    def stop(self) -> None:
        self._stopping.set()


def run_demo(
    settings: Settings,
    *,
    rate: float,
    duration: float,
    config: GeneratorConfig,
    namespace: str = "shopkeeper",
    say: Callable[[str], None] = print,
    metrics: ToolMetrics | None = None,
) -> DemoReport:
    """Run the demo end to end and report what happened."""
    metrics = metrics or ToolMetrics()
    with endpoints(
        kafka_bootstrap=settings.kafka_bootstrap,
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
    ) as found:
        kind = "embedded" if found.embedded_kafka else "external"
        say(f"Kafka ({kind}) at {found.kafka_bootstrap}")
        kind = "embedded" if found.embedded_redis else "external"
        say(f"Redis ({kind}) at {found.redis_url}")
        say(f"Building a world of {config.customers:,} customers and {config.products:,} products")
        world = World.build(config)
        client = redis.Redis.from_url(found.redis_url)
        client.delete(counts_key(namespace))
        partitions = ensure_topics(
            found.kafka_bootstrap,
            [events.in_namespace(t, namespace) for t in ALL_TOPICS],
            embedded=found.embedded_kafka,
        )
        inputs = {events.in_namespace(t, namespace) for t in events.TOPICS}
        consumer = _CountingConsumer(
            found.kafka_bootstrap,
            found.redis_url,
            namespace,
            {t: n for t, n in partitions.items() if t in inputs},
            metrics,
        )
        consumer.start()
        say(f"Producing {rate:,.0f} events/s for {duration:,.0f} s")
        produced = produce(
            world.live(dt.datetime.now(dt.UTC), rate),
            bootstrap=found.kafka_bootstrap,
            namespace=namespace,
            rate=rate,
            duration=duration,
            metrics=metrics,
        )
        deadline = time.monotonic() + _CATCH_UP_S
        while not consumer.caught_up(produced.total) and time.monotonic() < deadline:
            time.sleep(0.1)
        consumer.stop()
        consumer.join()
        if consumer.error is not None:
            raise consumer.error
        stored = {
            k.decode(): int(v)
            for k, v in cast("dict[bytes, bytes]", client.hgetall(counts_key(namespace))).items()
        }
        client.close()
    report = DemoReport(produced, consumer.consumed, consumer.rejected, stored)
    _print_report(report, counts_key(namespace), say)
    return report


def _print_report(report: DemoReport, key: str, say: Callable[[str], None]) -> None:
    produced = report.produced
    say("")
    say(
        f"Produced {produced.total:,} events in {produced.seconds:.1f} s "
        f"({produced.total / max(produced.seconds, 1e-9):,.0f}/s), "
        f"{produced.malformed:,} deliberately malformed, {produced.delivery_errors} delivery errors"
    )
    for topic, count in sorted(produced.by_topic.items()):
        say(f"  {topic:<32} {count:>10,}")
    say(f"Consumed {sum(report.consumed.values()):,}; counts stored in Redis hash {key}:")
    for name, count in sorted(report.stored.items(), key=lambda kv: -kv[1]):
        say(f"  {name:<32} {count:>10,}")
    if report.rejected:
        say("Rejected by the contract, by reason:")
        for code, count in report.rejected.most_common():
            say(f"  {code:<32} {count:>10,}")
