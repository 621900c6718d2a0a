"""The synthetic traffic generator: determinism, contract validity, and planted structure."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

import pytest

import events
from shopkeeper.generator import (
    MALFORMED_KINDS,
    GeneratorConfig,
    Item,
    Malformed,
    World,
    to_record,
    write_history,
)

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SMALL = GeneratorConfig(customers=300, products=400)
# Big enough that planted structure stands out statistically, small enough to stay fast.
MEDIUM = GeneratorConfig(customers=1_000, products=800, seed=11)
MEDIUM_DAYS = 150


def _bytes(config: GeneratorConfig, days: int) -> list[bytes]:
    return [to_record(item)[2] for item in World.build(config).history(START, days)]


@pytest.fixture(scope="module")
def medium() -> tuple[World, list[Item], dict[str, object]]:
    world = World.build(MEDIUM)
    items = list(world.history(START, MEDIUM_DAYS))
    return world, items, world.ground_truth()


def _valid(items: list[Item]) -> list[events.Event]:
    return [item for item in items if not isinstance(item, Malformed)]


def _orders(items: list[Item]) -> list[events.OrderCompleted]:
    return [item for item in items if isinstance(item, events.OrderCompleted)]


def test_defaults_meet_the_required_scale() -> None:
    config = GeneratorConfig()
    world = World.build(config)
    assert config.customers >= 10_000
    assert config.products >= 5_000
    assert len(world.customers) >= 10_000
    assert len(world.catalog) >= 5_000
    assert len({leaf.department for leaf in world.catalog.leaves}) >= 6
    assert 40 <= len(world.catalog.leaves) <= 80
    truth = world.ground_truth()
    assert 100 <= len(truth["co_purchase_pairs"]) <= 300
    assert len(truth["price_ladders"]) >= 50
    assert len(truth["churners"]) == round(config.churn_share * config.customers)


def test_same_config_gives_identical_bytes_and_another_seed_differs() -> None:
    first = _bytes(SMALL, 20)
    assert first == _bytes(SMALL, 20)
    assert first != _bytes(GeneratorConfig(customers=300, products=400, seed=8), 20)


def test_valid_items_round_trip_and_malformed_ones_are_rejected(
    medium: tuple[World, list[Item], dict[str, object]],
) -> None:
    _, items, _ = medium
    malformed = [item for item in items if isinstance(item, Malformed)]
    for event in _valid(items):
        assert events.decode(events.encode(event)) == event
    for item in malformed:
        assert b"\n" not in item.value
        assert item.topic in events.TOPICS
        with pytest.raises(events.DecodeError):
            events.decode(item.value)
    assert {item.kind for item in malformed} == set(MALFORMED_KINDS)
    assert any(len(item.value) > events.MAX_EVENT_BYTES for item in malformed)
    share = len(malformed) / len(items)
    assert abs(share - MEDIUM.malformed_share) < 0.3 * MEDIUM.malformed_share


def test_history_is_in_event_time_order_and_starts_with_catalogue_and_profiles(
    medium: tuple[World, list[Item], dict[str, object]],
) -> None:
    world, items, _ = medium
    valid = _valid(items)
    stamps = [event.timestamp for event in valid]
    assert all(a <= b for a, b in itertools.pairwise(stamps))
    assert all(stamp.tzinfo is dt.UTC for stamp in stamps)
    products, customers = len(world.catalog), len(world.customers)
    preamble = valid[: products + customers]
    assert all(event.timestamp == START for event in preamble)
    assert all(isinstance(e, events.ProductUpdated) for e in preamble[:products])
    profiles = preamble[products:]
    assert all(isinstance(e, events.CustomerUpdated) for e in profiles)
    assert all(e.properties.traits.timezone and e.properties.consent for e in profiles)  # type: ignore[union-attr]
    assert stamps[-1] < START + dt.timedelta(days=MEDIUM_DAYS + 31)
    assert len({event.message_id for event in valid}) == len(valid)
    # Volume in the intended range: a few visits per active customer a month.
    per_customer_month = (len(valid) - products - customers) / customers / (MEDIUM_DAYS / 30)
    assert 10 < per_customer_month < 40


def test_live_timestamps_follow_the_rate_and_interleave_sessions() -> None:
    world = World.build(SMALL)
    rate = 250.0
    stream = world.live(START, rate)
    preamble = len(world.catalog) + len(world.customers)
    head = list(itertools.islice(stream, preamble))
    # Item n of the whole stream is stamped start + n / rate, the preamble included.
    for n, item in enumerate(head):
        if not isinstance(item, Malformed):
            assert item.timestamp == START + dt.timedelta(seconds=n / rate)
    assert {i.name for i in head if not isinstance(i, Malformed)} <= {
        "Product Updated",
        "Customer Updated",
    }
    offset = len(head)
    items: list[Item] = list(itertools.islice(stream, 20_000))
    last_seen: dict[str, dt.datetime] = {}
    sessions_in_first_500: set[str] = set()
    for n, item in enumerate(items):
        if isinstance(item, Malformed):
            with pytest.raises(events.DecodeError):
                events.decode(item.value)
            continue
        assert isinstance(item, events.EventBase)
        assert item.timestamp == START + dt.timedelta(seconds=(offset + n) / rate)
        key = item.customer_key
        if key is not None:
            assert last_seen.get(key, START) <= item.timestamp
            last_seen[key] = item.timestamp
        if n < 500 and item.session_id:
            sessions_in_first_500.add(item.session_id)
    assert len(sessions_in_first_500) > 50
    names = {item.name for item in items if not isinstance(item, Malformed)}
    assert {"Product Viewed", "Product Added", "Order Completed"} <= names


def test_co_purchase_pairs_co_occur_far_above_chance(
    medium: tuple[World, list[Item], dict[str, object]],
) -> None:
    _, items, truth = medium
    pairs = truth["co_purchase_pairs"]
    assert isinstance(pairs, list)
    orders = _orders(items)
    baskets = [{line.product_id for line in o.properties.products} for o in orders]
    frequency: dict[str, int] = defaultdict(int)
    for basket in baskets:
        for p in basket:
            frequency[p] += 1
    with_a = with_both = 0
    expected = 0.0
    for a, b in pairs:
        for basket in baskets:
            if a in basket:
                with_a += 1
                with_both += b in basket
                expected += frequency[b] / len(baskets)
    assert with_a > 50
    lift = (with_both / with_a) / (expected / with_a)
    assert with_both / with_a > 0.3
    assert lift > 20
    # And within two weeks after buying A without B.
    bought: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for o in orders:
        for line in o.properties.products:
            bought[o.customer_id or "", line.product_id].append(o.timestamp)
    later = total = 0
    for o in orders:
        ids = {line.product_id for line in o.properties.products}
        for a, b in pairs:
            if a in ids and b not in ids and o.timestamp < START + dt.timedelta(MEDIUM_DAYS - 20):
                total += 1
                window = o.timestamp + dt.timedelta(days=15)
                later += any(o.timestamp < t <= window for t in bought[o.customer_id or "", b])
    assert total > 20
    assert later / total > 0.2


def test_price_ladders_rise_and_lower_rungs_sell_up(
    medium: tuple[World, list[Item], dict[str, object]],
) -> None:
    _, items, truth = medium
    ladders = truth["price_ladders"]
    assert isinstance(ladders, list)
    assert ladders
    price = {
        e.properties.product_id: e.properties.price
        for e in _valid(items)
        if isinstance(e, events.ProductUpdated) and e.properties.price is not None
    }
    rung_of: dict[str, int] = {}
    for ladder in ladders:
        assert 3 <= len(ladder) <= 4
        prices = [price[p] for p in ladder]
        assert prices == sorted(prices)
        assert len(set(prices)) == len(prices)
        rung_of.update({p: r for r, p in enumerate(ladder)})
    viewed_lower: dict[str, set[str]] = defaultdict(set)
    upsold = higher = 0
    for e in _valid(items):
        if isinstance(e, events.ProductViewed) and e.session_id:
            viewed_lower[e.session_id].add(e.properties.product_id)
        if isinstance(e, events.ProductAdded) and rung_of.get(e.properties.product_id, 0) > 0:
            higher += 1
            upsold += bool(viewed_lower[e.session_id or ""] - {e.properties.product_id})
    assert higher > 30
    assert upsold / higher > 0.5


def test_churners_go_silent_after_their_churn_date(
    medium: tuple[World, list[Item], dict[str, object]],
) -> None:
    _, items, truth = medium
    churners = truth["churners"]
    deleted = truth["deletions"]
    assert isinstance(churners, dict)
    assert isinstance(deleted, dict)
    assert len(churners) == round(MEDIUM.churn_share * MEDIUM.customers)
    quiet = {c: dt.datetime.fromisoformat(t) for c, t in {**churners, **deleted}.items()}
    active_before: set[str] = set()
    last_order: dict[str, dt.datetime] = {}
    for e in _valid(items):
        if e.customer_id is not None and e.customer_id in quiet:
            assert e.timestamp <= quiet[e.customer_id]
            if e.timestamp > START:
                active_before.add(e.customer_id)
        if isinstance(e, events.OrderCompleted) and e.customer_id:
            last_order[e.customer_id] = e.timestamp
    assert len(active_before) > 0.8 * len(churners)
    # Active customers keep buying: most bought in the last 60 days, few churners did.
    end = START + dt.timedelta(days=MEDIUM_DAYS)
    recent = {c for c, t in last_order.items() if t > end - dt.timedelta(days=60)}
    stayers = [c for c in cast("dict[str, Any]", truth["taste"]) if c not in quiet]
    assert sum(c in recent for c in stayers) / len(stayers) > 0.6
    assert sum(c in recent for c in churners) / len(churners) < 0.3


def test_replenishment_customers_repurchase_on_their_cycle(
    medium: tuple[World, list[Item], dict[str, object]],
) -> None:
    _, items, truth = medium
    plan = truth["replenishment"]
    assert isinstance(plan, list)
    assert len(plan) > 100
    cycle = {(r["customer_id"], r["product_id"]): r["cycle_days"] for r in plan}
    assert all(10 <= days <= 110 for days in cycle.values())
    times: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
    for o in _orders(items):
        for line in o.properties.products:
            key = (o.customer_id or "", line.product_id)
            if key in cycle:
                times[key].append(o.timestamp)
    ratios = [
        (b - a).total_seconds() / 86_400 / cycle[key]
        for key, stamps in times.items()
        for a, b in itertools.pairwise(stamps)
    ]
    assert len(ratios) > 200
    assert 0.85 < statistics.median(ratios) < 1.15
    assert sum(0.75 < r < 1.25 for r in ratios) / len(ratios) > 0.6


def test_purchases_follow_taste(medium: tuple[World, list[Item], dict[str, object]]) -> None:
    world, items, truth = medium
    taste = truth["taste"]
    assert isinstance(taste, dict)
    category = {
        p: world.catalog.leaves[int(k)].path
        for p, k in zip(world.catalog.ids, world.catalog.cat, strict=True)
    }
    inside = total = 0
    for o in _orders(items):
        preferred = set(taste[o.customer_id]["categories"])
        for line in o.properties.products:
            total += 1
            inside += category[line.product_id] in preferred
    assert inside / total > 0.6


def test_order_money_is_consistent(medium: tuple[World, list[Item], dict[str, object]]) -> None:
    _, items, _ = medium
    revenue: dict[str, float] = {}
    channels = set()
    for o in _orders(items):
        p = o.properties
        merchandise = sum(round(line.price * line.quantity, 2) for line in p.products)
        assert p.subtotal == p.revenue
        assert abs(p.revenue - (merchandise - (p.discount or 0.0))) <= 0.011
        assert p.total is not None
        assert abs(p.total - (p.revenue + (p.tax or 0.0) + (p.shipping or 0.0))) <= 0.011
        assert all(round(x, 2) == x for x in (p.revenue, p.tax or 0, p.shipping or 0, p.total))
        assert all(line.currency == p.currency == MEDIUM.currency for line in p.products)
        revenue[p.order_id] = p.revenue
        channels.add(o.channel)
        if o.channel == "pos":
            assert o.context is not None
            assert o.context.store_id
    assert "pos" in channels
    refunds = [e for e in items if isinstance(e, events.OrderRefunded)]
    assert refunds
    for r in refunds:
        assert r.properties.refund_amount <= revenue[r.properties.order_id]


def test_write_history_writes_lines_and_truth(tmp_path: Path) -> None:
    world = World.build(SMALL)
    path = tmp_path / "history.jsonl"
    summary = write_history(world, path, start=START, days=10, progress=False)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert len(lines) - 1 == summary["lines"]
    assert summary["lines"] == sum(summary["events"].values()) + sum(summary["malformed"].values())
    assert summary["customers"] == 300
    assert summary["products"] == 400
    assert summary["first_timestamp"] == START.isoformat()
    truth = json.loads(path.with_suffix(".truth.json").read_text())
    assert truth["counts"] == summary["events"]
    assert {k: v for k, v in truth["malformed"].items() if v} == summary["malformed"]
    for key in ("config", "co_purchase_pairs", "price_ladders", "churners", "replenishment"):
        assert key in truth


def test_to_record_keys_by_customer_and_product() -> None:
    items = list(itertools.islice(World.build(SMALL).history(START, 3), 2_000))
    topics = set()
    for item in items:
        topic, key, value = to_record(item)
        topics.add(topic)
        if isinstance(item, events.ProductUpdated):
            assert (topic, key) == (events.CATALOG, item.properties.product_id.encode())
        elif not isinstance(item, Malformed):
            assert key == (item.customer_key or "").encode()
            assert value == events.encode(item)
    assert topics <= set(events.TOPICS)


def test_invalid_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="currency"):
        World.build(GeneratorConfig(customers=10, products=100, currency="EURO"))
