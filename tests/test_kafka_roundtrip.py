"""Generated traffic through the embedded Kafka broker, read back by another process."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from prometheus_client import CollectorRegistry

import events
from shopkeeper.generator import GeneratorConfig, Malformed, World, to_record
from shopkeeper.metrics import ToolMetrics
from shopkeeper.produce import produce

COUNT = 10_000
START = dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)


def test_ten_thousand_generated_events_cross_the_broker_intact(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    world = World.build(GeneratorConfig(seed=3, customers=1_000, products=600))
    items = list(itertools.islice(world.live(START, rate=2_000), COUNT))
    registry = CollectorRegistry()
    summary = produce(
        items,
        bootstrap=kafka_bootstrap,
        namespace=topic_prefix,
        metrics=ToolMetrics(registry),
        progress=False,
    )
    assert summary.total == COUNT
    assert summary.delivery_errors == 0
    assert registry.get_sample_value(
        "shopkeeper_generator_events_total",
        {"topic": f"{topic_prefix}.clickstream", "validity": "valid"},
    ) == summary.by_topic[f"{topic_prefix}.clickstream"] - sum(
        1 for i in items if isinstance(i, Malformed) and i.topic == events.CLICKSTREAM
    )

    out = tmp_path / "read.txt"
    topics = [events.in_namespace(t, topic_prefix) for t in events.TOPICS]
    reader = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.kafka_reader",
            kafka_bootstrap,
            str(COUNT),
            str(out),
            *topics,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert reader.returncode == 0, reader.stderr
    lines = [line.split(" ") for line in out.read_text().splitlines()]
    assert len(lines) == COUNT

    # Every produced record arrived once, on its topic, under its key, with its bytes.
    expected = sorted(
        (events.in_namespace(topic, topic_prefix), (key or b"").hex(), value.hex())
        for topic, key, value in map(to_record, items)
    )
    assert sorted((t, k, v) for t, _, _, k, v in lines) == expected

    # And every valid one decodes equal to the event that was produced.
    produced = {events.encode(i): i for i in items if not isinstance(i, Malformed)}
    decoder = events.EventDecoder(clock=lambda: START + dt.timedelta(days=1))
    for *_, value in lines:
        data = bytes.fromhex(value)
        if data in produced:
            assert decoder.decode(data) == produced[data]

    # One customer's events share a partition and keep their order.
    where: dict[tuple[str, str], set[str]] = defaultdict(set)
    last_time: dict[str, dt.datetime] = {}
    for topic, partition, _, key, value in sorted(lines, key=lambda x: (x[0], x[1], int(x[2]))):
        where[(topic, key)].add(partition)
        data = bytes.fromhex(value)
        if data in produced and topic.endswith("clickstream"):
            event = produced[data]
            assert last_time.get(key, event.timestamp) <= event.timestamp
            last_time[key] = event.timestamp
    assert all(len(partitions) == 1 for partitions in where.values())
