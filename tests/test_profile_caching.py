"""Cached feature encodings never go stale: reading features often or once gives the same."""

from __future__ import annotations

import datetime as dt
import pickle
from collections import defaultdict

import events
from flows.profile import CustomerProfile, ItemState, item_signals
from shopkeeper.generator import GeneratorConfig, Malformed, World


def _customer_streams() -> dict[str, list[events.Event]]:
    world = World.build(GeneratorConfig(seed=5, customers=60, products=300, malformed_share=0))
    streams: dict[str, list[events.Event]] = defaultdict(list)
    for item in world.history(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 120):
        if not isinstance(item, Malformed) and item.customer_key is not None:
            streams[item.customer_key].append(item)
    return streams


def test_reading_after_every_event_equals_reading_at_the_end() -> None:
    streams = _customer_streams()
    assert sum(len(s) for s in streams.values()) > 4_000
    for stream in streams.values():
        often, once = CustomerProfile(), CustomerProfile()
        for event in stream:
            often.apply(event)
            often.grouped_features()
            often.features()
            once.apply(event)
        assert often.features() == once.features()
        assert often.grouped_features() == once.grouped_features()


def test_changes_written_over_each_other_give_the_whole_profile() -> None:
    # What the sink does: each batch writes only the groups that changed since the last.
    for stream in _customer_streams().values():
        profile = CustomerProfile()
        stored: dict[str, str] = {}
        for i, event in enumerate(stream):
            profile.apply(event)
            if i % 3 == 0:
                stored.update(profile.changed_features())
        if profile.erased:
            continue  # the sink erases the hash; nothing is merged
        stored.update(profile.changed_features())
        assert stored == profile.grouped_features()
        assert profile.changed_features() == {"_seq": stored["_seq"]}


def test_a_restored_profile_writes_every_group_first() -> None:
    stream = max(_customer_streams().values(), key=len)
    profile = CustomerProfile()
    for event in stream:
        profile.apply(event)
    profile.changed_features()
    restored = pickle.loads(pickle.dumps(profile))  # noqa: S301 - our own snapshot
    assert restored.changed_features() == profile.grouped_features()


def test_item_reads_after_every_signal_equal_reading_at_the_end() -> None:
    often, once = ItemState(), ItemState()
    for stream in _customer_streams().values():
        for event in stream:
            for signal in item_signals(event):
                often.apply_signal(signal.kind, signal.ts, signal.quantity)
                often.grouped_features()
                once.apply_signal(signal.kind, signal.ts, signal.quantity)
    assert often.grouped_features() == once.grouped_features()
