"""The recommendation rules on a small, known catalogue (pure: no HTTP, no Redis)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from models.als import AlsModel, AlsParams
from models.artifact import RecommenderArtifact
from models.baskets import Complements
from models.interactions import Interactions
from serving.catalog import Catalog, ItemInfo
from serving.customers import CustomerView, Interaction
from serving.recommend import Recommender, Rules, Trending

DAY = 86_400.0
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()
ITEMS = ["beans", "filter", "machine", "grinder", "mug", "tea", "kettle", "cups"]
CATALOG: dict[str, dict[str, Any]] = {
    "beans": {"price": 12.0, "category": "Coffee/Beans", "is_consumable": True,
              "replenishment_days": 30},
    "filter": {"price": 4.0, "category": "Coffee/Filters", "is_consumable": True,
               "replenishment_days": 60},
    "machine": {"price": 200.0, "category": "Coffee/Machines"},
    "grinder": {"price": 260.0, "category": "Coffee/Machines"},
    "mug": {"price": 9.0, "category": "Kitchen/Mugs"},
    "tea": {"price": 6.0, "category": "Tea/Loose"},
    "kettle": {"category": "Coffee/Machines"},  # no price: never an up-sell
    "cups": {"price": 420.0, "category": "Coffee/Machines"},  # past the 2x band
}  # fmt: skip


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    rng = np.random.default_rng(3)
    rows = rng.random((40, len(ITEMS))) < 0.4
    rows[:, 0] |= rows[:, 2]  # machine buyers buy beans
    matrix = sp.csr_matrix(rows.astype(np.float32) * 5)
    users = [f"u{i}" for i in range(40)]
    als = AlsModel.fit(Interactions(users, ITEMS, matrix), AlsParams(factors=4, iterations=10))
    baskets = [["machine", "beans"], ["machine", "beans", "mug"], ["tea", "kettle"]] * 3
    complements = Complements.from_baskets(baskets, items=ITEMS)
    metadata = {"window": {"until": dt.datetime.fromtimestamp(NOW - DAY, dt.UTC).isoformat()},
                "popular": ["mug", "tea", "beans"], "catalog": CATALOG}  # fmt: skip
    artifact = RecommenderArtifact("v1", als, complements, metadata)
    info = {p: ItemInfo.parse(f) for p, f in CATALOG.items()}
    return Recommender(artifact, Catalog.build(ITEMS, info), Rules())


def _bought(product: str, days_ago: float) -> Interaction:
    return Interaction(product, "purchase", NOW - days_ago * DAY)


def test_recently_bought_products_stay_out_but_consumables_come_back_when_due(
    recommender: Recommender,
) -> None:
    seen = Interaction("tea", "view", NOW - 3600)  # after the training window
    customer = CustomerView(
        [seen, _bought("beans", 28), _bought("machine", 10), _bought("filter", 5)]
    )
    answer = recommender.for_customer("u1", customer, len(ITEMS), now=NOW, trending=Trending())
    shown = {s.product_id: s for s in answer.items}
    assert "machine" not in shown  # bought 10 days ago, not consumable
    assert "filter" not in shown  # consumable, but 5 of 60 days
    assert shown["beans"].reason == "due_again"  # 28 days >= 0.85 x 30
    assert answer.source == "fold_in"  # activity after the training window


def test_no_consent_or_consent_required_gives_a_non_personal_list(
    recommender: Recommender,
) -> None:
    denied = CustomerView([_bought("tea", 1)], personalization=False)
    answer = recommender.for_customer("u1", denied, 3, now=NOW, trending=Trending(["mug"]))
    assert (answer.personalized, answer.fallback) == (False, "no_consent")
    assert [s.product_id for s in answer.items] == ["mug", "tea", "beans"]
    strict = Recommender(
        recommender.artifact, recommender.catalog, Rules(requires_consent=True)
    ).for_customer("u1", CustomerView(), 3, now=NOW, trending=Trending())
    assert strict.fallback == "no_consent"


def test_a_customer_without_history_gets_their_favourite_category_first(
    recommender: Recommender,
) -> None:
    view = CustomerView(categories=["Tea/Loose"])
    answer = recommender.for_customer("new", view, 2, now=NOW, trending=Trending(["mug"]))
    assert [(s.product_id, s.reason) for s in answer.items] == [
        ("tea", "popular_in_category"),
        ("mug", "trending"),
    ]
    assert answer.fallback == "no_history"


def test_up_sell_stays_in_category_and_band_and_skips_unknown_prices(
    recommender: Recommender,
) -> None:
    answer = recommender.up_sell("machine", 10)
    assert [s.product_id for s in answer.items] == ["grinder"]  # kettle unpriced, cups 2.1x
    assert recommender.up_sell("nothing-known", 5).fallback == "unknown_product"


def test_a_cart_of_unknown_products_falls_back_to_trending(recommender: Recommender) -> None:
    answer = recommender.basket(["zzz"], 2, trending=Trending(["tea", "mug"]))
    assert (answer.source, answer.fallback) == ("trending", "unknown_products")
    assert [s.product_id for s in answer.items] == ["tea", "mug"]
    known = recommender.basket(["machine"], 2, trending=Trending())
    assert known.items[0].product_id == "beans"
    assert (known.items[0].reason, known.items[0].related) == ("bought_together", "machine")
