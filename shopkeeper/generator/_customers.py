"""Customers: traits, consent, latent taste, activity rhythm, churn and replenishment."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np

from shopkeeper.generator._catalog import Catalog
from shopkeeper.generator._draws import Draws
from shopkeeper.generator._taxonomy import BRANDS, COUNTRIES, DEPARTMENTS, LEAVES

__all__ = ["CHANNELS", "Customers", "build_customers", "choose_product"]

CHANNELS = ("web", "ios", "android", "pos")
_CHANNEL_WEIGHTS = (0.45, 0.2, 0.2, 0.15)
_TOP_CATEGORIES = 6
_TIER_LOYALTY = 0.75
_STORES = 40


@dataclass
class Customers:
    """Per-customer columns; index ``i`` is customer ``ids[i]``."""

    ids: list[str]
    country: np.ndarray
    utc_offset: np.ndarray
    channel: np.ndarray
    store: list[str]
    gender: list[str]
    birthday: list[dt.date]
    created_days_before: np.ndarray
    email_sha256: list[str]
    loyalty_member: list[str | None]
    consent: np.ndarray
    top_cats: list[tuple[list[int], list[float]]]
    tier: np.ndarray
    loyalty: np.ndarray
    fav_brand: list[dict[str, str]]
    purchase_gap: np.ndarray
    browse_gap: np.ndarray
    churn_frac: np.ndarray
    deletion_frac: np.ndarray
    replenishment: list[tuple[int, int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def choose_product(catalog: Catalog, customers: Customers, c: int, cat: int, draws: Draws) -> int:
    """Draw a product of category ``cat`` for customer ``c``: brand loyalty, then price tier."""
    if draws.u() < customers.loyalty[c]:
        brand = customers.fav_brand[c].get(LEAVES[cat].department)
        entry = catalog.by_cat_brand.get((cat, brand)) if brand else None
        if entry:
            members, cum = entry
            return members[draws.pick(cum)]
    tier = int(customers.tier[c]) if draws.u() < _TIER_LOYALTY else draws.below(3)
    members, cum = catalog.by_cat_tier[cat][tier]
    if not members:
        members, cum = catalog.by_cat[cat]
    return members[draws.pick(cum)] if members else draws.below(len(catalog))


def choose_category(customers: Customers, c: int, draws: Draws) -> int:
    """Draw one of the customer's preferred categories."""
    cats, cum = customers.top_cats[c]
    return cats[draws.pick(cum)]


def build_customers(
    n: int,
    catalog: Catalog,
    *,
    seed: int,
    churn_share: float,
    deletions: int,
    replenisher_share: float,
    purchase_gap_days: float,
    browse_gap_days: float,
    rng: np.random.Generator,
) -> Customers:
    """Build ``n`` customers with traits, taste and rhythm drawn from ``rng``."""
    weights = np.array([w for *_, w in COUNTRIES])
    country = rng.choice(len(COUNTRIES), size=n, p=weights / weights.sum())
    channel = rng.choice(len(CHANNELS), size=n, p=_CHANNEL_WEIGHTS)
    genders = np.array(["female", "male", "other", "unknown"])[
        rng.choice(4, size=n, p=(0.5, 0.44, 0.02, 0.04))
    ]
    birth_ordinal = dt.date(1945, 1, 1).toordinal() + rng.integers(0, 61 * 365, size=n)
    # analytics, personalization, marketing_email, marketing_push, marketing_sms
    consent = rng.random((n, 5)) < np.array([0.95, 0.9, 0.7, 0.5, 0.3])
    dept_index = {d: k for k, d in enumerate(DEPARTMENTS)}
    leaf_dept = np.array([dept_index[leaf.department] for leaf in LEAVES])
    dept_w = rng.dirichlet(np.full(len(DEPARTMENTS), 0.4), size=n)
    leaf_w = rng.gamma(0.6, size=(n, len(LEAVES)))
    for d in range(len(DEPARTMENTS)):
        cols = leaf_dept == d
        leaf_w[:, cols] /= leaf_w[:, cols].sum(axis=1, keepdims=True)
    taste = dept_w[:, leaf_dept] * leaf_w
    top = np.argsort(-taste, axis=1)[:, :_TOP_CATEGORIES]
    top_cats = []
    for i in range(n):
        cats = top[i].tolist()
        top_cats.append((cats, np.cumsum(taste[i, cats]).tolist()))
    fav = [
        {d: BRANDS[d][int(k)] for d, k in zip(DEPARTMENTS, row, strict=True)}
        for row in rng.integers(0, 10, size=(n, len(DEPARTMENTS)))
    ]
    # Heavy-tailed activity: many light buyers, few heavy ones.
    activity = rng.lognormal(0.0, 0.75, size=n)
    churn_frac = np.full(n, np.nan)
    churners = rng.choice(n, size=round(churn_share * n), replace=False)
    churn_frac[churners] = rng.uniform(0.15, 0.9, size=len(churners))
    deletion_frac = np.full(n, np.nan)
    stayers = np.flatnonzero(np.isnan(churn_frac))
    deleted = rng.choice(stayers, size=min(deletions, len(stayers)), replace=False)
    deletion_frac[deleted] = rng.uniform(0.2, 0.9, size=len(deleted))
    customers = Customers(
        ids=[f"c-{i:06d}" for i in range(n)],
        country=country,
        utc_offset=np.array([COUNTRIES[k][3] for k in country]),
        channel=channel,
        store=[f"store-{k:03d}" for k in rng.integers(1, _STORES + 1, size=n)],
        gender=genders.tolist(),
        birthday=[dt.date.fromordinal(int(o)) for o in birth_ordinal],
        created_days_before=rng.integers(1, 5 * 365, size=n),
        email_sha256=[
            hashlib.sha256(f"{seed}:customer{i}@example.com".encode()).hexdigest() for i in range(n)
        ],
        loyalty_member=[f"L-{i:06d}" if m else None for i, m in enumerate(rng.random(n) < 0.4)],
        consent=consent,
        top_cats=top_cats,
        tier=rng.choice(3, size=n, p=(0.35, 0.45, 0.2)),
        loyalty=rng.beta(2.0, 3.0, size=n),
        fav_brand=fav,
        purchase_gap=np.clip(purchase_gap_days / activity, 4.0, 200.0),
        browse_gap=np.clip(browse_gap_days / activity, 3.0, 200.0),
        churn_frac=churn_frac,
        deletion_frac=deletion_frac,
    )
    _assign_replenishment(customers, catalog, replenisher_share, Draws(rng))
    return customers


def _assign_replenishment(
    customers: Customers, catalog: Catalog, share: float, draws: Draws
) -> None:
    for c in range(len(customers)):
        cats = [k for k in customers.top_cats[c][0][:3] if LEAVES[k].cycle_days]
        if not cats or not draws.chance(share):
            continue
        seen: set[int] = set()
        for k in cats[: 1 + draws.below(2)]:
            p = choose_product(catalog, customers, c, k, draws)
            if p in seen or catalog.lifecycle[p] != 0:
                continue
            seen.add(p)
            cycle = round(LEAVES[k].cycle_days * (0.85 + 0.3 * draws.u()))
            customers.replenishment.append((c, p, cycle))
