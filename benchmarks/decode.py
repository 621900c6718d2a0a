"""Decode throughput: the event contract against a bare ``orjson.loads`` on the same bytes.

Budget: the contract's decode (parse + validate + typed objects) costs at most 3x a bare
parse into dicts.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

import events
from benchmarks import _report
from shopkeeper.generator import GeneratorConfig, Malformed, World

BUDGET_RATIO = 3.0
ROUNDS = 7


def _corpus(size: int) -> list[bytes]:
    """Valid payloads of the generated traffic mix (malformed ones excluded)."""
    world = World.build(
        GeneratorConfig(seed=11, customers=2_000, products=1_000, malformed_share=0)
    )
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    payloads: list[bytes] = []
    for item in world.live(start, rate=1_000):
        if not isinstance(item, Malformed):
            payloads.append(events.encode(item))
        if len(payloads) == size:
            return payloads
    raise AssertionError("the generator stopped early")


def _rate(fn: Callable[[bytes], Any], corpus: list[bytes]) -> float:
    """Best-of-rounds events per second (the least disturbed round)."""
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for data in corpus:
            fn(data)
        rates.append(len(corpus) / (time.perf_counter() - start))
    return max(rates)


def run(size: int = 50_000) -> dict[str, Any]:
    """Measure and write ``results/decode.json`` and ``results/decode.png``."""
    corpus = _corpus(size)
    decoder = events.EventDecoder()
    rates = {
        "contract_decode": _rate(decoder.decode, corpus),
        "orjson_loads": _rate(orjson.loads, corpus),
    }
    ratio = rates["orjson_loads"] / rates["contract_decode"]
    per_s = {k: float(round(v)) for k, v in rates.items()}
    result: dict[str, Any] = {
        "events_per_s": per_s,
        "ratio": round(ratio, 3),
        "budget_ratio": BUDGET_RATIO,
        "within_budget": ratio <= BUDGET_RATIO,
        "corpus": {
            "events": len(corpus),
            "mean_bytes": round(statistics.fmean(len(d) for d in corpus)),
        },
        "rounds": ROUNDS,
    }
    _report.write("decode", result)
    _report.bar_plot(
        "decode",
        f"Decode throughput, same {len(corpus):,} payloads (contract costs {ratio:.2f}x)",
        per_s,
        "events/s (one core)",
    )
    return result
