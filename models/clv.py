"""Customer lifetime value: BG/NBD for how often, Gamma-Gamma for how much.

From purchase records (or ``Order Completed`` events) to an RFM summary, from the summary
to fitted parameters, from the parameters to a customer's expected purchases, probability
of being alive, expected order value and discounted CLV. Parameters are versioned data
(:class:`CLVParams`, JSON), never pickles.

Example:
    >>> import datetime as dt
    >>> purchases = simulate_purchases(  # or real ones: (customer_id, timestamp, amount)
    ...     BetaGeo(r=0.25, alpha=4.0, a=0.8, b=2.5), GammaGamma(p=6.0, q=4.0, v=15.0),
    ...     customers=2_000, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), periods=52, seed=7)
    >>> summary = summarise_purchases(purchases, until=dt.date(2025, 12, 31), unit="weeks")
    >>> params = fit_clv(summary, fitted_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    >>> params.customers, params.version.startswith("20260101T000000Z-")
    (2000, True)
    >>> 0.2 < params.beta_geo.r < 0.3
    True
    >>> p_alive = params.probability_alive(frequency=3, recency=30.0, T=45.0)
    >>> clv = params.customer_lifetime_value(frequency=3, recency=30.0, T=45.0, monetary_value=27.0)
    >>> 0 < p_alive < 1, clv > 0
    (True, True)
    >>> CLVParams.from_json(params.to_json()) == params
    True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from models._clv_bgnbd import BetaGeo
from models._clv_gamma import GammaGamma
from models._clv_simulate import simulate_purchases
from models._clv_summary import (
    DAYS_PER_UNIT,
    FloatArray,
    RFMSummary,
    TimeUnit,
    summarise_orders,
    summarise_purchases,
)

__all__ = [
    "FORMAT",
    "PERIODS_PER_MONTH",
    "BetaGeo",
    "CLVParams",
    "GammaGamma",
    "RFMSummary",
    "TimeUnit",
    "customer_lifetime_value",
    "customer_lifetime_value_many",
    "fit_clv",
    "simulate_purchases",
    "summarise_orders",
    "summarise_purchases",
]

FORMAT: Final = "shopkeeper.clv/1"
"""The ``format`` field of a parameters file this code writes and reads."""

PERIODS_PER_MONTH: Final[dict[str, float]] = {"days": 30.0, "weeks": 4.345}
"""Time units in a month, as ``lifetimes`` counts them for CLV."""


def customer_lifetime_value(
    beta_geo: BetaGeo,
    gamma_gamma: GammaGamma,
    *,
    frequency: float,
    recency: float,
    T: float,
    monetary_value: float,
    periods_per_month: float,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> float:
    """Expected discounted revenue from a customer over the next ``months``.

    Month ``k``'s expected purchases (the increase of BG/NBD's cumulative expectation over
    the month) times the Gamma-Gamma expected order value, discounted by
    ``(1 + monthly_discount_rate) ** k``; the same sum as ``lifetimes``'
    ``customer_lifetime_value``.

    Args:
        beta_geo: Purchase model.
        gamma_gamma: Spend model.
        frequency: Repeat purchases.
        recency: Time from first to last purchase, in the models' unit.
        T: Time from first purchase to now, in the models' unit.
        monetary_value: Mean value of the repeat purchases.
        periods_per_month: The models' time units in a month (see ``PERIODS_PER_MONTH``).
        months: Horizon.
        monthly_discount_rate: Cost of capital per month (0.01 is ~12.7% a year).

    Example:
        >>> bg, gg = BetaGeo(r=0.243, alpha=4.414, a=0.793, b=2.426), GammaGamma(6.25, 3.74, 15.44)
        >>> clv = customer_lifetime_value(
        ...     bg, gg, frequency=2, recency=30.43, T=38.86, monetary_value=22.35,
        ...     periods_per_month=PERIODS_PER_MONTH["weeks"])
        >>> round(clv, 2)
        36.29
    """
    value = gamma_gamma.expected_order_value(frequency, monetary_value)
    total = 0.0
    previous = 0.0
    for month in range(1, months + 1):
        cumulative = beta_geo.expected_purchases(month * periods_per_month, frequency, recency, T)
        total += (cumulative - previous) / (1 + monthly_discount_rate) ** month
        previous = cumulative
    return value * total


def customer_lifetime_value_many(
    beta_geo: BetaGeo,
    gamma_gamma: GammaGamma,
    *,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    periods_per_month: float,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> FloatArray:
    """:func:`customer_lifetime_value` of many customers at once.

    Example:
        >>> bg, gg = BetaGeo(r=0.243, alpha=4.414, a=0.793, b=2.426), GammaGamma(6.25, 3.74, 15.44)
        >>> clv = customer_lifetime_value_many(
        ...     bg, gg, frequency=[0, 2], recency=[0.0, 30.43], T=[38.86, 38.86],
        ...     monetary_value=[0.0, 22.35], periods_per_month=PERIODS_PER_MONTH["weeks"])
        >>> clv.round(2).tolist()
        [8.37, 36.29]
    """
    x = np.asarray(frequency, dtype=np.float64)
    value = gamma_gamma.expected_order_value_many(x, monetary_value)
    total = np.zeros_like(value)
    previous = np.zeros_like(value)
    for month in range(1, months + 1):
        cumulative = beta_geo.expected_purchases_many(month * periods_per_month, x, recency, T)
        total += (cumulative - previous) / (1 + monthly_discount_rate) ** month
        previous = cumulative
    return np.asarray(value * total, dtype=np.float64)


@dataclasses.dataclass(frozen=True, slots=True)
class CLVParams:
    """Both models' fitted parameters, with what they were fitted on: a versioned artifact.

    Attributes:
        beta_geo: BG/NBD parameters.
        gamma_gamma: Gamma-Gamma parameters.
        unit: Time unit of ``recency``, ``T`` and horizons, ``"days"`` or ``"weeks"``.
        observation_end: Last day of the data fitted on.
        customers: Customers BG/NBD was fitted on.
        returning_customers: Customers Gamma-Gamma was fitted on.
        log_likelihood: BG/NBD log-likelihood at the fitted parameters.
        gamma_gamma_log_likelihood: Gamma-Gamma log-likelihood at the fitted parameters.
        currency: Currency of the amounts, when known.
        fitted_at: When the fit ran (UTC).
        version: ``<fitted_at>-<hash of the parameters>``, e.g. ``20250501T000000Z-3f1c9a2b``.

    Example:
        >>> import datetime as dt
        >>> summary = summarise_purchases(simulate_purchases(
        ...     BetaGeo(r=0.25, alpha=4.0, a=0.8, b=2.5), GammaGamma(p=6.0, q=4.0, v=15.0),
        ...     customers=1_000, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), periods=39))
        >>> params = fit_clv(summary, fitted_at=dt.datetime(2025, 10, 1, tzinfo=dt.UTC))
        >>> saved = params.to_json()  # store it anywhere; no pickle
        >>> loaded = CLVParams.from_json(saved)
        >>> loaded == params, loaded.unit, loaded.customers
        (True, 'weeks', 1000)
        >>> round(loaded.probability_alive(frequency=0, recency=0.0, T=10.0), 2)
        1.0
    """

    beta_geo: BetaGeo
    gamma_gamma: GammaGamma
    unit: TimeUnit
    observation_end: dt.date
    customers: int
    returning_customers: int
    log_likelihood: float
    gamma_gamma_log_likelihood: float
    currency: str | None
    fitted_at: dt.datetime
    version: str

    def probability_alive(self, frequency: float, recency: float, T: float) -> float:
        """See :meth:`BetaGeo.probability_alive`."""
        return self.beta_geo.probability_alive(frequency, recency, T)

    def expected_purchases(self, t: float, frequency: float, recency: float, T: float) -> float:
        """See :meth:`BetaGeo.expected_purchases`."""
        return self.beta_geo.expected_purchases(t, frequency, recency, T)

    def expected_order_value(self, frequency: float, monetary_value: float) -> float:
        """See :meth:`GammaGamma.expected_order_value`."""
        return self.gamma_gamma.expected_order_value(frequency, monetary_value)

    def customer_lifetime_value(
        self,
        frequency: float,
        recency: float,
        T: float,
        monetary_value: float,
        *,
        months: int = 12,
        monthly_discount_rate: float = 0.01,
    ) -> float:
        """See :func:`customer_lifetime_value`; months are counted in the params' unit."""
        return customer_lifetime_value(
            self.beta_geo,
            self.gamma_gamma,
            frequency=frequency,
            recency=recency,
            T=T,
            monetary_value=monetary_value,
            periods_per_month=PERIODS_PER_MONTH[self.unit],
            months=months,
            monthly_discount_rate=monthly_discount_rate,
        )

    def stamped(self) -> CLVParams:
        """These parameters with the version their values give (``<fitted_at>-<hash>``),
        as ``fit_clv`` stamps them: for parameters set by hand."""
        return dataclasses.replace(self, version=_version(self))

    def to_json(self) -> bytes:
        """Encode as JSON (floats round-trip exactly)."""
        return json.dumps(_to_dict(self), indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str) -> CLVParams:
        """Decode what :meth:`to_json` wrote.

        Raises:
            ValueError: Not a parameters document of this format, or one with missing,
                unknown or invalid fields.
        """
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.pop("format", None) != FORMAT:
                raise ValueError(f"not a {FORMAT} document")
            fields = {f.name for f in dataclasses.fields(cls)}
            if set(doc) != fields:
                raise ValueError(f"fields {sorted(set(doc) ^ fields)} missing or unknown")
            params = cls(
                beta_geo=BetaGeo(**doc["beta_geo"]),
                gamma_gamma=GammaGamma(**doc["gamma_gamma"]),
                unit=_unit(doc["unit"]),
                observation_end=dt.date.fromisoformat(doc["observation_end"]),
                customers=int(doc["customers"]),
                returning_customers=int(doc["returning_customers"]),
                log_likelihood=float(doc["log_likelihood"]),
                gamma_gamma_log_likelihood=float(doc["gamma_gamma_log_likelihood"]),
                currency=None if doc["currency"] is None else str(doc["currency"]),
                fitted_at=_utc(dt.datetime.fromisoformat(doc["fitted_at"])),
                version=str(doc["version"]),
            )
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"invalid {FORMAT} document: {exc}") from exc
        if params.version != _version(params):
            raise ValueError(f"version {params.version!r} does not match the parameters")
        return params


def fit_clv(
    summary: RFMSummary, *, fitted_at: dt.datetime, currency: str | None = None
) -> CLVParams:
    """Fit BG/NBD on every customer of ``summary`` and Gamma-Gamma on the returning ones.

    Args:
        summary: From :func:`summarise_purchases` or :func:`summarise_orders`.
        fitted_at: When the fit runs (injected: models read no clock); timezone-aware.
        currency: Currency of the amounts, recorded in the parameters.

    Raises:
        ValueError: Too little data, e.g. no customer with a repeat purchase.
        RuntimeError: An optimiser did not reach a maximum.
    """
    bg = BetaGeo.fit(summary.frequency, summary.recency, summary.T)
    gg = GammaGamma.fit(summary.frequency, summary.monetary_value)
    returning = int(((summary.frequency > 0) & (summary.monetary_value > 0)).sum())
    params = CLVParams(
        beta_geo=bg,
        gamma_gamma=gg,
        unit=summary.unit,
        observation_end=summary.observation_end,
        customers=len(summary),
        returning_customers=returning,
        log_likelihood=bg.log_likelihood(summary.frequency, summary.recency, summary.T),
        gamma_gamma_log_likelihood=gg.log_likelihood(summary.frequency, summary.monetary_value),
        currency=currency,
        fitted_at=_utc(fitted_at),
        version="",
    )
    return dataclasses.replace(params, version=_version(params))


def _to_dict(params: CLVParams) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "beta_geo": dataclasses.asdict(params.beta_geo),
        "gamma_gamma": dataclasses.asdict(params.gamma_gamma),
        "unit": params.unit,
        "observation_end": params.observation_end.isoformat(),
        "customers": params.customers,
        "returning_customers": params.returning_customers,
        "log_likelihood": params.log_likelihood,
        "gamma_gamma_log_likelihood": params.gamma_gamma_log_likelihood,
        "currency": params.currency,
        "fitted_at": params.fitted_at.isoformat(),
        "version": params.version,
    }


def _version(params: CLVParams) -> str:
    """``<fitted_at>-<first 8 hex of SHA-256 of the parameters, unit and observation end>``."""
    content = {
        "beta_geo": dataclasses.asdict(params.beta_geo),
        "gamma_gamma": dataclasses.asdict(params.gamma_gamma),
        "unit": params.unit,
        "observation_end": params.observation_end.isoformat(),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return f"{params.fitted_at:%Y%m%dT%H%M%SZ}-{digest}"


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: give a timezone-aware one")
    return moment.astimezone(dt.UTC)


def _unit(value: object) -> TimeUnit:
    if value == "days":
        return "days"
    if value == "weeks":
        return "weeks"
    raise ValueError(f"unknown time unit {value!r}: use one of {sorted(DAYS_PER_UNIT)}")
