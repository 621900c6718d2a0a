"""The serving API through the real app (Starlette's TestClient runs its lifespan), on a
model trained from generated history and the features the real flow wrote to Redis."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

import events
from models.artifact import RecommenderArtifact
from serving import create_app
from serving.recommend import REASONS
from shopkeeper.churn_backtest import read_events
from shopkeeper.embedded import Endpoints
from tests import flowkit
from tests.servekit import Shop, build_shop

ID = re.compile(r"^rec\.[a-z_]+\.[a-z]+\.[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def shop(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return build_shop(infra, "serve1", tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def stream(shop: Shop) -> list[events.Event]:
    return read_events(shop.history)[0]


@pytest.fixture(scope="module")
def artifact(shop: Shop) -> RecommenderArtifact:
    return RecommenderArtifact.load(shop.registry.path(shop.version))


@pytest.fixture
def client(shop: Shop) -> Iterator[TestClient]:
    with TestClient(shop.app()) as client:
        yield client


def _purchases(stream: list[events.Event]) -> dict[str, list[tuple[dt.datetime, str]]]:
    out: dict[str, list[tuple[dt.datetime, str]]] = {}
    for e in stream:
        if type(e) is events.OrderCompleted and e.customer_key:
            for line in e.properties.products:
                out.setdefault(e.customer_key, []).append((e.timestamp, line.product_id))
    return out


def _check_listing(body: dict[str, object], k: int) -> list[str]:
    assert ID.match(str(body["recommendation_id"]))
    items = body["items"]
    assert isinstance(items, list)
    ids = [item["product_id"] for item in items]
    assert len(ids) == len(set(ids)) == k
    assert all(item["reason"] in REASONS and item["reason_text"] for item in items)
    return ids


def test_a_known_customer_gets_als_scores_without_what_they_just_bought(
    client: TestClient, shop: Shop, stream: list[events.Event], artifact: RecommenderArtifact
) -> None:
    bought = _purchases(stream)
    recent = dt.datetime.fromtimestamp(shop.now - 20 * 86_400, dt.UTC)
    buyers = [c for c, lines in bought.items() if artifact.als.user_index(c) is not None
              and any(t >= recent for t, _ in lines)]  # fmt: skip
    assert len(buyers) > 30
    denied = 0
    for customer in buyers[:30]:
        profile = client.get(f"/v1/customers/{customer}").json()["features"]
        response = client.get(f"/v1/customers/{customer}/recommendations", params={"k": 8})
        assert response.status_code == 200
        body = response.json()
        ids = _check_listing(body, 8)
        assert body["model_version"] == shop.version
        if profile.get("consent:personalization") == 0:
            denied += 1
            assert (body["personalized"], body["fallback"]) == (False, "no_consent")
            continue
        assert body["source"] in ("als", "fold_in")
        assert body["personalized"] is True
        assert body["degraded"] is False
        just_bought = {p for t, p in bought[customer] if t >= recent}
        for item in body["items"]:
            if item["product_id"] in just_bought:  # only a consumable that is due again
                assert item["reason"] == "due_again"
        assert all(shop_available(artifact, p) for p in ids)
    assert 0 < denied < 15  # both kinds of customer were asked about


def shop_available(artifact: RecommenderArtifact, product: str) -> bool:
    facts = artifact.catalog.get(product, {})
    return facts.get("inventory_status") != "out_of_stock" and facts.get(
        "lifecycle_status"
    ) not in ("discontinued", "end_of_life")


def test_an_unknown_customer_gets_the_trending_fallback_not_an_error(client: TestClient) -> None:
    response = client.get("/v1/customers/nobody-ever/recommendations", params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    _check_listing(body, 5)
    assert body["fallback"] == "unknown_customer"
    assert body["personalized"] is False
    assert {item["reason"] for item in body["items"]} == {"trending"}


def test_a_new_visitor_is_folded_in_from_their_views_of_a_minute_ago(
    shop: Shop, artifact: RecommenderArtifact
) -> None:
    viewed = artifact.als.items[:3]
    at = dt.datetime.fromtimestamp(shop.now - 60, dt.UTC)
    visits = [
        flowkit.event("Product Viewed", at + dt.timedelta(seconds=i), customer="c-newcomer",
                      product_id=p, price=10.0, currency="EUR")
        for i, p in enumerate(viewed)
    ]  # fmt: skip
    flowkit.send(shop.infra, shop.namespace, visits)
    flowkit.run_to_end(shop.infra, shop.namespace)
    with TestClient(shop.app()) as client:
        body = client.get("/v1/customers/c-newcomer/recommendations").json()
    assert body["source"] == "fold_in"
    assert body["personalized"] is True
    assert body["fallback"] is None
    because = {item["related_product_id"] for item in body["items"]
               if item["reason"] == "because_you_viewed"}  # fmt: skip
    assert because
    assert because <= set(viewed)


def _consenting(client: TestClient, customers: list[str]) -> list[str]:
    return [
        c for c in customers
        if client.get(f"/v1/customers/{c}").json()["features"].get("consent:personalization") != 0
    ]  # fmt: skip


def test_out_of_stock_products_drop_out_and_retired_ones_give_way_to_their_successor(
    shop: Shop, artifact: RecommenderArtifact
) -> None:
    with TestClient(shop.app()) as client:
        customer = _consenting(client, artifact.als.users[:40])[0]
        before = client.get(f"/v1/customers/{customer}/recommendations", params={"k": 10}).json()
    first, second = before["items"][0]["product_id"], before["items"][1]["product_id"]
    shown = {item["product_id"] for item in before["items"]}
    successor = next(p for p in reversed(artifact.als.items) if p not in shown)
    at = dt.datetime.fromtimestamp(shop.now - 30, dt.UTC)
    flowkit.send(shop.infra, shop.namespace, [
        flowkit.event("Product Updated", at, customer=None, product_id=first,
                      inventory_status="out_of_stock"),
        flowkit.event("Product Updated", at, customer=None, product_id=second,
                      lifecycle_status="discontinued", successor_product_id=successor),
        flowkit.event("Product Updated", at, customer=None, product_id=successor,
                      inventory_status="in_stock", lifecycle_status="active"),
    ])  # fmt: skip
    flowkit.run_to_end(shop.infra, shop.namespace)
    with TestClient(shop.app()) as client:
        after = client.get(f"/v1/customers/{customer}/recommendations", params={"k": 10}).json()
    products = [item["product_id"] for item in after["items"]]
    assert first not in products
    assert second not in products
    stand_in = next(item for item in after["items"] if item["product_id"] == successor)
    assert (stand_in["reason"], stand_in["related_product_id"]) == ("successor_of", second)


def test_cross_sell_shows_what_is_bought_together(
    client: TestClient, shop: Shop, artifact: RecommenderArtifact
) -> None:
    pairs = [(a, b) for a, b in shop.truth["co_purchase_pairs"]
             if b in {p for p, _, _ in artifact.complements.of(a, 10)}]  # fmt: skip
    assert len(pairs) >= 3
    for a, b in pairs:
        body = client.get(f"/v1/items/{a}/cross-sell", params={"k": 10}).json()
        assert body["source"] == "complements"
        assert body["context"] == "product"
        assert a not in [item["product_id"] for item in body["items"]]
        partner = next(item for item in body["items"] if item["product_id"] == b)
        assert (partner["reason"], partner["related_product_id"]) == ("bought_together", a)


def test_cart_cross_sell_completes_the_basket_and_never_repeats_it(
    client: TestClient, shop: Shop, artifact: RecommenderArtifact
) -> None:
    (a, b), (c, _) = shop.truth["co_purchase_pairs"][:2]
    response = client.post("/v1/cart/cross-sell", json={"items": [a, c], "k": 6})
    assert response.status_code == 200
    body = response.json()
    ids = _check_listing(body, 6)
    assert not {a, c} & set(ids)
    for item in body["items"]:
        if item["reason"] == "bought_together":
            assert item["related_product_id"] in (a, c)
    if b in {p for p, _, _ in artifact.complements.of(a, 10)}:
        assert b in ids


def test_up_sell_stays_in_the_category_and_the_price_band(
    client: TestClient, shop: Shop, artifact: RecommenderArtifact
) -> None:
    catalog = artifact.catalog
    ladders = [ladder for ladder in shop.truth["price_ladders"] if len(ladder) > 1]
    assert ladders
    found = 0
    steps = 0
    for ladder in ladders:
        base = catalog[ladder[0]]
        body = client.get(f"/v1/items/{ladder[0]}/up-sell", params={"k": 10}).json()
        assert body["source"] == "up_sell"
        for item in body["items"]:
            facts = catalog[item["product_id"]]
            assert facts["category"] == base["category"]
            assert 1.1 * base["price"] <= facts["price"] <= 2.0 * base["price"]
            assert (item["reason"], item["related_product_id"]) == ("step_up", ladder[0])
        step = catalog[ladder[1]]
        if shop_available(artifact, ladder[1]) and \
                1.1 * base["price"] <= step["price"] <= 2.0 * base["price"]:  # fmt: skip
            steps += 1
            found += ladder[1] in {item["product_id"] for item in body["items"]}
    assert steps
    assert found >= 0.8 * steps


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/customers/c-1/recommendations?k=0", "k"),
        ("/v1/customers/c-1/recommendations?k=101", "k"),
        ("/v1/customers/c-1/recommendations?k=ten", "k"),
        ("/v1/customers/c-1/recommendations?context=billboard", "context"),
        ("/v1/customers/c%01x/recommendations", "customer_id"),
        (f"/v1/customers/{'c' * 129}/recommendations", "customer_id"),
        ("/v1/items/p%00/cross-sell", "product_id"),
        ("/v1/items/p-1/up-sell?k=-3", "k"),
        ("/v1/customers/c%7F", "customer_id"),
    ],
)
def test_bad_input_gets_a_422_that_names_the_field(
    client: TestClient, path: str, field: str
) -> None:
    response = client.get(path)
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == field
    assert field in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b'{"items": []}', "body"),
        (b'{"items": "p-1"}', "body"),
        (b'{"items": ["p-1"], "k": 0}', "k"),
        (b'{"items": ["p-1"], "colour": "red"}', "body"),
        (b'{"items": ["p-1"], "context": "billboard"}', "context"),
        (b'{"items": ["p\\u0001"]}', "items"),
        (b'{"items": [' + b",".join([b'"p-1"'] * 101) + b"]}", "items"),
    ],
)
def test_a_bad_cart_gets_a_422_that_says_what_is_wrong(
    client: TestClient, body: bytes, field: str
) -> None:
    response = client.post(
        "/v1/cart/cross-sell", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_the_profile_for_crm_staff(client: TestClient, artifact: RecommenderArtifact) -> None:
    customer = artifact.als.users[0]
    body = client.get(f"/v1/customers/{customer}").json()
    assert body["customer_id"] == customer
    assert body["summary"]["orders_total"] >= 1
    assert body["summary"]["segment"] is not None or body["features"]["orders_total"] >= 1
    assert "orders_7d" in body["features"]  # windows folded at read time
    assert "win:orders" not in body["features"]
    missing = client.get("/v1/customers/nobody-ever")
    assert missing.status_code == 404
    assert "not known" in missing.json()["detail"]


def test_an_erased_customer_is_gone_from_the_profile_and_not_personalised(
    shop: Shop, artifact: RecommenderArtifact
) -> None:
    customer = artifact.als.users[-1]
    at = dt.datetime.fromtimestamp(shop.now - 10, dt.UTC)
    flowkit.send(shop.infra, shop.namespace,
                 [flowkit.event("Deletion Requested", at, customer=customer)])  # fmt: skip
    flowkit.run_to_end(shop.infra, shop.namespace)
    with TestClient(shop.app()) as client:
        profile = client.get(f"/v1/customers/{customer}")
        assert profile.status_code == 404
        assert "erased" in profile.json()["detail"]
        body = client.get(f"/v1/customers/{customer}/recommendations").json()
    assert (body["personalized"], body["fallback"]) == (False, "unknown_customer")


def test_redis_down_gives_the_fallback_with_a_degraded_flag_never_a_500(
    shop: Shop, artifact: RecommenderArtifact
) -> None:
    registry = CollectorRegistry()
    app = create_app(
        shop.settings(redis_url="redis://127.0.0.1:1/0"), registry=registry, clock=lambda: shop.now
    )
    with TestClient(app) as client:
        known = client.get(f"/v1/customers/{artifact.als.users[0]}/recommendations").json()
        unknown = client.get("/v1/customers/nobody/recommendations").json()
        assert client.get("/v1/items/p-00001/cross-sell").status_code == 200
        profile = client.get(f"/v1/customers/{artifact.als.users[0]}")
        ready = client.get("/readyz")
    assert known["degraded"] is True
    assert known["source"] == "als"  # the model's own factors need no Redis
    assert len(known["items"]) == 10
    assert unknown["degraded"] is True
    assert unknown["fallback"] == "redis_unavailable"
    assert len(unknown["items"]) == 10  # the model's best-sellers
    assert profile.status_code == 503
    assert ready.status_code == 503
    assert ready.json() == {"model": shop.version, "redis": False}
    # The start-up refreshes failed first and opened the circuit: requests never waited.
    errors = registry.get_sample_value(
        "shopkeeper_serving_redis_errors_total", {"operation": "refresh_catalog"}
    )
    assert errors is not None
    assert errors >= 1
    assert (
        registry.get_sample_value(
            "shopkeeper_serving_fallbacks_total",
            {"route": "recommendations", "reason": "redis_unavailable"},
        )
        == 1
    )


def test_without_a_promoted_model_answers_fall_back_and_readiness_says_so(
    shop: Shop, tmp_path: Path
) -> None:
    with TestClient(shop.app(model_registry=tmp_path / "empty")) as client:
        body = client.get("/v1/customers/c-1/recommendations").json()
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
    assert (body["model_version"], body["fallback"]) == (None, "no_model")


def test_metrics_show_latency_by_route_fallbacks_and_the_model(
    shop: Shop, artifact: RecommenderArtifact
) -> None:
    registry = CollectorRegistry()
    app = create_app(shop.settings(), registry=registry, clock=lambda: shop.now)
    with TestClient(app) as client:
        for _ in range(3):
            client.get(f"/v1/customers/{artifact.als.users[1]}/recommendations")
        client.get("/v1/customers/nobody/recommendations")
        client.get("/v1/customers/c-1/recommendations?k=0")
        text = client.get("/metrics").text
    assert (
        registry.get_sample_value(
            "shopkeeper_serving_request_duration_seconds_count", {"route": "recommendations"}
        )
        == 5
    )
    assert (
        registry.get_sample_value(
            "shopkeeper_serving_responses_total", {"route": "recommendations", "status": "422"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "shopkeeper_serving_fallbacks_total",
            {"route": "recommendations", "reason": "unknown_customer"},
        )
        == 1
    )
    assert (
        registry.get_sample_value("shopkeeper_serving_model_info", {"version": shop.version}) == 1
    )
    age = registry.get_sample_value("shopkeeper_serving_model_age_seconds")
    assert age is not None
    assert f'shopkeeper_serving_model_info{{version="{shop.version}"}} 1.0' in text


def test_a_running_server_drops_a_product_that_goes_out_of_stock(
    shop: Shop, artifact: RecommenderArtifact
) -> None:
    ladder = next(ladder for ladder in shop.truth["price_ladders"] if len(ladder) > 2)
    app = shop.app()
    with TestClient(app) as client:
        before = client.get(f"/v1/items/{ladder[0]}/up-sell").json()["items"]
        assert before
        gone = before[0]["product_id"]
        at = dt.datetime.fromtimestamp(shop.now - 20, dt.UTC)
        flowkit.send(shop.infra, shop.namespace, [
            flowkit.event("Product Updated", at, customer=None, product_id=gone,
                          inventory_status="out_of_stock", inventory_quantity=0),
        ])  # fmt: skip
        flowkit.run_to_end(shop.infra, shop.namespace)
        app.state.live.refresh_catalog()  # what the refresh loop does every few seconds
        after = client.get(f"/v1/items/{ladder[0]}/up-sell").json()["items"]
    assert gone not in {item["product_id"] for item in after}
