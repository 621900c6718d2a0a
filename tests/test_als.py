"""ALS on generated history: better than popularity on a time split, and artifacts."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import events
from models.als import AlsModel, AlsParams
from models.evaluation import evaluate, popular
from models.interactions import Interactions
from shopkeeper.generator import GeneratorConfig, Malformed, World

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SPLIT = START + dt.timedelta(days=300)


@pytest.fixture(scope="module")
def history() -> list[events.Event]:
    world = World.build(GeneratorConfig(seed=9, customers=3_000, products=1_000, malformed_share=0))
    return [e for e in world.history(START, 365) if not isinstance(e, Malformed)]


@pytest.fixture(scope="module")
def model(history: list[events.Event]) -> AlsModel:
    train = Interactions.from_events((e for e in history if e.timestamp < SPLIT), until=SPLIT)
    return AlsModel.fit(train, AlsParams(factors=48, iterations=12, seed=3))


def _bought_after_split(history: list[events.Event]) -> dict[str, set[str]]:
    truth: dict[str, set[str]] = {}
    for e in history:
        if type(e) is events.OrderCompleted and e.timestamp >= SPLIT and e.customer_key:
            truth.setdefault(e.customer_key, set()).update(
                p.product_id for p in e.properties.products
            )
    return truth


def test_als_beats_global_popularity_on_ndcg_by_20_percent(
    history: list[events.Event], model: AlsModel
) -> None:
    truth = {u: items for u, items in _bought_after_split(history).items() if u in set(model.users)}
    purchases = Counter(
        p.product_id
        for e in history
        if type(e) is events.OrderCompleted and e.timestamp < SPLIT
        for p in e.properties.products
    )

    def als(user: str, k: int) -> list[str]:
        return [item for item, _ in model.recommend(user, k, exclude_seen=False)]

    catalog = len(model.items)
    ours = evaluate(als, truth, k=10, catalog=catalog)
    baseline = evaluate(popular(purchases), truth, k=10, catalog=catalog)
    assert ours.users == baseline.users > 500
    assert ours.ndcg >= 1.2 * baseline.ndcg
    assert ours.coverage > baseline.coverage


def test_a_saved_model_recommends_the_same(model: AlsModel, tmp_path: Path) -> None:
    model.save(tmp_path / "v1")
    loaded = AlsModel.load(tmp_path / "v1")
    for user in model.users[:50]:
        assert loaded.recommend(user, 10) == model.recommend(user, 10)
    assert loaded.recommend("nobody", 10) == []
    np.testing.assert_array_equal(loaded.item_factors, model.item_factors)


def test_a_customer_who_asked_to_be_erased_is_not_in_the_training_matrix() -> None:
    at = START + dt.timedelta(days=1)

    def viewed(customer: str, product: str) -> events.Event:
        return events.ProductViewed(
            message_id=f"m-{customer}-{product}",
            timestamp=at,
            channel="web",
            customer_id=customer,
            properties=events.ProductViewedProperties(
                product_id=product, price=1.0, currency="EUR"
            ),
        )

    erase = events.DeletionRequested(
        message_id="m-erase", timestamp=at + dt.timedelta(days=2), channel="server",
        customer_id="c-gone",
    )  # fmt: skip
    stream = [viewed("c-stays", "P1"), viewed("c-gone", "P1"), viewed("c-gone", "P2"), erase]
    data = Interactions.from_events(stream, until=at)
    assert data.users == ["c-stays"]
    assert data.matrix.shape == (1, 2)
    assert data.pairs() == {("c-stays", "P1")}
