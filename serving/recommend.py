"""The recommendation rules, pure: no HTTP, no Redis, no clock (``now`` is passed in).

``Recommender`` joins one trained version (ALS factors, basket complements) with the
live catalogue and answers the website's and the app's questions:

- ``for_customer``: ALS scores of a known customer; a customer the model has not seen,
  or one with activity after the training window, is folded in from their recent
  interactions; without any, what is popular in their favourite category, then what is
  trending. No consent to personalise: trending only.
- ``cross_sell``: complements bought together with one product, then products close in
  taste from other categories, then what is popular in its category.
- ``basket``: complements of a whole cart, summed over its products, then the cart's
  taste folded in as a session.
- ``up_sell``: the same category, a higher price inside a band, closest in taste.
- ``replenishment``: the customer's consumables that are due again (next best offer).

Every list skips products out of stock; a retired product gives way to its successor;
products bought recently are not offered again unless consumable and due. Each item
carries a reason code and the product the reason names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import numpy as np

from models.als import top_indexes
from models.artifact import RecommenderArtifact
from models.interactions import Weights
from serving.catalog import Catalog
from serving.customers import CustomerView

__all__ = [
    "REASONS",
    "Answer",
    "Reason",
    "Recommender",
    "Rules",
    "Suggestion",
    "Trending",
    "describe",
    "popular_only",
]

Reason = Literal[
    "because_you_bought",
    "because_you_added",
    "because_you_viewed",
    "matches_your_taste",
    "due_again",
    "successor_of",
    "bought_together",
    "similar_taste",
    "step_up",
    "popular_in_category",
    "trending",
]
REASONS: Final = Reason.__args__  # type: ignore[attr-defined]
_DAY: Final = 86_400.0
_BECAUSE: Final[dict[str, Reason]] = {
    "purchase": "because_you_bought",
    "add": "because_you_added",
    "view": "because_you_viewed",
    "click": "because_you_viewed",
}
_RANK: Final = {"purchase": 3, "add": 2, "click": 1, "view": 1}  # which kind explains best


@dataclasses.dataclass(frozen=True, slots=True)
class Suggestion:
    """One recommended product, its score and why."""

    product_id: str
    score: float
    reason: Reason
    related: str | None = None  # the product the reason names


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A ranked list and how it was made."""

    items: list[Suggestion]
    source: str  # als, fold_in, complements, up_sell, category_popularity, trending
    personalized: bool
    fallback: str | None = None  # why a fallback answered; None when the model did


@dataclasses.dataclass(frozen=True)
class Trending:
    """What is popular now, overall and by category, best first."""

    overall: Sequence[str] = ()
    by_category: dict[str, list[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Rules:
    """The business rules of every answer (from the serving settings)."""

    exclude_bought_days: float = 90.0
    replenishment_lead: float = 0.85
    up_sell_band: tuple[float, float] = (1.1, 2.0)
    requires_consent: bool = False
    weights: Weights = dataclasses.field(default_factory=Weights)


class _Picks:
    """A list under construction: each product once, only what may be shown."""

    def __init__(self, catalog: Catalog, k: int, taken: Iterable[str]) -> None:
        self.catalog = catalog
        self.k = k
        self.taken = set(taken)
        self.items: list[Suggestion] = []

    @property
    def full(self) -> bool:
        return len(self.items) >= self.k

    def add(self, product: str, score: float, reason: Reason, related: str | None) -> None:
        """Add ``product``, or its successor if it is retired; skip what cannot be shown."""
        if self.full or product in self.taken:
            return
        facts = self.catalog.get(product)
        if facts is not None and not facts.available:
            self.taken.add(product)
            follow = facts.successor if facts.retired else None
            if follow is None or follow in self.taken or not self.catalog.is_available(follow):
                return
            product, reason, related = follow, "successor_of", product
        self.taken.add(product)
        self.items.append(Suggestion(product, round(score, 6), reason, related))


class Recommender:
    """One model version with the live catalogue.

    Args:
        artifact: The trained version.
        catalog: Item facts, its arrays aligned with ``artifact.als.items``.
        rules: Exclusion and band rules.
    """

    def __init__(self, artifact: RecommenderArtifact, catalog: Catalog, rules: Rules) -> None:
        self.artifact = artifact
        self.catalog = catalog
        self.rules = rules
        self._als = artifact.als
        until = artifact.metadata.get("window", {}).get("until")
        self._until = dt.datetime.fromisoformat(until).timestamp() if until else -math.inf
        self._decay = math.log(2) / (rules.weights.half_life_days * _DAY)
        self._strength = {
            "view": rules.weights.view,
            "click": rules.weights.view,
            "add": rules.weights.add,
            "purchase": rules.weights.purchase,
        }
        # Retired items hand their score to their successor, in one vectorised step.
        pairs = sorted(catalog.successor.items())
        self._retired = np.asarray([old for old, _ in pairs], dtype=np.intp)
        self._successors = np.asarray([new for _, new in pairs], dtype=np.intp)
        self._unavailable = np.flatnonzero(~catalog.available)

    @property
    def version(self) -> str:
        """The model version answering."""
        return self.artifact.version

    # -- for a customer ---------------------------------------------------------------

    def for_customer(
        self,
        customer_id: str,
        customer: CustomerView | None,
        k: int,
        *,
        now: float,
        trending: Trending,
    ) -> Answer:
        """Recommendations for one customer (``customer`` is ``None`` when nothing is
        stored for them)."""
        if customer is None or customer.erased:
            known = customer is None and self._als.user_index(customer_id) is not None
            if not known:
                return self._popular(k, trending, fallback="unknown_customer")
            customer = CustomerView()  # in the model, not (or no longer) in Redis
        consent = customer.personalization
        if consent is False or (self.rules.requires_consent and consent is not True):
            return self._popular(k, trending, fallback="no_consent")
        excluded, due = self._bought(customer, now)
        taste = self._taste(customer_id, customer, now)
        if taste is None:
            return self._popular(
                k, trending, taken=excluded, categories=customer.categories, fallback="no_history"
            )
        vector, source, history = taste
        als = self._als
        scores = als.scores(vector)
        blocked = [i for p in excluded if (i := als.item_index(p)) is not None]
        picks = _Picks(self.catalog, k, excluded)
        ranked = self._ranked(scores, k, blocked)
        because = self._explain([index for index, _, _ in ranked], history)
        for (index, score, inherited), (reason, related) in zip(ranked, because, strict=True):
            product = als.items[index]
            if product in due:
                picks.add(product, score, "due_again", product)
            elif inherited is not None:
                picks.add(product, score, "successor_of", als.items[inherited])
            else:
                picks.add(product, score, reason, related)
        if not picks.full:  # a tiny or mostly unavailable catalogue
            self._fill(picks, trending, ())
        return Answer(picks.items, source, personalized=True)

    def _taste(
        self, customer_id: str, customer: CustomerView, now: float
    ) -> tuple[np.ndarray, str, list[tuple[int, str]]] | None:
        """The customer's factor, how it was made, and their recent items (index, kind)
        for explanations; ``None`` when nothing they did is known to the model."""
        als = self._als
        recent: list[tuple[int, str, float]] = []
        for r in customer.recent:
            index = als.item_index(r.product_id)
            if index is not None and r.kind in self._strength:
                recent.append((index, r.kind, r.at))
        history = _strongest(recent)
        row = als.user_index(customer_id)
        fresh = [entry for entry in recent if entry[2] > self._until]
        if row is not None and not fresh:
            return als.user_factors[row], "als", history
        items: list[np.ndarray] = []
        strengths: list[np.ndarray] = []
        if row is not None:
            # Training strengths were decayed to the window's end: age them to now.
            trained, trained_strengths = als.history(row)
            items.append(trained)
            strengths.append(trained_strengths * math.exp(-self._decay * (now - self._until)))
        entries = fresh if row is not None else recent
        if entries:
            items.append(np.asarray([e[0] for e in entries], dtype=np.intp))
            strengths.append(
                np.asarray(
                    [
                        self._strength[kind] * math.exp(-self._decay * max(0.0, now - at))
                        for _, kind, at in entries
                    ]
                )
            )
        if not items or not sum(len(i) for i in items):
            return None
        unique, where = np.unique(np.concatenate(items), return_inverse=True)
        summed = np.zeros(len(unique))
        np.add.at(summed, where, np.concatenate(strengths))
        return als.fold_in(unique, summed), "fold_in", history

    def _bought(self, customer: CustomerView, now: float) -> tuple[set[str], set[str]]:
        """Products bought recently that must not come back, and consumables due again."""
        horizon = self.rules.exclude_bought_days * _DAY
        excluded: set[str] = set()
        due: set[str] = set()
        for r in customer.recent:  # newest first: a product's latest purchase decides
            if r.kind != "purchase" or r.product_id in excluded or r.product_id in due:
                continue
            age = now - r.at
            if age > horizon:
                continue
            facts = self.catalog.get(r.product_id)
            cycle = facts.replenishment_days if facts is not None else None
            if cycle is not None and age >= self.rules.replenishment_lead * cycle * _DAY:
                due.add(r.product_id)
            else:
                excluded.add(r.product_id)
        return excluded, due

    def replenishment(self, customer: CustomerView, k: int, *, now: float) -> Answer:
        """The consumables the customer is due to buy again (a retired one gives way to its
        successor), their latest purchase first; each names the product bought."""
        _, due = self._bought(customer, now)
        picks = _Picks(self.catalog, k, ())
        for r in customer.recent:
            if r.kind == "purchase" and r.product_id in due:
                picks.add(r.product_id, 1.0 / (1 + len(picks.items)), "due_again", r.product_id)
        return Answer(picks.items, "due_again", personalized=True)

    def _ranked(
        self, scores: np.ndarray, k: int, blocked: Sequence[int]
    ) -> list[tuple[int, float, int | None]]:
        """The ``k`` best shown items: (index, score, retired item it stands in for)."""
        inherited: dict[int, int] = {}
        if len(self._retired):
            gain = scores[self._retired] > scores[self._successors]
            for old, new in zip(self._retired[gain], self._successors[gain], strict=True):
                if scores[old] > scores[new]:  # two retired items may share a successor
                    scores[new] = scores[old]
                    inherited[int(new)] = int(old)
        scores[self._unavailable] = -np.inf
        if blocked:
            scores[np.asarray(blocked, dtype=np.intp)] = -np.inf
        return [(i, float(scores[i]), inherited.get(i)) for i in top_indexes(scores, k)]

    def _explain(
        self, chosen: Sequence[int], history: list[tuple[int, str]]
    ) -> list[tuple[Reason, str | None]]:
        """For each chosen item, the recent item closest in taste and what the customer
        did with it (one small matrix product for the whole list)."""
        if not history or not chosen:
            return [("matches_your_taste", None)] * len(chosen)
        items = np.asarray([h[0] for h in history], dtype=np.intp)
        closest = self._als.cosine(np.asarray(chosen, dtype=np.intp), items).argmax(axis=1)
        out: list[tuple[Reason, str | None]] = []
        for index, best in zip(chosen, closest.tolist(), strict=True):
            item, kind = history[best]
            if item == index:
                out.append(("matches_your_taste", None))
            else:
                out.append((_BECAUSE[kind], self._als.items[item]))
        return out

    # -- for products -----------------------------------------------------------------

    def cross_sell(self, product_id: str, k: int, *, trending: Trending) -> Answer:
        """Products to show beside ``product_id``: complements first."""
        picks = _Picks(self.catalog, k, [product_id])
        for other, score, _ in self.artifact.complements.of(product_id, 3 * k + 10):
            picks.add(other, score, "bought_together", product_id)
        used_complements = bool(picks.items)
        index = self._als.item_index(product_id)
        if not picks.full and index is not None:
            scores = self._als.similarities(index)
            code = self.catalog.category[index]
            if code >= 0:  # the same category holds substitutes, not complements
                scores[self.catalog.category == code] = -np.inf
            blocked = [i for p in picks.taken if (i := self._als.item_index(p)) is not None]
            for i, score, _ in self._ranked(scores, 2 * k, blocked):
                picks.add(self._als.items[i], score, "similar_taste", product_id)
        fallback: str | None
        if used_complements:
            source, fallback = "complements", None
        elif index is not None:
            source, fallback = "similar_taste", "no_complements"
        else:
            source, fallback = "trending", "unknown_product"
        self._fill(picks, trending, self._categories_of([product_id]))
        return Answer(picks.items, source, personalized=False, fallback=fallback)

    def basket(self, products: Sequence[str], k: int, *, trending: Trending) -> Answer:
        """Products that complete a cart: complements of every product in it, summed."""
        picks = _Picks(self.catalog, k, products)
        complements = self.artifact.complements
        rows = [r for p in dict.fromkeys(products) if (r := complements.index(p)) is not None]
        if rows:
            block = complements.scores[rows]
            total = np.asarray(block.sum(axis=0)).ravel()
            contributor = np.asarray(block.argmax(axis=0)).ravel()
            candidates = np.flatnonzero(total)
            order = candidates[np.lexsort((candidates, -total[candidates]))]
            for col in order[: 3 * k + 10]:
                related = complements.items[rows[int(contributor[col])]]
                picks.add(complements.items[col], float(total[col]), "bought_together", related)
        used_complements = bool(picks.items)
        known = [i for p in products if (i := self._als.item_index(p)) is not None]
        if not picks.full and known:
            session = self._als.fold_in(
                np.asarray(sorted(set(known)), dtype=np.intp),
                np.full(len(set(known)), self.rules.weights.add),
            )
            blocked = [i for p in picks.taken if (i := self._als.item_index(p)) is not None]
            history = [(i, "add") for i in dict.fromkeys(known)]
            ranked = self._ranked(self._als.scores(session), k - len(picks.items), blocked)
            explained = self._explain([i for i, _, _ in ranked], history)
            for (i, score, _), (_, because) in zip(ranked, explained, strict=True):
                picks.add(self._als.items[i], score, "similar_taste", because)
        fallback: str | None
        if used_complements:
            source, fallback = "complements", None
        elif known:
            source, fallback = "similar_taste", "no_complements"
        else:
            source, fallback = "trending", "unknown_products"
        self._fill(picks, trending, self._categories_of(products))
        return Answer(picks.items, source, personalized=False, fallback=fallback)

    def up_sell(self, product_id: str, k: int) -> Answer:
        """Dearer products of the same category, inside the price band, closest in taste."""
        facts = self.catalog.get(product_id)
        code = self.catalog.category_code(product_id)
        if facts is None or facts.price is None or code < 0:
            return Answer([], "up_sell", personalized=False, fallback="unknown_product")
        low, high = self.rules.up_sell_band
        price = self.catalog.price
        with np.errstate(invalid="ignore"):  # unknown prices are NaN and never match
            band = (price >= facts.price * low) & (price <= facts.price * high)
        allowed = band & (self.catalog.category == code) & self.catalog.available
        index = self._als.item_index(product_id)
        if index is not None:
            scores = self._als.similarities(index)
        else:  # not in the model: the smallest step up first
            scores = np.asarray(-price, dtype=np.float32)
        scores[~allowed] = -np.inf
        if index is not None:
            scores[index] = -np.inf
        picks = _Picks(self.catalog, k, [product_id])
        for i in top_indexes(scores, k):
            picks.add(self._als.items[i], float(scores[i]), "step_up", product_id)
        return Answer(picks.items, "up_sell", personalized=False)

    # -- popularity -------------------------------------------------------------------

    def _popular(
        self,
        k: int,
        trending: Trending,
        *,
        taken: Iterable[str] = (),
        categories: Sequence[str] = (),
        fallback: str | None,
    ) -> Answer:
        """Popular in the given categories, then trending, then the model's best-sellers."""
        picks = _Picks(self.catalog, k, taken)
        self._fill(picks, trending, categories)
        in_category = any(s.reason == "popular_in_category" for s in picks.items)
        source = "category_popularity" if in_category else "trending"
        return Answer(picks.items, source, personalized=in_category, fallback=fallback)

    def _fill(self, picks: _Picks, trending: Trending, categories: Sequence[str]) -> None:
        ranked: Sequence[str]
        for category in categories[:2]:
            ranked = trending.by_category.get(category) or [
                p for p in self.artifact.popular if self._category(p) == category
            ]
            for position, product in enumerate(ranked):
                picks.add(product, 1.0 / (1 + position), "popular_in_category", None)
        for ranked in (trending.overall, self.artifact.popular):
            for position, product in enumerate(ranked):
                if picks.full:
                    return
                picks.add(product, 1.0 / (1 + position), "trending", None)

    def _category(self, product_id: str) -> str | None:
        facts = self.catalog.get(product_id)
        return facts.category if facts is not None else None

    def _categories_of(self, products: Sequence[str]) -> list[str]:
        return [c for p in products if (c := self._category(p)) is not None]


def _strongest(recent: list[tuple[int, str, float]]) -> list[tuple[int, str]]:
    """Each recent item once, with the strongest thing done to it (purchase > add > view)."""
    best: dict[int, str] = {}
    for index, kind, _ in recent:
        if _RANK[kind] > _RANK.get(best.get(index, ""), 0):
            best[index] = kind
    return list(best.items())


_TEXT: Final[dict[str, str]] = {
    "because_you_bought": "Because you bought {}",
    "because_you_added": "Because you added {} to your cart",
    "because_you_viewed": "Because you viewed {}",
    "matches_your_taste": "Matches your taste",
    "due_again": "Time to stock up again",
    "successor_of": "The new version of {}",
    "bought_together": "Bought together with {}",
    "similar_taste": "Liked by people who like {}",
    "step_up": "A step up from {}",
    "popular_in_category": "Popular in {}",
    "trending": "Trending now",
}


_BARE: Final[dict[str, str]] = {
    "because_you_bought": "Based on what you bought",
    "because_you_added": "Based on your cart",
    "because_you_viewed": "Based on what you viewed",
    "successor_of": "The new version of a product you know",
    "bought_together": "Often bought together",
    "similar_taste": "Liked by people with your taste",
    "step_up": "A step up",
    "popular_in_category": "Popular in your favourite category",
}


def describe(reason: Reason, related_name: str | None, category: str | None = None) -> str:
    """The reason as a sentence for the page (the related product's name, or category)."""
    template = _TEXT[reason]
    if "{}" not in template:
        return template
    named = category if reason == "popular_in_category" else related_name
    return template.format(named) if named else _BARE[reason]


def popular_only(trending: Trending, k: int) -> list[Suggestion]:
    """Trending products when no model is loaded (no catalogue facts to filter with)."""
    return [
        Suggestion(product, 1.0 / (1 + position), "trending", None)
        for position, product in enumerate(trending.overall[:k])
    ]
