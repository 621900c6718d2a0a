"""History readers: JSONL, Parquet, a retailer's CSV of transactions, a Kafka replay."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, TopicPartition
from tqdm import tqdm

import events
from models.baskets import Complements, baskets_of
from shopkeeper.churn_backtest import read_events
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import GeneratorConfig, Malformed, World, to_record, write_history
from shopkeeper.history import (
    ColumnMap,
    History,
    HistoryError,
    read_jsonl,
    read_parquet,
    read_transactions,
    replay_topics,
    write_parquet,
)
from shopkeeper.history._kafka import _consume, _extent
from shopkeeper.produce import produce
from shopkeeper.topics import ALL_TOPICS, ensure_topics
from tests.historykit import ORDER_COLUMNS, write_orders_csv

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

UCI_MAP = (
    "customer=CustomerID,product=StockCode,time=InvoiceDate,quantity=Quantity,"
    "order=InvoiceNo,price=UnitPrice"
)
# The UCI Online Retail layout, as exported: latin-1, US dates, float customer ids,
# cancellations with negative quantities, lines without a customer.
UCI_ROWS = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,12/1/2010 8:26,2.55,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850.0,United Kingdom
536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,4,12/1/2010 8:34,2.55,13047.0,United Kingdom
536367,71053,WHITE METAL LANTERN £,4,12/1/2010 8:34,3.39,13047.0,United Kingdom
C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527.0,United Kingdom
536414,22139,,56,12/1/2010 11:52,0,,United Kingdom
536415,22139,"RETROSPOT TEA SET, CERAMIC",1,not a date,4.25,12583.0,France
536416,22139,RETROSPOT TEA SET,1.5,12/1/2010 12:00,4.25,12583.0,France
536417,22139,RETROSPOT TEA SET,1,12/1/2010 12:00,n/a,12583.0,France
"""


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "events.jsonl"
    world = World.build(GeneratorConfig(seed=4, customers=200, products=120))
    write_history(world, path, start=START, days=20, progress=False)
    return path


def _orders(history: History) -> list[events.OrderCompleted]:
    orders = [e for e in history.events if isinstance(e, events.OrderCompleted)]
    assert len(orders) == len(history.events)
    return orders


@pytest.fixture
def uci(tmp_path: Path) -> Path:
    path = tmp_path / "online_retail.csv"
    path.write_text(UCI_ROWS, encoding="latin-1")
    return path


def test_jsonl_reads_what_the_backtest_reads(history_file: Path) -> None:
    history = read_jsonl(history_file)
    stream, rejected = read_events(history_file)
    assert history.events == stream
    assert history.rejected == {"invalid_event": rejected}
    assert rejected > 0  # the generator plants malformed lines
    assert history.describe().startswith(f"{len(stream):,} events from {history_file}")


def test_parquet_round_trips_every_event_type(history_file: Path, tmp_path: Path) -> None:
    original = read_jsonl(history_file)
    path = tmp_path / "events.parquet"
    write_parquet(original.events, path)
    schema = pq.read_schema(path)
    assert {"event", "message_id", "timestamp", "customer_id", "properties"} <= set(schema.names)
    assert pa.types.is_timestamp(schema.field("timestamp").type)
    assert pa.types.is_struct(schema.field("properties").type)

    back = read_parquet(path)
    assert back.rejected == {}
    assert back.events == original.events
    assert len({e.name for e in back.events}) >= 10


def test_parquet_rows_that_break_the_contract_are_counted(tmp_path: Path) -> None:
    view = {"product_id": "P1", "price": 3.5, "currency": "EUR"}
    rows = [
        {"event": "Product Viewed", "message_id": "m-1", "timestamp": "2025-05-01T10:00:00Z",
         "channel": "web", "customer_id": "c-1", "properties": view},
        {"event": "Product Viewed", "message_id": "m-2", "timestamp": "2025-05-01T10:00:00",
         "channel": "web", "customer_id": "c-1", "properties": view},  # naive time
        {"event": "Product Viewed", "message_id": "m-3", "timestamp": "2025-05-01T10:00:00Z",
         "channel": "web", "customer_id": None, "properties": view},  # nobody
        {"event": "Product Teleported", "message_id": "m-4", "timestamp": "2025-05-01T10:00:00Z",
         "channel": "web", "customer_id": "c-1", "properties": view},
    ]  # fmt: skip
    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    history = read_parquet(path)
    assert [e.message_id for e in history.events] == ["m-1"]
    assert history.rejected_total == 3
    assert "unknown_event" in history.rejected
    not_parquet = tmp_path / "export.csv"
    not_parquet.write_text("customer,product\nc-1,P1\n")
    with pytest.raises(HistoryError, match="not a Parquet file"):
        read_parquet(not_parquet)


def test_a_retail_export_becomes_orders_with_bad_rows_counted(uci: Path) -> None:
    history = read_transactions(
        uci,
        ColumnMap.parse(UCI_MAP),
        time_format="%m/%d/%Y %H:%M",
        currency="GBP",
        encoding="latin-1",
    )
    assert history.rejected == {
        "non_positive_quantity": 1,
        "missing_customer": 1,
        "bad_time": 1,
        "bad_quantity": 1,
        "bad_price": 1,
    }
    orders = _orders(history)
    assert [(e.customer_id, e.properties.order_id) for e in orders] == [
        ("17850.0", "536365"),
        ("17850.0", "536366"),
        ("13047.0", "536367"),
    ]
    first = orders[0]
    assert first.timestamp == dt.datetime(2010, 12, 1, 8, 26, tzinfo=dt.UTC)
    # The product listed twice in the order is one line of 8.
    assert {(p.product_id, p.quantity) for p in first.properties.products} == {
        ("85123A", 8),
        ("71053", 6),
    }
    assert first.properties.revenue == pytest.approx(8 * 2.55 + 6 * 3.39)
    assert first.properties.currency == "GBP"
    # Two orders hold both products: a complement pair for cross-sell.
    together = Complements.from_baskets(baskets_of(orders))
    assert [item for item, _, _ in together.of("85123A")] == ["71053"]


def test_an_export_of_generated_orders_reads_back_as_the_same_baskets(
    history_file: Path, tmp_path: Path
) -> None:
    original = read_jsonl(history_file)
    path = tmp_path / "orders.csv"
    count = write_orders_csv(original.events, path)
    back = read_transactions(
        path, ColumnMap.parse(ORDER_COLUMNS), time_format="%d.%m.%Y %H:%M:%S.%f", delimiter=";"
    )
    assert back.rejected == {}
    assert len(back.events) == count > 50

    def baskets(orders: list[events.OrderCompleted]) -> dict[tuple[str, str], object]:
        return {
            (e.customer_key or "", e.properties.order_id): (
                e.timestamp,
                Counter({line.product_id: line.quantity for line in e.properties.products}),
            )
            for e in orders
            if e.customer_id is not None
        }

    generated = [e for e in original.events if isinstance(e, events.OrderCompleted)]
    assert baskets(_orders(back)) == baskets(generated)


def test_without_an_order_column_a_customer_at_one_time_is_one_order(uci: Path) -> None:
    columns = ColumnMap.parse("customer=CustomerID,product=StockCode,time=InvoiceDate")
    history = read_transactions(
        uci, columns, time_format="%m/%d/%Y %H:%M", timezone="America/New_York",
        encoding="latin-1",
    )  # fmt: skip
    # Without quantity and price columns every line is one unit at 0: the cancellation
    # and the rows with a bad quantity or price are lines too.
    orders = _orders(history)
    baskets = sorted(sorted(p.product_id for p in e.properties.products) for e in orders)
    assert baskets == [["22139"], ["22633"], ["71053", "85123A"], ["71053", "85123A"], ["D"]]
    assert history.rejected == {"missing_customer": 1, "bad_time": 1}
    assert [p.quantity for p in orders[-1].properties.products] == [2]  # two rows
    assert orders[0].timestamp == dt.datetime(2010, 12, 1, 13, 26, tzinfo=dt.UTC)
    assert {e.properties.revenue for e in orders} == {0.0}


def test_an_order_longer_than_the_contract_allows_is_split(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    lines = [f"O1,P{i},2025-03-01T10:00:00+00:00,c-1" for i in range(620)]
    path.write_text("order,product,time,customer\n" + "\n".join(lines) + "\n")
    columns = ColumnMap.parse("customer=customer,product=product,time=time,order=order")
    history = read_transactions(path, columns)
    assert history.rejected == {}
    assert [len(e.properties.products) for e in _orders(history)] == [500, 120]
    assert len({e.message_id for e in history.events}) == 2


def test_an_export_that_cannot_be_read_says_why(uci: Path) -> None:
    columns = ColumnMap.parse(UCI_MAP)
    with pytest.raises(HistoryError, match="not utf-8-sig text"):
        read_transactions(uci, columns, time_format="%m/%d/%Y %H:%M")
    wrong = ColumnMap.parse(UCI_MAP.replace("StockCode", "SKU"))
    with pytest.raises(HistoryError, match="no column 'SKU'"):
        read_transactions(uci, wrong, encoding="latin-1")
    with pytest.raises(HistoryError, match="currency 'EURO'"):
        read_transactions(uci, columns, currency="EURO", encoding="latin-1")
    with pytest.raises(HistoryError, match="time zone"):
        read_transactions(uci, columns, timezone="Mars/Olympus", encoding="latin-1")
    with pytest.raises(HistoryError, match="needs time"):
        ColumnMap.parse("customer=CustomerID,product=StockCode")
    with pytest.raises(HistoryError, match="unknown field 'colour'"):
        ColumnMap.parse(UCI_MAP + ",colour=Colour")
    with pytest.raises(HistoryError, match="not field=Column"):
        ColumnMap.parse("customer")


def _produced(kafka: str, namespace: str, items: list[events.Event | Malformed]) -> None:
    summary = produce(items, bootstrap=kafka, namespace=namespace, progress=False)
    assert summary.delivery_errors == 0


def _expected(items: list[events.Event | Malformed]) -> tuple[list[bytes], Counter[str]]:
    """What decoding the produced bytes here gives: the events, the rejects by reason."""
    decoder = events.EventDecoder()
    good: list[bytes] = []
    rejected: Counter[str] = Counter()
    for _, _, value in map(to_record, items):
        try:
            good.append(events.encode(decoder.decode(value)))
        except events.DecodeError as exc:
            rejected[exc.code] += 1
    return sorted(good), rejected


def test_a_kafka_replay_reads_every_topic_to_its_end(infra: Endpoints, unique: str) -> None:
    namespace = f"replay{unique}"
    topics = [events.in_namespace(t, namespace) for t in ALL_TOPICS]
    ensure_topics(infra.kafka_bootstrap, topics, embedded=infra.embedded_kafka)
    world = World.build(GeneratorConfig(seed=6, customers=300, products=150, malformed_share=0.02))
    items = list(itertools.islice(world.live(START, rate=1_000), 4_000))
    _produced(infra.kafka_bootstrap, namespace, items)

    event_topics = [events.in_namespace(t, namespace) for t in events.TOPICS]
    history = replay_topics(infra.kafka_bootstrap, [*event_topics, topics[-1]])  # + an empty one
    good, rejected = _expected(items)
    assert sorted(map(events.encode, history.events)) == good
    assert history.rejected == dict(rejected)
    assert history.rejected_total > 0
    times = [e.timestamp for e in history.events]
    assert times == sorted(times)


def test_a_replay_stops_at_the_end_it_saw_when_it_started(infra: Endpoints, unique: str) -> None:
    namespace = f"replayend{unique}"
    ensure_topics(
        infra.kafka_bootstrap,
        [events.in_namespace(t, namespace) for t in ALL_TOPICS],
        embedded=infra.embedded_kafka,
    )
    world = World.build(GeneratorConfig(seed=8, customers=200, products=100, malformed_share=0))
    items = list(itertools.islice(world.live(START, rate=1_000), 3_000))
    before, after = items[:2_000], items[2_000:]
    _produced(infra.kafka_bootstrap, namespace, before)
    topics = [events.in_namespace(t, namespace) for t in events.TOPICS]
    consumer = Consumer({"bootstrap.servers": infra.kafka_bootstrap, "group.id": unique})
    try:
        starts, ends = _extent(consumer, topics, 10.0)
        # Produced once the replay has taken the ends: left for the next replay.
        _produced(infra.kafka_bootstrap, namespace, after)
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in starts.items()])
        with tqdm(disable=True) as bar:
            values = [message.value() for message in _consume(consumer, ends, 10.0, bar)]
    finally:
        consumer.close()
    # Every message decodes (nothing malformed was produced).
    assert sorted(map(events.encode, map(events.decode, values))) == _expected(before)[0]


def test_a_missing_topic_is_an_error(infra: Endpoints, unique: str) -> None:
    with pytest.raises(HistoryError, match="does not exist"):
        replay_topics(infra.kafka_bootstrap, [f"nothing{unique}.clickstream"], timeout_s=5)


def test_history_describes_rejects_most_first() -> None:
    history = History([], {"bad_time": 2, "missing_customer": 7}, "x.csv")
    assert history.describe() == "0 events from x.csv; 9 rejected (missing_customer 7, bad_time 2)"
