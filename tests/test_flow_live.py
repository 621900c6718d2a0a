"""A live flow on a quiet shop: time moves on without events.

A shard's clock learns the time from its events; while the flow tails and a shard's
source is caught up, the source's heartbeat moves the clock on by the wall time since the
latest event, so an abandoned cart fires when its delay passes even if nothing else
happens in the shop.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import time
from collections.abc import Callable

import orjson

import events
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
