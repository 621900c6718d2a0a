"""``shopkeeper demo``: the engine on embedded Kafka and Redis with synthetic traffic.

It starts the feature flow (a separate Bytewax process, as in production), produces live
retail traffic at a steady rate, waits until the flow has taken every event, and prints
what happened: events applied, duplicates and malformed ones dead-lettered, freshness,
one customer's live profile (churn, loyalty, segment) and what is trending. Before the
traffic starts it trains a recommender on 30 days of the same world's history, promotes
it and serves the HTTP API; after, it asks the API what that customer should see next.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import redis

import events
from feature_store import FeatureStore, KeyLayout, folded
from flows.profile import TRIGGERS
from models.als import AlsParams
from models.registry import ModelRegistry
from serving import ServingSettings, create_app
from shopkeeper.api_server import serve_in_background
from shopkeeper.embedded import Endpoints, endpoints
from shopkeeper.flow_runner import FlowRun, flow_settings, free_ports, start_flow
from shopkeeper.generator import GeneratorConfig, Item, World, write_history
from shopkeeper.produce import ProduceSummary, produce
from shopkeeper.settings import Settings
from shopkeeper.topics import ALL_TOPICS, ensure_topics
from shopkeeper.train import train_als

__all__ = ["DemoReport", "run_demo"]

_START_TIMEOUT_S = 60.0
_CATCH_UP_TIMEOUT_S = 120.0
_HISTORY_DAYS = 30


@dataclasses.dataclass
class DemoReport:
    """What the demo produced, and what the flow made of it."""

    produced: ProduceSummary
    outcomes: dict[str, float]
    dead_letters: dict[str, float]
    freshness_ms: dict[str, float | None]
    customer_id: str
    profile: dict[str, str] | None
    windows: dict[str, Any]
    trending: list[tuple[str, float]]
    api: dict[str, Any] = dataclasses.field(default_factory=dict)
    offers: dict[str, float] = dataclasses.field(default_factory=dict)  # by trigger/outcome
    next_best_offer: dict[str, Any] = dataclasses.field(default_factory=dict)


class _Tally:
    """Counts events per customer as they stream past, to pick someone to show."""

    def __init__(self, items: Iterable[Item]) -> None:
        self._items = items
        self.per_customer: Counter[str] = Counter()

    def __iter__(self) -> Iterator[Item]:
        for item in self._items:
            if isinstance(item, events.EventBase) and item.customer_id is not None:
                self.per_customer[item.customer_id] += 1
            yield item


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo gave up waiting for {what}")
        time.sleep(0.1)


def run_demo(
    settings: Settings,
    *,
    rate: float,
    duration: float,
    config: GeneratorConfig,
    namespace: str = "shopkeeper",
    say: Callable[[str], None] = print,
) -> DemoReport:
    """Run the demo end to end and report what happened."""
    with endpoints(
        kafka_bootstrap=settings.kafka_bootstrap,
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
    ) as found:
        kafka_kind = "embedded" if found.embedded_kafka else "external"
        redis_kind = "embedded" if found.embedded_redis else "external"
        say(f"Kafka ({kafka_kind}) at {found.kafka_bootstrap}")
        say(f"Redis ({redis_kind}) at {found.redis_url}")
        ensure_topics(
            found.kafka_bootstrap,
            [events.in_namespace(t, namespace) for t in ALL_TOPICS],
            embedded=found.embedded_kafka,
        )
        say(f"Building a world of {config.customers:,} customers and {config.products:,} products")
        world = World.build(config)
        registry = _train(world, settings, say)
        app = create_app(
            ServingSettings(
                redis_url=found.redis_url,
                namespace=namespace,
                model_registry=registry.root,
                kafka_bootstrap=found.kafka_bootstrap,  # its offers count in the flow's caps
            )
        )
        with serve_in_background(app) as api:
            say(f"Serving the API on {api} (its OpenAPI document: {api}/openapi.json)")
            report = _live(
                settings,
                found,
                world,
                namespace=namespace,
                rate=rate,
                duration=duration,
                say=say,
                registry=registry.root,
            )
            report.api = _ask(api, report)
    _print(report, say)
    return report


def _train(world: World, settings: Settings, say: Callable[[str], None]) -> ModelRegistry:
    """Write the world's last 30 days, train ALS on them and promote it."""
    history = settings.data_dir / "history.jsonl"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=_HISTORY_DAYS)
    say(f"Writing {_HISTORY_DAYS} days of history and training the recommender on it")
    write_history(world, history, start=start, days=_HISTORY_DAYS, progress=False)
    registry = ModelRegistry(settings.data_dir / "models" / "als")
    trained = train_als(
        history, registry, params=AlsParams(factors=32, iterations=10), now=dt.datetime.now(dt.UTC)
    )
    registry.promote(trained.version)
    say(trained.describe())
    return registry


def _live(
    settings: Settings,
    found: Endpoints,
    world: World,
    *,
    namespace: str,
    rate: float,
    duration: float,
    say: Callable[[str], None],
    registry: Path,
) -> DemoReport:
    """Run the flow on live traffic until it has taken every event; report."""
    (port,) = free_ports(1)
    log = (settings.data_dir / "flow.log").open("ab")
    run = start_flow(
        {
            **flow_settings(
                kafka_bootstrap=found.kafka_bootstrap,
                redis_url=found.redis_url,
                namespace=namespace,
                tail=True,
            ),
            # The generator sends events in time order: a short lateness lets the
            # event-time clocks tick (churn windows, RFM placements) within the demo.
            "SHOPKEEPER_ALLOWED_LATENESS": "PT5S",
            # Carts and browsing left alone for 15 s are abandoned, so that those offers
            # fire within the demo (30 min by default); they name the trained model's
            # complements.
            "SHOPKEEPER_CART_ABANDONMENT_MINUTES": "0.25",
            "SHOPKEEPER_BROWSE_ABANDONMENT_MINUTES": "0.25",
            "SHOPKEEPER_MODEL_REGISTRY": str(registry),
        },
        metrics_port=port,
        stdout=log.fileno(),
        stderr=subprocess.STDOUT,
    )
    try:
        say(f"Started the feature flow (metrics on http://127.0.0.1:{port}/metrics)")
        _until(run.serving_metrics, _START_TIMEOUT_S, "the flow to start")
        say(f"Producing {rate:,.0f} events/s for {duration:,.0f} s")
        traffic = _Tally(world.live(dt.datetime.now(dt.UTC), rate))
        produced = produce(
            traffic,
            bootstrap=found.kafka_bootstrap,
            namespace=namespace,
            rate=rate,
            duration=duration,
        )
        _until(
            lambda: run.metric("shopkeeper_flow_events_total") >= produced.total,
            _CATCH_UP_TIMEOUT_S,
            "the flow to take every event",
        )
        return _report(run, found.redis_url, namespace, produced, traffic)
    finally:
        run.stop(signal.SIGINT)
        run.wait(timeout=30)
        log.close()


def _ask(api: str, report: DemoReport) -> dict[str, Any]:
    """What the API says the busiest customer should see, and beside one product."""

    def get(path: str) -> Any:
        with urllib.request.urlopen(f"{api}{path}", timeout=10) as response:  # noqa: S310
            return orjson.loads(response.read())

    customer = get(f"/v1/customers/{urllib.parse.quote(report.customer_id)}/recommendations?k=5")
    recent = orjson.loads((report.profile or {}).get("recent", "[]"))
    product = recent[0][0] if recent else (customer["items"] or [{}])[0].get("product_id")
    answers = {"recommendations": customer}
    request = urllib.request.Request(  # noqa: S310 - our own API
        f"{api}/v1/customers/{urllib.parse.quote(report.customer_id)}/next-best-offer",
        data=b"{}",
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        report.next_best_offer = orjson.loads(response.read())
    if product:
        quoted = urllib.parse.quote(product)
        answers["cross_sell"] = get(f"/v1/items/{quoted}/cross-sell?k=3")
        answers["up_sell"] = get(f"/v1/items/{quoted}/up-sell?k=3")
    return answers


def _report(
    run: FlowRun, redis_url: str, namespace: str, produced: ProduceSummary, traffic: _Tally
) -> DemoReport:
    outcomes = {
        outcome: run.metric("shopkeeper_flow_events_total", {"outcome": outcome})
        for outcome in ("applied", "duplicate", "rejected", "ignored_erased")
    }
    reasons = ("malformed_json", "too_large", "unknown_event", "missing_field", "wrong_type")
    dead = {
        reason: run.metric("shopkeeper_flow_dlq_total", {"reason": reason})
        for reason in (*reasons, "invalid_value", "future_timestamp", "unsupported_version")
    }
    freshness: dict[str, float | None] = {}
    for q in (0.5, 0.99):
        seconds = run.quantile("shopkeeper_flow_freshness_seconds", q)
        freshness[f"p{int(q * 100)}"] = None if seconds is None else round(seconds * 1000, 1)
    customer_id = traffic.per_customer.most_common(1)[0][0]
    # The last writes land just after the last events are counted.
    store = FeatureStore(redis.Redis.from_url(redis_url), KeyLayout(namespace))
    _until(lambda: store.customer(customer_id) is not None, 30, "the profile")
    profile = store.customer(customer_id)
    now = dt.datetime.now(dt.UTC)
    windows = folded(profile or {}, now)
    trending = store.popularity("views", window="24h", now=now, k=5)
    store.close()
    offers = {
        f"{trigger} {outcome}": run.metric(
            "shopkeeper_offers_decisions_total", {"trigger": trigger, "outcome": outcome}
        )
        for trigger in TRIGGERS
        for outcome in ("fired", "suppressed")
    }
    return DemoReport(
        produced,
        outcomes,
        {k: v for k, v in dead.items() if v},
        freshness,
        customer_id,
        profile,
        windows,
        trending,
        offers={k: v for k, v in offers.items() if v},
    )


def _print(report: DemoReport, say: Callable[[str], None]) -> None:
    produced = report.produced
    say("")
    say(
        f"Produced {produced.total:,} events in {produced.seconds:.1f} s "
        f"({produced.total / max(produced.seconds, 1e-9):,.0f}/s), "
        f"{produced.malformed:,} deliberately malformed"
    )
    o = report.outcomes
    say(
        f"The flow applied {o['applied']:,.0f}, dropped {o['duplicate']:,.0f} duplicates and "
        f"dead-lettered {o['rejected']:,.0f}: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(report.dead_letters.items()))
    )
    f = report.freshness_ms
    say(f"Freshness (event time to Redis): p50 {f['p50']} ms, p99 {f['p99']} ms")
    p = report.profile or {}
    w = report.windows
    say("")
    say(f"Live profile of {report.customer_id} (the busiest customer of the run):")
    rows = [
        ("first seen / last seen", f"{p.get('first_seen')} / {p.get('last_seen')}"),
        (
            "orders, revenue, AOV",
            f"{p.get('orders_total')}, {p.get('revenue_total')}, {p.get('aov')}",
        ),
        ("views 1h / 24h / 30d", f"{w['views_1h']} / {w['views_24h']} / {w['views_30d']}"),
        ("sessions 24h, orders 7d", f"{w['sessions_24h']}, {w['orders_7d']}"),
        ("cart", f"{p.get('cart_items')} items worth {p.get('cart_value')}"),
        ("top categories", ", ".join(n for n, _ in orjson.loads(p.get("affinity:category", "[]")))),
        ("channels", p.get("channel_mix", "{}")),
        ("consent personalization", p.get("consent:personalization", "unknown")),
        ("time zone", p.get("trait:timezone", "unknown")),
        (
            "churn probability",
            f"{p.get('churn_probability', 'not scored yet')} "
            f"(model {p.get('churn_model_version', '-')})",
        ),
        ("loyalty", f"{p.get('loyalty_tier', '-')}, {p.get('loyalty_points', '0')} points"),
        ("RFM segment", p.get("segment", "not placed yet (the shard needs 20 buyers)")),
    ]
    for name, value in rows:
        say(f"  {name:<26} {value}")
    say(
        "Trending (views, last 24 h): "
        + ", ".join(f"{pid} ({n:.0f})" for pid, n in report.trending)
    )
    say(
        "Offers decided on event time (fired to shopkeeper.offers, suppressed with a reason): "
        + (", ".join(f"{k} {v:,.0f}" for k, v in sorted(report.offers.items())) or "none yet")
    )
    _print_offer(report, say)
    for name, answer in report.api.items():
        subject = answer.get("customer_id") or answer.get("product_id")
        say("")
        say(
            f"GET {name} for {subject}: {answer['source']}, model {answer['model_version']}, "
            f"recommendation_id {answer['recommendation_id']}"
        )
        for item in answer["items"]:
            say(f"  {item['product_id']:<10} {item['name'] or '':<40.40} {item['reason_text']}")


def _print_offer(report: DemoReport, say: Callable[[str], None]) -> None:
    answer = report.next_best_offer
    offer = answer.get("offer")
    say("")
    if offer is None:
        say(
            f"POST next-best-offer for {report.customer_id}: no offer now "
            f"({answer.get('suppressed') or answer.get('fallback') or 'nothing eligible'})"
        )
        return
    discount = offer.get("discount") or {}
    say(
        f"POST next-best-offer for {report.customer_id}: {offer['trigger']} ({offer['reason']}), "
        f"{discount.get('rate', 0):.0%} off ({discount.get('amount', 0)}), expected value "
        f"{offer['expected_value']}, P(conversion) {offer['conversion_probability']}"
    )
    for alternative in answer.get("alternatives", []):
        say(f"  not {alternative['trigger']}: {alternative['why']}")
