"""The uplift statistics: Wilson and Newcombe intervals against published values, their
invariants, and their exact coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from models.uplift import newcombe_interval, uplift, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Newcombe (1998b), "Two-sided confidence intervals for the single proportion",
        # Table I, method 3 (Wilson score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombes_single_proportion_examples(
    successes: int, trials: int, low: float, high: float
) -> None:
    got = wilson_interval(successes, trials)
    assert (round(float(got[0]), 4), round(float(got[1]), 4)) == (low, high)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables" (2017),
        # the epinephrine trial of Perondi et al. (2004).
        ((7, 34, 1, 34), (0.0189, 0.3404)),
        # No events in either arm: minus and plus the Wilson upper bound of 0/10,
        # z^2 / (n + z^2).
        ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ],
)
def test_newcombe_matches_published_intervals(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    got = newcombe_interval(*counts)
    assert (round(float(got[0]), 4), round(float(got[1]), 4)) == expected


def test_uplift_gives_rates_difference_relative_lift_and_significance() -> None:
    u = uplift(treated_conversions=30, treated=100, control_conversions=20, control=100)
    assert (u.treated.rate, u.control.rate) == (0.3, 0.2)
    assert u.difference == pytest.approx(0.1)
    assert u.relative == pytest.approx(0.5)
    assert u.low < 0 < u.high
    assert not u.significant
    assert u.treated.low < 0.3 < u.treated.high
    none_in_control = uplift(treated_conversions=5, treated=50, control_conversions=0, control=50)
    assert none_in_control.relative is None
    assert none_in_control.low > -1
    big = uplift(treated_conversions=300, treated=1000, control_conversions=200, control=1000)
    assert big.significant
    assert big.level == 0.95


@pytest.mark.parametrize(
    "call",
    [
        lambda: uplift(treated_conversions=0, treated=0, control_conversions=1, control=5),
        lambda: uplift(treated_conversions=6, treated=5, control_conversions=1, control=5),
        lambda: uplift(treated_conversions=-1, treated=5, control_conversions=1, control=5),
        lambda: newcombe_interval(1, 5, 1, 5, level=1.0),
        lambda: wilson_interval(1, 5, level=0.0),
    ],
)
def test_bad_counts_and_levels_are_refused(call: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        call()  # type: ignore[operator]


def test_an_arm_without_trials_knows_nothing() -> None:
    low, high = wilson_interval(0, 0)
    assert (float(low), float(high)) == (0.0, 1.0)


arms = st.integers(min_value=1, max_value=5_000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
levels = st.floats(min_value=0.5, max_value=0.999)


@given(treated=arms, control=arms, level=levels)
def test_the_interval_holds_the_estimate_inside_minus_one_to_one(
    treated: tuple[int, int], control: tuple[int, int], level: float
) -> None:
    low, high = (float(b) for b in newcombe_interval(*treated, *control, level))
    d = treated[0] / treated[1] - control[0] / control[1]
    assert -1.0 <= low <= d + 1e-12
    assert d - 1e-12 <= high <= 1.0


@given(treated=arms, control=arms, level=levels)
def test_swapping_the_arms_mirrors_the_interval(
    treated: tuple[int, int], control: tuple[int, int], level: float
) -> None:
    low, high = newcombe_interval(*treated, *control, level)
    back_low, back_high = newcombe_interval(*control, *treated, level)
    assert float(back_low) == pytest.approx(-float(high), abs=1e-12)
    assert float(back_high) == pytest.approx(-float(low), abs=1e-12)


@given(treated=arms, control=arms, level=st.floats(min_value=0.5, max_value=0.98))
def test_a_higher_level_gives_a_wider_interval(
    treated: tuple[int, int], control: tuple[int, int], level: float
) -> None:
    low, high = newcombe_interval(*treated, *control, level)
    wide_low, wide_high = newcombe_interval(*treated, *control, level + 0.01)
    assert wide_low <= low + 1e-12
    assert wide_high >= high - 1e-12


@given(st.lists(st.tuples(arms, arms), min_size=1, max_size=20))
def test_arrays_give_what_scalars_give(
    pairs: list[tuple[tuple[int, int], tuple[int, int]]],
) -> None:
    columns = np.array([[*t, *c] for t, c in pairs]).T
    lows, highs = newcombe_interval(*columns)
    for (t, c), low, high in zip(pairs, lows, highs, strict=True):
        one_low, one_high = newcombe_interval(*t, *c)
        # Vectorised arithmetic may round the last bit differently.
        assert (low, high) == (
            pytest.approx(one_low, abs=1e-15),
            pytest.approx(one_high, abs=1e-15),
        )


def _exact_coverage(n1: int, n2: int, p1: float, p2: float, level: float = 0.95) -> float:
    """The probability, over every outcome of both arms, that the interval holds p1 - p2."""
    x1, x2 = np.arange(n1 + 1)[:, None], np.arange(n2 + 1)[None, :]
    low, high = newcombe_interval(x1, n1, x2, n2, level)
    inside = (low <= p1 - p2) & (p1 - p2 <= high)
    weights = binom.pmf(np.arange(n1 + 1), n1, p1)[:, None] * binom.pmf(x2[0], n2, p2)[None, :]
    return float((weights * inside).sum())


@given(
    n1=st.integers(min_value=20, max_value=300),
    n2=st.integers(min_value=20, max_value=300),
    p1=st.floats(min_value=0.05, max_value=0.95),
    p2=st.floats(min_value=0.05, max_value=0.95),
)
def test_the_exact_coverage_of_a_95_percent_interval_stays_near_95_percent(
    n1: int, n2: int, p1: float, p2: float
) -> None:
    # Newcombe's method 10 dips to about 0.918 at these sizes (rates near 0.05 and 0.95).
    assert _exact_coverage(n1, n2, p1, p2) >= 0.91


def test_the_mean_exact_coverage_is_the_nominal_level() -> None:
    rates = np.linspace(0.05, 0.95, 7)
    coverage = [
        _exact_coverage(n1, n2, float(p1), float(p2))
        for n1, n2 in ((30, 30), (50, 200), (300, 120))
        for p1 in rates
        for p2 in rates
    ]
    assert 0.94 <= float(np.mean(coverage)) <= 0.96
