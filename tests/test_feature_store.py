"""The feature store on the real Redis: guarded absolute writes, erasure, popularity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from feature_store import (
    CustomerErase,
    CustomerWrite,
    FeatureStore,
    FeatureStoreUnavailable,
    ItemWrite,
    KeyLayout,
    PopularityCount,
)

HOUR = 3_600
T0 = dt.datetime(2025, 5, 1, 12, 30, tzinfo=dt.UTC)


@pytest.fixture
def store(redis_client: redis.Redis, unique: str) -> FeatureStore:
    return FeatureStore(redis_client, KeyLayout(f"t{unique}"))


def test_a_write_never_replaces_a_newer_one(store: FeatureStore) -> None:
    stats = store.write([CustomerWrite("c-1", {"orders": '{"orders_total":"3"}'}, seq=9)])
    assert (stats.written, stats.stale) == (1, 0)
    stats = store.write([CustomerWrite("c-1", {"orders": '{"orders_total":"2"}'}, seq=8)])
    assert (stats.written, stats.stale) == (0, 1)
    assert store.customer("c-1") == {"orders_total": "3", "_seq": "9"}
    # The same state written again (a replayed batch) is accepted and changes nothing.
    store.write([CustomerWrite("c-1", {"orders": '{"orders_total":"3"}'}, seq=9)])
    assert store.customer("c-1") == {"orders_total": "3", "_seq": "9"}


def test_writes_go_on_after_redis_forgets_the_guard_script(
    store: FeatureStore, redis_client: redis.Redis
) -> None:
    # A Redis restart or failover empties the script cache: the batch is written anyway.
    store.write([CustomerWrite("c-1", {"g": '{"n":"1"}'}, seq=1)])
    redis_client.script_flush()
    stats = store.write(
        [CustomerWrite("c-1", {"g": '{"n":"2"}'}, seq=2), CustomerWrite("c-2", {}, seq=1)]
    )
    assert (stats.written, stats.stale) == (2, 0)
    assert store.customers(["c-1", "c-2"]) == [{"n": "2", "_seq": "2"}, {"_seq": "1"}]


def test_an_error_reply_fails_the_batch_and_leaves_the_connection_usable(
    store: FeatureStore, redis_client: redis.Redis
) -> None:
    redis_client.set(store.keys.customer("c-bad"), "not a hash")
    batch = [CustomerWrite(f"c-{i}", {"g": '{"n":"1"}'}, seq=1) for i in ("a", "bad", "b")]
    with pytest.raises(FeatureStoreUnavailable, match="WRONGTYPE"):
        store.write(batch)
    # Every reply of the failed batch was read: the next one gets its own replies.
    stats = store.write([CustomerWrite("c-c", {"g": '{"n":"2"}'}, seq=1)])
    assert stats.written == 1
    assert store.customers(["c-a", "c-b", "c-c"]) == [
        {"n": "1", "_seq": "1"},
        {"n": "1", "_seq": "1"},
        {"n": "2", "_seq": "1"},
    ]


def test_reads_many_in_order_and_none_for_unknown(store: FeatureStore) -> None:
    store.write([CustomerWrite(f"c-{i}", {"g": f'{{"n":"{i}"}}'}, seq=1) for i in range(5)])
    found = store.customers(["c-3", "nobody", "c-0"])
    assert [f and f["n"] for f in found] == ["3", None, "0"]


def test_an_erased_customer_stays_erased(store: FeatureStore) -> None:
    store.write([CustomerWrite("c-1", {"g": '{"n":"1"}'}, seq=1)])
    store.write([CustomerErase("c-1")])
    assert store.customer("c-1") is None
    assert store.is_erased("c-1")
    stats = store.write([CustomerWrite("c-1", {"g": '{"n":"2"}'}, seq=50)])
    assert stats.refused_erased == 1
    assert store.customer("c-1") is None


def test_popularity_folds_buckets_at_read_time(store: FeatureStore) -> None:
    now = int(T0.timestamp())
    hour = now // HOUR * HOUR

    def views(product: str, start: int, count: float) -> ItemWrite:
        return ItemWrite(
            product,
            {"catalog": '{"category":"Grocery/Coffee"}'},
            seq=int(count),
            popularity=[
                PopularityCount("views", "1h", start, scope, count)
                for scope in ("all", "Grocery/Coffee")
            ],
        )

    store.write(
        [views("P1", hour, 5), views("P2", hour - 2 * HOUR, 7), views("P3", hour - 30 * HOUR, 50)]
    )
    assert store.popularity("views", window="24h", now=T0) == [("P2", 7.0), ("P1", 5.0)]
    assert store.popularity("views", window="24h", now=T0, scope="Grocery/Coffee", k=1) == [
        ("P2", 7.0)
    ]
    # A day later nothing is left in the window, although nothing was written since.
    assert store.popularity("views", window="24h", now=T0 + dt.timedelta(days=2)) == []
    # Counts only grow: a replayed lower count does not lower it.
    store.write([views("P1", hour, 2)])
    assert ("P1", 5.0) in store.popularity("views", window="24h", now=T0)
    assert store.product_ids() == {"P1", "P2", "P3"}
    assert store.item("P1") == {"category": "Grocery/Coffee", "_seq": "5"}


def test_redis_down_is_a_feature_store_error(tmp_path: Path) -> None:
    client = redis.Redis(
        unix_socket_path=str(tmp_path / "nothing.sock"), retry=Retry(NoBackoff(), 0)
    )
    store = FeatureStore(client, KeyLayout("down"))
    with pytest.raises(FeatureStoreUnavailable):
        store.customer("c-1")
    with pytest.raises(FeatureStoreUnavailable):
        store.write([CustomerWrite("c-1", {"g": '{"n":"1"}'}, seq=1)])


def test_the_catalogue_change_feed_names_what_changed_since_a_cursor(
    store: FeatureStore, redis_client: redis.Redis
) -> None:
    cursor = store.catalog_cursor()
    assert cursor == "0-0"
    store.write(
        [
            ItemWrite("p-1", {"catalog": '{"price":"1.00"}'}, 1, catalog_changed=True),
            ItemWrite("p-2", {"popularity": "{}"}, 1),  # popularity only: not announced
        ]
    )
    cursor, changed = store.catalog_changes(cursor)
    assert changed == {"p-1"}
    assert store.catalog_changes(cursor) == (cursor, set())  # nothing new
    store.write([ItemWrite("p-3", {"catalog": "{}"}, 1, catalog_changed=True)])
    later, changed = store.catalog_changes(cursor)
    assert changed == {"p-3"}
    assert later != cursor
    # A feed trimmed past a reader's cursor says so: the reader must read everything.
    store.write([ItemWrite("p-4", {"catalog": "{}"}, 1, catalog_changed=True)])
    redis_client.xtrim(store.keys.catalog_changes, maxlen=1, approximate=False)
    newest, lost = store.catalog_changes(cursor)
    assert lost is None
    assert newest == store.catalog_cursor()
