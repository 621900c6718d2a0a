"""Purchase histories drawn from BG/NBD and Gamma-Gamma: data whose true parameters are known."""

from __future__ import annotations

import datetime as dt

import numpy as np

from models._clv_bgnbd import BetaGeo
from models._clv_gamma import GammaGamma
from models._clv_summary import DAYS_PER_UNIT, TimeUnit

__all__ = ["simulate_purchases"]


def simulate_purchases(
    beta_geo: BetaGeo,
    gamma_gamma: GammaGamma,
    *,
    customers: int,
    start: dt.datetime,
    periods: float,
    unit: TimeUnit = "weeks",
    seed: int = 0,
) -> list[tuple[str, dt.datetime, float]]:
    """Draw ``(customer_id, timestamp, amount)`` purchases of a cohort from the two models.

    Each customer makes a first purchase at a uniform time in the first third of the
    ``periods`` after ``start``, then buys as BG/NBD says (Poisson rate
    ``Gamma(r, alpha)``, dropping out after each repeat purchase with probability
    ``Beta(a, b)``) until the end, each purchase worth ``Gamma(p, nu)`` with
    ``nu ~ Gamma(q, v)``. The first purchase is drawn from the same spend distribution.

    Args:
        beta_geo: Purchase model, in ``unit``.
        gamma_gamma: Spend model.
        customers: How many customers (ids ``sim-000000``, ...).
        start: Start of the period; timezone-aware.
        periods: Length of the period, in ``unit``.
        unit: Time unit of ``beta_geo`` and ``periods``.
        seed: Seed of the random draws; the same seed gives the same purchases.

    Example:
        >>> import datetime as dt
        >>> purchases = simulate_purchases(
        ...     BetaGeo(r=0.25, alpha=4.0, a=0.8, b=2.5), GammaGamma(p=6.0, q=4.0, v=15.0),
        ...     customers=3, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), periods=39, seed=1)
        >>> sorted({customer for customer, _, _ in purchases})
        ['sim-000000', 'sim-000001', 'sim-000002']
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    rng = np.random.default_rng(seed)
    day = dt.timedelta(days=DAYS_PER_UNIT[unit])
    rates = rng.gamma(beta_geo.r, 1 / beta_geo.alpha, customers)
    dropouts = rng.beta(beta_geo.a, beta_geo.b, customers)
    scales = rng.gamma(gamma_gamma.q, 1 / gamma_gamma.v, customers)
    firsts = rng.uniform(0, periods / 3, customers)
    purchases: list[tuple[str, dt.datetime, float]] = []
    for i in range(customers):
        customer = f"sim-{i:06d}"
        t = float(firsts[i])
        repeat = False
        while t <= periods:
            amount = float(rng.gamma(gamma_gamma.p, 1 / scales[i]))
            purchases.append((customer, start + t * day, round(amount, 2)))
            # BG/NBD: a customer may drop out after a repeat purchase, not after the first.
            if repeat and rng.random() < dropouts[i]:
                break
            repeat = True
            t += float(rng.exponential(1 / rates[i]))
    return purchases
