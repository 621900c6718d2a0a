"""A live flow on a quiet shop: time moves on without events.

A shard's clock learns the time from its events; while the flow tails and a shard's
source is caught up, the source's heartbeat moves the clock on by the wall time since the
latest event, so an abandoned cart fires when its delay passes even if nothing else
happens in the shop, and after a restart too (the source's snapshot keeps that time).
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
from pathlib import Path
from typing import Any

import orjson
import redis

import events
from feature_store import KeyLayout
from models.offers import Policy
from shopkeeper.embedded import Endpoints
from shopkeeper.flow_runner import flow_settings, start_flow
from tests.flowkit import event, prepare, read_topic, send, snapshot_epoch, until
from tests.test_flow_offers import _shard_zero


def _quiet_shop(
    infra: Endpoints, namespace: str, cart_minutes: float
) -> tuple[str, dict[str, str]]:
    """A customer (consenting to push, not held out) and a tailing flow's settings in
    which a cart is abandoned after ``cart_minutes``, whatever the hour of the run."""
    customer = next(c for c in _shard_zero(namespace) if not Policy().in_holdout(c))
    prepare(infra, namespace)
    env = flow_settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_url=infra.redis_url,
        namespace=namespace,
        tail=True,
    )
    env["SHOPKEEPER_CART_ABANDONMENT_MINUTES"] = str(cart_minutes)
    env["SHOPKEEPER_OFFER_QUIET_HOURS"] = "[0, 0]"
    return customer, env


def _fill_cart(infra: Endpoints, namespace: str, customer: str) -> dt.datetime:
    """The customer consents and puts P1 in the cart now; return now."""
    now = dt.datetime.now(dt.UTC)
    send(infra, namespace, [
        event("Customer Updated", now - dt.timedelta(seconds=1), customer=customer,
              consent={"marketing_push": True}),
        event("Product Added", now, customer=customer, product_id="P1", price=20.0,
              currency="EUR"),
    ])  # fmt: skip
    return now


def _the_offer(infra: Endpoints, namespace: str) -> dict[str, Any]:
    (message,) = read_topic(infra, events.in_namespace(events.OFFERS, namespace))
    offer: dict[str, Any] = orjson.loads(message.value())
    return offer


def _offered(infra: Endpoints, namespace: str) -> bool:
    return bool(read_topic(infra, events.in_namespace(events.OFFERS, namespace)))


def test_an_abandoned_cart_fires_on_a_quiet_shop_with_no_later_event(
    infra: Endpoints, unique: str
) -> None:
    namespace = f"quiet{unique}"
    customer, env = _quiet_shop(infra, namespace, cart_minutes=0.05)  # 3 s
    run = start_flow(env, stderr=subprocess.DEVNULL)
    try:
        now = _fill_cart(infra, namespace, customer)
        # Nothing else is sent: only the heartbeat can move the shard's clock past the
        # cart's deadline.
        until(lambda: _offered(infra, namespace), timeout=90)
    finally:
        run.stop(signal.SIGINT)
        run.wait(timeout=60)
    offer = _the_offer(infra, namespace)
    assert offer["customer_id"] == customer
    assert offer["trigger"] == "cart_abandonment"
    fired_at = dt.datetime.fromisoformat(offer["at"].replace("Z", "+00:00"))
    assert fired_at - now == dt.timedelta(seconds=3)  # on the deadline, in event time
    assert offer["features"]["cart_products"] == "P1"


def test_a_flow_restarted_on_a_quiet_shop_still_fires_the_timers_due(
    infra: Endpoints, unique: str, tmp_path: Path
) -> None:
    namespace = f"restart{unique}"
    customer, env = _quiet_shop(infra, namespace, cart_minutes=0.25)  # 15 s
    recovery = tmp_path / "recovery"
    run = start_flow(env, recovery_dir=recovery, snapshot_interval_s=1, stderr=subprocess.DEVNULL)
    try:
        _fill_cart(infra, namespace, customer)
        layout = KeyLayout(namespace)
        client = redis.Redis.from_url(infra.redis_url)
        until(lambda: bool(client.exists(layout.customer(customer))), timeout=60)
        snapshotted = snapshot_epoch(recovery, "read_kafka")
        until(lambda: snapshot_epoch(recovery, "read_kafka") > snapshotted, timeout=60)
    finally:
        run.stop(signal.SIGKILL)  # before the cart's deadline
        run.wait(timeout=60)
    assert not _offered(infra, namespace)
    # Restarted, with nothing new to read: the heartbeat resumes from the snapshot.
    run = start_flow(env, recovery_dir=recovery, snapshot_interval_s=1, stderr=subprocess.DEVNULL)
    try:
        until(lambda: _offered(infra, namespace), timeout=90)
    finally:
        run.stop(signal.SIGINT)
        run.wait(timeout=60)
    offer = _the_offer(infra, namespace)
    assert (offer["customer_id"], offer["trigger"]) == (customer, "cart_abandonment")
