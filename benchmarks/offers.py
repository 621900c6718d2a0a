"""Offer delay: from the triggering event (or a timer's deadline) to the offer in Kafka.

One flow process (intelligence and offers on, the defaults) is bootstrapped with a
generated world's catalogue and profiles, then fed the world's live stream at a steady
5,000 events/s for 60 s, each event stamped with the time it is sent (``_flowrun``).
A consumer thread reads ``<ns>.offers`` and ``<ns>.signals`` all the while. An offer's
``at`` is its decision's event time: the triggering event's for event triggers, the
deadline for timer triggers (cart abandonment: ``SHOPKEEPER_CART_ABANDONMENT_MINUTES``
after the last cart change; they fire once the shard's trigger watermark, its latest
event time minus ``SHOPKEEPER_OFFER_TRIGGER_LATENESS``, passes the deadline). So:

- ``delay_ms``: when the consumer received the offer minus its ``at``: what the app
  sees, two Kafka hops and the flow, and for a timer the trigger lateness (the watermark
  must pass the deadline by it). The budget is on this one.
- ``delay_to_sink_ms``: the offer's Kafka ``CreateTime`` (stamped as the flow's sink
  produces it) minus its ``at``: the flow's share, without the last hop.

Suppressed offers (``offer_suppressed`` signals) take the same path and are reported
apart; the budget is on the offers the app gets. Both counts are checked against the
flow's own ``shopkeeper_offers_decisions_total``.

Baselines, measured in the same run at the same rate: ``kafka_hop_ms``, the same live
stream produced to Kafka and read back by the same consumer with no flow between (one
hop; an offer crosses two), and ``freshness_ms``, the same flow run's event-to-Redis
freshness (``shopkeeper_flow_freshness_seconds``: one hop and the flow).

Settings of the bench, in the JSON: abandonment (cart, browse) after 0.5 min, so that
what is left in the first half of the run fires within it; the timer trigger lateness
its default (0.25 s); quiet hours off, so that the figures do not depend on the hour the
bench runs at (every generated customer lives in a European time zone: at night every
promotion would be held back). Caps, cool-downs and the 10% hold-out keep their defaults.

Budget: offer delay p99 <= 1 s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import events
from benchmarks import _flowrun, _report
from flows.profile import TIMER_TRIGGERS
from flows.settings import FlowSettings
from shopkeeper.embedded import Endpoints, endpoints
from shopkeeper.flow_runner import FlowRun, flow_settings
from shopkeeper.generator import GeneratorConfig, World

RATE = 5_000
SECONDS = 60
HOP_SECONDS = 20
SEED = 6
ABANDONMENT_MINUTES = 0.5
TRIGGER_LATENESS_S = FlowSettings.model_fields["offer_trigger_lateness"].default.total_seconds()
BUDGET_P99_MS = 1_000.0
SLICE_S = 10
FRESHNESS = "shopkeeper_flow_freshness_seconds"
DECISIONS = "shopkeeper_offers_decisions_total"
NOTES = (
    "quiet hours off (SHOPKEEPER_OFFER_QUIET_HOURS=[0, 0]): every generated customer lives "
    "in a European time zone, so the default 21-8 would make the figures depend on the "
    "hour of the run; caps, cool-downs and the 10% hold-out are the defaults",
    "abandonment timers (cart, browse) shortened to 0.5 min so that they fire within the "
    "run; win-back and tier expiry (days to weeks of event time) cannot fire in 60 s",
)


class _Tail:
    """Read topics from their start on a thread, noting when each message arrives.

    Fetches wait at most 5 ms, as the flow's own consumer does: the embedded broker
    holds a fetch for its whole ``fetch.wait.max.ms`` (500 ms by default) when the
    partition has nothing new, where a real broker answers as soon as a message comes.
    """

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "bench-offers",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "log_level": 4,
            }
        )
        assigned = []
        for topic in topics:
            metadata = self._consumer.list_topics(topic, timeout=10).topics[topic]
            assigned += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        self._consumer.assign(assigned)
        self.received: list[tuple[str, bytes, float, float]] = []
        """(topic, value, CreateTime, receive time), times in epoch seconds."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="tail", daemon=True)

    def _read(self) -> None:
        while not self._stop.is_set():
            # A short timeout: consume() waits for its whole batch or the timeout.
            messages = self._consumer.consume(1_000, 0.002)
            now = time.time()
            for message in messages:
                if message.error() is None:
                    _, created = message.timestamp()
                    value = message.value() or b""
                    self.received.append((message.topic() or "", value, created / 1000, now))

    def count(self, topic: str) -> int:
        """Messages received from ``topic`` so far."""
        return sum(1 for received in list(self.received) if received[0] == topic)

    def __enter__(self) -> Self:
        self._thread.start()
        time.sleep(1.0)  # connected and fetching before anything is produced
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


@dataclasses.dataclass(frozen=True, slots=True)
class _Decision:
    trigger: str
    reason: str
    delay_ms: float
    to_sink_ms: float
    offer_id: str
    at: float


def _flow_env(found: Endpoints, namespace: str) -> dict[str, str]:
    """The flow's settings for the bench (see the module docstring)."""
    env = flow_settings(
        kafka_bootstrap=found.kafka_bootstrap,
        redis_url=found.redis_url,
        namespace=namespace,
        tail=True,
    )
    env["SHOPKEEPER_OFFER_QUIET_HOURS"] = "[0, 0]"
    for name in FlowSettings.model_fields:
        if name.endswith("_abandonment_minutes"):  # cart, browse
            env[f"SHOPKEEPER_{name.upper()}"] = str(ABANDONMENT_MINUTES)
    return env


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values)
    out = {f"p{q}": float(np.percentile(array, q)) for q in (50, 90, 99)}
    out["max"] = float(array.max())
    return {k: round(v, 1) for k, v in out.items()}


def _kafka_hop(found: Endpoints, world: World) -> tuple[dict[str, Any], list[float]]:
    """The live stream at the same rate through one Kafka hop, no flow: produce to read."""
    namespace = "benchofferhop"
    _flowrun.create_topics(found, namespace)
    topics = [events.in_namespace(t, namespace) for t in events.TOPICS]
    preamble = len(world.catalog) + len(world.customers)
    with _Tail(found.kafka_bootstrap, topics) as tail:
        summary = _flowrun.stream(
            found, world, namespace, rate=RATE, seconds=HOP_SECONDS, preamble=preamble
        )
        _flowrun.wait(lambda: len(tail.received) >= summary.total, "the hop's consumer", 60)
    # The producer stamps each message with its event time, which is its send time.
    delays = [(received - created) * 1000 for _, _, created, received in tail.received]
    return {"seconds": HOP_SECONDS, "messages": len(delays), **_quantiles(delays)}, delays


def _cpu_seconds(run: FlowRun) -> tuple[float, float, float, float, float]:
    """CPU seconds used so far by the flow's processes; the seconds their threads were
    ready to run but waited for a CPU; the CPU seconds of this process (the producer,
    the consumers and the embedded broker) and of the whole machine; the seconds the
    hypervisor held the machine's CPUs back (steal). Linux ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    flow = waited = 0.0
    for process in run.processes:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
        flow += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that has ended
                waited += int((task / "schedstat").read_text().split()[1]) / 1e9
    # user nice system idle iowait irq softirq steal
    jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    busy = jiffies[0] + jiffies[1] + jiffies[2] + jiffies[5] + jiffies[6]
    return flow, waited, time.process_time(), busy / ticks, jiffies[7] / ticks


def _decisions(run: FlowRun, outcome: str) -> int:
    return round(run.metric(DECISIONS, {"outcome": outcome}))


def _measure(found: Endpoints, world: World) -> dict[str, Any]:
    namespace = "benchofferlive"
    _flowrun.create_topics(found, namespace)
    env = _flow_env(found, namespace)
    offers_topic = events.in_namespace(events.OFFERS, namespace)
    signals_topic = events.in_namespace(events.SIGNALS, namespace)
    with (
        _flowrun.running_flow(env) as run,
        _Tail(found.kafka_bootstrap, [offers_topic, signals_topic]) as tail,
    ):
        preamble = _flowrun.bootstrap(found, run, world, namespace, RATE)
        before = run.histogram(FRESHNESS)
        fired_before = _decisions(run, "fired")
        suppressed_before = _decisions(run, "suppressed")
        cpu_before = _cpu_seconds(run)
        live_from = time.time()
        summary = _flowrun.stream(
            found, world, namespace, rate=RATE, seconds=SECONDS, preamble=preamble
        )
        produced = time.time()
        total = preamble + summary.total
        _flowrun.wait(lambda: _flowrun.written(run, total), "the flow to keep up")
        caught_up = time.time()
        cpu_after = _cpu_seconds(run)
        # The flow's clocks move on with the wall clock once it is idle: the abandonment
        # timers of the last minute of traffic still fire. Count once they all have.
        settled = produced + ABANDONMENT_MINUTES * 60 + 2.0
        _flowrun.wait(lambda: time.time() > settled, "the last timers", 120)
        fired = _decisions(run, "fired")
        suppressed = _decisions(run, "suppressed")
        _flowrun.wait(lambda: tail.count(offers_topic) >= fired, "every offer", 30)
        freshness = {
            f"p{round(q * 100)}": round((run.quantile(FRESHNESS, q, since=before) or 0.0) * 1000, 1)
            for q in (0.5, 0.9, 0.99)
        }
        freshness_curve = _histogram_curve(run.histogram(FRESHNESS), before)
        time.sleep(1.0)  # the signals sink flushes on its own batches
    offers, held = _decode(tail.received, offers_topic)
    return {
        "events": summary.total,
        "live_from": live_from,
        "produce_seconds": round(summary.seconds, 2),
        "flow_catch_up_s": round(caught_up - produced, 2),
        "cpu_cores_used": {
            name: round((after - before) / (caught_up - live_from), 2)
            for name, before, after in zip(
                ("flow", "flow_waiting_for_cpu", "bench_process", "machine", "steal"),
                cpu_before,
                cpu_after,
                strict=True,
            )
        },
        "flow_settings": {k: v for k, v in env.items() if not k.endswith(("_BOOTSTRAP", "_URL"))},
        "flow_counted": {
            "fired": fired - fired_before,
            "suppressed": suppressed - suppressed_before,
        },
        "offers": offers,
        "suppressed": held,
        "freshness": freshness,
        "freshness_curve": freshness_curve,
    }


def _decode(
    received: list[tuple[str, bytes, float, float]], offers_topic: str
) -> tuple[list[_Decision], list[_Decision]]:
    offers: list[_Decision] = []
    held: list[_Decision] = []
    for topic, value, created, at_consumer in received:
        body = orjson.loads(value)
        if topic != offers_topic and body.get("signal") != "offer_suppressed":
            continue  # tier changes, segment moves
        at = dt.datetime.fromisoformat(body["at"]).timestamp()
        decision = _Decision(
            trigger=body["trigger"],
            reason=body["reason"],
            delay_ms=(at_consumer - at) * 1000,
            to_sink_ms=(created - at) * 1000,
            offer_id=body["offer_id"],
            at=at,
        )
        (offers if topic == offers_topic else held).append(decision)
    return offers, held


def _histogram_curve(
    buckets: list[tuple[float, float]], before: list[tuple[float, float]]
) -> _report.Curve:
    """A Prometheus histogram's cumulative buckets observed since ``before``, in ms."""
    earlier = dict(before)
    counts = [(le, count - earlier.get(le, 0.0)) for le, count in buckets if le != float("inf")]
    total = buckets[-1][1] - earlier.get(float("inf"), 0.0) if buckets else 0.0
    xs: list[float] = []
    ys: list[float] = []
    for le, count in counts:
        if total:
            xs.append(le * 1000)
            ys.append(count / total)
            if count >= total:  # the wider buckets add nothing but width to the plot
                break
    return xs, ys


def _by_trigger(decisions: list[_Decision]) -> dict[str, dict[str, Any]]:
    triggers = sorted({d.trigger for d in decisions})
    return {
        trigger: {
            "count": sum(1 for d in decisions if d.trigger == trigger),
            "delay_ms": _quantiles([d.delay_ms for d in decisions if d.trigger == trigger]),
            "delay_to_sink_ms": _quantiles(
                [d.to_sink_ms for d in decisions if d.trigger == trigger]
            ),
        }
        for trigger in triggers
    }


def _by_slice(decisions: list[_Decision], live_from: float) -> dict[str, dict[str, Any]]:
    """Delays by ``SLICE_S`` of event time into the run: does the flow keep up throughout?"""
    slices: dict[int, list[float]] = {}
    for d in decisions:
        slices.setdefault(int((d.at - live_from) // SLICE_S), []).append(d.delay_ms)
    return {
        f"{k * SLICE_S}-{(k + 1) * SLICE_S}s": {"count": len(v), **_quantiles(v)}
        for k, v in sorted(slices.items())
    }


def run() -> dict[str, Any]:
    """Measure and write ``results/offers.json`` and ``results/offers.png``."""
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory() as scratch,
        endpoints(kafka_bootstrap=None, redis_url=None, data_dir=Path(scratch)) as found,
    ):
        world = World.build(GeneratorConfig(seed=SEED))
        hop, hop_delays = _kafka_hop(found, world)
        measured = _measure(found, world)
    offers: list[_Decision] = measured["offers"]
    held: list[_Decision] = measured["suppressed"]
    delay = _quantiles([d.delay_ms for d in offers])
    timers = [d for d in offers if d.trigger in TIMER_TRIGGERS]
    checks = {
        "offer_delay_p99_within_budget": bool(offers) and delay["p99"] <= BUDGET_P99_MS,
        "timer_offers_fired": bool(timers),
        "every_decision_received": len(offers) == measured["flow_counted"]["fired"]
        and len(held) == measured["flow_counted"]["suppressed"],
    }
    result: dict[str, Any] = {
        "rate": RATE,
        "seconds": SECONDS,
        "events": measured["events"],
        "produce_seconds": measured["produce_seconds"],
        # Seconds the flow took to read and write everything after the last event was
        # sent, and the cores used over the live run until then (2 on the reference
        # machine): a flow that lags while using a whole core is at its capacity, one
        # that waits for a CPU is starved; the machine's figure minus the flow's and the
        # bench's is Redis and other work.
        "flow_catch_up_s": measured["flow_catch_up_s"],
        "cpu_cores_used": measured["cpu_cores_used"],
        "world": {
            "seed": SEED,
            "customers": len(world.customers),
            "products": len(world.catalog),
        },
        "abandonment_minutes": ABANDONMENT_MINUTES,
        "timer_trigger_lateness_s": TRIGGER_LATENESS_S,
        "flow_settings": measured["flow_settings"],
        "delay": "delay_ms: consumer receive time minus the offer's `at` (the triggering "
        "event's time, or the timer's deadline), same wall clock; delay_to_sink_ms: the "
        "offer's Kafka CreateTime (set as the flow's sink produces it) minus `at`",
        "offers": {
            "count": len(offers),
            "unique_ids": len({d.offer_id for d in offers}),
            "per_s": round(len(offers) / SECONDS, 1),
            "delay_ms": delay,
            "delay_to_sink_ms": _quantiles([d.to_sink_ms for d in offers]),
            "by_trigger": _by_trigger(offers),
            "delay_ms_by_slice": _by_slice(offers, measured["live_from"]),
        },
        "suppressed": {
            "count": len(held),
            "per_s": round(len(held) / SECONDS, 1),
            "delay_ms": _quantiles([d.delay_ms for d in held]),
            "by_trigger": _by_trigger(held),
            "by_reason": dict(Counter(d.reason for d in held).most_common()),
        },
        "flow_counted": measured["flow_counted"],
        "baseline": {"kafka_hop_ms": hop, "freshness_ms": measured["freshness"]},
        "budget": {"offer_delay_p99_ms": BUDGET_P99_MS},
        "checks": checks,
        # Other work on the machine shows here: the 1-minute load average (2 cores).
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "within_budget": all(checks.values()),
        "notes": NOTES,
    }
    _report.write("offers", result)
    _plot(offers, held, hop_delays, measured["freshness_curve"], measured["live_from"])
    return result


def _plot(
    offers: list[_Decision],
    held: list[_Decision],
    hop: list[float],
    freshness: _report.Curve,
    live_from: float,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6), width_ratios=[3, 2])
    triggers = sorted({d.trigger for d in offers})
    curves: dict[str, _report.Curve] = {}
    for trigger in triggers:
        delays = [d.delay_ms for d in offers if d.trigger == trigger]
        curves[f"{trigger} (n={len(delays):,})"] = _report.cdf(delays)
    if held:
        curves[f"suppressed, every trigger (n={len(held):,})"] = _report.cdf(
            d.delay_ms for d in held
        )
    _report.draw_cdf(
        left,
        curves,
        "ms from the triggering event (timers: the deadline) to the consumer",
        baselines={
            "baseline: one Kafka hop, no flow": _report.cdf(hop),
            "baseline: event to Redis (flow freshness)": freshness,
        },
        budget=("p99 budget", BUDGET_P99_MS),
    )
    left.set_title(f"Offer delay at a steady {RATE:,} events/s")
    for trigger in triggers:
        mine = [d for d in offers if d.trigger == trigger]
        right.scatter(
            [d.at - live_from for d in mine], [d.delay_ms for d in mine], s=2, label=trigger
        )
    right.axhline(BUDGET_P99_MS, color="#C44E52", linestyle="--")
    right.set_yscale("log")
    right.set_xlabel("s into the run (the offer's event time)")
    right.set_ylabel("offer delay, ms")
    right.set_title("Offers over the run")
    right.grid(True, which="both", alpha=0.3)
    _report.save(fig, "offers")
