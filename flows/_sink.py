"""The Redis sink of the flow: one pipelined, guarded write per batch."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from feature_store import (
    CustomerErase,
    CustomerWrite,
    FeatureStore,
    FeatureStoreUnavailable,
    ItemWrite,
    KeyLayout,
    SegmentMove,
    Write,
)
from flows._model import ChurnScore
from flows._segments import SegmentOut
from flows._state import ItemOut, ProfileOut
from flows.metrics import FlowMetrics
from flows.profile._format import iso

__all__ = ["FeatureSink"]

Update = tuple[str, ProfileOut | ItemOut | ChurnScore | SegmentOut]

SEGMENT_GUARD = "_segment_at"
"""The customer hash field guarding the RFM placement: its event time in milliseconds."""

CHURN_GUARD = "_churn_at"
"""The customer hash field guarding the churn score: its event time in milliseconds."""


class _Partition(StatelessSinkPartition[Update]):
    def __init__(
        self,
        store: FeatureStore,
        metrics: FlowMetrics,
        retry_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._retry_s = retry_s
        self._clock = clock

    def write_batch(self, items: list[Update]) -> None:
        # One write per key: its latest sequence number, with every group changed by the
        # updates in this batch (a customer update carries only its changed groups).
        items_out: dict[str, ItemOut] = {}
        customers: dict[str, tuple[int, dict[str, str] | None]] = {}
        scores: dict[str, ChurnScore] = {}
        placed: dict[str, SegmentOut] = {}
        moves: list[SegmentMove] = []  # in order: set moves are replayed in order
        times: list[float] = []
        for key, out in items:
            if type(out) is ChurnScore:
                if key not in scores or scores[key].at <= out.at:
                    scores[key] = out
                continue
            if type(out) is SegmentOut:
                if out.segment:
                    placed[key] = out
                else:  # erased: only leave the segment set; the hash is gone
                    placed.pop(key, None)
                if out.moved:
                    moves.append(SegmentMove(key, out.previous, out.segment or None))
                continue
            assert isinstance(out, ProfileOut | ItemOut)  # noqa: S101 - for the type checker
            times += out.event_times
            if type(out) is ItemOut:
                if key not in items_out or items_out[key].seq <= out.seq:
                    items_out[key] = out
                continue
            fields = out.fields
            before = customers.get(key)
            if before is not None and fields is not None and before[1] is not None:
                # Outputs of one key arrive in order; merge by seq in any case.
                first, last = (before[1], fields) if before[0] <= out.seq else (fields, before[1])
                fields = {**first, **last}
            customers[key] = (max(out.seq, before[0]) if before else out.seq, fields)
        writes: list[Write] = [
            CustomerErase(key) if fields is None else CustomerWrite(key, fields, seq)
            for key, (seq, fields) in customers.items()
        ]
        writes += [
            ItemWrite(
                key, out.fields, out.seq, out.popularity, catalog_changed=bool(out.event_times)
            )
            for key, out in items_out.items()
        ]
        writes += [
            CustomerWrite(key, _score_fields(score), round(score.at * 1000), CHURN_GUARD)
            for key, score in scores.items()
        ]
        writes += [
            CustomerWrite(key, _segment_fields(out), round(out.at * 1000), SEGMENT_GUARD)
            for key, out in placed.items()
        ]
        writes += moves
        self._write(writes)
        written_at = self._clock()
        observe = self._metrics.freshness.observe
        for t in times:
            observe(written_at - t)

    def _write(self, writes: list[Write]) -> None:
        deadline = time.monotonic() + self._retry_s
        pause = 0.05
        while True:
            started = time.perf_counter()
            try:
                stats = self._store.write(writes)
            except FeatureStoreUnavailable:
                self._metrics.write_errors.inc()
                if time.monotonic() + pause > deadline:
                    # Stop the flow: with recovery it resumes from the last snapshot and
                    # replays this batch, so nothing is lost.
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            self._metrics.write_latency.observe(time.perf_counter() - started)
            self._metrics.batch_size.observe(len(writes))
            for outcome in ("written", "stale", "refused_erased"):
                if n := getattr(stats, outcome):
                    self._metrics.writes.labels("feature", outcome).inc(n)
            return

    def close(self) -> None:
        self._store.close()


def _score_fields(score: ChurnScore) -> dict[str, str]:
    text = (
        f'{{"churn_model_version":"{score.version}",'
        f'"churn_probability":"{score.probability:.4f}","churn_scored_at":"{iso(score.at)}"}}'
    )
    return {"churn_score": text}


def _segment_fields(out: SegmentOut) -> dict[str, str]:
    text = (
        f'{{"rfm_f":"{out.f}","rfm_m":"{out.m}","rfm_r":"{out.r}",'
        f'"segment":"{out.segment}","segment_at":"{iso(out.at)}"}}'
    )
    return {"segment": text}


class FeatureSink(DynamicSink[Update]):
    """Write customer and item updates to Redis.

    Parallelism: every worker writes its own keys through its own connection. Delivery:
    at-least-once (a resumed epoch writes again), made exactly-once in effect by absolute
    values guarded by sequence numbers.

    Args:
        redis_url: The feature store's Redis.
        namespace: Key prefix.
        metrics: Where to report latency, errors and freshness.
        retry_s: How long a batch retries while Redis is unavailable.
        clock: Wall-clock seconds (freshness is write time minus event time).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        namespace: str,
        metrics: FlowMetrics,
        retry_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis_url = redis_url
        self._namespace = namespace
        self._metrics = metrics
        self._retry_s = retry_s
        self._clock = clock

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        client = redis.Redis.from_url(self._redis_url, socket_timeout=10)
        store = FeatureStore(client, KeyLayout(self._namespace))
        return _Partition(store, self._metrics, self._retry_s, self._clock)
