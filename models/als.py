"""Implicit-feedback ALS for recommendations: fit, recommend, save and load.

A thin, typed layer over ``implicit``'s CPU ALS: seeded, one BLAS thread, id maps kept
beside the factors, artifacts as ``.npz`` + JSON (no pickle).

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> from models.interactions import Interactions
    >>> m = sp.csr_matrix(np.array([[5, 5, 0, 0], [5, 5, 0, 0], [0, 0, 5, 5], [5, 0, 0, 0]],
    ...                            dtype=np.float32))
    >>> model = AlsModel.fit(Interactions(["a", "b", "c", "d"], ["x", "y", "z", "w"], m),
    ...                      AlsParams(factors=2, iterations=20, seed=1))
    >>> model.recommend("d", k=1)[0][0]
    'y'
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from models.interactions import Interactions

__all__ = ["AlsModel", "AlsParams"]


@dataclasses.dataclass(frozen=True)
class AlsParams:
    """ALS hyperparameters."""

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    seed: int = 7


@dataclasses.dataclass
class AlsModel:
    """User and item factors with their id maps."""

    params: AlsParams
    users: list[str]
    items: list[str]
    user_factors: np.ndarray
    item_factors: np.ndarray
    seen: dict[str, set[int]]
    _user_index: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)
    _item_index: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once: a lookup per request, not a scan of every id.
        self._user_index = {u: i for i, u in enumerate(self.users)}
        self._item_index = {it: i for i, it in enumerate(self.items)}

    @classmethod
    def fit(cls, data: Interactions, params: AlsParams | None = None) -> AlsModel:
        """Fit on a users x items matrix of interaction strength."""
        p = params or AlsParams()
        als = AlternatingLeastSquares(
            factors=p.factors,
            regularization=p.regularization,
            alpha=p.alpha,
            iterations=p.iterations,
            random_state=p.seed,
            num_threads=1,
        )
        # One BLAS thread, whatever the environment says: ALS parallelises itself.
        with threadpool_limits(1, "blas"):
            als.fit(data.matrix, show_progress=False)
        seen = {
            user: set(data.matrix.indices[data.matrix.indptr[i] : data.matrix.indptr[i + 1]])
            for i, user in enumerate(data.users)
        }
        return cls(
            p,
            list(data.users),
            list(data.items),
            np.asarray(als.user_factors),
            np.asarray(als.item_factors),
            seen,
        )

    def recommend(
        self, user: str, k: int = 10, *, exclude_seen: bool = True
    ) -> list[tuple[str, float]]:
        """The ``k`` best items for a known user (``[]`` for an unknown one)."""
        index = self._user_index.get(user)
        if index is None:
            return []
        scores = self.item_factors @ self.user_factors[index]
        if exclude_seen:
            for item in self.seen.get(user, ()):
                scores[item] = -np.inf
        return self._top(scores, k)

    def similar(self, item: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items closest to ``item`` in taste (cosine of factors), itself excluded."""
        index = self._item_index.get(item)
        if index is None:
            return []
        norms = np.linalg.norm(self.item_factors, axis=1)
        norms[norms == 0] = 1.0
        scores = (self.item_factors @ self.item_factors[index]) / (norms * norms[index])
        scores[index] = -np.inf
        return self._top(scores, k)

    def _top(self, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` highest finite scores, best first, as (item, score)."""
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.items[i], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def save(self, directory: Path) -> None:
        """Write ``factors.npz`` and ``model.json`` (loadable without pickle)."""
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "factors.npz", users=self.user_factors, items=self.item_factors)
        meta = {
            "params": dataclasses.asdict(self.params),
            "users": self.users,
            "items": self.items,
            "seen": {u: sorted(int(i) for i in s) for u, s in self.seen.items()},
        }
        (directory / "model.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> AlsModel:
        """Read what ``save`` wrote."""
        meta = json.loads((directory / "model.json").read_text())
        with np.load(directory / "factors.npz", allow_pickle=False) as arrays:
            users, items = arrays["users"], arrays["items"]
        seen = {u: set(s) for u, s in meta["seen"].items()}
        return cls(AlsParams(**meta["params"]), meta["users"], meta["items"], users, items, seen)
