"""BG/NBD: how many purchases a customer will make, and whether they are still a customer.

Fader, Hardie and Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2). While alive, a customer buys as a Poisson
process of rate ``lambda ~ Gamma(r, alpha)``; after every purchase they drop out with
probability ``p ~ Beta(a, b)``. Formulas and names follow the paper and ``lifetimes``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from models._clv_summary import FloatArray

__all__ = ["BetaGeo", "check_rfm", "maximise"]


@dataclasses.dataclass(frozen=True, slots=True)
class BetaGeo:
    """BG/NBD parameters, and what they predict for one customer or many.

    ``frequency``, ``recency`` and ``T`` are those of :class:`RFMSummary`, in the time
    unit the model was fitted in; so is ``t``. The scalar methods take and return plain
    floats and cost a few microseconds, for use on every purchase in a stream; the
    ``_many`` methods take arrays.

    Attributes:
        r: Shape of the gamma distribution of purchase rates.
        alpha: Scale of the gamma distribution of purchase rates.
        a: First shape of the beta distribution of dropout probabilities.
        b: Second shape of the beta distribution of dropout probabilities.

    Example:
        >>> model = BetaGeo(r=0.243, alpha=4.414, a=0.793, b=2.426)  # CDNOW, in weeks
        >>> model.probability_alive(frequency=0, recency=0.0, T=38.86)
        1.0
        >>> round(model.probability_alive(frequency=2, recency=30.43, T=38.86), 3)
        0.727
        >>> round(model.expected_purchases(39.0, frequency=2, recency=30.43, T=38.86), 3)
        1.226
    """

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, not {value}")

    @classmethod
    def fit(cls, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> BetaGeo:
        """Fit the parameters by maximum likelihood (BFGS on their logarithms).

        Raises:
            ValueError: Inconsistent inputs (see :func:`check_rfm`), or no customers.
            RuntimeError: The optimiser did not reach a maximum.
        """
        x, t_x, age = check_rfm(frequency, recency, T)
        start = np.log([1.0, max(float(age.mean()), 1e-3), 1.0, 1.0])
        log_params = maximise(_log_likelihood_and_gradient, start, (x, t_x, age), "BG/NBD")
        r, alpha, a, b = (float(v) for v in np.exp(log_params))
        return cls(r=r, alpha=alpha, a=a, b=b)

    def log_likelihood(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> float:
        """Total log-likelihood of the customers' histories under these parameters."""
        x, t_x, age = check_rfm(frequency, recency, T)
        log_params = np.log([self.r, self.alpha, self.a, self.b])
        value, _ = _log_likelihood_and_gradient(log_params, x, t_x, age)
        return float(value) * len(x)

    def probability_alive(self, frequency: float, recency: float, T: float) -> float:
        """Probability that the customer has not dropped out by the end of ``T``."""
        if frequency == 0:
            return 1.0
        log_odds_dead = (self.r + frequency) * math.log(
            (self.alpha + T) / (self.alpha + recency)
        ) + math.log(self.a / (self.b + frequency - 1))
        return _sigmoid(-log_odds_dead)

    def expected_purchases(self, t: float, frequency: float, recency: float, T: float) -> float:
        """Expected number of purchases in the next ``t`` time units, given the history."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x = frequency
        ra, rb, c = r + x, b + x, a + b + x - 1
        z = t / (alpha + T + t)
        hyp = float(hyp2f1(ra, rb, c, z))
        if math.isfinite(hyp) and hyp > 0:
            log_hyp = math.log(hyp)
        else:  # Euler's transformation, when the series overflows
            log_hyp = math.log(float(hyp2f1(c - ra, c - rb, c, z))) + (c - ra - rb) * math.log1p(-z)
        remaining = -math.expm1(log_hyp + ra * math.log((alpha + T) / (alpha + T + t)))
        return (a + b + x - 1) / (a - 1) * remaining * self.probability_alive(x, recency, T)

    def population_expected_purchases(self, t: float) -> float:
        """Expected purchases of a new customer in their first ``t`` time units (``E[X(t)]``)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        hyp = float(hyp2f1(r, b, a + b - 1, t / (alpha + t)))
        return (a + b - 1) / (a - 1) * (1 - hyp * math.pow(alpha / (alpha + t), r))

    def probability_alive_many(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """:meth:`probability_alive` of many customers at once."""
        x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
        log_odds_dead = (self.r + x) * np.log((self.alpha + age) / (self.alpha + t_x)) + np.log(
            self.a / (self.b + np.maximum(x, 1) - 1)
        )
        return np.asarray(np.where(x == 0, 1.0, expit(-log_odds_dead)), dtype=np.float64)

    def expected_purchases_many(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
    ) -> FloatArray:
        """:meth:`expected_purchases` of many customers (or horizons) at once."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t_, x, age = (np.asarray(v, dtype=np.float64) for v in (t, frequency, T))
        ra, rb, c = r + x, b + x, a + b + x - 1
        z = t_ / (alpha + age + t_)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            log_hyp = np.log(hyp2f1(ra, rb, c, z))
            euler = np.log(hyp2f1(c - ra, c - rb, c, z)) + (c - ra - rb) * np.log1p(-z)
        log_hyp = np.where(np.isfinite(log_hyp), log_hyp, euler)
        remaining = -np.expm1(log_hyp + ra * np.log((alpha + age) / (alpha + age + t_)))
        alive = self.probability_alive_many(x, recency, age)
        return np.asarray((a + b + x - 1) / (a - 1) * remaining * alive, dtype=np.float64)


def check_rfm(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return the three as float arrays, or raise ``ValueError`` if they cannot be a summary."""
    x, t_x, age = (np.asarray(v, dtype=np.float64).ravel() for v in (frequency, recency, T))
    if not (x.shape == t_x.shape == age.shape):
        raise ValueError(
            f"frequency, recency and T differ in length: {x.size}, {t_x.size}, {age.size}"
        )
    if x.size == 0:
        raise ValueError("no customers")
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(age).all()):
        raise ValueError("frequency, recency and T must be finite")
    if (x < 0).any() or (x != np.round(x)).any():
        raise ValueError("frequency must be a whole number >= 0")
    if (t_x < 0).any() or (t_x > age).any():
        raise ValueError("recency must lie between 0 and T")
    if (t_x[x == 0] != 0).any():
        raise ValueError("recency must be 0 when frequency is 0")
    return x, t_x, age


def maximise(
    mean_log_likelihood: Any, start: FloatArray, args: tuple[FloatArray, ...], name: str
) -> FloatArray:
    """Maximise a mean log-likelihood ``f(log_params, *args) -> (value, gradient)``."""
    result = minimize(
        lambda p: tuple(-v for v in mean_log_likelihood(p, *args)),
        start,
        jac=True,
        method="BFGS",
        options={"gtol": 1e-9, "maxiter": 2_000},
    )
    _, gradient = mean_log_likelihood(result.x, *args)
    # BFGS often ends with "precision loss" at the optimum; what matters is a flat gradient.
    if not (np.isfinite(result.fun) and np.abs(gradient).max() < 1e-5):
        raise RuntimeError(f"{name} fit did not converge: {result.message}")
    return np.asarray(result.x, dtype=np.float64)


def _log_likelihood_and_gradient(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
) -> tuple[float, FloatArray]:
    """Mean log-likelihood per customer and its gradient in the log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    term_alive = -(r + x) * np.log(alpha + age)
    term_dropped = np.where(
        repeat,
        np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    ll = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + betaln(a, b + x)
        - betaln(a, b)
        + np.logaddexp(term_alive, term_dropped)
    )
    # Share of the likelihood from "dropped out right after the last purchase".
    w = np.where(repeat, expit(term_dropped - term_alive), 0.0)
    d_r = (
        digamma(r + x)
        - digamma(r)
        + np.log(alpha)
        - (1 - w) * np.log(alpha + age)
        - w * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - (r + x) * ((1 - w) / (alpha + age) + w / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w / a
    d_b = (
        digamma(b + x)
        - digamma(a + b + x)
        - digamma(b)
        + digamma(a + b)
        - w / (b + np.maximum(x, 1) - 1)
    )
    gradient = np.array([d_r.mean() * r, d_alpha.mean() * alpha, d_a.mean() * a, d_b.mean() * b])
    return float(ll.mean()), gradient


def _sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)
