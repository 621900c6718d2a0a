"""Per-customer and per-item state: exact features, order invariance, pickling, erasure."""

from __future__ import annotations

import datetime as dt
import math
import pickle
from collections.abc import Iterable
from typing import Any, TypeVar

import orjson
from hypothesis import given
from hypothesis import strategies as st

import events
from feature_store import fold, fold_log
from flows.profile import GROUPS, CustomerProfile, ItemState, item_signals

T0 = dt.datetime(2025, 5, 1, 10, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
_T = TypeVar("_T")


def _snapshot(value: _T) -> _T:
    """Pickle and unpickle, as a Bytewax snapshot and recovery do."""
    restored: _T = pickle.loads(pickle.dumps(value))  # noqa: S301  # bytes we just wrote
    return restored


def ev(
    name: str,
    mid: str,
    at: dt.datetime,
    properties: dict[str, Any],
    *,
    channel: str = "web",
    session: str | None = "s1",
) -> events.Event:
    """Build a real event through the strict decoder."""
    payload: dict[str, Any] = {
        "event": name,
        "message_id": mid,
        "customer_id": "C1",
        "timestamp": at.isoformat(),
        "channel": channel,
        "properties": properties,
    }
    if session is not None:
        payload["session_id"] = session
    return events.decode(orjson.dumps(payload))


def line(
    pid: str, price: float, qty: int = 1, cat: str | None = None, brand: str | None = None
) -> dict[str, Any]:
    product: dict[str, Any] = {
        "product_id": pid,
        "price": price,
        "currency": "EUR",
        "quantity": qty,
    }
    if cat is not None:
        product["category"] = cat
    if brand is not None:
        product["brand"] = brand
    return product


def order(
    mid: str, at: dt.datetime, oid: str, lines: list[dict[str, Any]], **kw: Any
) -> events.Event:
    revenue = round(sum(x["price"] * x["quantity"] for x in lines), 2)
    props = {"order_id": oid, "revenue": revenue, "currency": "EUR", "products": lines}
    return ev("Order Completed", mid, at, props, **kw)


def iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def applied(evs: Iterable[events.Event], **kwargs: Any) -> CustomerProfile:
    profile = CustomerProfile(**kwargs)
    for e in evs:
        profile.apply(e)
    return profile


# The known story of customer C1, in arrival order (m6 and m4 arrive out of order).
M1 = ev(
    "Customer Updated",
    "m1",
    T0,
    {
        "traits": {"country": "PT", "timezone": "Europe/Lisbon", "language": "pt-PT"},
        "consent": {"personalization": True, "marketing_email": False},
    },
)
M2 = ev("Product Viewed", "m2", T0 + MIN, line("P1", 18.0, cat="Coffee", brand="Lavazza"))
M6 = ev("Product Removed", "m6", T0 + 5 * MIN, line("P1", 18.0, 1))
M3 = ev("Product Added", "m3", T0 + 3 * MIN, line("P1", 18.0, 2, "Coffee", "Lavazza"))
M4 = ev("Product Viewed", "m4", T0 + 2 * MIN, line("P2", 5.0, cat="Tea", brand="Twinings"))
M5 = ev("Product Added", "m5", T0 + 4 * MIN, line("P2", 5.0, 1, "Tea", "Twinings"))
M7 = order(
    "m7",
    T0 + 10 * MIN,
    "O-1",
    [
        line("P1", 18.0, 1, "Coffee", "Lavazza"),
        line("P2", 5.0, 1, "Tea", "Twinings"),
    ],
)
M8 = order(
    "m8", T0 + DAY, "O-2", [line("P3", 20.0, 2, "Coffee", "Illy")], channel="pos", session=None
)
M9 = ev(
    "Support Ticket Created",
    "m9",
    T0 + 2 * DAY,
    {"ticket_id": "Z-1"},
    channel="call_center",
    session=None,
)
M10 = ev(
    "Support Ticket Updated",
    "m10",
    T0 + 2 * DAY + HOUR,
    {"ticket_id": "Z-1", "status": "solved"},
    channel="call_center",
    session=None,
)
M11 = ev(
    "Satisfaction Rated",
    "m11",
    T0 + 2 * DAY + 2 * HOUR,
    {"ticket_id": "Z-1", "rating": 4},
    channel="call_center",
    session=None,
)
M12 = ev("NPS Survey Responded", "m12", T0 + 3 * DAY, {"score": 9}, channel="email", session=None)
M13 = ev(
    "Order Refunded",
    "m13",
    T0 + 3 * DAY,
    {"order_id": "O-1", "refund_amount": 18.0, "currency": "EUR"},
    session="s2",
)
M14 = ev(
    "Customer Updated",
    "m14",
    T0 + 3 * DAY + MIN,
    {"traits": {"country": "ES"}, "consent": {"marketing_email": True}},
    session="s2",
)
# Two days late: loses to m14 on country, wins over m1 on language; moves s2's start.
M15 = ev(
    "Customer Updated",
    "m15",
    T0 + 2 * DAY,
    {"traits": {"country": "FR", "language": "fr-FR"}},
    session="s2",
)
M16 = ev("Cart Viewed", "m16", T0 + 4 * DAY, {"products": [line("P4", 10.0)]}, session="s3")
M17 = ev("Product Clicked", "m17", T0 + 4 * DAY + MIN, line("P5", 7.0), session="s3")
STORY = [M1, M2, M6, M3, M4, M3, M5, M7, M8, M9, M10, M11, M12, M13, M14, M15, M16, M17]

LAST = T0 + 4 * DAY + MIN
EXPECTED = {
    "_seq": "17",
    # activity
    "first_seen": "2025-05-01T10:00:00Z",
    "last_seen": "2025-05-05T10:01:00Z",
    "channel_mix": '{"call_center":3,"email":1,"pos":1,"web":12}',
    "_ts:activity": "2025-05-05T10:01:00Z",
    # orders
    "orders_total": "2",
    "revenue_total": "63.00",
    "aov": "31.50",
    "orders_365d": "2",
    "revenue_365d": "63.00",
    "last_purchase_at": "2025-05-02T10:00:00Z",
    "orders_log": '[["2025-05-01T10:10:00Z",23.0,"O-1"],["2025-05-02T10:00:00Z",40.0,"O-2"]]',
    "_ts:orders": "2025-05-02T10:00:00Z",
    # cart: replaced by the Cart Viewed of m16
    "cart": '{"P4":{"price":10.0,"qty":1}}',
    "cart_value": "10.00",
    "cart_items": "1",
    "cart_updated_at": "2025-05-05T10:00:00Z",
    "cart_since": "2025-05-05T10:00:00Z",  # the order emptied it, the Cart Viewed filled it
    "_ts:cart": "2025-05-05T10:00:00Z",
    # affinity, decayed to LAST (see test_affinity_matches_the_formula)
    "affinity:category": '[["Coffee",20.2717],["Tea",8.2063]]',
    "affinity:brand": '[["Lavazza",10.9415],["Illy",9.3302],["Twinings",8.2063]]',
    "_ts:affinity": "2025-05-02T10:00:00Z",
    # returns
    "refunds_total": "1",
    "refunded_amount": "18.00",
    "return_rate": "0.5000",
    "_ts:returns": "2025-05-04T10:00:00Z",
    # service: Z-1 opened then solved
    "open_tickets": "0",
    "last_nps": "9",
    "last_nps_at": "2025-05-04T10:00:00Z",
    "last_csat": "4",
    "last_csat_at": "2025-05-03T12:00:00Z",
    "_ts:service": "2025-05-04T10:00:00Z",
    # consent
    "consent:marketing_email": "1",
    "consent:personalization": "1",
    "_ts:consent": "2025-05-04T10:01:00Z",
    # traits: country from m14 (latest), language from the late m15 (newer than m1)
    "trait:country": "ES",
    "trait:language": "fr-FR",
    "trait:timezone": "Europe/Lisbon",
    "_ts:traits": "2025-05-04T10:01:00Z",
    # interactions, newest first
    "recent": (
        '[["P5","click","2025-05-05T10:01:00Z"],["P3","purchase","2025-05-02T10:00:00Z"],'
        '["P2","purchase","2025-05-01T10:10:00Z"],["P1","purchase","2025-05-01T10:10:00Z"],'
        '["P1","remove","2025-05-01T10:05:00Z"],["P2","add","2025-05-01T10:04:00Z"],'
        '["P1","add","2025-05-01T10:03:00Z"],["P2","view","2025-05-01T10:02:00Z"],'
        '["P1","view","2025-05-01T10:01:00Z"]]'
    ),
    "_ts:interactions": "2025-05-05T10:01:00Z",
    # churn windows move on the flow's event-time ticks only (tests/test_churn.py)
    "churn_windows": "0",
    "churn_windows_churned": "0",
    # loyalty: 63.00 of orders less the 18.00 refunded, one point per unit
    "loyalty_points": "45",
    "loyalty_spend_12m": "45.00",
    "loyalty_tier": "Bronze",
    "_ts:loyalty": "2025-05-04T10:00:00Z",
}
WINDOW_FIELDS = ("win:views", "win:adds", "win:orders", "win:sessions")


def test_known_story_gives_exact_features() -> None:
    profile = CustomerProfile()
    results = [profile.apply(e) for e in STORY]
    assert results == [True] * 5 + [False] + [True] * 12  # the second m3 is a duplicate
    features = profile.features()
    assert {k: v for k, v in features.items() if k not in WINDOW_FIELDS} == EXPECTED
    assert profile.seq == 17
    assert profile.last_seen == LAST
    # Windows fold at the reader's time.
    assert fold(features["win:views"], LAST) == {"1h": 0, "24h": 0, "7d": 2, "30d": 2}
    assert fold(features["win:adds"], LAST) == {"1h": 0, "24h": 0, "7d": 2, "30d": 2}
    assert fold(features["win:orders"], LAST) == {"1h": 0, "24h": 0, "7d": 2, "30d": 2}
    # Sessions: s1 at T0, the till visit of m8, s2 from its late first event (m15), s3.
    assert fold(features["win:sessions"], LAST) == {"1h": 1, "24h": 1, "7d": 4, "30d": 4}
    # s2 counts on 05-03 (m15), not 05-04 (m13); hourly and 5-minute buckets older than
    # any read at or after the watermark (last_seen - 1 h) needs are pruned.
    assert features["win:sessions"] == (
        '{"1d":[[1746057600,1],[1746144000,1],[1746230400,1],[1746403200,1]],'
        '"1h":[[1746439200,1]],"5m":[[1746439200,1]]}'
    )
    assert features["win:orders"] == ('{"1d":[[1746057600,1],[1746144000,1]],"1h":[],"5m":[]}')


def test_nothing_for_eight_days_reads_zero_orders_in_7d() -> None:
    features = applied(STORY).features()
    later = LAST + 8 * DAY
    assert fold(features["win:orders"], later) == {"1h": 0, "24h": 0, "7d": 0, "30d": 2}
    assert fold(features["win:views"], later)["7d"] == 0
    assert fold_log(features["orders_log"], later, dt.timedelta(days=365)) == (2, 63.0)
    assert fold_log(features["orders_log"], T0 + 400 * DAY, dt.timedelta(days=365)) == (0, 0.0)


def test_intermediate_states() -> None:
    profile = CustomerProfile()
    for e in STORY[:7]:  # up to m5: the cart is replayed in event-time order
        profile.apply(e)
    features = profile.features()
    assert features["cart"] == '{"P1":{"price":18.0,"qty":1},"P2":{"price":5.0,"qty":1}}'
    assert (features["cart_value"], features["cart_items"]) == ("23.00", "2")
    assert "last_purchase_at" not in features
    assert features["orders_total"] == "0"
    assert features["return_rate"] == "0.0000"
    assert "last_nps" not in features
    profile.apply(M7)
    assert profile.features()["cart"] == "{}"  # the order took both lines
    for e in (M8, M9):
        profile.apply(e)
    assert profile.features()["open_tickets"] == "1"
    profile.apply(M10)
    assert profile.features()["open_tickets"] == "0"


def test_affinity_matches_the_formula() -> None:
    def decayed(*contributions: tuple[float, dt.datetime]) -> float:
        return round(sum(w * math.pow(0.5, (LAST - t) / (30 * DAY)) for w, t in contributions), 4)

    coffee = decayed((1, T0 + MIN), (6, T0 + 3 * MIN), (5, T0 + 10 * MIN), (10, T0 + DAY))
    tea = decayed((1, T0 + 2 * MIN), (3, T0 + 4 * MIN), (5, T0 + 10 * MIN))
    lavazza = decayed((1, T0 + MIN), (6, T0 + 3 * MIN), (5, T0 + 10 * MIN))
    illy = decayed((10, T0 + DAY))
    features = applied(STORY).features()
    assert orjson.loads(features["affinity:category"]) == [["Coffee", coffee], ["Tea", tea]]
    assert orjson.loads(features["affinity:brand"]) == [
        ["Lavazza", lavazza],
        ["Illy", illy],
        ["Twinings", tea],
    ]


def test_affinity_keeps_top_20_and_exports_top_5() -> None:
    evs = [
        ev("Product Viewed", f"v{i}", T0 + i * HOUR, line(f"P{i}", 1.0, cat=f"C{i:02d}", brand="B"))
        for i in range(25)
    ]
    profile = applied(evs)
    top = orjson.loads(profile.features()["affinity:category"])
    assert [name for name, _ in top] == ["C24", "C23", "C22", "C21", "C20"]
    assert len(profile._categories._scores) == 20


def test_every_field_group_is_stamped() -> None:
    features = applied(STORY).features()
    stamped = {k.removeprefix("_ts:") for k in features if k.startswith("_ts:")}
    # These move on the flow's ticks and offer decisions.
    assert stamped == set(GROUPS) - {"churn", "clv", "offers"}


def test_erasure_clears_and_ignores_later_and_replayed_events() -> None:
    profile = applied(STORY)
    deletion = ev("Deletion Requested", "del", LAST + MIN, {})
    assert profile.apply(deletion) is True
    assert profile.erased
    assert profile.features() == {"_erased": "1", "_seq": "18"}
    assert profile.apply(deletion) is False
    for e in STORY:  # a replay of earlier events
        assert profile.apply(e) is False
    assert profile.apply(ev("Product Viewed", "new", LAST + DAY, line("P9", 1.0))) is False
    assert profile.features() == {"_erased": "1", "_seq": "18"}
    restored = _snapshot(profile)
    assert restored.erased
    assert restored.apply(M1) is False
    assert len(pickle.dumps(profile)) < 1024


def test_catalogue_events_are_not_customer_events() -> None:
    update = ev("Product Updated", "pu", T0, {"product_id": "P1", "price": 1.0, "currency": "EUR"})
    assert CustomerProfile().apply(update) is False


def test_pickling_mid_stream_equals_never_pickling() -> None:
    straight = applied(STORY)
    for cut in range(len(STORY) + 1):
        profile = applied(STORY[:cut])
        profile.features()  # caches must not leak into, or be needed from, the snapshot
        profile = _snapshot(profile)
        for e in STORY[cut:]:
            profile.apply(e)
        assert profile.features() == straight.features(), cut
        assert profile.seq == straight.seq


def test_dedupe_bound_by_count_and_by_event_time() -> None:
    first = ev("Products Searched", "dup", T0, {"query": "x"})
    profile = CustomerProfile(dedupe_max=3)
    profile.apply(first)
    for i in range(3):
        profile.apply(ev("Products Searched", f"q{i}", T0 + i * MIN, {"query": "x"}))
    assert profile.apply(first) is True  # forgotten: more than 3 ids since
    profile = CustomerProfile(dedupe_horizon=DAY)
    profile.apply(first)
    assert profile.apply(first) is False
    profile.apply(ev("Products Searched", "later", T0 + 2 * DAY, {"query": "x"}))
    assert profile.apply(first) is True  # forgotten: more than a day of event time behind


def test_an_order_id_already_counted_is_a_duplicate() -> None:
    profile = applied([M7])
    copy = order("m7-retry", T0 + 11 * MIN, "O-1", [line("P1", 18.0, 1, "Coffee", "Lavazza")])
    assert profile.apply(copy) is False
    assert profile.features()["orders_total"] == "1"


def test_late_cart_event_beyond_lateness_is_dropped_from_the_cart() -> None:
    profile = applied([M3, ev("Products Searched", "q", T0 + 3 * HOUR, {"query": "x"})])
    late = ev("Product Added", "late", T0 + HOUR, line("P9", 2.0, 1))
    assert profile.apply(late) is True  # counted elsewhere (windows, affinity, recent) ...
    features = profile.features()
    assert features["cart"] == '{"P1":{"price":18.0,"qty":2}}'  # ... but not in the cart
    assert fold(features["win:adds"], T0 + 3 * HOUR)["24h"] == 2


# ---- order invariance -------------------------------------------------------------------

_PRODUCTS = [
    ("P1", 18.0, "Coffee", "Lavazza"),
    ("P2", 5.0, "Tea", "Twinings"),
    ("P3", 20.0, "Coffee", "Illy"),
    ("P4", 3.5, "Snacks", "Lays"),
]


@st.composite
def stories(draw: st.DrawFn, span_seconds: int) -> list[events.Event]:
    n = draw(st.integers(min_value=1, max_value=40))
    out: list[events.Event] = []
    for i in range(n):
        at = T0 + dt.timedelta(seconds=draw(st.integers(0, span_seconds)))
        pid, price, cat, brand = draw(st.sampled_from(_PRODUCTS))
        qty = draw(st.integers(1, 3))
        session = draw(st.sampled_from(["s1", "s2", "s3", None]))
        channel = "pos" if session is None else "web"
        kind = draw(st.integers(0, 11))
        mid = f"m{i}"
        if kind == 0:
            out.append(
                ev(
                    "Product Viewed",
                    mid,
                    at,
                    line(pid, price, 1, cat, brand),
                    session=session,
                    channel=channel,
                )
            )
        elif kind == 1:
            out.append(
                ev("Product Added", mid, at, line(pid, price, qty, cat, brand), session=session)
            )
        elif kind == 2:
            out.append(ev("Product Removed", mid, at, line(pid, price, qty), session=session))
        elif kind == 3:
            out.append(ev("Cart Viewed", mid, at, {"products": [line(pid, price, qty)]}))
        elif kind == 4:
            out.append(
                order(
                    mid,
                    at,
                    f"O-{i}",
                    [line(pid, price, qty, cat, brand)],
                    channel=channel,
                    session=session,
                )
            )
        elif kind == 5:
            refunded = {
                "order_id": f"O-{draw(st.integers(0, n))}",
                "refund_amount": price,
                "currency": "EUR",
            }
            out.append(ev("Order Refunded", mid, at, refunded))
        elif kind == 6:
            status = draw(st.sampled_from(["new", "open", "solved", "closed"]))
            tid = draw(st.sampled_from(["Z-1", "Z-2"]))
            out.append(ev("Support Ticket Updated", mid, at, {"ticket_id": tid, "status": status}))
        elif kind == 7:
            out.append(ev("NPS Survey Responded", mid, at, {"score": draw(st.integers(0, 10))}))
        elif kind == 8:
            out.append(ev("Satisfaction Rated", mid, at, {"ticket_id": "Z-1", "rating": qty}))
        elif kind == 9:
            props = {
                "traits": {"country": draw(st.sampled_from(["PT", "ES"])), "city": cat},
                "consent": {"marketing_email": draw(st.booleans())},
            }
            out.append(ev("Customer Updated", mid, at, props))
        elif kind == 10:
            out.append(ev("Product Clicked", mid, at, line(pid, price), session=session))
        else:
            out.append(ev("Products Searched", mid, at, {"query": cat}, session=session))
    # Duplicates of earlier messages, delivered again.
    extra = draw(st.lists(st.sampled_from(out), max_size=5))
    return out + extra


def _check_invariance(story: list[events.Event], shuffled: list[events.Event], **kw: Any) -> None:
    ordered = sorted(story, key=lambda e: e.timestamp)
    expected = applied(ordered, **kw).features()
    assert applied(story, **kw).features() == expected
    # Reading features after every event (caches) and a snapshot midway change nothing.
    profile = CustomerProfile(**kw)
    for i, e in enumerate(shuffled):
        profile.apply(e)
        profile.features()
        if i == len(shuffled) // 2:
            profile = _snapshot(profile)
    assert profile.features() == expected


@given(data=st.data())
def test_any_order_within_the_lateness_gives_the_same_features(data: st.DataObject) -> None:
    story = data.draw(stories(span_seconds=59 * 60))  # within the default 1 h lateness
    _check_invariance(story, data.draw(st.permutations(story)))


@given(data=st.data())
def test_any_order_over_weeks_with_a_matching_lateness(data: st.DataObject) -> None:
    story = data.draw(stories(span_seconds=40 * 86_400))
    kw = {"lateness": dt.timedelta(days=41), "dedupe_horizon": dt.timedelta(days=41)}
    _check_invariance(story, data.draw(st.permutations(story)), **kw)


# ---- items ------------------------------------------------------------------------------


def product_update(mid: str, at: dt.datetime, **props: Any) -> events.Event:
    payload = {"product_id": "P1", **props}
    return ev("Product Updated", mid, at, payload, channel="server", session=None)


def test_item_fields_latest_event_time_wins_per_field() -> None:
    updates = [
        product_update(
            "u1",
            T0,
            price=18.0,
            list_price=20.0,
            currency="EUR",
            category="Coffee",
            brand="Lavazza",
            inventory_quantity=120,
            inventory_status="in_stock",
            lifecycle_status="active",
            replenishment_days=30,
            is_consumable=True,
            margin_rate=0.35,
        ),
        product_update("u3", T0 + 2 * HOUR, inventory_quantity=0, inventory_status="out_of_stock"),
        product_update(
            "u2",
            T0 + HOUR,
            price=16.5,
            currency="EUR",
            inventory_quantity=50,
            lifecycle_status="discontinued",
            successor_product_id="P2",
        ),
    ]
    expected = {
        "price": "16.50",
        "list_price": "20.00",
        "currency": "EUR",
        "category": "Coffee",
        "brand": "Lavazza",
        "inventory_quantity": "0",
        "inventory_status": "out_of_stock",
        "lifecycle_status": "discontinued",
        "successor_product_id": "P2",
        "replenishment_days": "30",
        "is_consumable": "1",
        "margin_rate": "0.35",
        "win:views": '{"1d":[],"1h":[],"5m":[]}',
        "win:purchases": '{"1d":[],"1h":[],"5m":[]}',
        "_seq": "3",
        "_ts:catalog": "2025-05-01T12:00:00Z",
    }
    for order_ in (updates, updates[::-1], [updates[1], updates[0], updates[2]]):
        item = ItemState()
        assert [item.apply(u) for u in order_] == [True, True, True]
        assert item.features() == expected
    assert item.apply(updates[0]) is False  # a duplicate changes nothing
    assert item.seq == 3
    assert item.apply(M2) is False  # not a catalogue event


def test_item_popularity_from_customer_signals() -> None:
    item = ItemState()
    signals = [s for e in STORY for s in item_signals(e) if s[0] == "P1"]
    assert [(s.kind, s.quantity) for s in signals] == [("view", 1), ("purchase", 1)]
    for signal in signals:
        item.apply_signal(signal.kind, signal.ts, signal.quantity)
    item.apply_signal("purchase", T0 + 20 * MIN, 4)
    features = item.features()
    assert fold(features["win:views"], T0 + 30 * MIN) == {"1h": 1, "24h": 1, "7d": 1, "30d": 1}
    assert fold(features["win:purchases"], T0 + 30 * MIN) == {"1h": 5, "24h": 5, "7d": 5, "30d": 5}
    assert fold(features["win:purchases"], T0 + 8 * DAY)["7d"] == 0
    assert features["_seq"] == "3"
    assert features["_ts:popularity"] == "2025-05-01T10:20:00Z"
    assert "_ts:catalog" not in features
    restored = _snapshot(item)
    assert restored.features() == features


def test_loyalty_tiers_rise_with_orders_and_fall_on_the_ticks_of_event_time() -> None:
    profile = CustomerProfile()
    profile.apply(order("g1", T0, "O-G1", [line("P1", 400.0)]))
    profile.apply(order("g2", T0 + DAY, "O-G2", [line("P1", 1_200.0)]))
    first = profile.take_tier_changes()
    assert [(c.old, c.new, c.direction) for c in first] == [("Bronze", "Gold", "upgrade")]
    features = profile.features()
    assert (features["loyalty_points"], features["loyalty_tier"]) == ("1600", "Gold")
    assert orjson.loads(features["loyalty_tier_change"]) == ["Bronze", "Gold", "upgrade"]
    assert features["loyalty_tier_changed_at"] == "2025-05-02T10:00:00Z"
    seq = profile.seq
    # A year after the first order it leaves the window: 1,200 of spend is Silver.
    assert profile.loyalty_tick((T0 + 365 * DAY).timestamp())
    assert profile.seq == seq + 1
    assert [(c.new, c.direction) for c in profile.take_tier_changes()] == [("Silver", "downgrade")]
    assert not profile.loyalty_tick((T0 + 365 * DAY).timestamp())  # a repeat: no change
    profile.loyalty_tick((T0 + 366 * DAY).timestamp())
    features = profile.features()
    assert (features["loyalty_tier"], features["loyalty_spend_12m"]) == ("Bronze", "0.00")
    assert features["loyalty_points"] == "1600"  # points are lifetime
    restored = _snapshot(profile)
    assert restored.features() == profile.features()
