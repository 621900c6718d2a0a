"""The offer report recovers a planted uplift, end to end on the real embedded Kafka and
the real flow: thousands of customers buy once (a post-purchase email each) or answer a
survey as detractors (a service-recovery email each), half of them held out; the flow
decides; the responder answers the decisions it wrote with a known effect per trigger;
``shopkeeper report offers`` reads it all back.

Every id is the same in every run, so the test is deterministic. A 95% interval misses
the truth one time in twenty by design: over responder seeds 0-399 on these decisions the
post-purchase interval held the truth 96.5% of the time (and always excluded 0), the
service-recovery one 95.5%; the seed below is the project's default, 7, not a pick."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import events
from shopkeeper.cli import main
from shopkeeper.embedded import Endpoints
from shopkeeper.generator import PlantedEffect, plant_responses
from shopkeeper.offer_log import read_decisions
from tests.flowkit import event, prepare, product, run_to_end, send

T0 = dt.datetime(2025, 5, 6, 9, 0, tzinfo=dt.UTC)  # 11:00 in Paris: no quiet hours
BUYERS = 2_400
DETRACTORS = 1_200
EFFECTS = {
    "post_purchase": PlantedEffect(control=0.10, treated=0.20),  # true uplift +10 points
    "service_recovery": PlantedEffect(control=0.15, treated=0.15),  # no effect
}


def _traffic() -> list[Any]:
    """One order per buyer, one detractor answer per unhappy customer: one decision each,
    two seconds apart, so no customer has two decisions or an order inside a window.

    The ids are the same in every run (the namespace keeps runs apart), so the hold-out,
    the offer ids and the responder's draws are too: the test is deterministic."""
    items: list[Any] = []
    for i in range(BUYERS):
        customer = f"c-b{i}"
        items.append(event("Customer Updated", T0 - dt.timedelta(days=1), customer=customer,
                           traits={"timezone": "Europe/Paris"},
                           consent={"marketing_email": True}))  # fmt: skip
        items.append(event("Order Completed", T0 + dt.timedelta(seconds=2 * i), customer=customer,
                           order_id=f"o-{i}", revenue=30.0, currency="EUR",
                           products=[product(f"P{i % 40}", 30.0)]))  # fmt: skip
    for i in range(DETRACTORS):
        customer = f"c-d{i}"
        items.append(event("Customer Updated", T0 - dt.timedelta(days=1), customer=customer,
                           traits={"timezone": "Europe/Paris"}))  # fmt: skip
        # The message id names the answer, hence the offer id (its state).
        items.append(event("NPS Survey Responded", T0 + dt.timedelta(seconds=2 * i),
                           customer=customer, score=3, message_id=f"nps-{i}"))  # fmt: skip
    # Time moves on in every shard (the producer partitions by CRC-32 of the key), so the
    # flow's clocks pass every decision's time before the input ends.
    shards = {zlib.crc32(f"c-clock-{n}".encode()) % 4: f"c-clock-{n}" for n in range(64)}
    assert len(shards) == 4
    for customer in shards.values():
        items.append(event("Product Viewed", T0 + dt.timedelta(hours=3), customer=customer,
                           product_id="P1", price=10.0, currency="EUR"))  # fmt: skip
    return sorted(items, key=lambda e: e.timestamp)


def _recommendation_clicks() -> tuple[list[events.Event], dict[str, dict[str, int]]]:
    """Clicks on recommended products by other customers: some bought within a day (two
    of them counted), one bought too late, one another product."""
    at = T0 + dt.timedelta(hours=3)
    home, cart = "rec.customer.home.4f1c0b2a", "rec.cart.cart.9d2e7c11"
    story: list[tuple[str, str, str, dt.timedelta | None, str]] = [
        ("r1", home, "P1", dt.timedelta(hours=2), "P1"),
        ("r2", home, "P2", dt.timedelta(hours=23), "P2"),
        ("r3", home, "P3", dt.timedelta(hours=30), "P3"),  # after the day
        ("r4", cart, "P4", dt.timedelta(hours=1), "P9"),  # another product
        ("r5", cart, "P5", None, ""),  # not bought
    ]
    items: list[events.Event] = []
    for who, served, clicked, later, bought in story:
        customer = f"c-{who}"
        items.append(event("Product Clicked", at, customer=customer, product_id=clicked,
                           price=10.0, currency="EUR", recommendation_id=served))  # fmt: skip
        if later is not None:
            items.append(event("Order Completed", at + later, customer=customer,
                               order_id=f"o-{who}", revenue=10.0, currency="EUR",
                               products=[product(bought, 10.0)]))  # fmt: skip
    expected = {
        "rec.cart.cart": {"clicks": 2, "conversions": 0},
        "rec.customer.home": {"clicks": 3, "conversions": 2},
    }
    return items, expected


@pytest.mark.slow
def test_the_report_recovers_the_planted_uplift_and_finds_none_where_none_was_planted(
    infra: Endpoints, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = f"upl{unique}"
    prepare(infra, namespace)
    send(infra, namespace, _traffic())
    run_to_end(infra, namespace, offer_holdout_share=0.5)

    decisions = read_decisions(infra.kafka_bootstrap, namespace)
    arms = {(d.trigger, d.treated) for d in decisions.exposures}
    assert arms == {(t, treated) for t in EFFECTS for treated in (True, False)}
    assert len(decisions.exposures) == BUYERS + DETRACTORS
    assert decisions.rejected == 0
    assert decisions.suppressed == {}
    planted = plant_responses(decisions.exposures, EFFECTS, seed=7)
    clicks, expected_recommendations = _recommendation_clicks()
    responses = sorted([*planted.events, *clicks], key=lambda e: e.timestamp)
    send(infra, namespace, responses)

    monkeypatch.setenv("SHOPKEEPER_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
    prom = tmp_path / "textfile" / "offers.prom"
    out = tmp_path / "report"
    argv = ["report", "offers", "--namespace", namespace, "--out", str(out),
            "--prom-file", str(prom), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.png").stat().st_size > 10_000

    triggers = report["triggers"]
    assert set(triggers) == set(EFFECTS)
    for name, truth in planted.truth.items():
        got = triggers[name]
        # Every planted order is attributed to its decision, and nothing else is.
        assert (got["treated"]["n"], got["control"]["n"]) == (truth["treated"], truth["control"])
        assert got["treated"]["conversions"] == truth["treated_conversions"]
        assert got["control"]["conversions"] == truth["control_conversions"]
        assert got["offers"]["clicked"] == truth["clicked"]
        assert got["offers"]["redeemed"] == truth["redeemed"]
        assert got["offers"]["redeemed_revenue"] == {"EUR": truth["redeemed_revenue"]}
        assert min(truth["treated"], truth["control"]) > 0.4 * (truth["treated"] + truth["control"])
        uplift = got["uplift"]
        assert uplift["low"] <= truth["uplift"] <= uplift["high"], (name, uplift, truth)
    assert triggers["post_purchase"]["uplift"]["low"] > 0
    assert triggers["post_purchase"]["uplift"]["significant"]
    assert (
        triggers["service_recovery"]["uplift"]["low"]
        <= 0
        <= (triggers["service_recovery"]["uplift"]["high"])
    )
    assert set(report["ignored_responses"].values()) == {0}
    assert {t["open"] for t in triggers.values()} == {0}
    recos = {c: {k: r[k] for k in ("clicks", "conversions")}
             for c, r in report["recommendations"].items()}  # fmt: skip
    assert recos == expected_recommendations

    gauges = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(prom.read_text())
        for sample in family.samples
    }
    post = (("trigger", "post_purchase"),)
    assert gauges["shopkeeper_report_offers_uplift", post] == pytest.approx(
        triggers["post_purchase"]["uplift"]["difference"]
    )
    assert gauges["shopkeeper_report_offers_uplift_low", post] > 0
    held_out = (("arm", "control"), ("trigger", "service_recovery"))
    assert gauges["shopkeeper_report_offers_conversion", held_out] == pytest.approx(
        triggers["service_recovery"]["control"]["rate"]
    )


def test_the_report_needs_a_broker_and_sane_flags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHOPKEEPER_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(SystemExit):
        main(["report", "offers"])
    assert "SHOPKEEPER_KAFKA_BOOTSTRAP" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "offers", "--level", "95"])
    assert "--level" in capsys.readouterr().err


def test_an_empty_namespace_gives_an_empty_report(
    infra: Endpoints, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = f"empty{unique}"
    prepare(infra, namespace)
    monkeypatch.setenv("SHOPKEEPER_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
    monkeypatch.setenv("SHOPKEEPER_NAMESPACE", namespace)
    assert main(["report", "offers", "--out", str(tmp_path), "--quiet"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["namespace"] == namespace
    assert report["triggers"] == {}
    assert report["read"]["decisions"] == 0
