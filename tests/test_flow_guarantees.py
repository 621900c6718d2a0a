"""The flow's guarantees on generated traffic: parallelism, crashes and replays change nothing.

Each test runs the real flow as separate ``bytewax.run`` processes against the embedded
Kafka broker and Redis, and compares every customer's and item's stored features.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

import events
from feature_store import DiscountBudget, KeyLayout
from shopkeeper.embedded import Endpoints
from shopkeeper.flow_runner import FlowRun, flow_settings, free_ports, start_flow
from shopkeeper.generator import GeneratorConfig, Item, Malformed, World
from shopkeeper.produce import produce
from tests.flowkit import (
    customer_ids,
    decisions,
    differences,
    model_outputs,
    prepare,
    read_topic,
    send,
    snapshot_epoch,
    snapshot_features,
    until,
)

START = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)


def _history(customers: int, days: int, limit: int | None = None) -> list[Item]:
    world = World.build(GeneratorConfig(seed=21, customers=customers, products=800))
    return list(itertools.islice(world.history(START, days), limit))


def _run(infra: Endpoints, namespace: str, **options: object) -> FlowRun:
    env = flow_settings(
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_url=infra.redis_url,
        namespace=namespace,
        tail=bool(options.pop("tail", False)),
    )
    lateness = options.pop("lateness", None)
    if lateness is not None:
        env["SHOPKEEPER_ALLOWED_LATENESS"] = str(lateness)
        env["SHOPKEEPER_OFFER_TRIGGER_LATENESS"] = str(lateness)
    heartbeat = options.pop("heartbeat", None)
    if heartbeat is not None:
        env["SHOPKEEPER_IDLE_HEARTBEAT"] = str(heartbeat)
    budget = options.pop("budget", None)
    if budget is not None:
        env["SHOPKEEPER_OFFER_DAILY_BUDGET"] = str(budget)
    batch_size = options.pop("batch_size", None)
    if batch_size is not None:
        env["SHOPKEEPER_BATCH_SIZE"] = str(batch_size)
    return start_flow(env, stderr=subprocess.DEVNULL, **options)  # type: ignore[arg-type]


def _replayed(infra: Endpoints, namespace: str, items: list[Item], **options: object) -> None:
    prepare(infra, namespace)
    send(infra, namespace, items)
    assert _run(infra, namespace, **options).wait(timeout=240) == 0


@pytest.mark.slow
def test_one_and_two_processes_give_identical_features(infra: Endpoints, unique: str) -> None:
    items = _history(customers=400, days=60)
    _replayed(infra, f"one{unique}", items, processes=1)
    _replayed(infra, f"two{unique}", items, processes=2)
    customers = customer_ids(items)
    one = snapshot_features(infra, f"one{unique}", customers)
    two = snapshot_features(infra, f"two{unique}", customers)
    erased = {e.customer_key for e in items if isinstance(e, events.DeletionRequested)}
    assert len(one) > 400
    assert {k for k, v in one.items() if v is None} == {f"c:{c}" for c in erased}
    assert differences(one, two) == {}  # churn windows and labels included
    offers = decisions(infra, f"one{unique}")
    assert offers == decisions(infra, f"two{unique}")  # the same offers, ids and reasons
    assert any(o.get("expires_at") for o in offers.values())  # some fired
    # Catalogue triggers included: the catalogue meets every shard's views in order.
    assert {o["trigger"] for o in offers.values()} >= {"price_drop", "back_in_stock"}
    labelled = sum(int(v.get("churn_windows", "0")) for v in one.values() if v)
    assert labelled > 100  # (60 days: a window is labelled by the next purchase only)
    # One model scored the same customers in both runs (probabilities differ slightly:
    # the model learns batches in arrival order).
    scores_one = model_outputs(infra, f"one{unique}", customers)
    scores_two = model_outputs(infra, f"two{unique}", customers)
    assert scores_one.keys() == scores_two.keys()
    assert len(scores_one) > 100
    assert all(0 < p < 1 for p in [*scores_one.values(), *scores_two.values()])


@pytest.mark.slow
def test_kill_nine_five_times_loses_nothing_and_counts_nothing_twice(
    infra: Endpoints, unique: str, tmp_path: Path
) -> None:
    items = _history(customers=2_500, days=120, limit=100_000)
    assert len(items) == 100_000
    clean, crashed = f"clean{unique}", f"crash{unique}"
    # A budget never reached: which offer gets the last of a day's budget depends on the
    # order offers are decided in across shards, which batching changes.
    _replayed(infra, clean, items, budget=1e9)

    prepare(infra, crashed)
    send(infra, crashed, items)
    recovery = tmp_path / "recovery"
    chaos = random.Random(7)
    kills = 0
    while kills < 5:
        before = snapshot_epoch(recovery, "track_time")
        # Small polls: many epochs, so the run is killed well before its end five times.
        run = _run(
            infra,
            crashed,
            recovery_dir=recovery,
            snapshot_interval_s=1,
            batch_size=1_000,
            budget=1e9,
        )
        # Killed only once this run has snapshotted its state (the clocks' included),
        # then at a random moment: every restart resumes from a snapshot, not the start.
        until(functools.partial(_snapshotted_or_exited, run, recovery, before), timeout=60)
        deadline = time.monotonic() + chaos.uniform(0.0, 0.5)
        while time.monotonic() < deadline and run.processes[0].poll() is None:
            time.sleep(0.05)
        if run.processes[0].poll() is not None:
            assert run.wait(timeout=30) == 0
            break  # it finished before this kill: the run is over
        run.stop(signal.SIGKILL)
        run.wait(timeout=30)
        kills += 1
    assert kills == 5, "the flow finished before it was killed five times: make the run longer"
    final = _run(infra, crashed, recovery_dir=recovery, snapshot_interval_s=1, budget=1e9)
    assert final.wait(timeout=240) == 0

    customers = customer_ids(items)
    crashed_state = snapshot_features(infra, crashed, customers)
    assert crashed_state
    assert differences(crashed_state, snapshot_features(infra, clean, customers)) == {}
    offers = decisions(infra, clean)
    assert any(o.get("expires_at") for o in offers.values())  # some fired
    assert decisions(infra, crashed) == offers  # the same offers and suppressions, once each
    days = sorted({o["at"][:10] for o in offers.values() if o.get("expires_at")})
    spent = {ns: _budget(infra, ns).spent_many(days) for ns in (clean, crashed)}
    assert spent[crashed] == spent[clean]  # no discount reserved twice
    assert sum(spent[clean].values()) > 0
    # Every malformed message is in the dead-letter topic under its deterministic id; a
    # replayed epoch may write it again, under the same id.
    malformed = [i for i in items if isinstance(i, Malformed)]
    dead = read_topic(infra, events.in_namespace(events.DLQ, crashed))
    by_id = {m.key(): m.value() for m in dead}
    assert len(by_id) == len(malformed)
    assert sorted(by_id.values()) == sorted(m.value for m in malformed)


def _snapshotted_or_exited(run: FlowRun, recovery: Path, before: int) -> bool:
    return snapshot_epoch(recovery, "track_time") > before or run.processes[0].poll() is not None


def _budget(infra: Endpoints, namespace: str) -> DiscountBudget:
    return DiscountBudget(redis.Redis.from_url(infra.redis_url), KeyLayout(namespace))


@pytest.mark.slow
def test_a_year_replayed_equals_the_year_lived_at_a_steady_rate(
    infra: Endpoints, unique: str
) -> None:
    items = _history(customers=150, days=365)
    replay, live = f"replay{unique}", f"live{unique}"
    # Produced live at 10,000 events/s, a year takes 4 s: one hour of event time is half a
    # millisecond, less than fetch jitter between partitions. Features are the same for any
    # arrival order inside the allowed lateness, and offers for any inside the trigger
    # lateness, so both are scaled like time is.
    lateness = "P30D"
    _replayed(infra, replay, items, lateness=lateness)
    customers = customer_ids(items)
    expected = snapshot_features(infra, replay, customers)

    prepare(infra, live)
    (port,) = free_ports(1)
    # Event time runs millions of times faster than the wall clock here: the heartbeat,
    # which moves a quiet shard's clock on by wall time, is off (never due).
    run = _run(infra, live, tail=True, metrics_port=port, lateness=lateness, heartbeat="P3650D")
    try:
        until(run.serving_metrics, timeout=60)
        summary = produce(
            items, bootstrap=infra.kafka_bootstrap, namespace=live, rate=10_000, progress=False
        )
        assert summary.total == len(items)
        until(lambda: run.metric("shopkeeper_flow_events_total") >= len(items), timeout=120)
        # The last writes land just after the last events are counted: wait until the
        # live features equal the replayed ones (failing with the difference if never),
        # and as many offers went out (the offers step runs behind the features).
        until(lambda: snapshot_features(infra, live, customers) == expected, timeout=60)
        offers = decisions(infra, replay)
        until(lambda: len(decisions(infra, live)) >= len(offers), timeout=60)
    finally:
        run.stop(signal.SIGINT)
        run.wait(timeout=60)
    assert differences(snapshot_features(infra, live, customers), expected) == {}
    # The same offers, with the same ids and content, fired (or suppressed) live as in
    # the replay.
    assert offers
    assert decisions(infra, live) == offers
