"""Complements: which products are bought together, from order baskets.

ALS similarity finds products liked by the same people, which are often substitutes (two
espresso machines); a cross-sell wants complements (the machine and its beans). Those are
read off baskets: two products count together once per order that holds both. Each pair
is scored by the cosine of co-occurrence, ``n_ij / sqrt(n_i * n_j)``, which keeps the
best-sellers from being everyone's complement, and a pair needs ``min_support`` orders.
Pure and vectorised: an orders x items matrix multiplied by its transpose.

Example:
    >>> baskets = [["beans", "machine"], ["beans", "machine"], ["beans", "mug"], ["tea"]]
    >>> together = Complements.from_baskets(baskets, min_support=2)
    >>> together.of("machine", 3)
    [('beans', 0.8165, 2)]
    >>> together.of("tea", 3)
    []
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import events

__all__ = ["Complements", "baskets_of"]


def baskets_of(stream: Iterable[events.Event]) -> list[list[str]]:
    """The product ids of each completed order, in stream order."""
    return [
        [line.product_id for line in e.properties.products]
        for e in stream
        if type(e) is events.OrderCompleted
    ]


@dataclasses.dataclass
class Complements:
    """For each item, its best complements (at most ``keep``), as a sparse item x item
    matrix of scores with the co-occurrence counts beside."""

    items: list[str]
    scores: sp.csr_matrix
    counts: sp.csr_matrix
    _index: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {item: i for i, item in enumerate(self.items)}

    @classmethod
    def from_baskets(
        cls,
        baskets: Iterable[Sequence[str]],
        *,
        items: Sequence[str] | None = None,
        min_support: int = 2,
        keep: int = 50,
    ) -> Complements:
        """Count pairs over ``baskets`` (each a list of product ids).

        Args:
            baskets: One list of product ids per order.
            items: The item index to use (products outside it are ignored); by default
                every product seen, in order of appearance.
            min_support: Orders a pair needs to count.
            keep: Complements kept per item (the best scored).
        """
        index: dict[str, int] = {item: i for i, item in enumerate(items or ())}
        fixed = items is not None
        rows: list[int] = []
        cols: list[int] = []
        for order, basket in enumerate(baskets):
            for product in dict.fromkeys(basket):  # a product counts once per order
                column = index.get(product)
                if column is None:
                    if fixed:
                        continue
                    column = index[product] = len(index)
                rows.append(order)
                cols.append(column)
        orders = (max(rows) + 1) if rows else 0
        incidence = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(orders, len(index))
        )
        together = (incidence.T @ incidence).tocsr()
        bought = together.diagonal().copy()
        together.setdiag(0)
        together.data[together.data < min_support] = 0
        together.eliminate_zeros()
        coo = together.tocoo()
        cosine = coo.data / np.sqrt(bought[coo.row] * bought[coo.col])
        scores = sp.csr_matrix((cosine.astype(np.float32), (coo.row, coo.col)), shape=coo.shape)
        scores, counts = _keep_best(scores, together, keep)
        return cls(list(index), scores, counts)

    def of(self, item: str, k: int = 10) -> list[tuple[str, float, int]]:
        """The ``k`` best complements of ``item``: (product, score, orders together)."""
        index = self._index.get(item)
        if index is None:
            return []
        start, end = self.scores.indptr[index], self.scores.indptr[index + 1]
        found = zip(
            self.scores.indices[start:end],
            self.scores.data[start:end],
            self.counts.data[start:end],
            strict=True,
        )
        ranked = sorted(found, key=lambda entry: (-entry[1], entry[0]))[:k]
        return [(self.items[i], round(float(s), 4), int(n)) for i, s, n in ranked]

    def index(self, item: str) -> int | None:
        """The row of ``item``, ``None`` if it was never bought."""
        return self._index.get(item)

    def save(self, path: Path) -> None:
        """Write the matrices to ``path`` (``.npz``) and the ids beside (``.json``)."""
        np.savez(
            path,
            indptr=self.scores.indptr,
            indices=self.scores.indices,
            scores=self.scores.data,
            counts=self.counts.data,
            items=np.asarray(self.items, dtype=np.str_),
        )

    @classmethod
    def load(cls, path: Path) -> Complements:
        """Read what ``save`` wrote."""
        with np.load(path, allow_pickle=False) as a:
            items = [str(i) for i in a["items"]]
            shape = (len(items), len(items))
            scores = sp.csr_matrix((a["scores"], a["indices"], a["indptr"]), shape=shape)
            counts = sp.csr_matrix((a["counts"], a["indices"], a["indptr"]), shape=shape)
        return cls(items, scores, counts)


def _keep_best(
    scores: sp.csr_matrix, counts: sp.csr_matrix, keep: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Each row's ``keep`` best scores, with their counts on the same sparsity pattern."""
    scores.sort_indices()
    counts = counts.tocsr()
    counts.sort_indices()
    rows, cols, kept, kept_counts = [], [], [], []
    for row in range(scores.shape[0]):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        if start == end:
            continue
        data = scores.data[start:end]
        best = np.argsort(-data, kind="stable")[:keep]
        columns = scores.indices[start:end][best]
        rows.append(np.full(len(best), row))
        cols.append(columns)
        kept.append(data[best])
        kept_counts.append(np.asarray(counts[row, columns].todense()).ravel())
    if not rows:
        empty = sp.csr_matrix(scores.shape, dtype=np.float32)
        return empty, empty.copy()
    r, c = np.concatenate(rows), np.concatenate(cols)
    s = sp.csr_matrix((np.concatenate(kept), (r, c)), shape=scores.shape, dtype=np.float32)
    n = sp.csr_matrix((np.concatenate(kept_counts), (r, c)), shape=scores.shape, dtype=np.float32)
    s.sort_indices()
    n.sort_indices()
    return s, n
