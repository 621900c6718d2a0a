"""The next best offer through the real app (Starlette's TestClient runs its lifespan), on
a model trained from generated history; each test writes its customers' profiles into
the real Redis with the feature store's writer, as the flow would, contact history
included."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import schemathesis
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.testclient import TestClient

from feature_store import CustomerWrite, DiscountBudget, FeatureStore, KeyLayout
from models.artifact import RecommenderArtifact
from models.offer_value import CustomerNumbers, choose_discount
from models.offers import offer_id
from serving import ServingSettings, create_app
from serving.openapi import spec
from serving.recommend import REASONS
from shopkeeper.embedded import Endpoints
from tests.servekit import Shop, build_shop

HOUR = 3_600.0
DAY = 86_400.0
_ids = itertools.count()


@pytest.fixture(scope="module")
def shop(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return build_shop(infra, "nbo1", tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def artifact(shop: Shop) -> RecommenderArtifact:
    return RecommenderArtifact.load(shop.registry.path(shop.version))


@pytest.fixture(scope="module")
def store(shop: Shop) -> Iterator[FeatureStore]:
    client = redis.Redis.from_url(shop.infra.redis_url)
    yield FeatureStore(client, KeyLayout(shop.namespace))
    client.close()


@pytest.fixture(scope="module")
def budget(shop: Shop) -> Iterator[DiscountBudget]:
    client = redis.Redis.from_url(shop.infra.redis_url)
    yield DiscountBudget(client, KeyLayout(shop.namespace))
    client.close()


@pytest.fixture(scope="module")
def noon(shop: Shop) -> float:
    """Noon UTC the day after the shop's history ends: the serving clock of these tests."""
    day = dt.datetime.fromtimestamp(shop.now, dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp()


@pytest.fixture(scope="module")
def cart(artifact: RecommenderArtifact) -> dict[str, dict[str, float]]:
    """Two products the model knows, in stock and priced, as the flow stores a cart, worth
    at least 80."""
    chosen: dict[str, dict[str, float]] = {}
    for product in artifact.als.items:
        facts = artifact.catalog.get(product, {})
        if facts.get("inventory_status") != "out_of_stock" and facts.get("price"):
            price = float(facts["price"])
            chosen[product] = {"price": price, "qty": max(1, math.ceil(40 / price))}
        if len(chosen) == 2:
            return chosen
    raise AssertionError("no priced products in the catalogue")


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def _cart_key(cart: dict[str, dict[str, float]], since: str = "") -> str:
    """The flow's state of a cart: its lines and when it was filled (none stored here)."""
    contents = ",".join(f"{p}:{int(line['qty'])}" for p, line in sorted(cart.items()))
    return hashlib.sha256(f"{contents}|{since}".encode()).hexdigest()[:16]


def _customer(
    store: FeatureStore,
    now: float,
    *,
    cart: dict[str, dict[str, float]] | None = None,
    consent: dict[str, str] | None = None,
    timezone: str = "UTC",
    open_tickets: int = 0,
    churn: float = 0.2,
    clv: float | None = 800.0,
    spend: float = 600.0,
    contacts: list[tuple[float, str]] | None = None,
    states: dict[str, str] | None = None,
    prefix: str = "nbo",
) -> str:
    """Write a customer's profile as the flow's groups; return their id."""
    customer = f"{prefix}-{next(_ids)}"
    flags = consent if consent is not None else {"marketing_push": "1", "marketing_email": "1"}
    lines = cart or {}
    value = sum(line["price"] * line["qty"] for line in lines.values())
    groups: dict[str, dict[str, str]] = {
        "consent": {f"consent:{name}": value for name, value in flags.items()},
        "traits": {"trait:timezone": timezone},
        "service": {"open_tickets": str(open_tickets)},
        "cart": {"cart": orjson.dumps(lines).decode(), "cart_value": f"{value:.2f}"},
        "orders": {"orders_total": "4", "aov": "42.00", "last_purchase_at": _iso(now - 20 * DAY)},
        "churn_score": {"churn_probability": f"{churn:.4f}"},
        "loyalty": {"loyalty_tier": "Silver", "loyalty_spend_12m": f"{spend:.2f}"},
        "offers": {
            "offers_contacts": orjson.dumps([list(c) for c in contacts or []]).decode(),
            "offers_states": orjson.dumps(states or {}).decode(),
        },
    }
    if clv is not None:
        groups["clv"] = {"clv_12m": f"{clv:.2f}"}
    fields = {name: orjson.dumps(group).decode() for name, group in groups.items()}
    assert store.write([CustomerWrite(customer, fields, seq=1)]).written == 1
    return customer


def _app(
    shop: Shop, now: float, registry: CollectorRegistry | None = None, **overrides: Any
) -> Starlette:
    values: dict[str, Any] = {"offer_holdout_share": 0.0}
    values.update(overrides)
    return create_app(shop.settings(**values), registry=registry, clock=lambda: now)


@pytest.fixture
def client(shop: Shop, noon: float) -> Iterator[TestClient]:
    with TestClient(_app(shop, noon)) as client:
        yield client


# Every answer is checked against the OpenAPI document (schemathesis only meets unknown
# customers, so this is where offers and alternatives meet their schema).
_DOCUMENT = schemathesis.openapi.from_dict(spec(ServingSettings(redis_url="redis://unused")))
_OPERATION = _DOCUMENT["/v1/customers/{customer_id}/next-best-offer"]["POST"]


def _ask(client: TestClient, customer: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/v1/customers/{customer}/next-best-offer", json=body or None)
    assert response.status_code == 200, response.text
    _OPERATION.validate_response(response)
    answer: dict[str, Any] = response.json()
    return answer


def _whys(answer: dict[str, Any]) -> dict[str, str]:
    return {a["trigger"]: a["why"] for a in answer["alternatives"]}


def test_the_highest_value_action_is_offered_with_its_items_and_the_others_say_why_not(
    client: TestClient,
    store: FeatureStore,
    budget: DiscountBudget,
    noon: float,
    cart: dict[str, dict[str, float]],
) -> None:
    customer = _customer(store, noon, cart=cart, churn=0.7, spend=1_400.0)
    answer = _ask(client, customer, channel="push")
    offer = answer["offer"]
    assert offer is not None
    assert (answer["suppressed"], answer["holdout"], answer["personalized"]) == (None, False, True)
    assert offer["trigger"] == "cart_abandonment"
    assert offer["offer_id"] == offer_id(customer, "cart_abandonment", _cart_key(cart))
    # Every eligible action was scored; the offer is worth the most.
    assert set(_whys(answer)) >= {"churn_risk", "near_tier", "cross_sell"}
    assert set(_whys(answer).values()) == {"lower_expected_value"}
    assert all(a["expected_value"] <= offer["expected_value"] for a in answer["alternatives"])
    # The numbers are the model's: the cart's value, the customer's churn and CLV.
    value = sum(line["price"] * line["qty"] for line in cart.values())
    assert offer["basket_value"] == round(value, 2)
    numbers = CustomerNumbers(round(value, 2), 0.7, 20.0, 800.0)
    best = choose_discount("cart_abandonment", numbers, budget_left=500.0)
    assert offer["discount"]["rate"] == best.rate
    assert offer["expected_value"] == best.expected_value
    assert offer["discount"]["amount"] <= 0.1 * 800.0
    # Items complete the cart, with reasons the page can show.
    assert offer["items"]
    assert not {item["product_id"] for item in offer["items"]} & set(cart)
    assert all(item["reason"] in REASONS for item in offer["items"])
    assert offer["expires_at"] == _iso(noon + 48 * HOUR)
    # Asked again (a retry): the same offer, the same discount, nothing spent twice.
    day = dt.datetime.fromtimestamp(noon, dt.UTC).date().isoformat()
    spent = budget.spent(day)
    again = _ask(client, customer, channel="push")
    assert again["offer"] == offer
    assert budget.spent(day) == spent


@pytest.mark.parametrize(
    ("profile", "channel", "why"),
    [
        ({"consent": {"marketing_push": "0", "marketing_email": "1"}}, "push", "no_consent"),
        ({"consent": {"marketing_email": "1"}}, "in_app", "no_consent"),  # never given
        ({"open_tickets": 1}, "push", "open_ticket"),
        ({"timezone": "Asia/Tokyo"}, "push", "quiet_hours"),  # 21:00 in Tokyo
    ],
)
def test_a_guardrail_suppresses_every_promotion(
    client: TestClient,
    store: FeatureStore,
    *,
    noon: float,
    cart: dict[str, dict[str, float]],
    profile: dict[str, Any],
    channel: str,
    why: str,
) -> None:
    customer = _customer(store, noon, cart=cart, **profile)
    answer = _ask(client, customer, channel=channel)
    assert answer["offer"] is None
    assert answer["suppressed"] == why
    assert set(_whys(answer).values()) == {why}
    assert answer["fallback"] is None  # a guardrail, not a fallback


def test_consent_is_per_channel(
    client: TestClient, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    customer = _customer(store, noon, cart=cart, consent={"marketing_push": "0",
                                                          "marketing_email": "1"})  # fmt: skip
    assert _ask(client, customer, channel="push")["suppressed"] == "no_consent"
    assert _ask(client, customer, channel="email")["offer"]["channel"] == "email"


def test_quiet_hours_follow_the_customers_time_zone(
    shop: Shop, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    customer = _customer(store, noon, cart=cart, timezone="America/New_York")
    with TestClient(_app(shop, noon - 5 * HOUR)) as client:  # before 03:00 in New York
        early = _ask(client, customer, channel="push")
    with TestClient(_app(shop, noon + 4 * HOUR)) as client:
        later = _ask(client, customer, channel="push")
    assert early["suppressed"] == "quiet_hours"
    assert later["offer"] is not None


def test_caps_and_cool_downs_count_the_stored_contact_history(
    client: TestClient, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    cooling = _customer(store, noon, cart=cart, contacts=[(noon - 0.5 * HOUR, "cart_abandonment")])
    capped = _customer(store, noon, cart=cart, contacts=[(noon - 2 * HOUR, "cart_abandonment")])
    busy = _customer(store, noon, cart=cart, churn=0.7, contacts=[
        (noon - 3 * HOUR, "post_purchase"), (noon - 2 * HOUR, "tier_upgrade"),
    ])  # fmt: skip
    week = _customer(store, noon, cart=cart, contacts=[
        (noon - d * DAY, trigger)
        for d, trigger in [(1, "post_purchase"), (2, "tier_upgrade"), (3, "post_purchase"),
                           (4, "service_recovery"), (5, "post_purchase")]
    ])  # fmt: skip
    fired = _customer(store, noon, cart=cart, states={"cart_abandonment": _cart_key(cart)})

    answer = _ask(client, cooling, channel="push")
    assert _whys(answer)["cart_abandonment"] == "cooldown"
    assert answer["offer"]["trigger"] != "cart_abandonment"  # the next best one instead
    assert _whys(_ask(client, capped, channel="push"))["cart_abandonment"] == "trigger_cap"
    answer = _ask(client, busy, channel="push")
    assert (answer["offer"], answer["suppressed"]) == (None, "frequency_cap")
    assert set(_whys(answer).values()) == {"frequency_cap"}
    assert _ask(client, week, channel="push")["suppressed"] == "frequency_cap"
    answer = _ask(client, fired, channel="push")
    assert _whys(answer)["cart_abandonment"] == "already_fired"  # the flow sent this cart's
    assert answer["offer"]["trigger"] != "cart_abandonment"
    # Contacts more than a week old are forgotten.
    old = _customer(store, noon, cart=cart, contacts=[(noon - 8 * DAY, "cart_abandonment")] * 5)
    assert _ask(client, old, channel="push")["offer"]["trigger"] == "cart_abandonment"


def test_the_hold_out_group_gets_no_offer_and_the_answer_says_so(
    shop: Shop, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    settings = shop.settings(offer_holdout_share=0.5)
    policy = settings.offer_policy()
    held: list[str] = []
    treated: list[str] = []
    while not (held and treated):
        customer = _customer(store, noon, cart=cart)
        (held if policy.in_holdout(customer) else treated).append(customer)
    with TestClient(create_app(settings, clock=lambda: noon)) as client:
        control = _ask(client, held[0], channel="push")
        offered = _ask(client, treated[0], channel="push")
        # A guardrail that stops the offer comes first: the hold-out is the last check.
        quiet = _customer(store, noon, cart=cart, timezone="Asia/Tokyo", prefix="quiet")
        while not policy.in_holdout(quiet):
            quiet = _customer(store, noon, cart=cart, timezone="Asia/Tokyo", prefix="quiet")
        assert _ask(client, quiet, channel="push")["suppressed"] == "quiet_hours"
    assert (control["offer"], control["holdout"], control["suppressed"]) == (None, True, "holdout")
    assert _whys(control)["cart_abandonment"] == "holdout"
    assert (offered["holdout"], offered["offer"]["trigger"]) == (False, "cart_abandonment")


def test_the_daily_budget_caps_the_discounts(
    shop: Shop,
    store: FeatureStore,
    budget: DiscountBudget,
    noon: float,
    cart: dict[str, dict[str, float]],
) -> None:
    later = noon + 3 * DAY  # a day of its own: its budget is untouched
    day = dt.datetime.fromtimestamp(later, dt.UTC).date().isoformat()
    rich = [_customer(store, later, cart=cart, clv=5_000.0) for _ in range(3)]
    registry = CollectorRegistry()
    with TestClient(_app(shop, later, registry, offer_daily_budget=5.0)) as client:
        answers = [_ask(client, customer, channel="push")["offer"] for customer in rich]
    unlimited = choose_discount(
        "cart_abandonment", CustomerNumbers(answers[0]["basket_value"], 0.2, 20.0, 5_000.0), 1e9
    )
    assert unlimited.amount > 5.0  # the budget is what limits
    amounts = [offer["discount"]["amount"] for offer in answers]
    assert amounts[0] <= 5.0
    assert answers[0]["discount"]["limited_by"] == "budget"
    assert sum(amounts) <= 5.0
    assert amounts[-1] == 0.0  # nothing is left for the last one, who still gets the offer
    assert answers[-1]["discount"]["rate"] == 0.0
    assert budget.spent(day) == round(sum(amounts), 2)
    assert registry.get_sample_value("shopkeeper_serving_offer_budget_short_total",
                                     {"trigger": "cart_abandonment"}) is None  # fmt: skip


def test_no_clv_score_means_no_discount(
    client: TestClient, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    customer = _customer(store, noon, cart=cart, clv=None)
    offer = _ask(client, customer, channel="push")["offer"]
    assert (offer["discount"]["amount"], offer["discount"]["limited_by"]) == (0.0, "clv")


def test_an_unknown_or_unconsenting_customer_gets_a_non_personal_answer(
    client: TestClient, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    unknown = _ask(client, "nobody-ever")
    assert unknown["offer"] is None
    assert (unknown["fallback"], unknown["suppressed"]) == ("unknown_customer", "unknown_customer")
    assert (unknown["personalized"], unknown["alternatives"]) == (False, [])
    assert unknown["channel"] == "in_app"  # the default
    denied = _customer(store, noon, cart=cart, consent={"marketing_push": "1",
                                                        "personalization": "0"})  # fmt: skip
    answer = _ask(client, denied)
    assert (answer["offer"], answer["fallback"]) == (None, "no_consent")


def test_the_apps_cart_replaces_the_stored_one(
    client: TestClient, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    customer = _customer(store, noon)  # nothing in the stored cart
    answer = _ask(client, customer, channel="push", cart=list(cart), k=2)
    assert answer["offer"]["trigger"] == "cart_abandonment"
    assert len(answer["offer"]["items"]) <= 2
    assert "cart_abandonment" not in _whys(_ask(client, customer, channel="push", cart=[]))


def test_nothing_eligible_is_an_answer_not_an_error(
    shop: Shop, store: FeatureStore, noon: float, tmp_path: Path
) -> None:
    customer = _customer(store, noon)  # no cart, low churn, far from a tier, no model
    with TestClient(_app(shop, noon, model_registry=tmp_path / "empty")) as client:
        answer = _ask(client, customer, channel="push")
    assert (answer["offer"], answer["suppressed"], answer["alternatives"]) == (
        None,
        "no_eligible_action",
        [],
    )
    assert answer["model_version"] is None


def test_redis_down_gives_a_degraded_answer_not_a_500(shop: Shop, noon: float) -> None:
    app = _app(shop, noon, redis_url="redis://127.0.0.1:1/0")
    with TestClient(app) as client:
        answer = _ask(client, "c-1", channel="push")
    assert (answer["offer"], answer["degraded"], answer["fallback"]) == (
        None,
        True,
        "redis_unavailable",
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/customers/c%01x/next-best-offer", b"", "customer_id"),
        (f"/v1/customers/{'c' * 129}/next-best-offer", b"", "customer_id"),
        ("/v1/customers/c-1/next-best-offer", b"not json", "body"),
        ("/v1/customers/c-1/next-best-offer", b"[]", "body"),
        ("/v1/customers/c-1/next-best-offer", b'{"colour": "red"}', "body"),
        ("/v1/customers/c-1/next-best-offer", b'{"channel": "fax"}', "channel"),
        ("/v1/customers/c-1/next-best-offer", b'{"channel": 7}', "channel"),
        ("/v1/customers/c-1/next-best-offer", b'{"context": "billboard"}', "context"),
        ("/v1/customers/c-1/next-best-offer", b'{"cart": "p-1"}', "cart"),
        ("/v1/customers/c-1/next-best-offer", b'{"cart": ["p\\u0001"]}', "cart"),
        ("/v1/customers/c-1/next-best-offer", b'{"k": 0}', "k"),
        ("/v1/customers/c-1/next-best-offer", b'{"k": 2.5}', "k"),
    ],
)
def test_bad_input_gets_a_422_that_names_the_field(
    client: TestClient, path: str, body: bytes, field: str
) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_metrics_count_offers_and_why_actions_were_not_offered(
    shop: Shop, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    registry = CollectorRegistry()
    offered = _customer(store, noon, cart=cart)
    quiet = _customer(store, noon, cart=cart, timezone="Asia/Tokyo")
    with TestClient(_app(shop, noon, registry)) as client:
        _ask(client, offered, channel="push")
        _ask(client, quiet, channel="push")
        _ask(client, "nobody", channel="push")
        text = client.get("/metrics").text

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    total = "shopkeeper_serving_next_best_offer_total"
    assert sample(total, outcome="offered", trigger="cart_abandonment") == 1
    assert sample(total, outcome="suppressed", trigger="cart_abandonment") == 1
    assert sample(total, outcome="unknown_customer", trigger="none") == 1
    rejections = "shopkeeper_serving_next_best_offer_rejections_total"
    assert sample(rejections, trigger="cart_abandonment", reason="quiet_hours") == 1
    assert sample(rejections, trigger="cross_sell", reason="lower_expected_value") == 1
    assert sample("shopkeeper_serving_request_duration_seconds_count",
                  route="next_best_offer") == 3  # fmt: skip
    assert "shopkeeper_serving_offer_budget_spent" in text


def test_a_corrupt_profile_degrades_its_own_answer_only(
    client: TestClient, store: FeatureStore, noon: float, cart: dict[str, dict[str, float]]
) -> None:
    broken = _customer(store, noon, cart=cart)
    raw = redis.Redis.from_url(client.app.state.live.settings.redis_url)  # type: ignore[attr-defined]
    raw.hset(store.keys.customer(broken), "cart", "not json")
    raw.close()
    answer = _ask(client, broken, channel="push")
    assert (answer["offer"], answer["degraded"], answer["fallback"]) == (
        None,
        True,
        "corrupt_profile",
    )
    fine = _customer(store, noon, cart=cart)
    assert _ask(client, fine, channel="push")["degraded"] is False  # no circuit opened
