"""A synthetic shop at the serving benchmark's scale: 10,000 products, 50,000 customers,
about a million interactions, a trained artifact, and the customers' profiles in Redis.

Built directly (not through the generator and the flow): the benchmark measures serving,
and this takes seconds where a year of generated history through the flow takes minutes.
The profiles are written in the flow's own format (see ``flows.profile._features``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis
import scipy.sparse as sp

from feature_store import (
    CustomerWrite,
    FeatureStore,
    ItemWrite,
    KeyLayout,
    PopularityCount,
    Write,
)
from models.als import AlsModel, AlsParams
from models.artifact import RecommenderArtifact
from models.baskets import Complements
from models.interactions import Interactions
from models.registry import ModelRegistry

ITEMS = 10_000
CUSTOMERS = 50_000
CATEGORIES = 100
_KINDS = ("view", "add", "purchase")
_STRENGTH = np.asarray([1.0, 3.0, 10.0], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class ServingWorld:
    """What the benchmark needs to know of the shop it built."""

    version: str
    known: list[str]  # in the model, nothing new since training
    active: list[str]  # in the model or not, with interactions after the training window
    unknown: list[str]  # nothing stored anywhere
    products: list[str]
    popular: list[str]
    interactions: int


def build(
    redis_url: str, namespace: str, registry: ModelRegistry, *, seed: int = 1
) -> ServingWorld:
    """Train and promote a model on synthetic interactions, write profiles to Redis."""
    rng = np.random.default_rng(seed)
    products = [f"p-{i:05d}" for i in range(ITEMS)]
    customers = [f"c-{i:06d}" for i in range(CUSTOMERS)]
    category = np.arange(ITEMS) // (ITEMS // CATEGORIES)
    # Long-tail popularity inside each category; each customer likes two categories.
    weight = 1.0 / (1 + rng.permutation(ITEMS)) ** 0.8
    taste = rng.integers(0, CATEGORIES, size=(CUSTOMERS, 2))
    per_customer = np.minimum(rng.geometric(1 / 20, size=CUSTOMERS), 200)
    by_category = [np.flatnonzero(category == c) for c in range(CATEGORIES)]
    rows, cols, kinds = [], [], []
    for user in range(CUSTOMERS):
        n = int(per_customer[user])
        pool = np.concatenate([by_category[c] for c in taste[user]])
        p = weight[pool] / weight[pool].sum()
        liked = rng.choice(pool, size=int(n * 0.8) + 1, p=p)
        anywhere = rng.choice(ITEMS, size=n - len(liked) + 1, p=weight / weight.sum())
        items = np.concatenate([liked, anywhere])
        rows.append(np.full(len(items), user))
        cols.append(items)
        kinds.append(rng.choice(3, size=len(items), p=[0.7, 0.2, 0.1]))
    r, c, k = np.concatenate(rows), np.concatenate(cols), np.concatenate(kinds)
    matrix = sp.csr_matrix((_STRENGTH[k], (r, c)), shape=(CUSTOMERS, ITEMS), dtype=np.float32)
    matrix.sum_duplicates()
    model = AlsModel.fit(
        Interactions(customers, products, matrix), AlsParams(factors=64, iterations=8, seed=seed)
    )
    # Orders: the purchases of each customer, in baskets of two to four.
    bought = sp.csr_matrix(((k == 2).astype(np.float32), (r, c)), shape=matrix.shape)
    bought.eliminate_zeros()
    baskets = [
        [products[i] for i in bought.indices[bought.indptr[u] : bought.indptr[u + 1]]]
        for u in range(CUSTOMERS)
    ]
    complements = Complements.from_baskets(
        (b[i : i + 3] for b in baskets for i in range(0, len(b), 3)), items=products
    )
    now = dt.datetime.now(dt.UTC)
    until = now - dt.timedelta(days=1)
    counts = np.asarray(bought.sum(axis=0)).ravel()
    popular = [products[i] for i in np.argsort(-counts, kind="stable")[:200]]
    metadata: dict[str, Any] = {
        "created_at": now.isoformat(),
        "window": {
            "from": (until - dt.timedelta(days=365)).isoformat(),
            "until": until.isoformat(),
        },
        "users": CUSTOMERS,
        "items": ITEMS,
        "interactions": int(matrix.nnz),
        "popular": popular,
        "catalog": _catalog(products, category, rng),
    }
    version = f"als-bench-{now:%Y%m%dT%H%M%S}"
    RecommenderArtifact(version, model, complements, metadata).save(registry.root / version)
    registry.promote(version)

    half = CUSTOMERS // 2
    known, active = customers[:half], customers[half:]
    newcomers = [f"v-{i:06d}" for i in range(10_000)]
    store = FeatureStore(redis.Redis.from_url(redis_url), KeyLayout(namespace))
    old = now - dt.timedelta(days=30)
    fresh = now - dt.timedelta(minutes=5)
    writes: list[Write] = [
        _profile(user, matrix, products, taste, at=old if user < half else fresh, rng=rng)
        for user in range(CUSTOMERS)
    ]
    writes += [_visitor(v, rng, products, fresh) for v in newcomers]
    writes += _items(metadata["catalog"], weight, now)
    for start in range(0, len(writes), 5_000):
        store.write(writes[start : start + 5_000])
    store.close()
    return ServingWorld(
        version,
        known,
        active + newcomers,
        [f"nobody-{i}" for i in range(10_000)],
        products,
        popular,
        int(matrix.nnz),
    )


def _catalog(products: list[str], category: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    price = np.round(np.exp(rng.normal(3.5, 0.8, size=len(products))), 2)
    out_of_stock = rng.random(len(products)) < 0.03
    retired = rng.random(len(products)) < 0.01
    consumable = rng.random(len(products)) < 0.1
    catalog: dict[str, Any] = {}
    for i, product in enumerate(products):
        facts: dict[str, Any] = {
            "name": f"Product {i}",
            "price": float(price[i]),
            "category": f"Shop/Category {category[i]}",
            "inventory_status": "out_of_stock" if out_of_stock[i] else "in_stock",
            "lifecycle_status": "discontinued" if retired[i] else "active",
            "is_consumable": bool(consumable[i]),
        }
        if retired[i] and i + 1 < len(products):
            facts["successor_product_id"] = products[i + 1]
        if consumable[i]:
            facts["replenishment_days"] = 30
        catalog[product] = facts
    return catalog


def _profile(
    user: int, matrix: sp.csr_matrix, products: list[str], taste: np.ndarray, *,
    at: dt.datetime, rng: np.random.Generator,
) -> CustomerWrite:  # fmt: skip
    items = matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]][:50]
    recent = [
        [products[i], _KINDS[int(rng.integers(0, 3))], _iso(at - dt.timedelta(minutes=n))]
        for n, i in enumerate(items)
    ]
    favourite = [[f"Shop/Category {c}", 5.0 - n] for n, c in enumerate(taste[user])]
    return _write(f"c-{user:06d}", recent, favourite)


def _items(catalog: dict[str, Any], weight: np.ndarray, now: dt.datetime) -> list[Write]:
    """Every product's live catalogue hash, and this hour's views of the top 2,000 (so
    the catalogue and trending refreshes read what production would)."""
    hour = int(now.timestamp()) // 3600 * 3600
    top = set(np.argsort(-weight)[:2_000].tolist())
    writes: list[Write] = []
    for i, (product, facts) in enumerate(catalog.items()):
        fields = {name: str(value).lower() if isinstance(value, bool) else str(value)
                  for name, value in facts.items()}  # fmt: skip
        views = [
            PopularityCount("views", "1h", hour, scope, float(round(weight[i] * 1e4)))
            for scope in ("all", facts["category"])
        ] if i in top else []  # fmt: skip
        writes.append(ItemWrite(product, {"catalog": orjson.dumps(fields).decode()}, 1, views))
    return writes


def _visitor(
    visitor: str, rng: np.random.Generator, products: list[str], at: dt.datetime
) -> CustomerWrite:
    viewed = rng.integers(0, len(products), size=int(rng.integers(1, 8)))
    recent = [
        [products[i], "view", _iso(at - dt.timedelta(seconds=n))] for n, i in enumerate(viewed)
    ]
    return _write(visitor, recent, [])


def _write(customer: str, recent: list[list[str]], favourite: list[list[Any]]) -> CustomerWrite:
    text = orjson.dumps
    return CustomerWrite(
        customer,
        {
            "interactions": text({"recent": text(recent).decode()}).decode(),
            "consent": '{"consent:personalization":"1"}',
            "affinity": text({"affinity:category": text(favourite).decode()}).decode(),
        },
        seq=1,
    )


def _iso(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def save_path(root: Path) -> ModelRegistry:
    """A registry under ``root``."""
    return ModelRegistry(root / "models")
