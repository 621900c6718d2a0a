"""The offer expected-value model: the response curve, the discount chosen from the ladder
within the CLV cap and the budget, validation, and determinism."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.offer_value import (
    DEFAULT_BASE_RATES,
    CustomerNumbers,
    OfferEconomics,
    choose_discount,
)

TRIGGERS = [*DEFAULT_BASE_RATES, "unheard_of"]

triggers = st.sampled_from(TRIGGERS)
customers = st.builds(
    CustomerNumbers,
    basket_value=st.floats(0, 5_000, allow_nan=False),
    churn_probability=st.none() | st.floats(0, 1),
    recency_days=st.none() | st.floats(0, 2_000, allow_nan=False),
    clv_12m=st.none() | st.floats(0, 50_000, allow_nan=False),
)
budgets = st.floats(-100, 1e6, allow_nan=False) | st.just(math.inf)
economies = st.builds(
    OfferEconomics,
    margin_rate=st.floats(0.01, 1),
    contact_cost=st.floats(0, 5),
    clv_share=st.floats(0, 1),
    lift_max=st.floats(0, 4),
    churn_sensitivity=st.floats(0, 3),
)


def test_the_discount_is_the_feasible_rung_of_highest_expected_value() -> None:
    economics = OfferEconomics()
    customer = CustomerNumbers(basket_value=60.0, churn_probability=0.8, clv_12m=400.0)
    values = {d: economics.expected_value("churn_risk", customer, d) for d in economics.ladder}
    chosen = choose_discount("churn_risk", customer, budget_left=1_000.0)
    assert chosen.rate == max(values, key=lambda d: values[d])
    assert chosen.amount == round(chosen.rate * 60.0, 2)
    assert chosen.limited_by is None
    # With only 5.00 left, the best rung that costs at most that.
    tight = choose_discount("churn_risk", customer, budget_left=5.0)
    fits = [d for d in economics.ladder if round(d * 60.0, 2) <= 5.0]
    assert tight.rate == max(fits, key=lambda d: values[d])
    assert tight.limited_by == "budget"
    capped = choose_discount("churn_risk", CustomerNumbers(60.0, 0.8, None, 40.0), 1_000.0)
    assert (capped.amount <= 4.0, capped.limited_by) == (True, "clv")


@given(trigger=triggers, customer=customers, economics=economies, budget=budgets)
def test_a_discount_never_exceeds_the_clv_cap_or_the_budget(
    trigger: str, customer: CustomerNumbers, economics: OfferEconomics, budget: float
) -> None:
    chosen = choose_discount(trigger, customer, budget, economics)
    clv = economics.unknown_clv if customer.clv_12m is None else customer.clv_12m
    assert 0.0 <= chosen.amount <= max(0.0, budget)
    assert chosen.amount <= economics.clv_share * clv
    assert chosen.rate in economics.ladder
    assert 0.0 <= chosen.conversion_probability <= 1.0


@given(trigger=triggers, customer=customers, economics=economies)
def test_no_budget_means_no_discount(
    trigger: str, customer: CustomerNumbers, economics: OfferEconomics
) -> None:
    for nothing in (0.0, -5.0):
        chosen = choose_discount(trigger, customer, nothing, economics)
        assert (chosen.rate, chosen.amount) == (0.0, 0.0)


@given(
    trigger=triggers,
    customer=customers,
    budget=budgets,
    margins=st.tuples(st.floats(0.01, 1), st.floats(0.01, 1)).map(sorted),
)
def test_the_expected_value_rises_with_the_margin(
    trigger: str, customer: CustomerNumbers, budget: float, margins: list[float]
) -> None:
    low, high = (
        choose_discount(trigger, customer, budget, OfferEconomics(margin_rate=m)) for m in margins
    )
    assert low.expected_value <= high.expected_value


@given(
    trigger=triggers,
    customer=customers,
    economics=economies,
    rates=st.tuples(st.floats(0, 0.99), st.floats(0, 0.99)).map(sorted),
)
def test_conversion_rises_with_the_discount(
    trigger: str, customer: CustomerNumbers, economics: OfferEconomics, rates: list[float]
) -> None:
    low, high = (economics.conversion_probability(trigger, customer, d) for d in rates)
    assert low <= high


def test_churn_risk_and_a_long_absence_lower_conversion_but_raise_the_lift() -> None:
    economics = OfferEconomics()
    loyal = CustomerNumbers(50.0, churn_probability=0.05, recency_days=10.0)
    leaving = CustomerNumbers(50.0, churn_probability=0.9, recency_days=200.0)
    p = economics.conversion_probability
    assert p("churn_risk", leaving, 0.0) < p("churn_risk", loyal, 0.0)

    def odds_gain(c: CustomerNumbers) -> float:
        before, after = p("churn_risk", c, 0.0), p("churn_risk", c, 0.2)
        return (after / (1 - after)) / (before / (1 - before))

    assert odds_gain(leaving) > odds_gain(loyal)
    # With no scores, the trigger's base rate as it is.
    assert math.isclose(p("cart_abandonment", CustomerNumbers(10.0), 0.0), 0.15)


@given(trigger=triggers, customer=customers, economics=economies, budget=budgets)
def test_the_same_inputs_give_the_same_discount(
    trigger: str, customer: CustomerNumbers, economics: OfferEconomics, budget: float
) -> None:
    first = choose_discount(trigger, customer, budget, economics)
    copied = pickle.loads(pickle.dumps(economics))  # noqa: S301 - our own bytes
    assert choose_discount(trigger, customer, budget, copied) == first
    assert choose_discount(trigger, customer, budget, economics) == first


def test_the_economics_keep_their_own_copy_of_the_rates() -> None:
    rates = {"cart_abandonment": 0.2}
    economics = OfferEconomics(base_rates=rates)
    rates["cart_abandonment"] = 0.9
    assert economics.base_rates["cart_abandonment"] == 0.2


@pytest.mark.parametrize(
    "settings",
    [
        {"ladder": (0.05, 0.1)},
        {"ladder": (0.0, 0.1, 0.1)},
        {"ladder": (0.0, 1.0)},
        {"ladder": ()},
        {"base_rates": {"cart_abandonment": 0.0}},
        {"default_base_rate": 1.0},
        {"churn_effect": 0.5},
        {"recency_effect": 0.1},
        {"lift_max": -1.0},
        {"lift_scale": 0.0},
        {"margin_rate": 1.5},
        {"clv_share": -0.1},
        {"contact_cost": math.inf},
    ],
)
def test_malformed_economics_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case names a different field
        OfferEconomics(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "numbers",
    [
        {"basket_value": -1.0},
        {"basket_value": math.nan},
        {"basket_value": 1.0, "churn_probability": 1.5},
        {"basket_value": 1.0, "recency_days": -2.0},
        {"basket_value": 1.0, "clv_12m": math.inf},
    ],
)
def test_malformed_customer_numbers_are_refused(numbers: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case names a different field
        CustomerNumbers(**numbers)


def test_a_nan_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="budget_left"):
        choose_discount("cart_abandonment", CustomerNumbers(10.0), math.nan)
