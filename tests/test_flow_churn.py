"""Customer intelligence in the flow: event-time ticks, churn labels and the one model,
end to end (embedded Kafka → Bytewax → real Redis)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import redis

import events
from feature_store import FeatureStore, KeyLayout
from shopkeeper.churn_backtest import Backtest
from shopkeeper.clv_fit import fit_events_file
from shopkeeper.datasets import write_cdnow_events
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import GeneratorConfig, Malformed, World
from tests.flowkit import event, prepare, product, run_to_end, send

START = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
MIN = dt.timedelta(minutes=1)
PACERS = [f"c-pacer-{i}" for i in range(16)]  # some in every partition


def _regular() -> tuple[list[events.Event], dt.datetime]:
    """A regular: a visit every two weeks and an order every four, for 37 weeks; then
    silence. Returns the events and the time of the last order."""
    story: list[events.Event] = []
    last = START
    for week in range(0, 38, 2):
        at = START + dt.timedelta(weeks=week)
        session = f"s-{week}"
        for i in range(3):
            story.append(
                event("Product Viewed", at + i * MIN, session_id=session, **product(f"P{i}", 25.0))
            )
        if week % 4 == 0:
            story.append(
                event("Product Added", at + 4 * MIN, session_id=session, **product("P1", 25.0))
            )
            last = at + 10 * MIN
            story.append(
                event(
                    "Order Completed",
                    last,
                    session_id=session,
                    order_id=f"O-{week}",
                    revenue=25.0,
                    currency="EUR",
                    products=[product("P1", 25.0)],
                )
            )
    return story, last


def _pacers(until: dt.datetime) -> list[events.Event]:
    """Other customers' daily views: they move every shard's event time along."""
    days = (until - START) // DAY
    return [
        event("Product Viewed", START + d * DAY + 12 * dt.timedelta(hours=1), customer=c,
              **product("P9", 5.0))
        for d in range(days + 1)
        for c in PACERS
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A churn model trained on a generated year, saved as a checkpoint."""
    world = World.build(GeneratorConfig(seed=11, customers=800, products=300, malformed_share=0))
    history = [e for e in world.history(START - 365 * DAY, 365) if not isinstance(e, Malformed)]
    backtest = Backtest()
    backtest.run(history)
    backtest.finish()
    directory = tmp_path_factory.mktemp("churn-model")
    backtest.model.save(directory)
    return directory


@pytest.fixture(scope="module")
def clv_params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CLV parameters fitted on the CDNOW sample (weeks), as ``shopkeeper clv fit`` does."""
    directory = tmp_path_factory.mktemp("clv")
    write_cdnow_events(directory / "cdnow.jsonl", sample=True, progress=False)
    fitted = fit_events_file(
        directory / "cdnow.jsonl",
        out_dir=directory,
        now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        until=dt.date(1997, 9, 30),
        progress=False,
    )
    return fitted.path


def test_labels_and_a_silent_customers_rising_churn_on_event_time(
    infra: Endpoints, unique: str, trained: Path, clv_params: Path
) -> None:
    namespace = f"churn{unique}"
    prepare(infra, namespace)
    story, last_order = _regular()
    in_order = sorted(story, key=lambda e: e.timestamp)
    send(infra, namespace, in_order)
    store = FeatureStore(redis.Redis.from_url(infra.redis_url), KeyLayout(namespace))
    sent_until = START - DAY
    seen: list[tuple[str, float, str, str]] = []
    alive: list[tuple[str, float, float]] = []
    # Move event time along (other customers' events) past each due time of her silence.
    for days in (1, 8, 15, 31, 46, 62):
        until = last_order + days * DAY
        pacing = [e for e in _pacers(until) if e.timestamp > sent_until]
        send(infra, namespace, pacing)
        sent_until = until
        run_to_end(infra, namespace, churn_checkpoint_dir=trained, clv_params=clv_params)
        alice = store.customer("c-alice")
        assert alice is not None
        seen.append(
            (
                alice["churn_scored_at"],
                float(alice["churn_probability"]),
                alice["churn_windows"],
                alice["churn_windows_churned"],
            )
        )
        alive.append(
            (
                alice["clv_scored_at"],
                float(alice["clv_p_alive"]),
                float(alice["clv_expected_purchases_90d"]),
            )
        )
    due = [last_order + d * DAY for d in (0, 7, 14, 30, 45, 60)]
    # Scored as of her last order, then at each rescoring tick of her silence...
    assert [s[0] for s in seen[:5]] == [t.isoformat().replace("+00:00", "Z") for t in due[:5]]
    probabilities = [s[1] for s in seen[:5]]
    assert probabilities == sorted(probabilities)
    assert probabilities[-1] - probabilities[0] > 0.3
    # ...her nine closed windows were each followed by a purchase within 60 days; the tenth
    # is labelled churned when the watermark passes its deadline.
    assert [(s[2], s[3]) for s in seen] == [("9", "0")] * 5 + [("10", "1")]
    # CLV from her own history (10 purchase days, the last 36 weeks after the first),
    # rescored on the same ticks: the longer the silence, the less likely she is alive.
    assert [a[0] for a in alive] == [s[0] for s in seen]
    p_alive = [a[1] for a in alive]
    assert p_alive == sorted(p_alive, reverse=True)
    assert p_alive[0] > 0.9 > p_alive[-1]
    expected = [a[2] for a in alive]
    assert expected == sorted(expected, reverse=True)
    final = store.customer("c-alice")
    assert final is not None
    assert "churn_deadline" not in final
    assert final["churn_model_version"].startswith("logistic-")
