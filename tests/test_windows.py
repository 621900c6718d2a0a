"""Bucketed windowed counts: exact values, expiry at read time, encoding, pruning, tolerance."""

from __future__ import annotations

import datetime as dt
import math
import pickle
from collections.abc import Sequence
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feature_store._windows import WINDOWS, BucketCounts, encode_log, fold, fold_log

T0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)  # on every bucket boundary
MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
_T = TypeVar("_T")


def _snapshot(value: _T) -> _T:
    """Pickle and unpickle, as a Bytewax snapshot and recovery do."""
    restored: _T = pickle.loads(pickle.dumps(value))  # noqa: S301  # bytes we just wrote
    return restored


def _counts(*times: dt.datetime) -> BucketCounts:
    counts = BucketCounts()
    for t in times:
        counts.add(t)
    return counts


def test_known_sequence_in_and_out_of_order() -> None:
    times = [T0 - 3 * MIN, T0 - 50 * MIN, T0 - 5 * HOUR, T0 - 3 * DAY, T0 - 20 * DAY, T0 - 40 * DAY]
    shuffled = [times[3], times[0], times[5], times[1], times[4], times[2]]
    now = T0 + 2 * MIN
    expected = {"1h": 2, "24h": 3, "7d": 4, "30d": 5}
    assert _counts(*times).fold(now) == expected
    assert _counts(*shuffled).fold(now) == expected
    assert _counts(*times) == _counts(*shuffled)
    assert _counts(*times).encode() == _counts(*shuffled).encode()


def test_add_counts_n_and_a_negative_n_undoes() -> None:
    counts = BucketCounts()
    counts.add(T0 - MIN, n=3)
    counts.add(T0 - MIN, n=-1)
    assert counts.fold(T0) == {"1h": 2, "24h": 2, "7d": 2, "30d": 2}
    counts.add(T0 - MIN, n=-2)
    assert not counts
    assert counts.encode() == '{"1d":[],"1h":[],"5m":[]}'
    counts.add(T0 - MIN, n=-1)  # undoing what is not there (pruned) leaves nothing
    assert not counts


def test_windows_fall_to_zero_without_new_events() -> None:
    counts = _counts(T0 - MIN)
    text = counts.encode()
    assert fold(text, T0) == {"1h": 1, "24h": 1, "7d": 1, "30d": 1}
    assert fold(text, T0 + 2 * HOUR) == {"1h": 0, "24h": 1, "7d": 1, "30d": 1}
    assert fold(text, T0 + 2 * DAY) == {"1h": 0, "24h": 0, "7d": 1, "30d": 1}
    assert fold(text, T0 + 8 * DAY) == {"1h": 0, "24h": 0, "7d": 0, "30d": 1}
    assert fold(text, T0 + 31 * DAY) == {"1h": 0, "24h": 0, "7d": 0, "30d": 0}


def test_far_edge_is_exact_to_the_bucket() -> None:
    # An event 11:58 is in the 11:55 bucket: a 1 h window read at 12:56 still counts it
    # (the bucket overlaps (11:56, 12:56]), at 13:00 it does not.
    counts = _counts(T0 - 2 * MIN)
    assert counts.fold(T0 + 56 * MIN)["1h"] == 1
    assert counts.fold(T0 + 59 * MIN + dt.timedelta(seconds=59))["1h"] == 1
    assert counts.fold(T0 + HOUR)["1h"] == 0


def test_encoding_is_compact_deterministic_and_round_trips() -> None:
    counts = _counts(T0 + MIN, T0 - 2 * DAY, T0 + 2 * MIN)
    assert counts.encode() == (
        '{"1d":[[1745884800,1],[1746057600,2]],'
        '"1h":[[1745928000,1],[1746100800,2]],'
        '"5m":[[1745928000,1],[1746100800,2]]}'
    )
    assert BucketCounts.decode(counts.encode()) == counts
    assert fold(counts, T0 + HOUR) == fold(counts.encode(), T0 + HOUR)
    assert _snapshot(counts) == counts
    assert _snapshot(counts).encode() == counts.encode()


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"1d":[],"1h":[]}',
        '{"1d":[[1,1]],"1h":[],"5m":[]}',
        '{"1d":[[1746057600,0]],"1h":[],"5m":[]}',
        '{"1d":[[1746057600]],"1h":[],"5m":[]}',
        '{"1d":{},"1h":[],"5m":[]}',
    ],
)
def test_decode_rejects_what_encode_cannot_write(text: str) -> None:
    with pytest.raises(ValueError, match=r"bucket|resolution"):
        BucketCounts.decode(text)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        BucketCounts().add(dt.datetime(2025, 5, 1))  # noqa: DTZ001


def test_prune_keeps_what_any_later_read_needs() -> None:
    counts = BucketCounts()
    for minutes in range(0, 60 * 24 * 40, 7):
        counts.add(T0 - dt.timedelta(minutes=minutes))
    before = {k: counts.fold(T0 + k * 17 * MIN) for k in range(0, 400)}
    size = len(counts.encode())
    counts.prune(T0 + HOUR, lateness=HOUR)  # reads happen at or after T0
    assert len(counts.encode()) < size
    assert {k: counts.fold(T0 + k * 17 * MIN) for k in range(0, 400)} == before
    buckets = BucketCounts.decode(counts.encode())
    assert buckets == counts
    # At most 1 h + 1 h lateness of 5-minute buckets, 26 hourly, 31 daily.
    assert counts.encode().count("],[") + 3 <= 24 + 1 + 26 + 32


def test_prune_drops_what_no_window_can_reach() -> None:
    counts = _counts(T0 - 31 * DAY - HOUR)
    counts.prune(T0)
    assert not counts


def test_add_after_prune_creates_no_bucket_prune_would_drop() -> None:
    late = T0 - 2 * HOUR
    pruned_first = BucketCounts()
    pruned_first.prune(T0)
    pruned_first.add_epoch(late.timestamp(), earliest_read=T0.timestamp())
    added_first = _counts(late)
    added_first.prune(T0)
    assert pruned_first == added_first
    assert added_first.fold(T0) == {"1h": 0, "24h": 1, "7d": 1, "30d": 1}


def test_orders_log_folds_exactly() -> None:
    text = encode_log([(T0.timestamp(), 54.0, "O-2"), ((T0 - 10 * DAY).timestamp(), 10.5, "O-1")])
    assert text == '[["2025-04-21T12:00:00Z",10.5,"O-1"],["2025-05-01T12:00:00Z",54.0,"O-2"]]'
    assert fold_log(text, T0, dt.timedelta(days=365)) == (2, 64.5)
    assert fold_log(text, T0, 10 * DAY) == (1, 54.0)
    assert fold_log(text, T0 - MIN, 10 * DAY) == (1, 10.5)
    assert fold_log(text, T0 - 11 * DAY, DAY) == (0, 0.0)
    with pytest.raises(ValueError, match="log"):
        fold_log('{"a": 1}', T0, DAY)


# Event times as offsets in seconds (with fractions) around T0, and read times.
_OFFSETS = st.floats(min_value=-40 * 86_400, max_value=2 * 86_400, allow_nan=False)


def _in_window(ts: Sequence[float], low: float, high: float) -> int:
    return sum(1 for t in ts if low < t <= high)


@given(offsets=st.lists(_OFFSETS, max_size=60), read=_OFFSETS)
def test_fold_matches_brute_force_within_the_documented_tolerance(
    offsets: list[float], read: float
) -> None:
    base = T0.timestamp()
    ts = [base + o for o in offsets]
    # Readers hold datetimes: microsecond resolution, so the brute force uses the same now.
    reader_now = dt.datetime.fromtimestamp(base + read, dt.UTC)
    now = reader_now.timestamp()
    counts = BucketCounts()
    for t in ts:
        counts.add_epoch(t)
    folded = counts.fold(reader_now)
    for name, (length, size) in WINDOWS.items():
        # The exact statement: an event counts iff its bucket start s is in (now-W-b, now].
        starts = [math.floor(t) - math.floor(t) % size for t in ts]
        assert folded[name] == _in_window(starts, now - length - size, now), name
        # Its consequence: every event of (now-W, now] counts, none before now-W-b does,
        # and only the bucket holding `now` may add events later than `now`.
        assert folded[name] >= _in_window(ts, now - length, now)
        floor_now = math.floor(now) - math.floor(now) % size
        assert folded[name] <= _in_window(ts, now - length - size, floor_now + size)
        if all(t <= now for t in ts):
            assert folded[name] <= _in_window(ts, now - length - size, now)


@given(offsets=st.lists(_OFFSETS, max_size=40), data=st.data())
def test_encoding_ignores_insertion_order(offsets: list[float], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(offsets))
    base = T0.timestamp()
    one, other = BucketCounts(), BucketCounts()
    for o in offsets:
        one.add_epoch(base + o)
        # Encoding between adds exercises the incremental encoding cache.
        one.encode()
    for o in shuffled:
        other.add_epoch(base + o)
    assert one.encode() == other.encode()
    assert BucketCounts.decode(one.encode()).encode() == one.encode()
