"""Churn: labels on event time, the online model, its health, checkpoints and the backtest."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import events
from flows.profile import ChurnTracker, CustomerProfile, Example, churn_features
from models.churn import ChurnModel, Prequential, calibration, roc_auc
from shopkeeper.churn_backtest import BacktestResult, evaluate, run_backtest, write_report
from shopkeeper.generator import GeneratorConfig, Malformed, World
from tests.test_profile import ev, line, order

DAY = 86_400.0
T0 = dt.datetime(2025, 5, 1, 10, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def _example(at: float) -> Example:
    return Example(at, {"recency_days": 0.0}, 0.5, "test-0")


# -- labels ---------------------------------------------------------------------------------


def test_a_purchase_within_the_horizon_labels_the_window_not_churned() -> None:
    tracker = ChurnTracker(horizon_days=60)
    assert tracker.purchase(0.0) == []
    tracker.add(_example(0.0))
    tracker.add(_example(30 * DAY))
    resolved = tracker.purchase(59 * DAY)
    assert [(r.churned, r.resolved_at, r.example.at) for r in resolved] == [
        (False, 59 * DAY, 0.0),
        (False, 59 * DAY, 30 * DAY),
    ]
    assert tracker.pending == 0
    assert tracker.deadline == 119 * DAY


def test_silence_past_the_horizon_labels_the_window_churned_at_its_deadline() -> None:
    tracker = ChurnTracker(horizon_days=60)
    tracker.purchase(10 * DAY)
    tracker.add(_example(10 * DAY))
    assert tracker.expire(69 * DAY) == []  # the watermark has not reached the deadline
    resolved = tracker.expire(75 * DAY)
    assert [(r.churned, r.resolved_at) for r in resolved] == [(True, 70 * DAY)]
    # A customer who comes back after the deadline opens a new window; nothing resolves twice.
    assert tracker.purchase(100 * DAY) == []
    assert tracker.deadline == 160 * DAY


def test_a_return_after_the_horizon_labels_churned_even_before_the_watermark_passed() -> None:
    # In a replay, the return can be folded before the watermark fires the deadline.
    tracker = ChurnTracker(horizon_days=60)
    tracker.purchase(0.0)
    tracker.add(_example(0.0))
    resolved = tracker.purchase(61 * DAY)
    assert [(r.churned, r.resolved_at) for r in resolved] == [(True, 60 * DAY)]


def test_late_purchases_and_scores_after_the_deadline_change_nothing() -> None:
    tracker = ChurnTracker(horizon_days=60)
    tracker.purchase(10 * DAY)
    assert tracker.purchase(5 * DAY) == []  # late: older than the window's purchase
    assert tracker.last_purchase == 10 * DAY
    tracker.add(_example(71 * DAY))  # the label of that moment is already decided
    assert tracker.pending == 0
    fresh = ChurnTracker()
    fresh.add(_example(1.0))  # no purchase yet: no window to label it
    assert fresh.pending == 0
    assert fresh.due() == []


@given(st.lists(st.integers(0, 400), min_size=1, max_size=30, unique=True))
def test_labels_depend_on_event_times_only(days: list[int]) -> None:
    """Each window is labelled churned exactly when the next purchase is more than H away."""
    tracker = ChurnTracker(horizon_days=60)
    labels = []
    for day in sorted(days):
        labels += [r.churned for r in tracker.purchase(day * DAY)]
        tracker.add(_example(day * DAY))
    labels += [r.churned for r in tracker.expire(10_000 * DAY)]
    ordered = sorted(days)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert labels == [gap > 60 for gap in gaps] + [True]


# -- features and the model ----------------------------------------------------------------


def test_features_age_with_event_time_not_with_events() -> None:
    profile = CustomerProfile()
    profile.apply(order("m1", T0, "O1", [line("P1", 10.0)]))
    profile.apply(order("m2", T0 + dt.timedelta(days=20), "O2", [line("P2", 30.0)]))
    t = (T0 + dt.timedelta(days=20)).timestamp()
    now = churn_features(profile, t)
    later = churn_features(profile, t + 40 * DAY)
    assert (now["recency_days"], later["recency_days"]) == (0.0, 40.0)
    assert now["purchase_gap_days"] == later["purchase_gap_days"] == 20.0
    assert later["overdue_ratio"] == 2.0
    assert (now["orders_30d"], later["orders_30d"]) == (2.0, 0.0)
    assert now["aov"] == 20.0
    assert now["revenue_365d"] == 40.0


@pytest.fixture(scope="module")
def history() -> list[events.Event]:
    """A year of generated traffic with planted churners (25% go quiet for good)."""
    world = World.build(GeneratorConfig(seed=11, customers=2_000, products=500, malformed_share=0))
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return [e for e in world.history(start, 365) if not isinstance(e, Malformed)]


@pytest.fixture(scope="module")
def backtest(history: list[events.Event]) -> BacktestResult:
    return run_backtest(history, progress=False)


@pytest.fixture(scope="module")
def report(backtest: BacktestResult) -> dict[str, Any]:
    return evaluate(backtest)


def test_the_streaming_model_finds_planted_churners(
    backtest: BacktestResult, report: dict[str, Any]
) -> None:
    assert backtest.prequential.health().examples == len(backtest.rows) > 50_000
    test = report["test"]["streaming"]
    assert report["split"]["test_examples"] > 10_000
    assert test["roc_auc"] >= 0.85
    assert test["log_loss"] < 0.35


def test_the_streaming_model_is_within_0_02_auc_of_batch_logistic_regression(
    report: dict[str, Any], tmp_path: Path
) -> None:
    test = report["test"]
    assert test["streaming"]["roc_auc"] >= test["batch_logistic"]["roc_auc"] - 0.02
    assert test["streaming"]["roc_auc"] > test["recency_only"]["roc_auc"]
    json_path, png_path = write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["test"].keys() == {
        "streaming",
        "batch_logistic",
        "recency_only",
    }
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_silent_customers_churn_probability_rises_over_event_time(
    backtest: BacktestResult,
) -> None:
    # A regular: a visit every two weeks, an order every month, then silence.
    profile = CustomerProfile()
    for week in range(0, 40, 2):
        at = T0 - dt.timedelta(weeks=40 - week)
        for i in range(3):
            viewed = {"product_id": f"P{i}", "price": 25.0, "currency": "EUR"}
            profile.apply(ev("Product Viewed", f"v{week}-{i}", at, viewed, session=f"s{week}"))
        if week % 4 == 0:
            added = {**line("P1", 25.0), "cart_id": f"k{week}"}
            profile.apply(ev("Product Added", f"a{week}", at + MIN, added, session=f"s{week}"))
            profile.apply(order(f"m{week}", at + 10 * MIN, f"O{week}", [line("P1", 25.0)]))
    last = profile.last_seen
    assert last is not None
    silence = [churn_features(profile, last.timestamp() + d * DAY) for d in (0, 7, 14, 30, 60)]
    p = [backtest.model.predict_proba_one(x) for x in silence]
    assert p == sorted(p)
    assert p[0] < 0.5 < p[-1]


def test_a_checkpoint_continues_exactly_where_it_stopped(
    backtest: BacktestResult, tmp_path: Path
) -> None:
    model = backtest.model
    rows = backtest.rows[:200]
    path = model.save(tmp_path, health=backtest.prequential.health())
    loaded = ChurnModel.load(tmp_path)  # the newest checkpoint of the directory
    assert loaded.version == model.version == path.stem
    for row in rows:
        assert loaded.predict_proba_one(row.features) == model.predict_proba_one(row.features)
    twin = ChurnModel.load(path)
    for row in rows:
        loaded.learn_one(row.features, row.churned)
        twin.learn_one(row.features, row.churned)
    assert [loaded.predict_proba_one(r.features) for r in rows] == [
        twin.predict_proba_one(r.features) for r in rows
    ]
    meta = json.loads(path.read_text())
    assert meta["health"]["examples"] == backtest.prequential.health().examples


def test_a_tampered_checkpoint_is_refused(tmp_path: Path) -> None:
    path = ChurnModel.create().save(tmp_path)
    pickled = path.with_suffix(".pkl")
    pickled.write_bytes(pickled.read_bytes() + b"x")
    with pytest.raises(ValueError, match="checksum"):
        ChurnModel.load(path)


def test_unknown_model_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="hoeffding_tree"):
        ChurnModel.create("magic")
    assert ChurnModel.create("hoeffding_tree").predict_proba_one({"a": 1.0}) == 0.5


# -- metrics --------------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 5).map(lambda n: n / 5)), min_size=2, max_size=40
    )
)
def test_roc_auc_is_the_share_of_correctly_ordered_pairs(pairs: list[tuple[bool, float]]) -> None:
    y = [label for label, _ in pairs]
    p = [score for _, score in pairs]
    positives = [s for label, s in pairs if label]
    negatives = [s for label, s in pairs if not label]
    auc = roc_auc(y, p)
    if not positives or not negatives:
        assert auc is None
        return
    wins = sum((a > b) + 0.5 * (a == b) for a in positives for b in negatives)
    assert auc == pytest.approx(wins / (len(positives) * len(negatives)))


def test_prequential_metrics_and_calibration_by_decile() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(5_000)
    y = rng.random(5_000) < p  # perfectly calibrated by construction
    evaluation = Prequential()
    for label, score in zip(y, p, strict=True):
        evaluation.update(bool(label), float(score))
    health = evaluation.health()
    assert health.examples == 5_000
    assert health.brier == pytest.approx(float(np.mean((p - y) ** 2)))
    assert len(health.calibration) == 10
    for predicted, observed, n in health.calibration:
        assert n == 500
        assert observed == pytest.approx(predicted, abs=0.08)
    assert calibration([], []) == []
