"""Ranking metrics on a time split, for recommenders and their baselines.

Plain functions usable from a notebook: a recommender is any ``(user, k) -> [item, ...]``.

Example:
    >>> truth = {"u": {"a", "b"}}
    >>> scores = evaluate(lambda user, k: ["a", "x", "b"][:k], truth, k=3, catalog=10)
    >>> round(scores.precision, 3), scores.recall, round(scores.ndcg, 3)
    (0.667, 1.0, 0.92)
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Mapping

__all__ = ["RankingScores", "evaluate", "popular", "repeat_purchases"]

Recommender = Callable[[str, int], list[str]]


@dataclasses.dataclass(frozen=True)
class RankingScores:
    """Mean Precision, Recall, NDCG and MAP at k over the test users, and the share of
    the catalogue recommended to anyone."""

    k: int
    users: int
    precision: float
    recall: float
    ndcg: float
    map: float
    coverage: float


def evaluate(
    recommend: Recommender, truth: Mapping[str, set[str]], *, k: int = 10, catalog: int
) -> RankingScores:
    """Score ``recommend`` against each user's items of the test period."""
    precision = recall = ndcg = average_precision = 0.0
    shown: set[str] = set()
    users = [u for u, items in truth.items() if items]
    for user in users:
        relevant = truth[user]
        ranked = recommend(user, k)[:k]
        shown.update(ranked)
        hits = [item in relevant for item in ranked]
        n_hits = sum(hits)
        precision += n_hits / k
        recall += n_hits / len(relevant)
        dcg = sum(1 / math.log2(i + 2) for i, hit in enumerate(hits) if hit)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
        ndcg += dcg / ideal
        running = 0
        ap = 0.0
        for i, hit in enumerate(hits):
            if hit:
                running += 1
                ap += running / (i + 1)
        average_precision += ap / min(k, len(relevant))
    n = max(len(users), 1)
    return RankingScores(
        k, len(users), precision / n, recall / n, ndcg / n, average_precision / n,
        len(shown) / max(catalog, 1),
    )  # fmt: skip


def popular(counts: Counter[str], seen: Mapping[str, set[str]] | None = None) -> Recommender:
    """A baseline: the most frequent items, minus what the user already has (if given)."""
    ranked = [item for item, _ in counts.most_common()]

    def recommend(user: str, k: int) -> list[str]:
        mine = seen.get(user, set()) if seen is not None else set()
        return [item for item in ranked if item not in mine][:k]

    return recommend


def repeat_purchases(bought: Mapping[str, Counter[str]], fallback: Recommender) -> Recommender:
    """A baseline: what the customer bought most often, then ``fallback``."""

    def recommend(user: str, k: int) -> list[str]:
        mine = [item for item, _ in bought.get(user, Counter()).most_common(k)]
        return (
            mine
            + [item for item in fallback(user, k + len(mine)) if item not in mine][: k - len(mine)]
        )

    return recommend
