"""The flow and the next best offer apply the same guardrails to the same history: an
offer the real flow fired is, for serving, already fired under the same offer id, and
counts toward the caps of a new one."""

from __future__ import annotations

import datetime as dt
import itertools
import zlib
from pathlib import Path
from typing import Any

import orjson
from starlette.testclient import TestClient

import events
from models.offers import Policy
from serving import ServingSettings, create_app
from shopkeeper.embedded import Endpoints
from tests.flowkit import event, prepare, read_topic, run_to_end, send

T0 = dt.datetime(2025, 5, 6, 12, 0, tzinfo=dt.UTC)  # 14:00 in Paris


def _in_shard_zero(prefix: str) -> itertools.islice[str]:
    """Ids the producer puts in partition 0 of 4, so one shard clock sees them all."""
    ids = (f"c-{prefix}-{n}" for n in itertools.count())
    return itertools.islice((c for c in ids if zlib.crc32(c.encode()) % 4 == 0), None)


def _cart_waiting(infra: Endpoints, namespace: str, prefix: str) -> str:
    """A customer (consenting to push, not held out) whose cart holds P1 since T0."""
    customer = next(c for c in _in_shard_zero(prefix) if not Policy().in_holdout(c))
    prepare(infra, namespace)
    send(infra, namespace, [
        event("Customer Updated", T0 - dt.timedelta(days=1), customer=customer,
              traits={"timezone": "Europe/Paris"}, consent={"marketing_push": True}),
        event("Product Added", T0, customer=customer, product_id="P1", price=20.0,
              currency="EUR"),
    ])  # fmt: skip
    return customer


def _time_moves_on(infra: Endpoints, namespace: str, at: dt.datetime) -> None:
    """Another customer of the shard does something at ``at``: its clock moves on."""
    clock = next(iter(_in_shard_zero("clock")))
    send(infra, namespace, [event("Product Viewed", at, customer=clock, product_id="P9",
                                  price=5.0, currency="EUR")])  # fmt: skip


def test_serving_sees_the_flows_offer_as_already_fired_under_its_id(
    infra: Endpoints, unique: str, tmp_path: Path
) -> None:
    namespace = f"nbf{unique}"
    customer = _cart_waiting(infra, namespace, "buyer")
    _time_moves_on(infra, namespace, T0 + dt.timedelta(hours=30))
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    topic = events.in_namespace(events.OFFERS, namespace)
    fired = [orjson.loads(m.value()) for m in read_topic(infra, topic)]
    (flows_offer,) = [o for o in fired if o["trigger"] == "cart_abandonment"]

    def ask(at: dt.datetime, **body: Any) -> dict[str, Any]:
        settings = ServingSettings(
            redis_url=infra.redis_url, namespace=namespace, model_registry=tmp_path / "none"
        )
        with TestClient(create_app(settings, clock=at.timestamp)) as client:
            response = client.post(f"/v1/customers/{customer}/next-best-offer", json=body)
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer

    same_cart = ask(T0 + dt.timedelta(hours=1), channel="push")
    (cart,) = [a for a in same_cart["alternatives"] if a["trigger"] == "cart_abandonment"]
    assert (cart["offer_id"], cart["why"]) == (flows_offer["offer_id"], "already_fired")
    # A new cart later that day: past the cool-down, but the trigger's daily cap is spent.
    new_cart = ask(T0 + dt.timedelta(hours=2), channel="push", cart=["P1", "P2"])
    (cart,) = [a for a in new_cart["alternatives"] if a["trigger"] == "cart_abandonment"]
    assert cart["why"] == "trigger_cap"
    assert cart["offer_id"] != flows_offer["offer_id"]


def test_the_flow_counts_the_next_best_offers_serving_made(
    infra: Endpoints, unique: str, tmp_path: Path
) -> None:
    namespace = f"nbs{unique}"
    customer = _cart_waiting(infra, namespace, "asker")
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))

    settings = ServingSettings(
        redis_url=infra.redis_url, namespace=namespace, model_registry=tmp_path / "none",
        kafka_bootstrap=infra.kafka_bootstrap,
    )  # fmt: skip

    def ask(at: dt.datetime) -> dict[str, Any]:
        with TestClient(create_app(settings, clock=at.timestamp)) as client:
            response = client.post(f"/v1/customers/{customer}/next-best-offer",
                                   json={"channel": "push"})  # fmt: skip
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer

    # Serving offers the waiting cart five minutes in, and tells the flow (the app closed
    # the client: everything queued was delivered).
    first = ask(T0 + dt.timedelta(minutes=5))
    assert first["offer"]["trigger"] == "cart_abandonment"
    offer_id = first["offer"]["offer_id"]
    customers_topic = events.in_namespace(events.CUSTOMERS, namespace)
    sent = [
        orjson.loads(m.value())
        for m in read_topic(infra, customers_topic)
        if orjson.loads(m.value())["event"] == "Offer Sent"
    ]
    assert [(s["customer_id"], s["properties"]["offer_id"]) for s in sent] == [(customer, offer_id)]

    # The flow folds it in: its own cart timer, half an hour after the change, finds the
    # cart already offered, under the same id; serving, asked again, finds it too.
    _time_moves_on(infra, namespace, T0 + dt.timedelta(days=1))
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    offers_topic = events.in_namespace(events.OFFERS, namespace)
    assert [o for o in read_topic(infra, offers_topic)] == []
    signals = [
        orjson.loads(m.value())
        for m in read_topic(infra, events.in_namespace(events.SIGNALS, namespace))
    ]
    (suppressed,) = [s for s in signals if s.get("signal") == "offer_suppressed"]
    assert (suppressed["trigger"], suppressed["reason"]) == ("cart_abandonment", "already_fired")
    assert suppressed["offer_id"] == offer_id
    again = ask(T0 + dt.timedelta(minutes=40))
    (cart,) = [a for a in again["alternatives"] if a["trigger"] == "cart_abandonment"]
    assert (cart["offer_id"], cart["why"]) == (offer_id, "already_fired")
