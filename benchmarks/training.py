"""ALS training time: our ``AlsModel.fit`` beside a bare ``implicit`` fit of the same matrix.

A synthetic matrix of 1,000,000 interactions (50,000 customers x 10,000 products) with a
long tail: product popularity falls as ``1 / (rank + 10)`` and customer activity is
log-normal; strengths mix views, adds and purchases (1 / 3 / 10) with decay. Both fits
use the same factors, regularization, alpha, iterations and seed, one thread and one BLAS
thread; best of three each, alternated. Beside them, one run of the whole
``shopkeeper train als`` path on the same interactions written as events (JSONL decode,
decayed interactions, fit, complements, artifact write), reported by stage.

Budget: our fit takes at most 1.5x the bare one (the wrapper's cost: id maps, a copy of the
matrix, the Gram matrix and unit vectors for fold-in and similarity).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

import events
from benchmarks import _report
from models.als import AlsModel, AlsParams
from models.interactions import Interactions
from models.registry import ModelRegistry
from shopkeeper.history import read_jsonl
from shopkeeper.train import train_als

USERS = 50_000
ITEMS = 10_000
INTERACTIONS = 1_000_000
REPEATS = 3
BUDGET_RATIO = 1.5
PARAMS = AlsParams(factors=64, regularization=0.05, alpha=2.0, iterations=15, seed=7)
END = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _matrix(seed: int = 5) -> sp.csr_matrix:
    """``INTERACTIONS`` distinct (customer, product) pairs with long-tailed popularity."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / (np.arange(ITEMS) + 10.0)
    item_p /= item_p.sum()
    user_p = rng.lognormal(0.0, 1.0, USERS)
    user_p /= user_p.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < INTERACTIONS:
        n = int((INTERACTIONS - len(keys)) * 1.3) + 1_000
        users = rng.choice(USERS, n, p=user_p).astype(np.int64)
        items = rng.choice(ITEMS, n, p=item_p)
        keys = np.unique(np.concatenate([keys, users * ITEMS + items]))
    keys = rng.permutation(keys)[:INTERACTIONS]
    kinds = rng.choice(np.array([1.0, 3.0, 10.0], dtype=np.float32), INTERACTIONS,
                       p=[0.7, 0.1, 0.2])  # fmt: skip
    decay = rng.uniform(0.25, 1.0, INTERACTIONS).astype(np.float32)
    return sp.csr_matrix((kinds * decay, (keys // ITEMS, keys % ITEMS)), shape=(USERS, ITEMS))


def _ours(data: Interactions) -> None:
    AlsModel.fit(data, PARAMS)


def _raw(matrix: sp.csr_matrix) -> None:
    als = AlternatingLeastSquares(
        factors=PARAMS.factors,
        regularization=PARAMS.regularization,
        alpha=PARAMS.alpha,
        iterations=PARAMS.iterations,
        random_state=PARAMS.seed,
        num_threads=1,
    )
    with threadpool_limits(1, "blas"):
        als.fit(matrix, show_progress=False)


def _seconds(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _events(matrix: sp.csr_matrix, seed: int = 6) -> list[events.Event]:
    """The matrix as history: 70% views, 10% adds, 20% purchases (a customer's purchases
    in baskets of up to three), at random times over the year before ``END``."""
    rng = np.random.default_rng(seed)
    coo = matrix.tocoo()  # row by row: one customer's interactions are together
    rows = coo.row.tolist()
    kinds = rng.choice(3, coo.nnz, p=[0.7, 0.1, 0.2]).tolist()
    offsets = rng.uniform(0, 365 * 86_400, coo.nnz).tolist()
    stream: list[events.Event] = []
    basket: list[events.Product] = []
    for n, (user, item) in enumerate(zip(rows, coo.col.tolist(), strict=True)):
        envelope: dict[str, Any] = {
            "message_id": f"m{n}",
            "timestamp": END - dt.timedelta(seconds=offsets[n]),
            "channel": "web",
            "customer_id": f"c{user}",
        }
        line: dict[str, Any] = {"product_id": f"p{item}", "price": 9.99, "currency": "EUR"}
        if kinds[n] == 0:
            props = events.ProductViewedProperties(**line)
            stream.append(events.ProductViewed(**envelope, properties=props))
        elif kinds[n] == 1:
            stream.append(
                events.ProductAdded(**envelope, properties=events.CartProductProperties(**line))
            )
        else:
            basket.append(events.Product(**line))
        if basket and (len(basket) == 3 or n + 1 == len(rows) or rows[n + 1] != user):
            order = events.OrderCompletedProperties(
                order_id=f"o{n}", revenue=round(9.99 * len(basket), 2), currency="EUR",
                products=basket,
            )  # fmt: skip
            stream.append(events.OrderCompleted(**envelope, properties=order))
            basket = []
    return stream


def _train_path(matrix: sp.csr_matrix) -> dict[str, Any]:
    """One run of ``shopkeeper train als`` on the matrix written as JSONL events."""
    stream = _events(matrix)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "events.jsonl"
        with path.open("wb") as out:
            for event in stream:
                out.write(events.encode(event) + b"\n")
        del stream
        started = time.perf_counter()
        history = read_jsonl(path)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        result = train_als(history, ModelRegistry(Path(scratch) / "als"), params=PARAMS, now=END)
        train_s = time.perf_counter() - started
    fit_s = float(result.metadata["fit_seconds"])
    return {
        "events": len(history.events),
        "interactions": result.metadata["interactions"],
        "read_jsonl_s": round(read_s, 2),
        "train_als_s": round(train_s, 2),
        "fit_s": round(fit_s, 2),
        "overhead_s": round(train_s - fit_s, 2),
        "total_s": round(read_s + train_s, 2),
    }


def run() -> dict[str, Any]:
    """Measure and write ``results/training.json`` and ``results/training.png``."""
    matrix = _matrix()
    data = Interactions([f"c{u}" for u in range(USERS)], [f"p{i}" for i in range(ITEMS)], matrix)
    runs: dict[str, list[float]] = {"ours": [], "raw_implicit": []}
    for _ in range(REPEATS):  # alternated, so a noisy moment hurts both alike
        runs["ours"].append(_seconds(lambda: _ours(data)))
        runs["raw_implicit"].append(_seconds(lambda: _raw(matrix)))
    ours, raw = min(runs["ours"]), min(runs["raw_implicit"])
    ratio = ours / raw
    path = _train_path(matrix)
    result: dict[str, Any] = {
        "interactions": int(matrix.nnz),
        "users": USERS,
        "items": ITEMS,
        "params": {
            "factors": PARAMS.factors,
            "regularization": PARAMS.regularization,
            "alpha": PARAMS.alpha,
            "iterations": PARAMS.iterations,
            "threads": 1,
        },
        "ours_s": round(ours, 3),
        "raw_implicit_s": round(raw, 3),
        "ratio": round(ratio, 3),
        "budget_ratio": BUDGET_RATIO,
        "within_budget": ratio <= BUDGET_RATIO,
        "runs_s": {name: [round(s, 3) for s in times] for name, times in runs.items()},
        "repeats": REPEATS,
        "train_als_path": path,
    }
    _report.write("training", result)
    _report.bar_plot(
        "training",
        f"ALS on {matrix.nnz / 1e6:.0f}M interactions: ours {ratio:.2f}x bare implicit",
        {
            "AlsModel.fit (ours)": ours * 1_000,
            "implicit ALS fit (bare)": raw * 1_000,
            "train als: read JSONL": path["read_jsonl_s"] * 1_000,
            "train als: fold, fit, complements, save": path["train_als_s"] * 1_000,
        },
        "milliseconds (one core, best of 3 for the fits)",
    )
    return result
