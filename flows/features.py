"""The feature flow: Kafka events → live customer and item features in Redis.

    read_kafka → decode_event → split_rejected ─▶ to_dlq_message → write_dlq
                                     │ accepted
                               split_progress ──────────▶ track_time (a clock per shard:
                                     │ catalogue                │  watermark, timers, RFM)
                                     │                          │ the shard's customer
                                     │                          ▼ events, then its ticks
                                     │                   update_profile
                                     │                          ├─ route_signals ─┐
                                     └───────────▶ merge_item_inputs ◀────────────┘
                                                                ▼
                                                          update_item
    update_profile ─ route_churn ─▶ update_churn_model (one model)
    profiles, items, churn scores, RFM placements ─▶ merge_updates → write_features (Redis)
    tier changes, segment moves, suppressed offers ─▶ write_signals (shopkeeper.signals)
    fired offers ─▶ crm_messages (their content) ─▶ write_offers (shopkeeper.offers)

The customers' events go through their shard's clock, which hands them on ahead of the
ticks they come before: on one path they stay in order, so with several workers a tick
never overtakes the events it is about. With ``SHOPKEEPER_INTELLIGENCE=false`` the
clocks and the churn model are left out, and customer events go straight to
``update_profile``.

Run it with ``shopkeeper flow run`` or directly::

    python -m bytewax.run flows.features:flow                 # one process
    python -m bytewax.run flows.features:flow -i 0 -a "h1:2101;h2:2101"   # one per core

Every step routes failures as data: a message that breaks the contract goes to the
dead-letter topic with its bytes and a reason, and the flow goes on.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

import events
from flows._accepted import Accepted
from flows._clock import ClockLogic, Tick
from flows._content import OfferContent
from flows._decode import Decoder, Rejected
from flows._gc import tune_collector
from flows._model import ModelLogic
from flows._offers import CrmMessages, is_offer, unrouted
from flows._segments import SegmentOut
from flows._signals import segment_signals
from flows._sink import FeatureSink, Update
from flows._source import KafkaInput, Record
from flows._state import (
    CustomerLogic,
    ItemLogic,
    churn_messages,
    is_accepted,
    is_customer_events,
    is_progress,
    signals_by_product,
)
from flows.metrics import FlowMetrics
from flows.settings import FlowSettings

__all__ = ["build_flow", "flow", "kafka_flow"]

_V = TypeVar("_V")


def _rekeyed(outputs: list[tuple[str, tuple[str, _V]]]) -> list[tuple[str, _V]]:
    """A one-key step's outputs, each already keyed by its customer: drop the step's key."""
    return [keyed for _, keyed in outputs]


def _is_for_customer(item: tuple[str, Tick | SegmentOut | list[Accepted]]) -> bool:
    """Whether a clock's output goes to the customer step (events and ticks, not RFM
    placements)."""
    return type(item[1]) is not SegmentOut


def build_flow(
    source: Source[Record],
    dlq: Sink[KafkaSinkMessage[bytes | None, bytes | None]],
    features: Sink[Update],
    *,
    settings: FlowSettings,
    metrics: FlowMetrics,
    decoder: events.EventDecoder | None = None,
    crm_signals: Sink[KafkaSinkMessage[bytes | None, bytes | None]] | None = None,
    offers: Sink[KafkaSinkMessage[bytes | None, bytes | None]] | None = None,
) -> Dataflow:
    """Build the feature dataflow between a source of Kafka records and two sinks.

    Args:
        source: Kafka records (``KafkaInput`` in production, a testing source in tests).
        dlq: Where rejected messages go (the dead-letter topic).
        features: Where customer and item updates go (``FeatureSink``).
        settings: Lateness, dedupe horizon, namespace.
        metrics: Counters and histograms to move.
        decoder: The contract decoder (inject one with a fixed clock for replays).
        crm_signals: Where CRM signals go (segment entries, tier changes, suppressed
            offers); none: dropped.
        offers: Where fired offers go (``shopkeeper.offers``); none: dropped.
    """
    flow = Dataflow("shopkeeper_features")
    records = op.input("read_kafka", flow, source)
    decoder_step = Decoder(settings.namespace, metrics, decoder, clocked=settings.intelligence)
    decoded = op.flat_map_batch("decode_event", records, decoder_step.batch)
    split = op.branch("split_rejected", decoded, is_accepted)
    rejected: Any = split.falses
    op.output("write_dlq", op.map("to_dlq_message", rejected, Rejected.to_message), dlq)

    accepted: Any = split.trues
    by_clock = op.branch("split_progress", accepted, is_progress)
    keyed: Any = by_clock.falses
    by_kind = op.branch("split_catalog", keyed, is_customer_events)
    customer_inputs: Any = by_kind.trues
    if settings.intelligence:
        clock = ClockLogic.builder(
            lateness=settings.allowed_lateness.total_seconds(),
            horizon_days=settings.churn_horizon_days,
            copy=settings.recovery,
            metrics=metrics,
            offers=settings.offer_timers(),
        )
        # The customers' events come through their shard's clock, ahead of its ticks.
        clocks = op.stateful_batch("track_time", by_clock.trues, clock)
        clocked = op.flat_map_batch("key_ticks_by_customer", clocks, _rekeyed)
        by_output: Any = op.branch("split_ticks", clocked, _is_for_customer)
        customer_inputs = by_output.trues
    profiles = op.stateful_batch(
        "update_profile", customer_inputs, CustomerLogic.builder(settings, metrics)
    )
    signals = op.flat_map_batch("route_signals", profiles, signals_by_product)
    item_inputs: Any = op.merge("merge_item_inputs", by_kind.falses, signals)
    items = op.stateful_batch("update_item", item_inputs, ItemLogic.builder(settings, metrics))
    outputs: list[Any] = [profiles, items]
    if settings.intelligence:
        outputs.append(by_output.falses)  # RFM placements
        model = ModelLogic.builder(
            metrics,
            kind=settings.churn_model,
            checkpoints=settings.churn_checkpoint_dir,
            every=settings.churn_checkpoint_every,
            copy=settings.recovery,
            horizon_days=settings.churn_horizon_days,
        )
        messages = op.flat_map_batch("route_churn", profiles, churn_messages)
        scored = op.stateful_batch("update_churn_model", messages, model)
        outputs.append(op.flat_map_batch("key_scores_by_customer", scored, _rekeyed))
    updates: Any = op.merge("merge_updates", *outputs)
    op.output("write_features", updates, features)
    if settings.intelligence and (crm_signals is not None or offers is not None):
        content = OfferContent.from_settings(settings) if settings.offers else None
        routed = op.flat_map_batch("crm_messages", profiles, CrmMessages(content))
        by_topic = op.branch("split_offers", routed, is_offer)
        if crm_signals is not None:
            moves = op.flat_map_batch("segment_signals", by_output.falses, segment_signals)
            crm = op.map("unroute_signals", by_topic.falses, unrouted)
            op.output("write_signals", op.merge("merge_signals", crm, moves), crm_signals)
        if offers is not None:
            op.output("write_offers", op.map("unroute_offers", by_topic.trues, unrouted), offers)
    return flow


def kafka_flow(settings: FlowSettings, metrics: FlowMetrics) -> Dataflow:
    """The flow wired to Kafka (input and dead-letter topics) and Redis, from settings."""

    def topic(name: str) -> str:
        return events.in_namespace(name, settings.namespace)

    customer_topics = [topic(t) for t in events.CUSTOMER_TOPICS]
    timers = settings.offer_timers()
    source = KafkaInput(
        settings.kafka_bootstrap,
        customer_topics,
        [topic(events.CATALOG)],
        mirror_catalog=timers is not None
        and (timers.interest_s is not None or timers.replenish_lead_s is not None),
        heartbeat_s=settings.idle_heartbeat.total_seconds() if settings.intelligence else None,
        tail=settings.tail,
        batch_size=settings.batch_size,
        metrics=metrics,
    )
    dlq = KafkaSink(
        [settings.kafka_bootstrap],
        events.in_namespace(events.DLQ, settings.namespace),
        add_config={"enable.idempotence": "true", "linger.ms": "5", "log_level": "4"},
    )
    sink = FeatureSink(
        settings.redis_url,
        namespace=settings.namespace,
        metrics=metrics,
        retry_s=settings.redis_retry_s,
    )
    crm_signals = KafkaSink(
        [settings.kafka_bootstrap],
        events.in_namespace(events.SIGNALS, settings.namespace),
        add_config={"enable.idempotence": "true", "linger.ms": "5", "log_level": "4"},
    )
    offers = KafkaSink(
        [settings.kafka_bootstrap],
        events.in_namespace(events.OFFERS, settings.namespace),
        add_config={"enable.idempotence": "true", "linger.ms": "5", "log_level": "4"},
    )
    return build_flow(
        source,
        dlq,
        sink,
        settings=settings,
        metrics=metrics,
        crm_signals=crm_signals,
        offers=offers,
    )


def flow() -> Dataflow:
    """The production flow, from ``SHOPKEEPER_*`` settings, for ``python -m bytewax.run``.

    Serves ``/metrics`` when ``SHOPKEEPER_METRICS_PORT`` is set (port + the process index,
    so processes on one host do not collide).
    """
    settings = FlowSettings()
    metrics = FlowMetrics()
    tune_collector()
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port + settings.process_id)
    return kafka_flow(settings, metrics)
