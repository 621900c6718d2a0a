"""Recovery: every state a step snapshots resumes exactly where it stopped.

Bytewax pickles each step's state at the end of an epoch and, after a crash, rebuilds the
step from those bytes. These tests run the decoder, the shard clocks and the customer
step over generated traffic twice, in process: once uninterrupted, once restoring every
state from its snapshot after every batch; both must emit the same thing. (The kill -9
test in ``test_flow_guarantees`` does the same through real processes, at random moments.)
"""

from __future__ import annotations

import datetime as dt
import itertools
import pickle
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry

from flows._accepted import Accepted
from flows._clock import ClockLogic, Progress, Tick
from flows._decode import Decoder
from flows._segments import SegmentOut
from flows._source import Record
from flows._state import CustomerLogic, ProfileOut
from flows.metrics import FlowMetrics
from flows.settings import FlowSettings
from shopkeeper.generator import GeneratorConfig, World
from shopkeeper.generator._history import to_record

START = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
PARTITIONS = 3
BATCH = 400


def _batches(days: int) -> list[list[Record]]:
    world = World.build(GeneratorConfig(seed=5, customers=150, products=300))
    records = []
    for offset, item in enumerate(world.history(START, days)):
        topic, key, value = to_record(item)
        partition = zlib.crc32(key or b"") % PARTITIONS  # a customer's events share one
        records.append(Record(topic, partition, offset, key, value))
    return [records[i : i + BATCH] for i in range(0, len(records), BATCH)]


def _settings() -> FlowSettings:
    return FlowSettings(kafka_bootstrap="unused:9092", redis_url="redis://unused", tail=False)


class _Steps:
    """The decoder, the clocks and the customer step, keyed as the flow keys them."""

    def __init__(self, settings: FlowSettings, *, restore_every_batch: bool) -> None:
        self._metrics = FlowMetrics(CollectorRegistry())
        self._decoder = Decoder(settings.namespace, self._metrics, clocked=True)
        self._clock = ClockLogic.builder(
            lateness=settings.allowed_lateness.total_seconds(),
            horizon_days=settings.churn_horizon_days,
            copy=True,
            offers=settings.offer_timers(),
        )
        self._customer = CustomerLogic.builder(
            settings.model_copy(update={"recovery": True}), self._metrics
        )
        self._clocks: dict[str, Any] = {}
        self._customers: dict[str, Any] = {}
        self._restore = restore_every_batch

    def run(self, batches: list[list[Record]]) -> Iterator[tuple[str, ProfileOut]]:
        for records in batches:
            by_customer: dict[str, list[list[Accepted] | Tick]] = {}
            progress: dict[str, list[Progress]] = {}
            for keyed in self._decoder.batch(records):
                if isinstance(keyed, tuple) and isinstance(keyed[1], Progress):
                    progress.setdefault(keyed[0], []).append(keyed[1])
            # Customer events come through their shard's clock, ahead of its ticks.
            for shard, shard_progress in sorted(progress.items()):
                clock = self._step(self._clocks, shard, self._clock)
                for customer, out in clock.on_batch(shard_progress)[0]:
                    if not isinstance(out, SegmentOut):
                        by_customer.setdefault(customer, []).append(out)
            for customer, values in sorted(by_customer.items()):
                logic = self._step(self._customers, customer, self._customer)
                for out in logic.on_batch(values)[0]:
                    yield customer, out
            if self._restore:
                self._snapshot_and_restore()

    def features(self) -> dict[str, dict[str, str]]:
        return {key: logic._profile.features() for key, logic in self._customers.items()}

    def _step(self, states: dict[str, Any], key: str, build: Callable[[Any], Any]) -> Any:
        if key not in states:
            states[key] = build(None)
        return states[key]

    def _snapshot_and_restore(self) -> None:
        for states, build in ((self._clocks, self._clock), (self._customers, self._customer)):
            for key, logic in states.items():
                snapshot = logic.snapshot()
                assert isinstance(snapshot, bytes)
                states[key] = build(pickle.loads(pickle.dumps(snapshot)))  # noqa: S301


def _comparable(out: ProfileOut) -> tuple[object, ...]:
    """Everything a batch emits but which groups its write carries (a restored profile
    writes every group once, on purpose)."""
    return (
        out.fields is None, out.seq, out.event_times, out.signals, out.learned, out.score,
        out.examples, out.tier_changes, out.decisions, out.seeds,
    )  # fmt: skip


def test_restoring_every_state_after_every_batch_changes_nothing() -> None:
    batches = _batches(days=120)
    settings = _settings()
    steady = _Steps(settings, restore_every_batch=False)
    restored = _Steps(settings, restore_every_batch=True)
    expected = [(customer, _comparable(out)) for customer, out in steady.run(batches)]
    got = [(customer, _comparable(out)) for customer, out in restored.run(batches)]
    assert len(got) == len(expected)
    assert got == expected
    assert restored.features() == steady.features()
    # The traffic exercised what the snapshots carry: churn labels, tiers, offers.
    assert any(out[4] for _, out in expected)  # churn windows learned
    assert any(out[7] for _, out in expected)  # tier changes
    assert any(out[8] for _, out in expected)  # offer decisions


def test_every_slot_of_a_restored_state_is_set() -> None:
    batches = _batches(days=30)
    steps = _Steps(_settings(), restore_every_batch=True)
    for _ in steps.run(batches):
        pass
    states = [logic._clock for logic in steps._clocks.values()]
    states += [logic._profile for logic in steps._customers.values()]
    assert len(states) > PARTITIONS
    for state in states:
        slots = itertools.chain.from_iterable(
            getattr(c, "__slots__", ()) for c in type(state).__mro__
        )
        missing = [name for name in slots if not hasattr(state, name)]
        assert missing == [], f"{type(state).__name__} restored without {missing}"
