"""What an offer is worth: the expected-value model and the discount it should carry.

Pure: no clock, no I/O. For an action (a trigger such as ``cart_abandonment``) made to a
customer with a discount rate ``d`` (a share of the basket):

* **Conversion.** ``P(d) = sigmoid(logit(base[trigger]) + churn_effect * churn
  + recency_effect * log1p(recency_days / recency_scale_days)
  + lift(d) * (1 + churn_sensitivity * churn))`` where
  ``lift(d) = lift_max * (1 - exp(-d / lift_scale))``. The trigger's base rate is the
  conversion with no discount for an average customer; churn risk and a long time since
  the last order lower it (negative effects); a discount raises it with diminishing
  returns, more for customers at risk (who are the price-sensitive ones). ``P`` rises
  with ``d`` whenever ``lift_max >= 0`` and ``churn_sensitivity >= 0``. An unknown churn
  probability or recency adds nothing.
* **Value.** ``EV(d) = P(d) * basket * (margin_rate - d) - contact_cost``: the margin of
  the basket, ``basket * margin_rate``, less the discount, ``d * basket``, both earned or
  paid only when the customer converts, less what a contact costs whether or not they do.
  It rises with ``margin_rate``.
* **Discount.** The rate is the rung of ``ladder`` (0, 5, 10, 15, 20 % by default) with
  the highest ``EV`` among those whose amount ``round(d * basket, 2)`` fits the allowance
  ``min(clv_share * clv_12m, budget_left)`` (and is at least a cent); ties go to the
  smaller rate. Rate 0 always
  fits, so a zero budget gives no discount. An unknown ``clv_12m`` counts as
  ``unknown_clv`` (0 by default: no discount without a CLV score).

Example:
    >>> economics = OfferEconomics()
    >>> regular = CustomerNumbers(basket_value=60.0, churn_probability=0.1, clv_12m=400.0)
    >>> cart = choose_discount("cart_abandonment", regular, budget_left=100.0, economics=economics)
    >>> cart.rate, cart.amount, cart.expected_value, cart.conversion_probability, cart.limited_by
    (0.1, 6.0, 3.8678, 0.2592, None)
    >>> leaving = CustomerNumbers(60.0, churn_probability=0.8, recency_days=90.0, clv_12m=40.0)
    >>> choose_discount("churn_risk", leaving, budget_left=100.0).rate  # CLV cap: 4.00
    0.05
    >>> choose_discount("churn_risk", leaving, budget_left=0.0).amount
    0.0
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Final, Literal

__all__ = [
    "DEFAULT_BASE_RATES",
    "CustomerNumbers",
    "Discount",
    "OfferEconomics",
    "choose_discount",
]

DEFAULT_BASE_RATES: Final[Mapping[str, float]] = {
    "cart_abandonment": 0.15,
    "replenishment": 0.12,
    "back_in_stock": 0.10,
    "price_drop": 0.08,
    "near_tier": 0.06,
    "post_purchase": 0.04,
    "tier_upgrade": 0.04,
    "churn_risk": 0.03,
    "cross_sell": 0.02,
}
"""Conversion with no discount, by trigger: a cart already holds the purchase, a
consumable due again is needed, a product viewed is back or cheaper, a nudge or a
cross-sell asks for a new decision."""

Limit = Literal["clv", "budget"]


def _finite(name: str, value: float, low: float, high: float = math.inf) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be within [{low}, {high}], got {value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerNumbers:
    """What the model reads of a customer for one action.

    Attributes:
        basket_value: The basket the action is about (the cart, the items offered, or the
            customer's average order), in the shop's currency.
        churn_probability: The churn model's score in [0, 1]; None when not scored.
        recency_days: Days since the last order; None when they never ordered.
        clv_12m: Predicted 12-month customer lifetime value; None when not scored.

    Raises:
        ValueError: a value is negative, not finite, or a probability outside [0, 1].
    """

    basket_value: float
    churn_probability: float | None = None
    recency_days: float | None = None
    clv_12m: float | None = None

    def __post_init__(self) -> None:
        _finite("basket_value", self.basket_value, 0.0)
        if self.churn_probability is not None:
            _finite("churn_probability", self.churn_probability, 0.0, 1.0)
        if self.recency_days is not None:
            _finite("recency_days", self.recency_days, 0.0)
        if self.clv_12m is not None:
            _finite("clv_12m", self.clv_12m, 0.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Discount:
    """The chosen discount of an action and what the model expects of it.

    ``limited_by`` names the cap (``"clv"`` or ``"budget"``) that kept a rung with a
    higher expected value out of reach; None when the best rung fitted.
    """

    rate: float
    amount: float
    expected_value: float
    conversion_probability: float
    limited_by: Limit | None = None


@dataclasses.dataclass(frozen=True)
class OfferEconomics:
    """The expected-value model's parameters (see the module docstring for the formulas).

    Attributes:
        base_rates: Conversion with no discount, by trigger.
        default_base_rate: The base rate of a trigger not in ``base_rates``.
        churn_effect: Logit change per unit of churn probability (<= 0: at-risk customers
            convert less on their own).
        recency_effect: Logit change per ``log1p(recency_days / recency_scale_days)``.
        recency_scale_days: Days that make the recency term ``log(2)``.
        lift_max: Logit gain of a discount at saturation (>= 0).
        lift_scale: The rate at which a discount gives 63 % of ``lift_max``.
        churn_sensitivity: How much more an at-risk customer responds to a discount
            (the lift is multiplied by ``1 + churn_sensitivity * churn``).
        margin_rate: Gross margin as a share of the basket.
        contact_cost: What sending one offer costs (channel, attention), in currency.
        ladder: The discount rates offered, increasing from 0, each below 1.
        clv_share: A discount is at most this share of the customer's predicted CLV.
        unknown_clv: The CLV assumed for a customer without a score.

    Raises:
        ValueError: a rate is outside (0, 1), an effect has the wrong sign, a scale is not
            positive, or the ladder does not increase from 0 below 1.
    """

    base_rates: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_BASE_RATES), hash=False
    )
    default_base_rate: float = 0.02
    churn_effect: float = -1.5
    recency_effect: float = -0.3
    recency_scale_days: float = 30.0
    lift_max: float = 1.2
    lift_scale: float = 0.10
    churn_sensitivity: float = 1.0
    margin_rate: float = 0.35
    contact_cost: float = 0.02
    ladder: tuple[float, ...] = (0.0, 0.05, 0.10, 0.15, 0.20)
    clv_share: float = 0.10
    unknown_clv: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_rates", dict(self.base_rates))  # a private copy
        for trigger, rate in (*self.base_rates.items(), ("default", self.default_base_rate)):
            if not (math.isfinite(rate) and 0.0 < rate < 1.0):
                raise ValueError(f"base rate of {trigger!r} must be within (0, 1), got {rate!r}")
        _finite("churn_effect", self.churn_effect, -math.inf, 0.0)
        _finite("recency_effect", self.recency_effect, -math.inf, 0.0)
        _finite("lift_max", self.lift_max, 0.0)
        _finite("churn_sensitivity", self.churn_sensitivity, 0.0)
        _finite("margin_rate", self.margin_rate, 0.0, 1.0)
        _finite("contact_cost", self.contact_cost, 0.0)
        _finite("clv_share", self.clv_share, 0.0, 1.0)
        _finite("unknown_clv", self.unknown_clv, 0.0)
        for name, scale in (("recency_scale_days", self.recency_scale_days),
                            ("lift_scale", self.lift_scale)):  # fmt: skip
            if not (math.isfinite(scale) and scale > 0):
                raise ValueError(f"{name} must be > 0, got {scale!r}")
        ladder = tuple(float(rate) for rate in self.ladder)
        object.__setattr__(self, "ladder", ladder)
        if not ladder or ladder[0] != 0.0:
            raise ValueError(f"the ladder must start at 0, got {ladder!r}")
        if any(b <= a for a, b in itertools.pairwise(ladder)) or ladder[-1] >= 1:
            raise ValueError(f"the ladder must increase and stay below 1, got {ladder!r}")

    def conversion_probability(self, trigger: str, customer: CustomerNumbers, rate: float) -> float:
        """``P(conversion | trigger, customer, discount rate)``.

        Example:
            >>> economics, someone = OfferEconomics(), CustomerNumbers(50.0)
            >>> [round(economics.conversion_probability("cross_sell", someone, d), 4)
            ...  for d in (0.0, 0.1, 0.2)]
            [0.02, 0.0418, 0.0545]
        """
        base = self.base_rates.get(trigger, self.default_base_rate)
        churn = customer.churn_probability
        logit = math.log(base / (1.0 - base))
        if churn is not None:
            logit += self.churn_effect * churn
        if customer.recency_days is not None:
            logit += self.recency_effect * math.log1p(
                customer.recency_days / self.recency_scale_days
            )
        lift = self.lift_max * -math.expm1(-rate / self.lift_scale)
        logit += lift * (1.0 + self.churn_sensitivity * (churn or 0.0))
        return _sigmoid(logit)

    def expected_value(self, trigger: str, customer: CustomerNumbers, rate: float) -> float:
        """``EV = P(rate) * basket * (margin_rate - rate) - contact_cost``."""
        p = self.conversion_probability(trigger, customer, rate)
        return p * customer.basket_value * (self.margin_rate - rate) - self.contact_cost

    def allowance(self, customer: CustomerNumbers, budget_left: float) -> tuple[float, Limit]:
        """The largest discount amount allowed, and which cap sets it."""
        clv = self.unknown_clv if customer.clv_12m is None else customer.clv_12m
        cap = self.clv_share * clv
        budget = max(0.0, budget_left)
        return (budget, "budget") if budget < cap else (cap, "clv")


def choose_discount(
    trigger: str,
    customer: CustomerNumbers,
    budget_left: float,
    economics: OfferEconomics | None = None,
) -> Discount:
    """Return the discount of the ladder with the highest expected value that fits the
    CLV cap and the remaining budget (deterministic: ties go to the smaller rate).

    Args:
        trigger: The action, e.g. ``cart_abandonment``; it selects the base rate.
        customer: The customer's numbers for this action.
        budget_left: What is left of the day's discount budget, in currency (a negative
            value counts as 0).
        economics: The model's parameters (the defaults when None).

    Raises:
        ValueError: ``budget_left`` is NaN.
    """
    if math.isnan(budget_left):
        raise ValueError("budget_left must be a number, got nan")
    economics = economics or _DEFAULT
    allowance, limit = economics.allowance(customer, budget_left)
    rungs = [
        (rate, round(rate * customer.basket_value, 2),
         economics.expected_value(trigger, customer, rate))
        for rate in economics.ladder
    ]  # fmt: skip
    # Rate 0 costs nothing and always fits; a later rung must be strictly better, and
    # worth at least a cent (a discount that rounds to nothing is no discount).
    rate, amount, value = rungs[0]
    for rung in rungs[1:]:
        if 0 < rung[1] <= allowance and rung[2] > value:
            rate, amount, value = rung
    p = economics.conversion_probability(trigger, customer, rate)
    limited = any(rung[2] > value for rung in rungs[1:] if rung[1] > 0)
    return Discount(
        rate=rate,
        amount=amount,
        expected_value=round(value, 4),
        conversion_probability=round(p, 4),
        limited_by=limit if limited else None,
    )


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


_DEFAULT: Final = OfferEconomics()
