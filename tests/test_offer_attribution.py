"""The offer report's attribution rules, its reading of decisions, its outputs, and the
responder that plants a known uplift; no broker needed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

import events
from models.attribution import (
    Exposure,
    OfferResponse,
    Order,
    RecommendationClick,
    attribute_offers,
    attribute_recommendations,
    recommendation_context,
)
from shopkeeper.generator import PlantedEffect, plant_responses
from shopkeeper.history import History
from shopkeeper.offer_log import DecisionLog
from shopkeeper.report_offers import build_report, format_table, write_prometheus, write_report
from tests.flowkit import event, product

HOUR = 3_600.0
WINDOW = 48 * HOUR
T = 1_746_532_800.0  # 2025-05-06 12:00 UTC


def _sent(offer: str = "of-1", customer: str = "c-1", trigger: str = "post_purchase") -> Exposure:
    return Exposure(offer, customer, trigger, T, treated=True)


def _held(offer: str = "of-2", customer: str = "c-2", trigger: str = "post_purchase") -> Exposure:
    return Exposure(offer, customer, trigger, T, treated=False)


def _converted(exposure: Exposure, *order_times: float) -> int:
    orders = [Order(exposure.customer_id, t) for t in order_times]
    counts = attribute_offers([exposure], orders, [], window_s=WINDOW).triggers[exposure.trigger]
    return counts.treated_conversions + counts.control_conversions


@pytest.mark.parametrize(
    ("offset", "converts"),
    [
        (-HOUR, False),  # before the decision
        (0.0, False),  # the order that triggered it
        (0.001, True),
        (WINDOW, True),  # the window's last instant
        (WINDOW + 0.001, False),
    ],
)
@pytest.mark.parametrize("arm", [_sent, _held])
def test_an_order_converts_a_decision_only_inside_its_window(
    offset: float, converts: bool, arm: Any
) -> None:
    assert _converted(arm(), T + offset) == converts


def test_a_decision_converts_once_however_many_orders_follow() -> None:
    assert _converted(_sent(), T + HOUR, T + 2 * HOUR, T + 3 * HOUR) == 1


def test_orders_of_other_customers_convert_nothing() -> None:
    orders = [Order("c-other", T + HOUR)]
    counts = attribute_offers([_sent(), _held()], orders, [], window_s=WINDOW)
    assert counts.triggers["post_purchase"].treated_conversions == 0
    assert counts.triggers["post_purchase"].control_conversions == 0


def test_one_order_converts_every_decision_whose_window_holds_it() -> None:
    purchase = _sent("of-1", "c-1", "post_purchase")
    tier = dataclasses.replace(_sent("of-9", "c-1", "tier_upgrade"), at=T + HOUR)
    result = attribute_offers([purchase, tier], [Order("c-1", T + 2 * HOUR)], [], window_s=WINDOW)
    assert {name: c.treated_conversions for name, c in result.triggers.items()} == {
        "post_purchase": 1,
        "tier_upgrade": 1,
    }


def test_a_repeated_decision_counts_once() -> None:
    result = attribute_offers([_sent(), _sent(), _held()], [], [], window_s=WINDOW)
    counts = result.triggers["post_purchase"]
    assert (counts.treated, counts.control) == (1, 1)


def test_responses_count_once_per_sent_offer_within_its_window() -> None:
    responses = [
        OfferResponse("of-1", T - 60),  # before the offer: not counted
        OfferResponse("of-1", T),  # at the decision itself: not counted
        OfferResponse("of-1", T + 60),
        OfferResponse("of-1", T + 120),  # the same offer clicked again
        OfferResponse("of-1", T + 600, redeemed=True, revenue=25.0, currency="EUR"),
        OfferResponse("of-1", T + 700, redeemed=True, revenue=5.5, currency="USD"),
        OfferResponse("of-1", T + WINDOW + 1, redeemed=True, revenue=99.0, currency="EUR"),
    ]
    result = attribute_offers([_sent()], [], responses, window_s=WINDOW)
    counts = result.triggers["post_purchase"]
    assert (counts.clicked, counts.redeemed) == (1, 1)
    assert counts.redeemed_revenue == {"EUR": 25.0, "USD": 5.5}
    assert result.ignored == {
        "unknown_offer": 0,
        "control_offer": 0,
        "open_offer": 0,
        "outside_window": 3,
    }


def test_the_control_arm_never_clicks_or_redeems() -> None:
    responses = [
        OfferResponse("of-2", T + 60),
        OfferResponse("of-2", T + 600, redeemed=True, revenue=25.0, currency="EUR"),
        OfferResponse("of-unknown", T + 60),
    ]
    orders = [Order("c-2", T + 600)]
    result = attribute_offers([_held()], orders, responses, window_s=WINDOW)
    counts = result.triggers["post_purchase"]
    assert (counts.clicked, counts.redeemed, counts.redeemed_revenue) == (0, 0, {})
    assert counts.control_conversions == 1  # its order still converts it, as in the treated arm
    assert result.ignored == {
        "unknown_offer": 1,
        "control_offer": 2,
        "open_offer": 0,
        "outside_window": 0,
    }


def test_a_decision_whose_window_is_still_open_is_left_out_of_both_arms() -> None:
    closed = [_sent("of-1", "c-1"), _held("of-2", "c-2")]  # their windows end at `until`
    still_open = [
        dataclasses.replace(_sent("of-3", "c-3"), at=T + 1),
        dataclasses.replace(_held("of-4", "c-4"), at=T + 1),
    ]
    orders = [Order(f"c-{i}", T + HOUR) for i in range(1, 5)]
    responses = [OfferResponse("of-3", T + 60)]
    result = attribute_offers(
        [*closed, *still_open], orders, responses, window_s=WINDOW, until=T + WINDOW
    )
    counts = result.triggers["post_purchase"]
    assert (counts.treated, counts.treated_conversions) == (1, 1)
    assert (counts.control, counts.control_conversions) == (1, 1)
    assert (counts.open, counts.clicked) == (2, 0)
    assert result.ignored["open_offer"] == 1


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        attribute_offers([], [], [], window_s=-1)


@pytest.mark.parametrize(
    ("recommendation_id", "context"),
    [
        ("rec.customer.home.0f3a", "rec.customer.home"),
        ("rec.item_cross_sell.product.77", "rec.item_cross_sell.product"),
        ("rec.customer.home", "other"),
        ("rec..home.1", "other"),
        ("r-1", "other"),
        ("rec.a.b.c.d", "other"),
    ],
)
def test_recommendation_contexts_are_read_from_the_id(recommendation_id: str, context: str) -> None:
    assert recommendation_context(recommendation_id) == context


def test_a_recommendation_click_converts_on_its_product_within_a_day() -> None:
    served = "rec.customer.home.1"
    clicks = [
        RecommendationClick("c-1", T, "P1", served),
        RecommendationClick("c-2", T, "P1", served),  # bought a day and a second later
        RecommendationClick("c-3", T, "P1", served),  # bought another product
        RecommendationClick("c-4", T, "P1", served),  # bought before the click
    ]
    orders = [
        Order("c-1", T + 86_400, ("P1", "P1")),
        Order("c-1", T + 60, ("P1",)),
        Order("c-2", T + 86_401, ("P1",)),
        Order("c-3", T + 60, ("P2",)),
        Order("c-4", T - 60, ("P1",)),
    ]
    counts = attribute_recommendations(clicks, orders)
    assert {c: (n.clicks, n.conversions) for c, n in counts.items()} == {
        "rec.customer.home": (4, 1)
    }


def _decision(**body: Any) -> bytes:
    base = {
        "offer_id": "of-1",
        "customer_id": "c-1",
        "trigger": "post_purchase",
        "reason": "order_completed",
        "at": "2025-05-06T12:00:00Z",
        "channel": "email",
        "features": {"products": "P1"},
        "content": {"subject": "later fields are ignored"},
    }
    return orjson.dumps({**base, **body})


def test_the_decision_log_reads_both_arms_and_counts_the_other_suppressions() -> None:
    log = DecisionLog()
    log.add(_decision(), fired=True)
    held = {"signal": "offer_suppressed", "reason": "holdout", "offer_id": "of-2"}
    log.add(_decision(**held, signal_id="s-1"), fired=False)
    consent = {"signal": "offer_suppressed", "reason": "no_consent", "offer_id": "of-3"}
    log.add(_decision(**consent, signal_id="s-2"), fired=False)
    log.add(_decision(**consent, signal_id="s-2"), fired=False)  # delivered twice
    log.add(orjson.dumps({"signal": "tier_upgraded", "customer_id": "c-1"}), fired=False)
    log.add(_decision(at="2025-05-06T12:00:00"), fired=True)  # no time zone
    log.add(b'{"offer_id": 3}', fired=True)
    log.add(None, fired=True)
    assert [(e.offer_id, e.treated, e.at) for e in log.exposures] == [
        ("of-1", True, T),
        ("of-2", False, T),
    ]
    assert log.suppressed == {"post_purchase": {"no_consent": 1}}
    assert log.rejected == 3


def _history(*items: events.Event) -> History:
    return History(sorted(items, key=lambda e: e.timestamp), {"malformed_json": 2}, "test")


def _at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T + seconds, dt.UTC)


def _report(now: dt.datetime = dt.datetime(2025, 5, 9, tzinfo=dt.UTC)) -> dict[str, Any]:
    log = DecisionLog()
    for i in range(4):
        log.add(_decision(offer_id=f"of-t{i}", customer_id=f"c-t{i}"), fired=True)
        held = {"signal": "offer_suppressed", "reason": "holdout"}
        log.add(_decision(**held, offer_id=f"of-c{i}", customer_id=f"c-c{i}"), fired=False)
    log.add(_decision(trigger="cart_abandonment", offer_id="of-x"), fired=True)
    order = event("Order Completed", _at(HOUR), customer="c-t0", order_id="o-1", revenue=20.0,
                  currency="EUR", products=[product("P1", 20.0)])  # fmt: skip
    redeemed = event("Offer Redeemed", _at(HOUR), customer="c-t0", offer_id="of-t0",
                     order_id="o-1", revenue=20.0, currency="EUR")  # fmt: skip
    clicked = event("Offer Clicked", _at(60), customer="c-t1", offer_id="of-t1")
    held_order = event("Order Completed", _at(2 * HOUR), customer="c-c0", order_id="o-2",
                       revenue=9.0, currency="EUR", products=[product("P2", 9.0)])  # fmt: skip
    served = event("Product Clicked", _at(0), customer="c-t0", product_id="P1", price=20.0,
                   currency="EUR", recommendation_id="rec.customer.home.ab")  # fmt: skip
    viewed = event("Product Viewed", _at(0), customer="c-t0", product_id="P1", price=20.0,
                   currency="EUR")  # fmt: skip
    # Repeated deliveries carry the same message id.
    history = _history(order, order, redeemed, redeemed, clicked, held_order, served, viewed)
    return build_report(log, history, now=now)


def test_the_report_counts_each_message_once_and_compares_the_arms() -> None:
    report = _report()
    post = report["triggers"]["post_purchase"]
    assert post["treated"]["n"] == post["control"]["n"] == 4
    assert post["treated"]["conversions"] == post["control"]["conversions"] == 1
    assert post["uplift"]["difference"] == 0.0
    assert post["uplift"]["low"] < 0 < post["uplift"]["high"]
    assert post["offers"] == {
        "clicked": 1,
        "click_rate": 0.25,
        "redeemed": 1,
        "redemption_rate": 0.25,
        "redeemed_revenue": {"EUR": 20.0},
        "revenue_per_offer": {"EUR": 5.0},
    }
    # No control arm: no uplift, said plainly.
    cart = report["triggers"]["cart_abandonment"]
    assert cart["uplift"] is None
    assert cart["control"] == {"n": 0, "conversions": 0, "rate": None, "low": None, "high": None}
    assert report["recommendations"] == {
        "rec.customer.home": {"clicks": 1, "conversions": 1, "rate": 1.0}
    }
    assert report["read"] == {
        "decisions": 9,
        "suppressed": 0,
        "rejected_decisions": 0,
        "responses": 5,
        "rejected_events": {"malformed_json": 2},
    }
    json.dumps(report, allow_nan=False)  # plain JSON, no NaN


def test_the_report_prints_writes_json_a_plot_and_prometheus_gauges(tmp_path: Path) -> None:
    report = _report()
    table = format_table(report)
    assert "post_purchase" in table
    assert "cart_abandonment" in table
    assert "rec.customer.home" in table
    json_path, png_path = write_report(report, tmp_path / "out")
    assert json.loads(json_path.read_text()) == report
    assert png_path.stat().st_size > 10_000
    prom = tmp_path / "gauges.prom"
    write_prometheus(report, prom)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(prom.read_text())
        for s in family.samples
    }
    post = (("trigger", "post_purchase"),)
    assert samples["shopkeeper_report_offers_uplift", post] == 0.0
    assert samples["shopkeeper_report_offers_uplift_low", post] < 0
    assert samples["shopkeeper_report_offers_uplift_high", post] > 0
    treated = (("arm", "treated"), ("trigger", "post_purchase"))
    assert samples["shopkeeper_report_offers_conversion", treated] == 0.25
    assert samples["shopkeeper_report_offers_decisions", treated] == 4
    # A trigger without a control arm has no uplift gauge and no control conversion.
    assert ("shopkeeper_report_offers_uplift", (("trigger", "cart_abandonment"),)) not in samples
    control = (("arm", "control"), ("trigger", "cart_abandonment"))
    assert ("shopkeeper_report_offers_conversion", control) not in samples
    assert samples["shopkeeper_report_offers_decisions", control] == 0


def test_a_report_made_inside_the_window_leaves_the_open_decisions_out() -> None:
    report = _report(now=_at(HOUR))
    post = report["triggers"]["post_purchase"]
    assert (post["treated"]["n"], post["control"]["n"], post["open"]) == (0, 0, 8)
    assert post["uplift"] is None
    assert "9 decisions of the last 48 h are left out" in format_table(report)


def _exposures(n: int) -> list[Exposure]:
    return [
        Exposure(f"of-{i}", f"c-{i}", ("post_purchase", "tier_upgrade")[i % 2], T + i, i % 3 > 0)
        for i in range(n)
    ]


def test_the_responder_is_deterministic_whatever_the_order_of_the_decisions() -> None:
    effects = {"post_purchase": PlantedEffect(0.2, 0.4)}
    decisions = _exposures(600)
    shuffled = random.Random(3).sample(decisions, len(decisions))
    a = plant_responses(decisions, effects, seed=11)
    b = plant_responses([*shuffled, *shuffled[:50]], effects, seed=11)  # with repeats
    assert a == b
    assert a != plant_responses(decisions, effects, seed=12)
    assert set(a.truth) == {"post_purchase"}  # a trigger without an effect gets nothing


def test_the_responder_answers_inside_the_window_and_never_for_the_control_arm() -> None:
    effects = {
        "post_purchase": PlantedEffect(0.3, 0.6, redeem_share=0.5, click_without_order=0.2),
        "tier_upgrade": PlantedEffect(0.5, 0.5),
    }
    decisions = {d.customer_id: d for d in _exposures(2_000)}
    planted = plant_responses(decisions.values(), effects, window_s=WINDOW, seed=5)
    for e in planted.events:
        decision = decisions[e.customer_id or ""]
        assert decision.at < e.timestamp.timestamp() < decision.at + WINDOW
        if type(e) is not events.OrderCompleted:
            assert decision.treated
    orders = [
        Order(e.customer_id or "", e.timestamp.timestamp())
        for e in planted.events
        if type(e) is events.OrderCompleted
    ]
    responses = [
        OfferResponse(
            e.properties.offer_id,
            e.timestamp.timestamp(),
            type(e) is events.OfferRedeemed,
            e.properties.revenue or 0.0,
            e.properties.currency,
        )
        for e in planted.events
        if isinstance(e, events.OfferClicked | events.OfferRedeemed)
    ]
    result = attribute_offers(decisions.values(), orders, responses, window_s=WINDOW)
    for name, truth in planted.truth.items():
        counts = result.triggers[name]
        assert (counts.treated, counts.control) == (truth["treated"], truth["control"])
        assert counts.treated_conversions == truth["treated_conversions"]
        assert counts.control_conversions == truth["control_conversions"]
        assert (counts.clicked, counts.redeemed) == (truth["clicked"], truth["redeemed"])
        assert counts.redeemed_revenue.get("EUR", 0.0) == truth["redeemed_revenue"]
    assert planted.truth["post_purchase"]["uplift"] == 0.3
    assert planted.truth["tier_upgrade"]["uplift"] == 0.0
    # Every event decodes under the strict contract, as the flow and the report read it.
    for e in planted.events:
        assert events.decode(events.encode(e)) == e


def test_planted_effects_are_probabilities() -> None:
    with pytest.raises(ValueError, match="treated"):
        PlantedEffect(control=0.1, treated=1.5)
