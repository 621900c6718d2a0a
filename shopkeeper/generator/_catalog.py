"""The catalogue: products, prices, stock, lifecycle, and the planted ladders and pairs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shopkeeper.generator._taxonomy import BRANDS, COMPLEMENTS, LEAVES, Leaf

__all__ = ["LIFECYCLES", "Catalog", "build_catalog"]

LIFECYCLES = ("active", "discontinued", "end_of_life")
_RUNGS = ("Basic", "Plus", "Pro", "Ultra")
_RUNG_STEP = (1.0, 1.4, 1.9, 2.5)
_ZIPF = 1.1
_ON_SALE = 0.15
_RETIRED = 0.03
_OUT_OF_STOCK = 0.04


@dataclass
class Catalog:
    """Static product attributes (numpy columns) plus lookup tables for sampling.

    Prices, stock and lifecycle here are the state at the start of a run; runs copy them.
    """

    leaves: tuple[Leaf, ...]
    ids: list[str]
    skus: list[str]
    names: list[str]
    brands: list[str]
    cat: np.ndarray
    price: np.ndarray
    list_price: np.ndarray
    stock: np.ndarray
    lifecycle: np.ndarray
    successor: np.ndarray
    margin: np.ndarray
    cycle: np.ndarray
    tier: np.ndarray
    pop: np.ndarray
    planted: np.ndarray
    ladders: list[list[int]] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    ladder_of: dict[int, tuple[int, int]] = field(default_factory=dict)
    complement_of: dict[int, int] = field(default_factory=dict)
    by_cat_tier: list[list[tuple[list[int], list[float]]]] = field(default_factory=list)
    by_cat_brand: dict[tuple[int, str], tuple[list[int], list[float]]] = field(default_factory=dict)
    by_cat: list[tuple[list[int], list[float]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def _leaf_counts(n: int, rng: np.random.Generator) -> np.ndarray:
    leaves = len(LEAVES)
    base = max(3, min(20, n // leaves // 2))
    rest = max(0, n - base * leaves)
    weights = rng.dirichlet(np.full(leaves, 8.0))
    counts = base + rng.multinomial(rest, weights)
    # Trim or pad the largest categories so the total is exactly n.
    while counts.sum() > n:
        counts[int(np.argmax(counts))] -= 1
    counts[int(np.argmin(counts))] += n - counts.sum()
    return counts


def _shop_price(x: float) -> float:
    # Retail prices end in .99 above a few euros; cheap goods keep cents.
    return round(max(1.0, round(x)) - 0.01, 2) if x > 5 else round(max(x, 0.49), 2)


def build_catalog(
    n: int, config_ladders: int, config_pairs: int, rng: np.random.Generator
) -> Catalog:
    """Build a catalogue of ``n`` products with planted ladders and complement pairs."""
    counts = _leaf_counts(n, rng)
    cat = np.repeat(np.arange(len(LEAVES)), counts)
    medians = np.array([leaf.median_price for leaf in LEAVES])[cat]
    sigmas = np.array([leaf.sigma for leaf in LEAVES])[cat]
    raw = medians * np.exp(sigmas * rng.standard_normal(n))
    brands: list[str] = []
    pop = np.empty(n)
    start = 0
    for c, count in enumerate(counts):
        dept_brands = BRANDS[LEAVES[c].department]
        k = int(np.clip(count // 10, 2, 8))
        chosen = rng.choice(len(dept_brands), size=k, replace=False)
        brand_weights = 1.0 / np.arange(1, k + 1)
        picks = rng.choice(chosen, size=count, p=brand_weights / brand_weights.sum())
        brands.extend(dept_brands[i] for i in picks)
        # Zipf-ish popularity inside the category, so global popularity is a real baseline.
        pop[start : start + count] = 1.0 / (rng.permutation(count) + 1.0) ** _ZIPF
        start += count
    ids = [f"p-{i:05d}" for i in range(n)]
    price = np.array([_shop_price(x) for x in raw])
    catalog = Catalog(
        leaves=LEAVES,
        ids=ids,
        skus=[f"SKU-{LEAVES[c].department[:3].upper()}-{i:05d}" for i, c in enumerate(cat)],
        names=[],
        brands=brands,
        cat=cat,
        price=price,
        list_price=np.full(n, np.nan),
        stock=np.zeros(n, dtype=np.int64),
        lifecycle=np.zeros(n, dtype=np.int64),
        successor=np.full(n, -1, dtype=np.int64),
        margin=np.zeros(n),
        cycle=np.array([LEAVES[c].cycle_days for c in cat], dtype=np.int64),
        tier=np.zeros(n, dtype=np.int64),
        pop=pop,
        planted=np.zeros(n, dtype=bool),
    )
    models = rng.integers(100, 990, size=n)
    catalog.names = [
        f"{brands[i]} {LEAVES[c].name} {chr(65 + i % 26)}{models[i]}" for i, c in enumerate(cat)
    ]
    _plant_ladders(catalog, config_ladders, rng)
    _finish(catalog, rng)
    _plant_pairs(catalog, config_pairs, rng)
    _index(catalog)
    return catalog


def _plant_ladders(catalog: Catalog, wanted: int, rng: np.random.Generator) -> None:
    groups: dict[tuple[int, str], list[int]] = {}
    for i, c in enumerate(catalog.cat.tolist()):
        if LEAVES[c].cycle_days == 0:
            groups.setdefault((c, catalog.brands[i]), []).append(i)
    candidates = [key for key, members in groups.items() if len(members) >= 3]
    order = rng.permutation(len(candidates))
    for j in order[:wanted]:
        c, brand = candidates[j]
        members = groups[candidates[j]]
        size = min(len(members), int(rng.integers(3, 5)))
        rungs = [int(x) for x in rng.choice(members, size=size, replace=False)]
        base = LEAVES[c].median_price * float(np.exp(0.2 * rng.standard_normal()))
        family = catalog.names[rungs[0]].split()[-1]
        top = float(catalog.pop[catalog.cat == c].max())
        for r, p in enumerate(rungs):
            catalog.price[p] = _shop_price(base * _RUNG_STEP[r])
            catalog.names[p] = f"{brand} {LEAVES[c].name} {family} {_RUNGS[r]}"
            # The entry rung is a best seller, so up-sell has traffic to work on.
            catalog.pop[p] = top * (0.9 if r == 0 else 0.3 / r)
            catalog.planted[p] = True
            catalog.ladder_of[p] = (len(catalog.ladders), r)
        catalog.ladders.append(rungs)


def _finish(catalog: Catalog, rng: np.random.Generator) -> None:
    n = len(catalog)
    for c in range(len(LEAVES)):
        members = np.flatnonzero(catalog.cat == c)
        ranks = np.argsort(np.argsort(catalog.price[members]))
        catalog.tier[members] = (3 * ranks) // max(1, len(members))
    free = ~catalog.planted
    sale = free & (rng.random(n) < _ON_SALE)
    catalog.list_price[sale] = catalog.price[sale]
    cut = rng.uniform(0.1, 0.3, size=n)
    catalog.price[sale] = np.round(catalog.price[sale] * (1 - cut[sale]), 2)
    catalog.stock[:] = rng.geometric(1 / 40, size=n)
    catalog.stock[free & (rng.random(n) < _OUT_OF_STOCK)] = 0
    dept_margin = {"Grocery": 0.18, "Home": 0.35, "Electronics": 0.12, "Fashion": 0.5}
    base = np.array([dept_margin.get(LEAVES[c].department, 0.4) for c in catalog.cat])
    catalog.margin[:] = np.round(np.clip(base + 0.05 * rng.standard_normal(n), 0.02, 0.7), 3)
    retired = np.flatnonzero(free & (rng.random(n) < _RETIRED))
    for p in retired.tolist():
        peers = np.flatnonzero((catalog.cat == catalog.cat[p]) & (catalog.lifecycle == 0))
        peers = peers[peers != p]
        if len(peers) == 0:
            continue
        catalog.lifecycle[p] = 1 + int(rng.integers(0, 2))
        catalog.successor[p] = int(rng.choice(peers))
        catalog.stock[p] = 0


def _plant_pairs(catalog: Catalog, wanted: int, rng: np.random.Generator) -> None:
    index = {leaf.path: c for c, leaf in enumerate(LEAVES)}
    usable = (~catalog.planted) & (catalog.lifecycle == 0)
    per = [
        wanted // len(COMPLEMENTS) + (k < wanted % len(COMPLEMENTS))
        for k in range(len(COMPLEMENTS))
    ]
    for (a_path, b_path), count in zip(COMPLEMENTS, per, strict=True):
        a_members = np.flatnonzero((catalog.cat == index[a_path]) & usable)
        b_members = np.flatnonzero((catalog.cat == index[b_path]) & usable)
        if len(a_members) == 0 or len(b_members) == 0:
            continue
        # Antecedents among the best sellers, so the pair has enough orders to be found.
        a_sorted = a_members[np.argsort(-catalog.pop[a_members])][: max(1, len(a_members) // 2)]
        b_sorted = b_members[np.argsort(-catalog.pop[b_members])][
            : max(1, (2 * len(b_members)) // 3)
        ]
        for a in a_sorted[:count].tolist():
            b = int(rng.choice(b_sorted))
            catalog.pairs.append((a, b))
            catalog.complement_of[a] = b
            catalog.planted[a] = True
            catalog.planted[b] = True
            usable[a] = False


def _cumulative(members: list[int], pop: np.ndarray) -> tuple[list[int], list[float]]:
    return members, np.cumsum(pop[members]).tolist()


def _index(catalog: Catalog) -> None:
    sellable = catalog.lifecycle == 0
    for c in range(len(LEAVES)):
        in_cat = (catalog.cat == c) & sellable
        members = np.flatnonzero(in_cat).tolist()
        catalog.by_cat.append(_cumulative(members, catalog.pop))
        tiers = []
        for t in range(3):
            tier_members = np.flatnonzero(in_cat & (catalog.tier == t)).tolist()
            tiers.append(_cumulative(tier_members or members, catalog.pop))
        catalog.by_cat_tier.append(tiers)
        for p in members:
            catalog.by_cat_brand.setdefault((c, catalog.brands[p]), ([], []))[0].append(p)
    for key, (members, _) in list(catalog.by_cat_brand.items()):
        catalog.by_cat_brand[key] = _cumulative(members, catalog.pop)
