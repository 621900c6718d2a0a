"""A live flow on a quiet shop: time moves on without events.

A shard's clock learns the time from its events; while the flow tails and a shard's
source is caught up, the source's heartbeat moves the clock on by the wall time since the
latest event, so an abandoned cart fires when its delay passes even if nothing else
happens in the shop, and after a restart too (the source's snapshot keeps that time).
"""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import redis

import events
from feature_store import KeyLayout
from models.offers import Policy
from shopkeeper.embedded import Endpoints
from shopkeeper.flow_runner import flow_settings, start_flow
from tests.flowkit import event, prepare, read_topic, send
from tests.test_flow_offers import _shard_zero


def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_an_abandoned_cart_fires_on_a_quiet_shop_with_no_later_event(
    infra: Endpoints, unique: str
) -> None:
    customer = next(c for c in _shard_zero("quiet") if not Policy().in_holdout(c))
    namespace = f"quiet{unique}"
    prepare(infra, namespace)
    env = flow_settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_url=infra.redis_url,
        namespace=namespace,
        tail=True,
    )
    env["SHOPKEEPER_CART_ABANDONMENT_MINUTES"] = "0.05"  # 3 s
    env["SHOPKEEPER_OFFER_QUIET_HOURS"] = "[0, 0]"  # whatever the hour of the run
    run = start_flow(env, stderr=subprocess.DEVNULL)
    offers_topic = events.in_namespace(events.OFFERS, namespace)
    try:
        now = dt.datetime.now(dt.UTC)
        send(
            infra,
            namespace,
            [
                event("Customer Updated", now - dt.timedelta(seconds=1), customer=customer,
                      consent={"marketing_push": True}),
                event("Product Added", now, customer=customer, product_id="P1", price=20.0,
                      currency="EUR"),
            ],
        )  # fmt: skip
        # Nothing else is sent: only the heartbeat can move the shard's clock past the
        # cart's deadline.
        _until(lambda: bool(read_topic(infra, offers_topic)), timeout=90)
    finally:
        run.stop(signal.SIGINT)
        run.wait(timeout=60)
    (message,) = read_topic(infra, offers_topic)
    offer = orjson.loads(message.value())
    assert offer["customer_id"] == customer
    assert offer["trigger"] == "cart_abandonment"
    fired_at = dt.datetime.fromisoformat(offer["at"].replace("Z", "+00:00"))
    assert fired_at - now == dt.timedelta(seconds=3)  # on the deadline, in event time
    assert offer["features"]["cart_products"] == "P1"


def _snapshot_epoch(recovery: Path) -> int:
    """The latest epoch of which the recovery store holds a snapshot of the source."""
    latest = -1
    for part in sorted(recovery.glob("part-*.sqlite3")):
        with sqlite3.connect(part) as db:
            (epoch,) = db.execute(
                "SELECT MAX(snap_epoch) FROM snaps WHERE step_id LIKE '%read_kafka%'"
            ).fetchone()
        latest = max(latest, -1 if epoch is None else int(epoch))
    return latest


def test_a_flow_restarted_on_a_quiet_shop_still_fires_the_timers_due(
    infra: Endpoints, unique: str, tmp_path: Path
) -> None:
    customer = next(c for c in _shard_zero("restart") if not Policy().in_holdout(c))
    namespace = f"restart{unique}"
    prepare(infra, namespace)
    env = flow_settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_url=infra.redis_url,
        namespace=namespace,
        tail=True,
    )
    env["SHOPKEEPER_CART_ABANDONMENT_MINUTES"] = "0.25"  # 15 s
    env["SHOPKEEPER_OFFER_QUIET_HOURS"] = "[0, 0]"
    recovery = tmp_path / "recovery"
    offers_topic = events.in_namespace(events.OFFERS, namespace)
    run = start_flow(env, recovery_dir=recovery, snapshot_interval_s=1, stderr=subprocess.DEVNULL)
    try:
        now = dt.datetime.now(dt.UTC)
        send(
            infra,
            namespace,
            [
                event("Customer Updated", now - dt.timedelta(seconds=1), customer=customer,
                      consent={"marketing_push": True}),
                event("Product Added", now, customer=customer, product_id="P1", price=20.0,
                      currency="EUR"),
            ],
        )  # fmt: skip
        layout = KeyLayout(namespace)
        client = redis.Redis.from_url(infra.redis_url)
        _until(lambda: bool(client.exists(layout.customer(customer))), timeout=60)
        snapshotted = _snapshot_epoch(recovery)
        _until(lambda: _snapshot_epoch(recovery) > snapshotted, timeout=60)
    finally:
        run.stop(signal.SIGKILL)  # before the cart's deadline
        run.wait(timeout=60)
    assert read_topic(infra, offers_topic) == []
    # Restarted, with nothing new to read: the heartbeat resumes from the snapshot.
    run = start_flow(env, recovery_dir=recovery, snapshot_interval_s=1, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: bool(read_topic(infra, offers_topic)), timeout=90)
    finally:
        run.stop(signal.SIGINT)
        run.wait(timeout=60)
    (message,) = read_topic(infra, offers_topic)
    offer = orjson.loads(message.value())
    assert (offer["customer_id"], offer["trigger"]) == (customer, "cart_abandonment")
