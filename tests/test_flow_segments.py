"""RFM segments in the flow: placement on event time, membership sets, sizes, erasure."""

from __future__ import annotations

import datetime as dt
import itertools
import zlib

import orjson
import redis

import events
from feature_store import FeatureStore, KeyLayout
from shopkeeper.embedded import Endpoints
from shopkeeper.topics import ALL_TOPICS, ensure_topics
from tests.flowkit import event, product, read_topic, run_to_end, send

START = dt.datetime(2025, 4, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

GROUPS = {  # name prefix: (customers, orders, revenue per order, day of the last order)
    "champ": (6, 10, 100.0, 59),
    "new": (12, 1, 10.0, 58),
    "lost": (6, 1, 10.0, 1),
}


def _in_shard_zero(prefix: str, count: int) -> list[str]:
    """Customer ids the producer puts in partition 0 of 4 (librdkafka's default
    partitioner: CRC-32 of the key), so one shard holds the whole population."""
    ids = (f"c-{prefix}-{n}" for n in itertools.count())
    return list(itertools.islice((c for c in ids if zlib.crc32(c.encode()) % 4 == 0), count))


def _orders(prefix: str, count: int, orders: int, revenue: float, last: int) -> list[events.Event]:
    out = []
    for i, customer in enumerate(_in_shard_zero(prefix, count)):
        for k in range(orders):
            at = START + (last - (orders - 1 - k) * 5) * DAY + i * dt.timedelta(minutes=1)
            out.append(
                event(
                    "Order Completed",
                    at,
                    customer=customer,
                    order_id=f"O-{customer}-{k}",
                    revenue=revenue,
                    currency="EUR",
                    products=[product("P1", revenue)],
                )
            )
    return out


def test_customers_land_in_their_segments_on_event_time(infra: Endpoints, unique: str) -> None:
    namespace = f"seg{unique}"
    ensure_topics(
        infra.kafka_bootstrap,
        [events.in_namespace(t, namespace) for t in ALL_TOPICS],
        embedded=infra.embedded_kafka,
    )
    story = [e for name, spec in GROUPS.items() for e in _orders(name, *spec)]
    champions, new, (gone, *lost) = (_in_shard_zero(p, GROUPS[p][0]) for p in GROUPS)
    erased = event("Deletion Requested", START + 40 * DAY, customer=gone)
    # Someone browsing moves event time past day 61.
    (pacer,) = _in_shard_zero("pacer", 1)
    browsing = [
        event("Product Viewed", START + d * DAY, customer=pacer, **product("P9", 5.0))
        for d in range(0, 62)
    ]
    in_order = sorted([*story, erased, *browsing], key=lambda e: e.timestamp)
    send(infra, namespace, in_order)
    purchases = read_topic(infra, events.in_namespace(events.PURCHASES, namespace))
    assert {m.partition() for m in purchases} == {0}
    registry = run_to_end(infra, namespace)
    store = FeatureStore(redis.Redis.from_url(infra.redis_url), KeyLayout(namespace))

    segments = (
        "Champions", "Loyal", "Potential Loyalist", "New", "Promising", "Need Attention",
        "At Risk", "Can't Lose", "Hibernating", "Lost",
    )  # fmt: skip
    members = {name: store.segment_members(name) for name in segments}
    # The sets agree with each customer's hash, and hold every buyer once.
    placed = {c: name for name, ids in members.items() for c in ids}
    assert sum(len(ids) for ids in members.values()) == len(placed) == 6 + 12 + 5
    for customer, name in placed.items():
        assert (store.customer(customer) or {}).get("segment") == name
    assert members["Champions"] == set(champions)
    assert members["Lost"] == set(lost)
    # The one-order buyers of the last days rank recent, with one order and little money.
    for customer in new:
        features = store.customer(customer)
        assert features is not None
        assert int(features["rfm_r"]) >= 3
        assert (features["rfm_f"], features["rfm_m"]) == ("1", "1")
        assert features["segment"] in {"New", "Promising", "Potential Loyalist"}
    # The erased customer is in no set and has no hash.
    assert gone not in placed
    assert store.customer(gone) is None
    # The moves and the loyalty tier changes went out as CRM signals, with stable ids.
    signals = [
        orjson.loads(m.value())
        for m in read_topic(infra, events.in_namespace(events.SIGNALS, namespace))
    ]
    entered = {
        (s["customer_id"], s["segment"]) for s in signals if s["signal"] == "segment_entered"
    }
    assert {(c, "Champions") for c in champions} <= entered
    assert all(c != gone for c, _ in entered)  # erased before the shard placed anyone
    upgraded = {(s["customer_id"], s["tier"]) for s in signals if s["signal"] == "tier_upgraded"}
    assert upgraded == {(c, "Silver") for c in champions}  # 10 x 100.00 in the year
    assert len({s["signal_id"] for s in signals}) == len(signals)
    champion = store.customer(champions[0])
    assert champion is not None
    assert (champion["segment"], champion["rfm_f"], champion["rfm_m"]) == ("Champions", "4", "4")
    # Every buyer but the erased one is counted in exactly one segment.
    sizes = {
        sample.labels["segment"]: sample.value
        for metric in registry.collect()
        if metric.name == "shopkeeper_segment_customers"
        for sample in metric.samples
    }
    assert sum(sizes.values()) == 6 + 12 + 5
    assert sizes["Champions"] == 6


def test_an_erased_customer_leaves_their_segment_and_is_never_placed_again() -> None:
    from flows._segments import MIN_POPULATION, ShardSegments

    shard = ShardSegments()
    t = START.timestamp()
    for i in range(MIN_POPULATION):
        shard.purchase(f"c-{i}", t + i, 10.0 * (i + 1))
    # Nobody is placed until there are enough buyers: then the one who made it enough,
    # and the next refresh places the others.
    assert sum(shard.sizes.values()) == 1
    placed = dict(shard.refresh(t + 100))
    assert len(placed) == MIN_POPULATION - 1
    assert sum(shard.sizes.values()) == MIN_POPULATION
    segment = placed["c-0"][0].segment
    removed = shard.erase("c-0", t + 200)
    assert removed is not None
    assert (removed.previous, removed.segment, removed.moved) == (segment, "", True)
    assert shard.purchase("c-0", t + 300, 10.0) is None
    assert shard.quantiles.population == MIN_POPULATION - 1
    assert sum(shard.sizes.values()) == MIN_POPULATION - 1
