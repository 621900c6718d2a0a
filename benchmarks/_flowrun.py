"""Shared by the benchmarks that run the flow live: a flow process with its metrics, a
generated world bootstrapped into it, then its live stream at a steady rate.

The live stream is ``World.live`` restamped so that item n is sent at its own event time;
so the delay from an event to any effect of it (a Redis write, an offer in Kafka) is that
effect's time minus the event's time, on the one clock of this machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping

import events
from shopkeeper.embedded import Endpoints
from shopkeeper.flow_runner import FlowRun, free_ports, start_flow
from shopkeeper.generator import World
from shopkeeper.produce import ProduceSummary, produce
from shopkeeper.topics import ALL_TOPICS, ensure_topics

__all__ = ["bootstrap", "create_topics", "running_flow", "stream", "wait", "written"]


def create_topics(found: Endpoints, namespace: str) -> None:
    """Create every topic of the engine in ``namespace``."""
    ensure_topics(
        found.kafka_bootstrap,
        [events.in_namespace(t, namespace) for t in ALL_TOPICS],
        embedded=found.embedded_kafka,
    )


@contextlib.contextmanager
def running_flow(settings: Mapping[str, str]) -> Iterator[FlowRun]:
    """One flow process serving its metrics, started and answering; stopped on exit."""
    (port,) = free_ports(1)
    run = start_flow(settings, metrics_port=port, stderr=subprocess.DEVNULL)
    try:
        wait(run.serving_metrics, "the flow to start")
        yield run
    finally:
        run.stop()
        run.wait(timeout=60)


def bootstrap(found: Endpoints, run: FlowRun, world: World, namespace: str, rate: float) -> int:
    """Produce the world's preamble (the catalogue, every customer's profile) at once and
    wait until the flow has written it; return how many items it holds."""
    preamble = len(world.catalog) + len(world.customers)
    produce(
        itertools.islice(world.live(dt.datetime.now(dt.UTC), rate), preamble),
        bootstrap=found.kafka_bootstrap,
        namespace=namespace,
        progress=False,
    )
    wait(lambda: written(run, preamble), "the bootstrap")
    return preamble


def stream(
    found: Endpoints, world: World, namespace: str, *, rate: float, seconds: float, preamble: int
) -> ProduceSummary:
    """Produce ``seconds`` of the world's live stream after its preamble at ``rate`` items
    per second, each stamped with the time it is sent."""
    # Item n of the live stream is stamped start + n / rate: start so that the first item
    # after the preamble is due now, when the paced producer starts.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=preamble / rate)
    return produce(
        itertools.islice(world.live(start, rate), preamble, None),
        bootstrap=found.kafka_bootstrap,
        namespace=namespace,
        rate=rate,
        duration=seconds,
        progress=False,
    )


def written(run: FlowRun, events: int) -> bool:
    """Whether ``events`` were read and every applied one is in Redis: the freshness
    histogram observes an event when its write is done, after the event counters move."""
    if run.metric("shopkeeper_flow_events_total") < events:
        return False
    applied = run.metric("shopkeeper_flow_events_total", {"outcome": "applied"})
    return run.metric("shopkeeper_flow_freshness_seconds_count") >= applied


def wait(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll ``condition`` until it holds.

    Raises:
        TimeoutError: It did not hold within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.1)
