"""CLV models: CDNOW acceptance through our own events, known answers, artifacts, the CLI.

The published CDNOW figures are Fader, Hardie and Lee's (2005) BG/NBD fit and Fader and
Hardie's Gamma-Gamma fit on the 2,357-customer sample with a 39-week calibration period
(1997-01-01 to 1997-09-30), time in weeks. The documented ``lifetimes`` outputs come from
its Quickstart, fitted on the summaries that ship beside CDNOW in the ``lifetimes`` wheel.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import doctest
import importlib
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import events
from models.clv import (
    PERIODS_PER_MONTH,
    BetaGeo,
    CLVParams,
    GammaGamma,
    RFMSummary,
    customer_lifetime_value,
    customer_lifetime_value_many,
    fit_clv,
    simulate_purchases,
    summarise_orders,
    summarise_purchases,
)
from shopkeeper.cli import main
from shopkeeper.clv_fit import read_orders
from shopkeeper.datasets import cdnow_path, read_cdnow, to_order, write_cdnow_events

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
CALIBRATION_END = dt.date(1997, 9, 30)
FITTED_AT = dt.datetime(2025, 6, 1, 8, 30, tzinfo=dt.UTC)


def _utc(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2025, 1, 1, hour, tzinfo=dt.UTC) + dt.timedelta(days=day)


def _lifetimes_csv(name: str) -> list[dict[str, str]]:
    """A summary CSV that ships beside CDNOW in the lifetimes wheel (read as data)."""
    with (cdnow_path(sample=True).parent / name).open(newline="") as file:
        return list(csv.DictReader(file))


def _column(rows: list[dict[str, str]], name: str) -> np.ndarray:
    return np.array([float(row[name]) for row in rows])


@pytest.fixture(scope="module")
def cdnow_summary(tmp_path_factory: pytest.TempPathFactory) -> RFMSummary:
    """CDNOW sample -> our Order Completed events in JSONL -> decoded -> our summary."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow_sample.jsonl"
    write_cdnow_events(path, sample=True, progress=False)
    history = read_orders(path, progress=False)
    assert history.undecodable == 0
    assert len(history.orders) == 6_919
    return summarise_orders(history.orders, until=CALIBRATION_END, unit="weeks")


@pytest.fixture(scope="module")
def cdnow_params(cdnow_summary: RFMSummary) -> CLVParams:
    return fit_clv(cdnow_summary, fitted_at=FITTED_AT, currency="USD")


# -- acceptance: CDNOW through our own events ---------------------------------------------


def test_cdnow_sample_fit_reproduces_the_published_parameters(cdnow_params: CLVParams) -> None:
    fitted_bg = dataclasses.asdict(cdnow_params.beta_geo)
    fitted_gg = dataclasses.asdict(cdnow_params.gamma_gamma)
    for name, published in PUBLISHED_BG.items():
        assert fitted_bg[name] == pytest.approx(published, rel=0.01), name
    for name, published in PUBLISHED_GG.items():
        assert fitted_gg[name] == pytest.approx(published, rel=0.02), name
    assert cdnow_params.customers == 2_357
    assert cdnow_params.returning_customers == 946
    assert cdnow_params.observation_end == CALIBRATION_END
    # Fader, Hardie and Lee report LL = -9582.4 at their estimates.
    assert cdnow_params.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_cdnow_summary_matches_fader_hardies_summary(cdnow_summary: RFMSummary) -> None:
    # The published summary (x, t_x, T, zbar) is rounded to 2 decimals and keyed by the
    # sample's own customer number, the second column of CDNOW_sample.txt.
    number = {}
    for line in cdnow_path(sample=True).read_text().splitlines():
        master, own, *_ = line.split()
        number[f"cdnow-{master}"] = int(own)
    published = _lifetimes_csv("cdnow_customers_summary_with_transactions.csv")
    order = np.argsort([number[c] for c in cdnow_summary.customer_ids])
    assert len(order) == len(published) == 2_357
    assert np.array_equal(cdnow_summary.frequency[order], _column(published, "x"))
    for ours, theirs in [
        (cdnow_summary.recency, "t_x"),
        (cdnow_summary.T, "T"),
        (cdnow_summary.monetary_value, "zbar"),
    ]:
        assert np.abs(ours[order] - _column(published, theirs)).max() <= 0.005 + 1e-9, theirs


def test_fit_is_a_maximum_of_the_likelihood(
    cdnow_summary: RFMSummary, cdnow_params: CLVParams
) -> None:
    s = cdnow_summary
    bg, gg = cdnow_params.beta_geo, cdnow_params.gamma_gamma
    best_bg = bg.log_likelihood(s.frequency, s.recency, s.T)
    best_gg = gg.log_likelihood(s.frequency, s.monetary_value)
    for name in ("r", "alpha", "a", "b"):
        for factor in (0.99, 1.01):
            moved = dataclasses.replace(bg, **{name: getattr(bg, name) * factor})
            assert moved.log_likelihood(s.frequency, s.recency, s.T) < best_bg, (name, factor)
    for name in ("p", "q", "v"):
        for factor in (0.99, 1.01):
            moved_gg = dataclasses.replace(gg, **{name: getattr(gg, name) * factor})
            assert moved_gg.log_likelihood(s.frequency, s.monetary_value) < best_gg


# -- known answers: lifetimes' documented outputs on the same summaries ------------------


def test_beta_geo_matches_lifetimes_documented_predictions() -> None:
    rows = _lifetimes_csv("cdnow_customers_summary.csv")
    bg = BetaGeo.fit(_column(rows, "frequency"), _column(rows, "recency"), _column(rows, "T"))
    # lifetimes Quickstart: the five customers with the most purchases expected next week.
    documented = [
        ((18, 35.14, 35.86), 0.424877),
        ((19, 34.00, 34.14), 0.474738),
        ((17, 28.43, 28.86), 0.486526),
        ((29, 37.71, 38.00), 0.662396),
        ((26, 30.86, 31.00), 0.710623),
    ]
    for (x, t_x, age), expected in documented:
        assert bg.expected_purchases(1, x, t_x, age) == pytest.approx(expected, rel=1e-5)


def test_gamma_gamma_and_clv_match_lifetimes_documented_values() -> None:
    rows = _lifetimes_csv("cdnow_customers_summary_with_transactions.csv")
    x, t_x, age, m = (_column(rows, c) for c in ("x", "t_x", "T", "zbar"))
    bg = BetaGeo.fit(x, t_x, age)
    gg = GammaGamma.fit(x, m)
    assert (gg.p, gg.q, gg.v) == pytest.approx((6.25, 3.74, 15.45), abs=0.005)
    value = gg.expected_order_value_many(x, m)
    documented_value = [24.658619, 18.911489, 35.170981, 35.170981, 35.170981, 71.462843]
    assert value[:6] == pytest.approx(documented_value, rel=1e-5)
    assert value.mean() == pytest.approx(35.2529588256, rel=1e-6)
    # The Quickstart calls customer_lifetime_value with its default freq="D" (30 periods a
    # month) on this weekly summary; the same call here must give the same numbers.
    clv = customer_lifetime_value_many(
        bg, gg, frequency=x, recency=t_x, T=age, monetary_value=m, periods_per_month=30
    )
    documented_clv = [140.096211, 18.943467, 38.180574, 38.180574, 38.180574, 1003.868107]
    assert clv[:6] == pytest.approx(documented_clv, rel=1e-5)
    assert clv[8] == pytest.approx(167.418216, rel=1e-5)


# -- known answers: properties of the formulas -------------------------------------------


BG = BetaGeo(**PUBLISHED_BG)
GG = GammaGamma(**PUBLISHED_GG)


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence() -> None:
    assert BG.probability_alive(0, 0.0, 38.86) == 1.0
    assert BG.probability_alive_many([0, 0], [0.0, 0.0], [1.0, 80.0]).tolist() == [1.0, 1.0]
    alive = [BG.probability_alive(5, recency, 39.0) for recency in (39.0, 30.0, 20.0, 5.0)]
    assert alive[0] > alive[1] > alive[2] > alive[3] > 0
    # Having just bought, a customer is dead only if they dropped out after that purchase.
    assert BG.probability_alive(10, 39.0, 39.0) == pytest.approx(
        (BG.b + 9) / (BG.a + BG.b + 9), rel=1e-12
    )


def test_expected_purchases_start_at_zero_and_grow_with_the_horizon() -> None:
    for x, t_x, age in [(0, 0.0, 38.86), (2, 30.43, 38.86), (26, 30.86, 31.0), (400, 38.0, 39.0)]:
        assert BG.expected_purchases(0.0, x, t_x, age) == 0.0
        horizons = [1.0, 10.0, 52.0, 100.0, 1_000.0, 5_000.0]
        expected = [BG.expected_purchases(t, x, t_x, age) for t in horizons]
        assert all(math.isfinite(e) for e in expected), (x, expected)
        assert all(a < b for a, b in itertools.pairwise(expected)), (x, expected)


def test_a_new_customer_expects_what_the_population_does() -> None:
    for t in (1.0, 13.0, 39.0, 78.0):
        assert BG.expected_purchases(t, 0, 0.0, 0.0) == pytest.approx(
            BG.population_expected_purchases(t), rel=1e-12
        )


def test_vectorised_functions_equal_the_scalar_ones(cdnow_summary: RFMSummary) -> None:
    s = cdnow_summary
    rows = list(zip(s.frequency, s.recency, s.T, s.monetary_value, strict=True))
    expected = BG.expected_purchases_many(13.0, s.frequency, s.recency, s.T)
    alive = BG.probability_alive_many(s.frequency, s.recency, s.T)
    value = GG.expected_order_value_many(s.frequency, s.monetary_value)
    clv = customer_lifetime_value_many(
        BG, GG, frequency=s.frequency, recency=s.recency, T=s.T, monetary_value=s.monetary_value,
        periods_per_month=PERIODS_PER_MONTH["weeks"],
    )  # fmt: skip
    for i, (x, t_x, age, m) in enumerate(rows[:300]):
        assert expected[i] == pytest.approx(BG.expected_purchases(13.0, x, t_x, age), rel=1e-12)
        assert alive[i] == pytest.approx(BG.probability_alive(x, t_x, age), rel=1e-12)
        assert value[i] == pytest.approx(GG.expected_order_value(x, m), rel=1e-12)
        scalar_clv = customer_lifetime_value(
            BG, GG, frequency=x, recency=t_x, T=age, monetary_value=m,
            periods_per_month=PERIODS_PER_MONTH["weeks"],
        )  # fmt: skip
        assert clv[i] == pytest.approx(scalar_clv, rel=1e-10)
    # Where the hypergeometric series overflows, the transformed one takes over.
    big = BG.expected_purchases_many([100.0, 1_000.0, 5_000.0], 400, 38.0, 39.0)
    scalar = [BG.expected_purchases(t, 400, 38.0, 39.0) for t in (100.0, 1_000.0, 5_000.0)]
    assert big == pytest.approx(scalar, rel=1e-12)


def test_expected_order_value_shrinks_towards_the_population_mean() -> None:
    assert GG.expected_order_value(0, 0.0) == pytest.approx(GG.p * GG.v / (GG.q - 1))
    assert GG.expected_order_value(0, 0.0) == pytest.approx(GG.population_mean)
    values = [GG.expected_order_value(x, 100.0) for x in (1, 5, 50, 5_000)]
    assert GG.population_mean < values[0] < values[1] < values[2] < values[3] < 100.0
    assert values[3] == pytest.approx(100.0, rel=1e-3)


def test_clv_without_discounting_is_order_value_times_expected_purchases() -> None:
    x, t_x, age, m = 3, 30.0, 38.86, 25.0
    clv = customer_lifetime_value(
        BG, GG, frequency=x, recency=t_x, T=age, monetary_value=m, periods_per_month=4.345,
        months=12, monthly_discount_rate=0.0,
    )  # fmt: skip
    purchases = BG.expected_purchases(12 * 4.345, x, t_x, age)
    assert clv == pytest.approx(GG.expected_order_value(x, m) * purchases, rel=1e-12)
    discounted = customer_lifetime_value(
        BG, GG, frequency=x, recency=t_x, T=age, monetary_value=m, periods_per_month=4.345
    )
    assert 0 < discounted < clv


def test_fits_recover_the_parameters_of_simulated_customers() -> None:
    truth_bg = BetaGeo(r=0.25, alpha=4.0, a=0.8, b=2.5)
    truth_gg = GammaGamma(p=6.0, q=4.0, v=15.0)
    purchases = simulate_purchases(
        truth_bg, truth_gg, customers=20_000, start=_utc(0, hour=0), periods=78, seed=11
    )
    summary = summarise_purchases(purchases, until=(_utc(0) + dt.timedelta(weeks=78)).date())
    params = fit_clv(summary, fitted_at=FITTED_AT)
    # Day-level summaries merge same-day purchases, which biases alpha up a little.
    assert params.beta_geo.r == pytest.approx(truth_bg.r, rel=0.1)
    assert params.beta_geo.alpha == pytest.approx(truth_bg.alpha, rel=0.15)
    assert params.beta_geo.a == pytest.approx(truth_bg.a, rel=0.25)
    assert params.beta_geo.b == pytest.approx(truth_bg.b, rel=0.25)
    assert params.gamma_gamma.p == pytest.approx(truth_gg.p, rel=0.15)
    assert params.gamma_gamma.q == pytest.approx(truth_gg.q, rel=0.15)
    assert params.gamma_gamma.v == pytest.approx(truth_gg.v, rel=0.15)
    again = simulate_purchases(
        truth_bg, truth_gg, customers=20_000, start=_utc(0, hour=0), periods=78, seed=11
    )
    assert again == purchases


def test_fit_refuses_what_cannot_be_a_summary() -> None:
    with pytest.raises(ValueError, match="recency must lie between 0 and T"):
        BetaGeo.fit([1, 2], [5.0, 3.0], [4.0, 9.0])
    with pytest.raises(ValueError, match="recency must be 0"):
        BetaGeo.fit([0], [1.0], [4.0])
    with pytest.raises(ValueError, match="whole number"):
        BetaGeo.fit([1.5], [1.0], [4.0])
    with pytest.raises(ValueError, match="no customer with a repeat purchase"):
        GammaGamma.fit([0, 0], [0.0, 0.0])
    with pytest.raises(ValueError, match="must be positive"):
        BetaGeo(r=0.0, alpha=1.0, a=1.0, b=1.0)


# -- the summary ------------------------------------------------------------------------


def test_summary_counts_days_merges_same_day_purchases_and_stops_at_until() -> None:
    purchases = [
        ("ann", _utc(0, hour=1), 10.0),
        ("ann", _utc(0, hour=23), 5.0),  # same UTC day as the first: not a repeat
        ("ann", _utc(14, hour=2), 20.0),
        ("ann", _utc(14, hour=20), 4.0),
        ("ann", _utc(28), 30.0),
        ("ann", _utc(40), 99.0),  # after until
        ("bob", _utc(21), 7.0),
        ("cat", _utc(35), 8.0),  # first purchase after until
    ]
    s = summarise_purchases(purchases, until=_utc(30).date(), unit="days")
    assert s.customer_ids == ("ann", "bob")
    assert s.frequency.tolist() == [2.0, 0.0]
    assert s.recency.tolist() == [28.0, 0.0]
    assert s.T.tolist() == [30.0, 9.0]
    assert s.monetary_value.tolist() == [(24.0 + 30.0) / 2, 0.0]
    weeks = summarise_purchases(purchases, until=_utc(30).date(), unit="weeks")
    assert weeks.recency.tolist() == [4.0, 0.0]
    assert weeks.T.tolist() == pytest.approx([30 / 7, 9 / 7])
    assert weeks.returning().customer_ids == ("ann",)
    default_end = summarise_purchases(purchases, unit="days")
    assert default_end.observation_end == _utc(40).date()
    # A timestamp in another zone counts on its UTC day.
    east = dt.timezone(dt.timedelta(hours=5))
    late = summarise_purchases([("dan", dt.datetime(2025, 1, 2, 3, tzinfo=east), 1.0)])
    assert late.observation_end == dt.date(2025, 1, 1)


def test_summary_refuses_naive_times_and_mixed_currencies() -> None:
    with pytest.raises(ValueError, match="naive"):
        summarise_purchases([("ann", dt.datetime(2025, 1, 1), 1.0)])  # noqa: DTZ001
    with pytest.raises(ValueError, match="no purchase"):
        summarise_purchases([("ann", _utc(5), 1.0)], until=_utc(1).date())
    line = events.Product(product_id="p", price=1.0, currency="EUR")
    euro = events.OrderCompleted(
        message_id="m-1",
        timestamp=_utc(0),
        channel="web",
        customer_id="c-1",
        properties=events.OrderCompletedProperties(
            order_id="o-1", revenue=1.0, currency="EUR", products=[line]
        ),
    )
    dollar = to_order(read_cdnow(sample=True)[0])
    viewed = events.ProductViewed(
        message_id="m-2",
        timestamp=_utc(1),
        channel="web",
        customer_id="c-1",
        properties=events.ProductViewedProperties(product_id="p", price=1.0, currency="EUR"),
    )
    assert summarise_orders([euro, viewed]).customer_ids == ("c-1",)
    with pytest.raises(ValueError, match="several currencies"):
        summarise_orders([euro, dollar])


def test_cdnow_master_is_read_whole() -> None:
    rows = read_cdnow()
    assert len(rows) == 69_659
    assert len({row.customer_id for row in rows}) == 23_570
    assert min(row.day for row in rows) == dt.date(1997, 1, 1)
    assert max(row.day for row in rows) == dt.date(1998, 6, 30)


# -- the artifact -----------------------------------------------------------------------


def test_parameters_round_trip_through_json_with_a_content_version(
    cdnow_params: CLVParams,
) -> None:
    data = cdnow_params.to_json()
    assert CLVParams.from_json(data) == cdnow_params
    assert re.fullmatch(r"20250601T083000Z-[0-9a-f]{8}", cdnow_params.version)
    doc = json.loads(data)
    assert doc["format"] == "shopkeeper.clv/1"
    assert doc["currency"] == "USD"
    other = fit_clv(_tiny_summary(), fitted_at=FITTED_AT)
    assert other.version.startswith("20250601T083000Z-")
    assert other.version != cdnow_params.version
    assert fit_clv(_tiny_summary(), fitted_at=FITTED_AT).version == other.version
    tampered = dict(doc, beta_geo=dict(doc["beta_geo"], r=0.5))
    with pytest.raises(ValueError, match="does not match"):
        CLVParams.from_json(json.dumps(tampered))
    with pytest.raises(ValueError, match="missing or unknown"):
        CLVParams.from_json(json.dumps(dict(doc, extra=1)))
    with pytest.raises(ValueError, match=r"not a shopkeeper\.clv/1"):
        CLVParams.from_json(json.dumps(dict(doc, format="pickle")))
    with pytest.raises(ValueError, match="invalid"):
        CLVParams.from_json(b"{not json")
    with pytest.raises(ValueError, match="unknown time unit"):
        CLVParams.from_json(json.dumps(dict(doc, unit="months")))


def _tiny_summary() -> RFMSummary:
    purchases = simulate_purchases(
        BG, GG, customers=1_000, start=_utc(0, hour=0), periods=39, seed=3
    )
    return summarise_purchases(purchases, until=_utc(273).date())


# -- the command line -------------------------------------------------------------------


def test_cli_fits_cdnow_events_and_writes_versioned_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events_file = tmp_path / "cdnow.jsonl"
    assert main(["datasets", "cdnow", "--sample", "--out", str(events_file)]) == 0
    assert len(events_file.read_bytes().splitlines()) == 6_919
    with events_file.open("ab") as out:
        out.write(b'{"event": "Order Completed", "truncated\n\nnot json at all\n')
    out_dir = tmp_path / "models"
    argv = ["clv", "fit", "--events", str(events_file), "--until", "1997-09-30"]
    assert main([*argv, "--unit", "weeks", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "2 undecodable lines skipped" in printed
    assert "2,357 customers, 946 with repeat purchases" in printed
    (written,) = out_dir.glob("*.json")
    params = CLVParams.from_json(written.read_bytes())
    assert written.name == f"{params.version}.json"
    assert params.version in printed
    assert params.beta_geo.r == pytest.approx(PUBLISHED_BG["r"], rel=0.01)
    assert params.gamma_gamma.v == pytest.approx(PUBLISHED_GG["v"], rel=0.02)
    assert params.currency == "USD"
    assert params.unit == "weeks"


def test_cli_fits_generated_history_and_skips_what_does_not_decode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.jsonl"
    world = ["--customers", "300", "--products", "200", "--seed", "5"]
    generate = ["generate", "--days", "60", "--out", str(history), "--start", "2025-01-01"]
    assert main([*generate, *world]) == 0
    truth = json.loads(history.with_suffix(".truth.json").read_bytes())
    capsys.readouterr()
    out_dir = tmp_path / "models"
    argv = ["clv", "fit", "--events", str(history), "--unit", "days", "--out", str(out_dir)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{sum(truth['malformed'].values()):,} undecodable lines skipped" in printed
    (written,) = out_dir.glob("*.json")
    params = CLVParams.from_json(written.read_bytes())
    assert params.unit == "days"
    assert params.currency == "EUR"
    assert params.observation_end == dt.date(2025, 3, 1)  # the day of the last event
    assert params.customer_lifetime_value(2, 20.0, 40.0, 50.0) > 0


def test_cli_reports_a_file_without_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "junk.jsonl"
    empty.write_bytes(b"junk\n")
    assert main(["clv", "fit", "--events", str(empty), "--out", str(tmp_path)]) == 1
    assert "holds no valid event" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["clv", "fit", "--events", str(tmp_path / "missing.jsonl")])
    assert exit_info.value.code == 2


# -- the docstring examples of the private modules (pytest collects only models/clv.py) --


@pytest.mark.parametrize(
    "module",
    ["models.clv", "models._clv_summary", "models._clv_bgnbd", "models._clv_gamma",
     "models._clv_simulate"],
)  # fmt: skip
def test_docstring_examples_run(module: str) -> None:
    results = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0
    assert results.failed == 0
