"""Each offer trigger in the real flow, from a known sequence of events: it fires exactly
once, at the right event time, with the right reason and features; and each guardrail
(consent, open ticket, quiet hours, hold-out, once per state) suppresses it with its
reason. Cart abandonment and the event triggers have their own tests in
``test_flow_offers``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from models.clv import BetaGeo, CLVParams, GammaGamma
from models.offers import Policy
from shopkeeper.embedded import Endpoints
from tests.flowkit import event, prepare, product, run_to_end, send
from tests.test_flow_offers import T0, _decisions, _shard_zero

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)

Story = Callable[[str], list[Any]]
"""The events that make one customer's trigger due (the profile and guardrails aside)."""


def _order(customer: str, at: dt.datetime, order_id: str, revenue: float) -> Any:
    return event("Order Completed", at, customer=customer, order_id=order_id,
                 revenue=revenue, currency="EUR", products=[product("P1", revenue)])  # fmt: skip


def _view(customer: str, at: dt.datetime, product_id: str = "P5") -> Any:
    return event("Product Viewed", at, customer=customer, product_id=product_id, price=80.0,
                 currency="EUR")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Case:
    """A trigger's story, when it is due, what it says, and what repeats its state."""

    trigger: str
    story: Story
    at: dt.datetime
    reason: str
    features: dict[str, str]
    again: Story | None = None  # events after the story that raise the same state again...
    again_reason: str | None = "already_fired"  # ...and why that is suppressed (None: no
    # new decision at all)
    start: dt.datetime = T0 - 2 * DAY  # before the story's first event
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)


CASES = [
    Case(
        "browse_abandonment",
        # Two views of P5, one of P6, then nothing: 30 minutes after the last view.
        lambda c: [
            _view(c, T0 - 40 * MINUTE, "P6"),
            _view(c, T0 - 35 * MINUTE),
            _view(c, T0 - 30 * MINUTE),
        ],
        T0,
        "viewed_2x_no_add",
        {
            "product_id": "P5",
            "views": "2",
            "first_viewed_at": "2025-05-06T11:25:00Z",
            "last_viewed_at": "2025-05-06T11:30:00Z",
            "idle_minutes": "30",
        },
        # Each session is a state of its own; a second one the same day meets the cap.
        again=lambda c: [
            _view(c, T0 + 2 * HOUR - 35 * MINUTE),
            _view(c, T0 + 2 * HOUR - 30 * MINUTE),
        ],
        again_reason="trigger_cap",
    ),
    Case(
        "winback",
        # Orders 20 days apart, then silence: lapsed at twice that interval.
        lambda c: [_order(c, T0 - 100 * DAY, "O-1", 100.0), _order(c, T0 - 80 * DAY, "O-2", 100.0)],
        T0 - 40 * DAY,
        "silent_40d",
        {
            "last_order_at": "2025-02-15T12:00:00Z",
            "days_silent": "40",
            "orders_total": "2",
            "revenue_total": "200.00",
        },
        start=T0 - 101 * DAY,
    ),
    Case(
        "near_tier",
        # 460 of the 500 Silver needs: within 10%. A second order the next day is still
        # near Silver: the same state.
        lambda c: [_order(c, T0, "O-1", 460.0)],
        T0,
        "near_silver",
        {"tier": "Bronze", "next_tier": "Silver", "spend_to_next": "40.00"},
        again=lambda c: [_order(c, T0 + DAY, "O-2", 10.0)],
    ),
    Case(
        "tier_expiry",
        # Silver since an order 351 days ago; it leaves the 12 months in 14 days.
        lambda c: [_order(c, T0 - 351 * DAY, "O-1", 600.0)],
        T0,
        "tier_silver_expires",
        {
            "tier": "Silver",
            "tier_drops_to": "Bronze",
            "drops_at": "2025-05-20T12:00:00Z",
            "spend_to_keep": "500.00",
        },
        start=T0 - 352 * DAY,
    ),
]

CASES += [
    Case(
        "post_purchase",
        # Raised by the order itself; orders are deduplicated by id, so its state cannot
        # come again.
        lambda c: [_order(c, T0, "O-1", 100.0)],
        T0,
        "order_completed",
        {"order_id": "O-1", "revenue": "100.00", "products": "P1"},
    ),
    Case(
        "tier_upgrade",
        # 600 of spend lifts Bronze to Silver (500); each upgrade is a state of its own.
        lambda c: [_order(c, T0, "O-1", 600.0)],
        T0,
        "tier_silver",
        {"tier": "Silver", "previous_tier": "Bronze"},
    ),
]


def _catalog(at: dt.datetime, message_id: str, **props: Any) -> Any:
    """A catalogue change of P5 (a fixed id: the stories of every variant carry the same
    message)."""
    return event("Product Updated", at, customer=None, message_id=message_id,
                 product_id="P5", **props)  # fmt: skip


CASES += [
    Case(
        "price_drop",
        # P5 at 80, viewed the day before it drops to 60. The same drop delivered again
        # is no new drop.
        lambda c: [
            _catalog(T0 - 3 * DAY, "m-p5-80", price=80.0, currency="EUR"),
            _view(c, T0 - DAY),
            _catalog(T0, "m-p5-60", price=60.0, currency="EUR"),
        ],
        T0,
        "price_down_25pct",
        {
            "product_id": "P5",
            "price": "60.00",
            "previous_price": "80.00",
            "last_viewed_at": "2025-05-05T12:00:00Z",
        },
        again=lambda c: [_catalog(T0 + MINUTE, "m-p5-60", price=60.0, currency="EUR")],
        again_reason=None,
    ),
    Case(
        "back_in_stock",
        # P5 out of stock, viewed the day before it is back.
        lambda c: [
            _catalog(T0 - 3 * DAY, "m-p5-out", inventory_status="out_of_stock"),
            _view(c, T0 - DAY),
            _catalog(T0, "m-p5-in", inventory_status="in_stock", inventory_quantity=12),
        ],
        T0,
        "back_in_stock",
        {"product_id": "P5", "last_viewed_at": "2025-05-05T12:00:00Z"},
    ),
]

_PARAMS = CLVParams(
    BetaGeo(r=0.25, alpha=28.0, a=0.8, b=2.5), GammaGamma(p=6.0, q=4.0, v=15.0), "days",
    dt.date(2025, 1, 1), 1_000, 400, -1.0, -1.0, "EUR",
    dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "",
)  # fmt: skip
CLV = _PARAMS.stamped()
FIRST = T0 - 60 * DAY  # two orders ten days apart, then silence


def _risk(at: dt.datetime, first: dt.datetime = FIRST) -> float:
    """The churn risk of the story's customer at ``at``, from the model's P(alive)."""
    first_day = first.timestamp() // 86_400
    age = at.timestamp() / 86_400 - first_day
    return 1.0 - CLV.probability_alive(1, 10.0, age)


def _crossing(threshold: float) -> dt.datetime:
    """The first second the risk reaches ``threshold`` (it only rises with silence)."""
    low, high = FIRST + 11 * DAY, FIRST + 3_000 * DAY
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        low, high = (low, middle) if _risk(middle) >= threshold else (middle, high)
    return high


# A threshold whose crossing falls in the afternoon (UTC): day in Paris, night in Tokyo.
THRESHOLD = next(t / 1_000 for t in range(500, 700) if 12 <= _crossing(t / 1_000).hour < 18)

CASES.append(
    Case(
        "replenishment",
        # P1 bought every ten days: due again ten days after the last, less five of lead.
        lambda c: [_order(c, T0 - d * DAY, f"O-{d}", 30.0) for d in (25, 15, 5)],
        T0,
        "due_every_10d",
        {
            "product_id": "P1",
            "cycle_days": "10",
            "last_bought_at": "2025-05-01T12:00:00Z",
            "due_at": "2025-05-11T12:00:00Z",
        },
        start=T0 - 26 * DAY,
    )
)
CASES.append(
    Case(
        "churn_risk",
        lambda c: [_order(c, FIRST, "O-1", 80.0), _order(c, FIRST + 10 * DAY, "O-2", 80.0)],
        _crossing(THRESHOLD),
        f"churn_risk_over_{round(THRESHOLD * 100)}",
        {},  # checked below: the risk it carries is the model's at that time
        start=FIRST - DAY,
        settings={"churn_risk_threshold": THRESHOLD},
    )
)

VARIANTS = {
    "fires": None,
    "no_consent": "no_consent",
    "ticket": "open_ticket",
    "night": "quiet_hours",
    "held_out": "holdout",
}


def _customers(trigger: str) -> dict[str, str]:
    """One customer per variant, in the clock's shard; only ``held_out`` in the control
    group."""
    policy = Policy()
    chosen = {
        variant: next(
            c
            for c in _shard_zero(f"{trigger[:5]}-{variant}")
            if policy.in_holdout(c) == (variant == "held_out")
        )
        for variant in VARIANTS
    }
    chosen["clock"] = next(iter(_shard_zero(f"{trigger[:5]}-clock")))
    return chosen


def _time(item: Any) -> dt.datetime:
    return item.timestamp  # type: ignore[no-any-return]


def _traffic(case: Case, customers: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    for variant, customer in customers.items():
        if variant == "clock":
            continue
        consent = variant != "no_consent"
        items.append(
            event(
                "Customer Updated",
                case.start,
                customer=customer,
                traits={"timezone": "Asia/Tokyo" if variant == "night" else "Europe/Paris"},
                consent={"marketing_push": consent, "marketing_email": consent},
            )
        )
        if variant == "ticket":
            items.append(event("Support Ticket Created", case.start + MINUTE, customer=customer,
                               ticket_id="T-1", status="open"))  # fmt: skip
        items += case.story(customer)
        if case.again is not None and variant == "fires":
            items += case.again(customer)
    # Time moves on in the shard: every deadline above is passed.
    items.append(_view(customers["clock"], max(T0 + 3 * DAY, case.at + DAY), "P9"))
    return sorted(items, key=_time)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.trigger)
def test_each_trigger_fires_once_on_time_and_each_guardrail_says_why(
    infra: Endpoints, unique: str, case: Case, tmp_path: Path
) -> None:
    customers = _customers(case.trigger)
    namespace = f"trg{case.trigger[:5]}{unique}"
    prepare(infra, namespace)
    send(infra, namespace, _traffic(case, customers))
    settings = dict(case.settings)
    if case.trigger == "churn_risk":
        settings["clv_params"] = tmp_path / "clv.json"
        settings["clv_params"].write_bytes(CLV.to_json())
    registry = run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60), **settings)
    fired, suppressed = _decisions(infra, namespace)
    fired = [o for o in fired if o["trigger"] == case.trigger]
    suppressed = [s for s in suppressed if s["trigger"] == case.trigger]

    (offer,) = fired
    assert offer["customer_id"] == customers["fires"]
    at = dt.datetime.fromisoformat(offer["at"].replace("Z", "+00:00"))
    assert abs(at - case.at) <= dt.timedelta(seconds=1)  # (churn risk: found to the second)
    assert offer["reason"] == case.reason
    if case.trigger == "churn_risk":  # the risk it carries is the model's at that time
        features = offer["features"]
        assert float(features["churn_risk"]) == pytest.approx(_risk(at), abs=1e-4)
        assert float(features["churn_risk"]) >= THRESHOLD > _risk(at - dt.timedelta(minutes=1))
        assert features["last_order_at"] == "2025-03-17T12:00:00Z"
    else:
        assert offer["features"] == case.features
    expected = {(customers[v], reason) for v, reason in VARIANTS.items() if reason is not None}
    if case.again is not None and case.again_reason is not None:
        expected.add((customers["fires"], case.again_reason))
    assert {(s["customer_id"], s["reason"]) for s in suppressed} == expected
    assert len(suppressed) == len(expected)
    assert (
        registry.get_sample_value(
            "shopkeeper_offers_decisions_total",
            {"trigger": case.trigger, "outcome": "fired", "reason": case.reason},
        )
        == 1
    )


def test_a_view_within_the_delay_rearms_browse_and_an_add_stops_it(
    infra: Endpoints, unique: str
) -> None:
    policy = Policy()
    keeps, adds, clock = (
        next(c for c in _shard_zero(f"brw-{name}") if not policy.in_holdout(c))
        for name in ("keeps", "adds", "clock")
    )
    items: list[Any] = []
    for customer in (keeps, adds):
        items.append(event("Customer Updated", T0 - DAY, customer=customer,
                           traits={"timezone": "Europe/Paris"},
                           consent={"marketing_push": True}))  # fmt: skip
        items += [_view(customer, T0 - 60 * MINUTE), _view(customer, T0 - 55 * MINUTE)]
    # Still browsing 20 minutes later: the timer runs from this view instead.
    items.append(_view(keeps, T0 - 35 * MINUTE, "P7"))
    items.append(event("Product Added", T0 - 50 * MINUTE, customer=adds, product_id="P5",
                       price=80.0, currency="EUR"))  # fmt: skip
    items.append(_view(clock, T0 + DAY, "P9"))
    namespace = f"brw{unique}"
    prepare(infra, namespace)
    send(infra, namespace, sorted(items, key=_time))
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    fired, suppressed = _decisions(infra, namespace)
    browse = [o for o in fired + suppressed if o["trigger"] == "browse_abandonment"]
    assert [(o["customer_id"], o["at"], o["features"]["product_id"]) for o in browse] == [
        (keeps, "2025-05-06T11:55:00Z", "P5")
    ]


def test_a_price_drop_or_restock_reaches_only_recent_viewers_who_did_not_buy(
    infra: Endpoints, unique: str
) -> None:
    policy = Policy()
    recent, bought, stale, after, clock = (
        next(c for c in _shard_zero(f"cat-{name}") if not policy.in_holdout(c))
        for name in ("recent", "bought", "stale", "after", "clock")
    )
    items: list[Any] = [
        _catalog(T0 - 30 * DAY, "m-a", price=80.0, currency="EUR"),
        _catalog(T0 - 30 * DAY, "m-b", inventory_status="out_of_stock"),
    ]
    for customer in (recent, bought, stale, after):
        items.append(event("Customer Updated", T0 - 30 * DAY, customer=customer,
                           traits={"timezone": "Europe/Paris"},
                           consent={"marketing_push": True}))  # fmt: skip
    items += [
        _view(recent, T0 - 2 * DAY),
        _view(bought, T0 - 2 * DAY),
        event(
            "Order Completed",
            T0 - DAY,
            customer=bought,
            order_id="O-1",
            revenue=80.0,
            currency="EUR",
            products=[product("P5", 80.0)],
        ),
        _view(stale, T0 - 15 * DAY),  # before the 14-day interest window
        _view(after, T0 + HOUR),  # after the change
        # Back in stock and 4% cheaper (under the 5% a drop needs), the same moment.
        _catalog(T0, "m-c", inventory_status="in_stock"),
        _catalog(T0, "m-d", price=76.8, currency="EUR"),
        _view(clock, T0 + DAY, "P9"),
    ]
    namespace = f"cat{unique}"
    prepare(infra, namespace)
    send(infra, namespace, sorted(items, key=_time))
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    fired, suppressed = _decisions(infra, namespace)
    catalog = [o for o in fired + suppressed if o["trigger"] in ("price_drop", "back_in_stock")]
    assert [(o["customer_id"], o["trigger"], o["at"]) for o in catalog] == [
        (recent, "back_in_stock", "2025-05-06T12:00:00Z")
    ]


def test_replenishment_of_a_retired_product_offers_its_successor(
    infra: Endpoints, unique: str
) -> None:
    policy = Policy()
    buyer, clock = (
        next(c for c in _shard_zero(f"succ-{name}") if not policy.in_holdout(c))
        for name in ("buyer", "clock")
    )
    items: list[Any] = [
        event("Customer Updated", T0 - 30 * DAY, customer=buyer,
              traits={"timezone": "Europe/Paris"}, consent={"marketing_push": True}),
        *(_order(buyer, T0 - d * DAY, f"O-{d}", 30.0) for d in (25, 15, 5)),
        # P1 is retired for P2 before it is due again.
        event("Product Updated", T0 - 2 * DAY, customer=None, product_id="P1",
              lifecycle_status="discontinued", successor_product_id="P2"),
        _view(clock, T0 + DAY, "P9"),
    ]  # fmt: skip
    namespace = f"succ{unique}"
    prepare(infra, namespace)
    send(infra, namespace, sorted(items, key=_time))
    run_to_end(infra, namespace, allowed_lateness=dt.timedelta(seconds=60))
    fired, _ = _decisions(infra, namespace)
    (offer,) = [o for o in fired if o["trigger"] == "replenishment"]
    assert offer["at"] == "2025-05-06T12:00:00Z"
    assert offer["features"]["product_id"] == "P1"
    assert offer["features"]["successor_product_id"] == "P2"
    subjects = [i["product_id"] for i in offer["content"]["items"] if i["role"] == "subject"]
    assert subjects == ["P2"]
