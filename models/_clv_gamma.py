"""Gamma-Gamma: what a customer's orders will be worth on average.

Fader, Hardie and Lee (2005), "RFM and CLV: using iso-value curves for customer base
analysis", and Fader and Hardie (2013), "The Gamma-Gamma model of monetary value". The
value of each order is ``Gamma(p, nu)``, and ``nu ~ Gamma(q, v)`` across customers; the
average spend is assumed independent of how often a customer buys.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from models._clv_bgnbd import maximise
from models._clv_summary import FloatArray

__all__ = ["GammaGamma"]


@dataclasses.dataclass(frozen=True, slots=True)
class GammaGamma:
    """Gamma-Gamma parameters, and the expected order value of a customer.

    ``frequency`` is the number of repeat purchases and ``monetary_value`` their mean
    value, as in :class:`RFMSummary`.

    Attributes:
        p: Shape of the gamma distribution of one order's value.
        q: Shape of the gamma distribution of the customers' scale parameters.
        v: Scale of the gamma distribution of the customers' scale parameters.

    Example:
        >>> model = GammaGamma(p=6.25, q=3.74, v=15.44)  # CDNOW, in dollars
        >>> round(model.expected_order_value(frequency=0, monetary_value=0.0), 2)
        35.22
        >>> round(model.expected_order_value(frequency=2, monetary_value=22.35), 2)
        24.66
    """

    p: float
    q: float
    v: float

    def __post_init__(self) -> None:
        for name in ("p", "q", "v"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, not {value}")

    @classmethod
    def fit(cls, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> GammaGamma:
        """Fit the parameters by maximum likelihood on the customers with repeat purchases.

        Customers with ``frequency`` 0 carry no information on spend and are left out, as
        are those whose repeat purchases are worth 0 (the model's values are positive).

        Raises:
            ValueError: Inputs of different lengths, negative, or no customer to fit on.
            RuntimeError: The optimiser did not reach a maximum.
        """
        x, m = _usable(frequency, monetary_value)
        start = np.log([1.0, 1.0, max(float(m.mean()), 1e-3)])
        log_params = maximise(_log_likelihood_and_gradient, start, (x, m), "Gamma-Gamma")
        p, q, v = (float(value) for value in np.exp(log_params))
        return cls(p=p, q=q, v=v)

    def log_likelihood(self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> float:
        """Total log-likelihood of the mean spends of the customers it would be fitted on."""
        x, m = _usable(frequency, monetary_value)
        value, _ = _log_likelihood_and_gradient(np.log([self.p, self.q, self.v]), x, m)
        return value * len(x)

    @property
    def population_mean(self) -> float:
        """Expected order value of a customer with no repeat purchase yet (``p v / (q - 1)``)."""
        return self.p * self.v / (self.q - 1)

    def expected_order_value(self, frequency: float, monetary_value: float) -> float:
        """Expected value of the customer's future orders, given their repeat purchases.

        A weighted mean of the population mean and the customer's own mean, the weight of
        the latter growing with ``frequency``.
        """
        return self.p * (self.v + frequency * monetary_value) / (self.p * frequency + self.q - 1)

    def expected_order_value_many(
        self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
    ) -> FloatArray:
        """:meth:`expected_order_value` of many customers at once."""
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        return np.asarray(self.p * (self.v + x * m) / (self.p * x + self.q - 1), dtype=np.float64)


def _usable(
    frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64).ravel()
    m = np.asarray(monetary_value, dtype=np.float64).ravel()
    if x.shape != m.shape:
        raise ValueError(f"frequency and monetary_value differ in length: {x.size}, {m.size}")
    if not (np.isfinite(x).all() and np.isfinite(m).all()) or (x < 0).any() or (m < 0).any():
        raise ValueError("frequency and monetary_value must be finite and >= 0")
    keep = (x > 0) & (m > 0)
    if not keep.any():
        raise ValueError("no customer with a repeat purchase of positive value")
    return x[keep], m[keep]


def _log_likelihood_and_gradient(
    log_params: FloatArray, x: FloatArray, m: FloatArray
) -> tuple[float, FloatArray]:
    """Mean log-likelihood per customer and its gradient in the log-parameters."""
    p, q, v = np.exp(log_params)
    px = p * x
    log_total = np.log(x * m + v)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_total
    )
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_total)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_total
    d_v = q / v - (px + q) / (x * m + v)
    gradient = np.array([d_p.mean() * p, d_q.mean() * q, d_v.mean() * v])
    return float(ll.mean()), gradient
