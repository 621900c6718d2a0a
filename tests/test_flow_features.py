"""The feature flow end to end: embedded Kafka → Bytewax → real Redis, on a known story."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
import redis

import events
from feature_store import FeatureStore, KeyLayout, folded
from flows.profile import CustomerProfile
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import Item, Malformed
from tests.flowkit import event, prepare, product, read_topic, run_to_end, send

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)

COFFEE = {"category": "Grocery/Coffee", "brand": "Lavazza"}


def _story() -> tuple[list[Item], list[events.Event]]:
    """Alice's month, as produced (with duplicates, late and malformed messages), and the
    distinct valid events in time order."""
    profile = event(
        "Customer Updated",
        T0,
        channel="server",
        traits={"timezone": "Europe/Lisbon", "country": "PT"},
        consent={"personalization": True, "marketing_email": False},
    )
    view_p1 = event(
        "Product Viewed", T0 + MIN, session_id="s-1", **product("P1", 18.0, 1, **COFFEE)
    )
    view_p2 = event(
        "Product Viewed", T0 + 2 * MIN, session_id="s-1", **product("P2", 9.5, 1, **COFFEE)
    )
    add_p1 = event(
        "Product Added",
        T0 + 3 * MIN,
        session_id="s-1",
        cart_id="k-1",
        **product("P1", 18.0, 2, **COFFEE),
    )
    order = event(
        "Order Completed",
        T0 + 10 * MIN,
        session_id="s-1",
        order_id="O-1",
        revenue=36.0,
        currency="EUR",
        products=[product("P1", 18.0, 2, **COFFEE)],
    )
    refund = event(
        "Order Refunded",
        T0 + 2 * DAY,
        channel="server",
        order_id="O-1",
        refund_amount=18.0,
        currency="EUR",
    )
    ticket = event("Support Ticket Created", T0 + 2 * DAY, channel="call_center", ticket_id="Z-1")
    solved = event(
        "Support Ticket Updated",
        T0 + 3 * DAY,
        channel="call_center",
        ticket_id="Z-1",
        status="solved",
    )
    nps = event("NPS Survey Responded", T0 + 3 * DAY, channel="email", score=4)
    bob_view = event(
        "Product Viewed", T0 + 5 * MIN, customer="c-bob", **product("P2", 9.5, 1, **COFFEE)
    )
    catalog = event(
        "Product Updated",
        T0,
        customer=None,
        channel="server",
        product_id="P1",
        price=18.0,
        currency="EUR",
        category="Grocery/Coffee",
        brand="Lavazza",
        inventory_quantity=40,
        is_consumable=True,
        replenishment_days=30,
    )
    truncated = Malformed(
        events.CLICKSTREAM, b"c-alice", events.encode(view_p1)[:-9], "truncated_json"
    )
    negative = Malformed(
        events.PURCHASES,
        b"c-alice",
        events.encode(order).replace(b'"revenue":36.0', b'"revenue":-36.0'),
        "negative_price",
    )
    produced: list[Item] = [
        catalog,
        profile,
        view_p1,
        add_p1,
        add_p1,  # a duplicate delivery: same message_id
        truncated,
        order,
        view_p2,  # late: after the order it preceded, inside the allowed lateness
        bob_view,
        negative,
        refund,
        ticket,
        solved,
        nps,
        nps,  # and another duplicate
    ]
    distinct = [profile, view_p1, view_p2, add_p1, order, refund, ticket, solved, nps]
    return produced, distinct


@pytest.fixture(scope="module")
def story_run(infra: Endpoints) -> tuple[str, object]:
    namespace = "tstory"
    prepare(infra, namespace)
    produced, _ = _story()
    send(infra, namespace, produced)
    registry = run_to_end(infra, namespace)
    return namespace, registry


@pytest.fixture
def store(infra: Endpoints, story_run: tuple[str, object]) -> FeatureStore:
    return FeatureStore(redis.Redis.from_url(infra.redis_url), KeyLayout(story_run[0]))


SCORE_FIELDS = ("churn_probability", "churn_model_version", "churn_scored_at", "_churn_at")
SEGMENT_FIELDS = ("rfm_r", "rfm_f", "rfm_m", "segment", "segment_at", "_segment_at")


def test_features_equal_the_profile_of_the_distinct_events(store: FeatureStore) -> None:
    _, distinct = _story()
    expected = CustomerProfile()
    for e in distinct:
        expected.apply(e)
    # The watermark (her last event minus the hour of lateness) passed her order, so the
    # shard clock ticked it: her churn window is open.
    ordered = (T0 + 10 * MIN).timestamp()
    assert expected.churn_tick(ordered, ordered)
    stored = store.customer("c-alice")
    assert stored is not None
    score = {name: stored.pop(name) for name in SCORE_FIELDS}
    assert stored == expected.features()
    # Her shard has too few buyers for RFM quintiles: she is in no segment yet.
    assert not set(SEGMENT_FIELDS) & set(stored)
    assert store.segment_members("New") == set()
    # Scored once, as of her latest event, by the model that has learned nothing yet.
    last = T0 + 3 * DAY
    assert score == {
        "churn_probability": "0.5000",
        "churn_model_version": "logistic-0",
        "churn_scored_at": "2025-03-06T09:00:00Z",
        "_churn_at": str(round(last.timestamp() * 1000)),
    }
    assert stored["churn_deadline"] == "2025-05-02T09:10:00Z"
    # Loyalty: 36.00 ordered, 18.00 refunded: 18 points, Bronze.
    assert (stored["loyalty_points"], stored["loyalty_tier"]) == ("18", "Bronze")
    assert (stored["churn_windows"], stored["churn_windows_churned"]) == ("0", "0")


def test_every_feature_of_the_story(store: FeatureStore) -> None:
    alice = store.customer("c-alice")
    assert alice is not None
    # Nine distinct valid events (two duplicates dropped), and the tick of her order.
    assert alice["_seq"] == "10"
    assert alice["first_seen"] == "2025-03-03T09:00:00Z"
    assert alice["last_seen"] == "2025-03-06T09:00:00Z"
    assert alice["last_purchase_at"] == "2025-03-03T09:10:00Z"
    assert (alice["orders_total"], alice["revenue_total"], alice["aov"]) == ("1", "36.00", "36.00")
    assert (alice["refunds_total"], alice["refunded_amount"], alice["return_rate"]) == (
        "1",
        "18.00",
        "1.0000",
    )
    assert orjson.loads(alice["cart"]) == {}  # the order took P1 out of the cart
    assert (alice["cart_items"], alice["cart_value"]) == ("0", "0.00")
    assert (alice["open_tickets"], alice["last_nps"]) == ("0", "4")
    assert alice["last_nps_at"] == "2025-03-06T09:00:00Z"
    assert alice["consent:personalization"] == "1"
    assert alice["consent:marketing_email"] == "0"
    assert (alice["trait:timezone"], alice["trait:country"]) == ("Europe/Lisbon", "PT")
    assert orjson.loads(alice["channel_mix"]) == {
        "web": 4,
        "server": 2,
        "call_center": 2,
        "email": 1,
    }
    assert [name for name, _ in orjson.loads(alice["affinity:category"])] == ["Grocery/Coffee"]
    recent = orjson.loads(alice["recent"])
    assert [(p, kind) for p, kind, _ in recent] == [
        ("P1", "purchase"),
        ("P1", "add"),
        ("P2", "view"),  # the late view sits at its event time, not its arrival
        ("P1", "view"),
    ]


def test_windows_are_right_when_read_days_after_the_last_event(store: FeatureStore) -> None:
    alice = store.customer("c-alice")
    assert alice is not None
    # Just after her last event (an NPS answer three days after the session).
    soon = folded(alice, T0 + 3 * DAY + 30 * MIN)
    assert (soon["views_7d"], soon["adds_7d"], soon["orders_7d"], soon["sessions_7d"]) == (
        2,
        1,
        1,
        1,
    )
    assert (soon["views_24h"], soon["orders_1h"]) == (0, 0)
    # Eight days after her last event nothing new arrived, yet the 7-day windows read 0.
    later = folded(alice, T0 + 11 * DAY)
    assert (later["views_7d"], later["orders_7d"], later["adds_7d"]) == (0, 0, 0)
    assert (later["views_30d"], later["orders_30d"]) == (2, 1)
    assert (later["orders_365d"], later["revenue_365d"]) == (1, 36.0)
    assert later["recency_days"] == pytest.approx(11 - 10 / 1440, abs=1e-4)


def test_items_and_popularity(store: FeatureStore) -> None:
    p1 = store.item("P1")
    assert p1 is not None
    assert (p1["price"], p1["category"], p1["inventory_quantity"]) == (
        "18.00",
        "Grocery/Coffee",
        "40",
    )
    assert (p1["is_consumable"], p1["replenishment_days"]) == ("1", "30")
    now = T0 + DAY
    assert store.popularity("views", window="24h", now=now) == [("P1", 1.0), ("P2", 2.0)][::-1]
    assert store.popularity("purchases", window="7d", now=now, scope="Grocery/Coffee") == [
        ("P1", 2.0)
    ]
    assert store.customer("c-bob") is not None


def test_malformed_messages_are_in_the_dlq_with_bytes_and_reason(
    infra: Endpoints, story_run: tuple[str, object]
) -> None:
    namespace, registry = story_run
    dead = read_topic(infra, events.in_namespace(events.DLQ, namespace))
    reasons = sorted(dict(m.headers())["reason"].decode() for m in dead)
    assert reasons == ["invalid_value", "malformed_json"]
    for message in dead:
        headers = dict(message.headers())
        source = headers["source_topic"].decode()
        assert message.key() == headers["dlq_id"]
        assert headers["dlq_id"].decode() == (
            f"{source}/{headers['source_partition'].decode()}/{headers['source_offset'].decode()}"
        )
        assert headers["detail"]
        with pytest.raises(events.DecodeError):
            events.decode(message.value())
    get = registry.get_sample_value  # type: ignore[attr-defined]
    assert get("shopkeeper_flow_dlq_total", {"reason": "malformed_json"}) == 1
    assert get("shopkeeper_flow_dlq_total", {"reason": "invalid_value"}) == 1
    assert (
        get(
            "shopkeeper_flow_events_total",
            {"topic": "shopkeeper.clickstream", "event": "Product Added", "outcome": "duplicate"},
        )
        == 1
    )
    assert (
        get(
            "shopkeeper_flow_events_total",
            {
                "topic": "shopkeeper.customers",
                "event": "NPS Survey Responded",
                "outcome": "applied",
            },
        )
        == 1
    )
