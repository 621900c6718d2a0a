"""Helpers for the flow tests: build events, produce them, run the flow, read results."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

import events
from flows.features import kafka_flow
from flows.metrics import FlowMetrics
from flows.settings import FlowSettings
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import Item
from shopkeeper.produce import produce
from shopkeeper.topics import ALL_TOPICS, ensure_topics, retained

_ids = itertools.count()


def event(
    name: str, at: dt.datetime, customer: str | None = "c-alice", **props: Any
) -> events.Event:
    """A valid event, decoded from JSON as a producer would send it."""
    payload: dict[str, Any] = {
        "event": name,
        "message_id": props.pop("message_id", f"m-{next(_ids)}"),
        "timestamp": at.isoformat(),
        "channel": props.pop("channel", "web"),
        "properties": props,
    }
    if customer is not None:
        payload["customer_id"] = customer
    if "session_id" in props:
        payload["session_id"] = props.pop("session_id")
    return events.decode(orjson.dumps(payload))


def product(product_id: str, price: float, quantity: int = 1, **extra: str) -> dict[str, Any]:
    """A product line."""
    return {
        "product_id": product_id,
        "price": price,
        "quantity": quantity,
        "currency": "EUR",
        **extra,
    }


def prepare(infra: Endpoints, namespace: str) -> None:
    """Create the namespace's topics."""
    ensure_topics(
        infra.kafka_bootstrap,
        [events.in_namespace(t, namespace) for t in ALL_TOPICS],
        embedded=infra.embedded_kafka,
    )


def send(infra: Endpoints, namespace: str, items: Iterable[Item]) -> int:
    """Produce items in order; return how many. Fails if the broker did not keep them all."""
    topics = [events.in_namespace(t, namespace) for t in events.TOPICS]
    kept, _ = retained(infra.kafka_bootstrap, topics)
    summary = produce(items, bootstrap=infra.kafka_bootstrap, namespace=namespace, progress=False)
    assert summary.delivery_errors == 0
    assert retained(infra.kafka_bootstrap, topics) == (kept + summary.total, 0)
    return summary.total


def settings(
    infra: Endpoints, namespace: str, *, tail: bool = False, **overrides: Any
) -> FlowSettings:
    """Flow settings for this test's namespace."""
    return FlowSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_url=infra.redis_url,
        namespace=namespace,
        tail=tail,
        **overrides,
    )


def run_to_end(infra: Endpoints, namespace: str, **overrides: Any) -> CollectorRegistry:
    """Run the real flow in this process until the end of every partition."""
    from bytewax.testing import run_main

    registry = CollectorRegistry()
    flow = kafka_flow(settings(infra, namespace, **overrides), FlowMetrics(registry))
    run_main(flow)  # type: ignore[no-untyped-call]
    return registry


def read_topic(infra: Endpoints, topic: str, *, limit: int = 100_000) -> list[Any]:
    """Every message of a topic, from the beginning to its current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": infra.kafka_bootstrap,
            "group.id": "test-reader",
            "enable.partition.eof": True,
            "log_level": 4,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    remaining = set(partitions)
    found: list[Any] = []
    deadline = time.monotonic() + 60
    while remaining and len(found) < limit and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=1.0):
            error = message.error()
            if error is None:
                found.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                remaining.discard(message.partition())
    consumer.close()
    return found


def customer_ids(items: Iterable[Item]) -> list[str]:
    """The distinct customers of some items, sorted."""
    return sorted(
        {i.customer_key for i in items if isinstance(i, events.EventBase) and i.customer_key}
    )


MODEL_FIELDS = ("churn_probability", "churn_model_version")
"""What the one churn model wrote: it learns batches in arrival order, which differs
between runs, so these vary in the last digits; the labels and times do not."""


def snapshot_features(
    infra: Endpoints, namespace: str, customers: list[str]
) -> dict[str, dict[str, str] | None]:
    """Every customer's and item's stored features, for comparing two runs (without the
    model's own outputs, ``MODEL_FIELDS``, which ``model_outputs`` returns)."""
    import redis

    from feature_store import FeatureStore, KeyLayout

    client = redis.Redis.from_url(infra.redis_url)
    store = FeatureStore(client, KeyLayout(namespace))
    found: dict[str, dict[str, str] | None] = dict(
        zip((f"c:{c}" for c in customers), store.customers(customers), strict=True)
    )
    products = sorted(store.product_ids())
    found |= dict(zip((f"i:{p}" for p in products), store.items(products), strict=True))
    client.close()
    for features in found.values():
        for name in MODEL_FIELDS:
            if features is not None:
                features.pop(name, None)
    return found


def decisions(infra: Endpoints, namespace: str) -> dict[str, dict[str, Any]]:
    """Every offer decision the flow sent, fired (``shopkeeper.offers``) or suppressed
    (``offer_suppressed`` signals), by offer or signal id (at-least-once: a repeat is the
    same, and an id never names two different decisions)."""
    found: dict[str, dict[str, Any]] = {}
    for name in (events.OFFERS, events.SIGNALS):
        for message in read_topic(infra, events.in_namespace(name, namespace)):
            body = orjson.loads(message.value())
            if name == events.OFFERS or body.get("signal") == "offer_suppressed":
                assert body["customer_id"], f"a decision for no customer: {body}"
                key = body.get("signal_id", body["offer_id"])
                seen = found.setdefault(key, body)
                assert seen == body, f"{key} names two different decisions: {seen} and {body}"
    return found


def differences(
    a: dict[str, dict[str, str] | None], b: dict[str, dict[str, str] | None]
) -> dict[str, object]:
    """The keys and fields where two snapshots differ (``{}`` when equal), so a failing
    comparison names what differs instead of printing two dicts of a thousand entries."""
    out: dict[str, object] = {}
    for key in sorted(a.keys() | b.keys()):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if x is None or y is None:
            out[key] = (x, y)
            continue
        out[key] = {f: (x.get(f), y.get(f)) for f in sorted(x.keys() | y.keys())
                    if x.get(f) != y.get(f)}  # fmt: skip
    return out


def model_outputs(infra: Endpoints, namespace: str, customers: list[str]) -> dict[str, float]:
    """Each scored customer's churn probability."""
    import redis

    from feature_store import FeatureStore, KeyLayout

    client = redis.Redis.from_url(infra.redis_url)
    stored = FeatureStore(client, KeyLayout(namespace)).customers(customers)
    client.close()
    return {
        c: float(f["churn_probability"])
        for c, f in zip(customers, stored, strict=True)
        if f is not None and "churn_probability" in f
    }


def until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll ``condition`` until it holds; fail if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def snapshot_epoch(recovery: Path, step: str) -> int:
    """The latest epoch of which a recovery store holds a snapshot of ``step``'s state
    (-1: none yet)."""
    latest = -1
    for part in sorted(recovery.glob("part-*.sqlite3")):
        with sqlite3.connect(part) as db:
            (epoch,) = db.execute(
                "SELECT MAX(snap_epoch) FROM snaps WHERE step_id LIKE ?", (f"%{step}%",)
            ).fetchone()
        latest = max(latest, -1 if epoch is None else int(epoch))
    return latest
