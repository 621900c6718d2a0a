"""Implicit-feedback ALS for recommendations: fit, recommend, fold in, save and load.

A thin, typed layer over ``implicit``'s CPU ALS: seeded, one BLAS thread, id maps and the
training matrix kept beside the factors, artifacts as ``.npz`` + JSON (no pickle).

A customer the model has never seen, or one with new activity, is *folded in*: their
factor is the exact least-squares answer to the item factors and their interactions
(the ALS user step, solved once for one user), so a visitor of a minute ago gets
personal scores without retraining.

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> from models.interactions import Interactions
    >>> m = sp.csr_matrix(np.array([[5, 5, 0, 0], [5, 5, 0, 0], [0, 0, 5, 5], [5, 0, 0, 0]],
    ...                            dtype=np.float32))
    >>> model = AlsModel.fit(Interactions(["a", "b", "c", "d"], ["x", "y", "z", "w"], m),
    ...                      AlsParams(factors=2, iterations=20, seed=1))
    >>> model.recommend("d", k=1)[0][0]
    'y'
    >>> vector = model.fold_in(np.array([2]), np.array([5.0]))  # someone who touched "z"
    >>> model.top(model.scores(vector), 1, exclude=[2])[0][0]
    'w'
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
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
    """User and item factors, their id maps, and the users x items training matrix."""

    params: AlsParams
    users: list[str]
    items: list[str]
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_items: sp.csr_matrix
    _user_index: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)
    _item_index: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)
    _gram: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    _unit: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once per model: a lookup per request, not a scan of every id.
        self._user_index = {u: i for i, u in enumerate(self.users)}
        self._item_index = {it: i for i, it in enumerate(self.items)}
        factors = self.item_factors.astype(np.float64)
        self._gram = factors.T @ factors + self.params.regularization * np.eye(factors.shape[1])
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        self._unit = (self.item_factors / norms).astype(np.float32)

    @classmethod
    def fit(
        cls,
        data: Interactions,
        params: AlsParams | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> AlsModel:
        """Fit on a users x items matrix of interaction strength.

        Args:
            data: The interactions.
            params: Hyperparameters (defaults if ``None``).
            progress: Called with the number of the iteration just finished.
        """
        p = params or AlsParams()
        als = AlternatingLeastSquares(
            factors=p.factors,
            regularization=p.regularization,
            alpha=p.alpha,
            iterations=p.iterations,
            random_state=p.seed,
            num_threads=1,
        )
        callback = None
        if progress is not None:
            step = progress

            def callback(iteration: int, _elapsed: float, *_: object) -> None:
                step(iteration + 1)

        # One BLAS thread, whatever the environment says: ALS parallelises itself.
        with threadpool_limits(1, "blas"):
            als.fit(data.matrix, show_progress=False, callback=callback)
        return cls(
            p,
            list(data.users),
            list(data.items),
            np.asarray(als.user_factors),
            np.asarray(als.item_factors),
            sp.csr_matrix(data.matrix, dtype=np.float32),
        )

    def user_index(self, user: str) -> int | None:
        """The row of a known user, ``None`` for an unknown one."""
        return self._user_index.get(user)

    def item_index(self, item: str) -> int | None:
        """The row of a known item, ``None`` for an unknown one."""
        return self._item_index.get(item)

    def history(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """The items (indexes) and strengths of a user's training row."""
        start, end = self.user_items.indptr[user], self.user_items.indptr[user + 1]
        return self.user_items.indices[start:end], self.user_items.data[start:end]

    def fold_in(self, items: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        """The factor of a user with these interactions (item indexes and strengths on the
        training scale), holding the item factors fixed: ALS's exact user step."""
        if len(items) == 0:
            return np.zeros(self.item_factors.shape[1], dtype=np.float32)
        confidence = self.params.alpha * np.asarray(strengths, dtype=np.float64)
        touched = self.item_factors[items].astype(np.float64)
        # Confidence c means (c - 1) more weight than an untouched item, whose weight 1 is
        # already in the Gram matrix (implicit's least_squares, vectorised).
        a = self._gram + (touched.T * (confidence - 1.0)) @ touched
        b = touched.T @ confidence
        return np.linalg.solve(a, b).astype(np.float32)

    def scores(self, user_vector: np.ndarray) -> np.ndarray:
        """Every item's score for a user factor (a fresh array the caller may change)."""
        return np.asarray(self.item_factors @ user_vector, dtype=np.float32)

    def similarities(self, item: int) -> np.ndarray:
        """Every item's cosine similarity of factors to ``item`` (a fresh array)."""
        return np.asarray(self._unit @ self._unit[item], dtype=np.float32)

    def cosine(self, items: np.ndarray, others: np.ndarray) -> np.ndarray:
        """The cosine similarities of factors, ``len(items) x len(others)``."""
        return np.asarray(self._unit[items] @ self._unit[others].T, dtype=np.float32)

    def recommend(
        self, user: str, k: int = 10, *, exclude_seen: bool = True
    ) -> list[tuple[str, float]]:
        """The ``k`` best items for a known user (``[]`` for an unknown one)."""
        index = self._user_index.get(user)
        if index is None:
            return []
        scores = self.scores(self.user_factors[index])
        return self.top(scores, k, exclude=self.history(index)[0] if exclude_seen else ())

    def similar(self, item: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items closest to ``item`` in taste (cosine of factors), itself excluded."""
        index = self._item_index.get(item)
        if index is None:
            return []
        return self.top(self.similarities(index), k, exclude=[index])

    def top(
        self, scores: np.ndarray, k: int, *, exclude: Sequence[int] | np.ndarray = ()
    ) -> list[tuple[str, float]]:
        """The ``k`` highest finite scores, best first, as (item, score); ``scores`` is
        changed in place where excluded."""
        if len(exclude):
            scores[np.asarray(exclude, dtype=np.intp)] = -np.inf
        return [(self.items[i], float(scores[i])) for i in top_indexes(scores, k)]

    def save(self, directory: Path) -> None:
        """Write ``factors.npz`` and ``model.json`` (loadable without pickle)."""
        directory.mkdir(parents=True, exist_ok=True)
        m = self.user_items
        np.savez(
            directory / "factors.npz",
            users=self.user_factors,
            items=self.item_factors,
            indptr=m.indptr,
            indices=m.indices,
            data=m.data,
        )
        meta = {"params": dataclasses.asdict(self.params), "users": self.users, "items": self.items}
        (directory / "model.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> AlsModel:
        """Read what ``save`` wrote."""
        meta = json.loads((directory / "model.json").read_text())
        with np.load(directory / "factors.npz", allow_pickle=False) as arrays:
            users, items = arrays["users"], arrays["items"]
            matrix = sp.csr_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]),
                shape=(len(meta["users"]), len(meta["items"])),
            )
        return cls(AlsParams(**meta["params"]), meta["users"], meta["items"], users, items, matrix)


def top_indexes(scores: np.ndarray, k: int) -> list[int]:
    """The indexes of the ``k`` highest finite scores, best first (ties by index)."""
    if k <= 0 or len(scores) == 0:
        return []
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]
    return [int(i) for i in top if np.isfinite(scores[i])]
