"""Real-time offers in the real flow: cart abandonment fires once, on event time, and
each guardrail suppresses it with its reason; a replay gives the same offers and ids."""

from __future__ import annotations

import datetime as dt
import itertools
import zlib
from typing import Any

import orjson
import pytest

import events
from models.offers import Policy
from shopkeeper.embedded import Endpoints
from tests.flowkit import event, prepare, product, read_topic, run_to_end, send

T0 = dt.datetime(2025, 5, 6, 12, 0, tzinfo=dt.UTC)  # 14:00 in Paris, 21:00 in Tokyo
MINUTE = dt.timedelta(minutes=1)


def _shard_zero(prefix: str) -> itertools.islice[str]:
    """Ids the producer puts in partition 0 of 4 (CRC-32 of the key): one shard's clock
    sees every customer, so the last event moves the watermark past every deadline."""
    ids = (f"c-{prefix}-{n}" for n in itertools.count())
    return itertools.islice((c for c in ids if zlib.crc32(c.encode()) % 4 == 0), None)


def _ids() -> dict[str, str]:
    policy = Policy()
    names = ["fires", "orders", "no_consent", "ticket", "night", "twice"]
    chosen = {}
    for name in names:
        chosen[name] = next(c for c in _shard_zero(name) if not policy.in_holdout(c))
    chosen["held_out"] = next(c for c in _shard_zero("hold") if policy.in_holdout(c))
    chosen["clock"] = next(iter(_shard_zero("clock")))
    return chosen


def _profile(customer: str, *, push: bool = True, timezone: str = "Europe/Paris") -> Any:
    return event("Customer Updated", T0 - dt.timedelta(days=1), customer=customer,
                 traits={"timezone": timezone}, consent={"marketing_push": push})  # fmt: skip


def _add(customer: str, at: dt.datetime, product_id: str = "P1") -> Any:
    return event("Product Added", at, customer=customer, product_id=product_id, price=20.0,
                 currency="EUR")  # fmt: skip


def _story(ids: dict[str, str]) -> list[Any]:
    c = ids
    items: list[Any] = [_profile(customer) for key, customer in c.items() if key not in
                        ("no_consent", "night", "clock")]  # fmt: skip
    items += [
        _profile(c["no_consent"], push=False),
        _profile(c["night"], timezone="Asia/Tokyo"),
        event("Support Ticket Created", T0 - dt.timedelta(hours=2), customer=c["ticket"],
              ticket_id="T-1", status="open"),
    ]  # fmt: skip
    for key in ("fires", "no_consent", "ticket", "night", "held_out", "twice", "orders"):
        items.append(_add(c[key], T0))
    items.append(event("Order Completed", T0 + 10 * MINUTE, customer=c["orders"],
                       order_id="O-1", revenue=20.0, currency="EUR",
                       products=[product("P1", 20.0)]))  # fmt: skip
    # The same cart looked at again: the same state, so no second offer.
    items.append(event("Cart Viewed", T0 + 2 * dt.timedelta(hours=1), customer=c["twice"],
                       products=[product("P1", 20.0)]))  # fmt: skip
    # A new cart the next day: a new state, past the cool-down and the daily cap.
    items.append(_add(c["twice"], T0 + dt.timedelta(hours=26), "P2"))
    # Time moves on in the shard: every deadline above is passed.
    items.append(event("Product Viewed", T0 + dt.timedelta(hours=30), customer=c["clock"],
                       product_id="P9", price=5.0, currency="EUR"))  # fmt: skip
    return items


def _decisions(
    infra: Endpoints, namespace: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    offers_topic = events.in_namespace(events.OFFERS, namespace)
    signals_topic = events.in_namespace(events.SIGNALS, namespace)
    fired = [orjson.loads(m.value()) for m in read_topic(infra, offers_topic)]
    signals = [orjson.loads(m.value()) for m in read_topic(infra, signals_topic)]
    return fired, [s for s in signals if s["signal"] == "offer_suppressed"]


@pytest.fixture(scope="module")
def ids() -> dict[str, str]:
    return _ids()


def test_cart_abandonment_fires_once_on_event_time_and_each_guardrail_says_why(
    infra: Endpoints, unique: str, ids: dict[str, str]
) -> None:
    namespace = f"off{unique}"
    prepare(infra, namespace)
    send(infra, namespace, _story(ids))
    registry = run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    fired, suppressed = _decisions(infra, namespace)
    fired = [o for o in fired if o["trigger"] == "cart_abandonment"]
    suppressed = [s for s in suppressed if s["trigger"] == "cart_abandonment"]

    by_customer: dict[str, list[dict[str, Any]]] = {}
    for offer in fired:
        by_customer.setdefault(offer["customer_id"], []).append(offer)
    assert set(by_customer) == {ids["fires"], ids["twice"]}
    (offer,) = by_customer[ids["fires"]]
    assert offer["trigger"] == "cart_abandonment"
    assert offer["reason"] == "cart_idle_30m"
    assert offer["at"] == "2025-05-06T12:30:00Z"  # the change plus 30 minutes, event time
    assert offer["expires_at"] == "2025-05-08T12:30:00Z"
    assert offer["features"]["cart_products"] == "P1"
    assert offer["features"]["cart_value"] == "20.00"
    assert offer["offer_id"].startswith("of-")
    # Content: the cart's product; no orders, so no CLV, recency or discount to speak of.
    assert offer["content"]["items"] == [{"product_id": "P1", "role": "subject"}]
    assert offer["content"]["customer"] == {
        "clv_12m": None, "clv_source": "none", "churn": None, "recency_days": None
    }  # fmt: skip
    assert offer["content"]["discount"]["amount"] == 0.0
    twice = sorted(by_customer[ids["twice"]], key=lambda o: o["at"])
    assert [(o["at"], o["features"]["cart_products"]) for o in twice] == [
        ("2025-05-06T12:30:00Z", "P1"),
        ("2025-05-07T14:30:00Z", "P1,P2"),
    ]

    reasons = {(s["customer_id"], s["reason"]) for s in suppressed}
    assert reasons == {
        (ids["no_consent"], "no_consent"),
        (ids["ticket"], "open_ticket"),
        (ids["night"], "quiet_hours"),
        (ids["held_out"], "holdout"),
        (ids["twice"], "already_fired"),
    }
    assert ids["orders"] not in {s["customer_id"] for s in suppressed}
    assert (
        registry.get_sample_value(
            "shopkeeper_offers_decisions_total",
            {"trigger": "cart_abandonment", "outcome": "fired", "reason": "cart_idle_30m"},
        )
        == 3
    )
    assert (
        registry.get_sample_value(
            "shopkeeper_offers_decisions_total",
            {"trigger": "cart_abandonment", "outcome": "suppressed", "reason": "holdout"},
        )
        == 1
    )


def test_a_replay_in_other_batches_gives_the_same_offers_and_ids(
    infra: Endpoints, unique: str, ids: dict[str, str]
) -> None:
    runs = []
    for name, batch in (("a", 20_000), ("b", 1)):
        namespace = f"rep{name}{unique}"
        prepare(infra, namespace)
        send(infra, namespace, _story(ids))
        run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60), batch_size=batch)
        fired, suppressed = _decisions(infra, namespace)
        runs.append((sorted(fired, key=lambda o: o["offer_id"]),
                     sorted(suppressed, key=lambda s: s["offer_id"])))  # fmt: skip
    assert runs[0] == runs[1]
    assert len(runs[0][0]) == 3


def test_purchase_tier_and_service_triggers_fire_on_the_event(
    infra: Endpoints, unique: str
) -> None:
    policy = Policy()
    buyer, muted, unhappy = (
        next(c for c in _shard_zero(name) if not policy.in_holdout(c))
        for name in ("buyer", "muted", "unhappy")
    )
    consent = {"marketing_push": True, "marketing_email": True}
    story = [
        event("Customer Updated", T0 - dt.timedelta(days=1), customer=buyer,
              traits={"timezone": "Europe/Paris"}, consent=consent),
        event("Customer Updated", T0 - dt.timedelta(days=1), customer=muted,
              traits={"timezone": "Europe/Paris"}, consent={"marketing_email": False}),
        # No marketing consent and an open ticket: a service message still goes out.
        event("Customer Updated", T0 - dt.timedelta(days=1), customer=unhappy,
              traits={"timezone": "Europe/Paris"}, consent={"marketing_email": False}),
        event("Support Ticket Created", T0 - dt.timedelta(hours=1), customer=unhappy,
              ticket_id="T-9", status="open"),
        event("Order Completed", T0, customer=buyer, order_id="O-big", revenue=600.0,
              currency="EUR", products=[product("P1", 600.0)]),
        event("Order Completed", T0, customer=muted, order_id="O-m", revenue=20.0,
              currency="EUR", products=[product("P2", 20.0)]),
        event("NPS Survey Responded", T0 + MINUTE, customer=unhappy, score=3),
        event("NPS Survey Responded", T0 + 2 * MINUTE, customer=buyer, score=10),
    ]  # fmt: skip
    namespace = f"evt{unique}"
    prepare(infra, namespace)
    send(infra, namespace, story)
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    fired, suppressed = _decisions(infra, namespace)

    got = sorted((o["customer_id"], o["trigger"], o["reason"], o["at"]) for o in fired)
    assert got == sorted([
        (buyer, "post_purchase", "order_completed", "2025-05-06T12:00:00Z"),
        (buyer, "tier_upgrade", "tier_silver", "2025-05-06T12:00:00Z"),
        (unhappy, "service_recovery", "nps_detractor", "2025-05-06T12:01:00Z"),
    ])  # fmt: skip
    upgrade = next(o for o in fired if o["trigger"] == "tier_upgrade")
    assert upgrade["features"] == {"tier": "Silver", "previous_tier": "Bronze"}
    purchase = next(o for o in fired if o["trigger"] == "post_purchase")
    assert purchase["features"]["products"] == "P1"
    assert purchase["channel"] == "email"
    assert {(s["customer_id"], s["trigger"], s["reason"]) for s in suppressed} == {
        (muted, "post_purchase", "no_consent"),
    }


def test_service_recovery_skips_the_promotion_guardrails_but_not_the_others(
    infra: Endpoints, unique: str
) -> None:
    policy = Policy()
    night, held, twice = (
        next(c for c in _shard_zero(f"svc-{name}") if policy.in_holdout(c) == (name == "held"))
        for name in ("night", "held", "twice")
    )
    story: list[Any] = []
    for customer in (night, held, twice):
        # No marketing consent, an open ticket, and 21:00 in Tokyo: a service message
        # goes out all the same...
        story += [
            event("Customer Updated", T0 - dt.timedelta(days=1), customer=customer,
                  traits={"timezone": "Asia/Tokyo"}, consent={"marketing_email": False}),
            event("Support Ticket Created", T0 - dt.timedelta(hours=1), customer=customer,
                  ticket_id="T-1", status="open"),
            event("NPS Survey Responded", T0, customer=customer, score=2),
        ]  # fmt: skip
    # ...but not twice within the trigger's cool-down (1 h).
    story.append(event("Satisfaction Rated", T0 + 10 * MINUTE, customer=twice,
                       ticket_id="T-1", rating=1))  # fmt: skip
    # Time moves on in the shard: every decision above is due.
    clock = next(iter(_shard_zero("svc-clock")))
    story.append(event("Product Viewed", T0 + dt.timedelta(days=1), customer=clock,
                       product_id="P9", price=5.0, currency="EUR"))  # fmt: skip
    namespace = f"svc{unique}"
    prepare(infra, namespace)
    send(infra, namespace, story)
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    fired, suppressed = _decisions(infra, namespace)
    assert sorted((o["customer_id"], o["reason"]) for o in fired) == sorted(
        [(night, "nps_detractor"), (twice, "nps_detractor")]
    )
    assert sorted((s["customer_id"], s["trigger"], s["reason"]) for s in suppressed) == sorted(
        [(held, "service_recovery", "holdout"), (twice, "service_recovery", "cooldown")]
    )
