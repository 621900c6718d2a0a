"""The content of fired offers in the real flow: the products they are about and their
complements from the promoted recommender, and a discount within the day's budget that
a replay does not spend twice."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from models.baskets import Complements
from models.offers import Policy
from shopkeeper.embedded import Endpoints
from tests.flowkit import event, prepare, product, run_to_end, send
from tests.test_flow_offers import T0, _decisions, _shard_zero

DAY = dt.timedelta(days=1)
BUDGET = 10.0


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A registry whose promoted version knows P8, then P7, go with P1."""
    baskets = [["P1", "P8"]] * 3 + [["P1", "P7"]] * 2 + [["P2", "P9"]] * 2
    root = tmp_path / "registry"
    (root / "v1").mkdir(parents=True)
    Complements.from_baskets(baskets).save(root / "v1" / "complements.npz")
    (root / "CURRENT").write_text("v1")
    return root


def _story(customers: list[str], clock: str) -> list[Any]:
    items: list[Any] = []
    for n, customer in enumerate(customers):
        items += [
            event("Customer Updated", T0 - 200 * DAY, customer=customer,
                  traits={"timezone": "Europe/Paris"},
                  consent={"marketing_push": True, "marketing_email": False}),
            # 200 a year: a CLV cap of 20 at 10%.
            event("Order Completed", T0 - 100 * DAY, customer=customer, order_id=f"O-{n}",
                  revenue=200.0, currency="EUR", products=[product("P2", 200.0)]),
            event("Product Added", T0 + n * dt.timedelta(minutes=1), customer=customer,
                  product_id="P1", price=60.0, currency="EUR"),
        ]  # fmt: skip
    items.append(event("Product Viewed", T0 + DAY, customer=clock, product_id="P9",
                       price=5.0, currency="EUR"))  # fmt: skip
    return items


def _time(item: Any) -> dt.datetime:
    return item.timestamp  # type: ignore[no-any-return]


def _cart_offers(infra: Endpoints, namespace: str) -> list[dict[str, Any]]:
    fired, _ = _decisions(infra, namespace)
    return [o for o in fired if o["trigger"] == "cart_abandonment"]


def test_offers_name_their_items_and_a_discount_within_the_budget_once(
    infra: Endpoints, unique: str, registry: Path
) -> None:
    policy = Policy()
    customers = list(itertools.islice((c for c in _shard_zero("content")
                                       if not policy.in_holdout(c)), 4))  # fmt: skip
    clock = next(iter(_shard_zero("content-clock")))
    namespace = f"cnt{unique}"
    prepare(infra, namespace)
    send(infra, namespace, sorted(_story(customers, clock), key=_time))
    settings = {
        "allowed_lateness": dt.timedelta(seconds=60),
        "model_registry": registry,
        "offer_daily_budget": BUDGET,
    }
    run_to_end(infra, namespace, **settings)
    first = _cart_offers(infra, namespace)
    assert sorted(o["customer_id"] for o in first) == sorted(customers)
    for offer in first:
        content = offer["content"]
        assert content["items"] == [
            {"product_id": "P1", "role": "subject"},
            {"product_id": "P8", "role": "complement"},
            {"product_id": "P7", "role": "complement"},
        ]
        assert content["customer"]["clv_source"] == "revenue_per_year"
        assert content["customer"]["clv_12m"] == 200.0
        assert content["customer"]["recency_days"] == pytest.approx(100.0, abs=0.1)
        discount = content["discount"]
        assert discount["amount"] <= 0.10 * 200.0  # the CLV cap
        assert discount["amount"] == round(discount["rate"] * 60.0, 2)
    amounts = [o["content"]["discount"]["amount"] for o in first]
    assert 0 < sum(amounts) <= BUDGET
    assert any(o["content"]["discount"]["limited_by"] == "budget" for o in first)

    # The same offers again (a restart replays its last epoch): the same content, and
    # the budget is not spent a second time.
    run_to_end(infra, namespace, **settings)
    again = _cart_offers(infra, namespace)
    assert len(again) == 2 * len(first)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for offer in again:
        by_id.setdefault(offer["offer_id"], []).append(offer["content"])
    assert all(len(copies) == 2 and copies[0] == copies[1] for copies in by_id.values())


def test_without_a_promoted_model_an_offer_names_its_own_products(
    infra: Endpoints, unique: str, tmp_path: Path
) -> None:
    customer = next(c for c in _shard_zero("solo") if not Policy().in_holdout(c))
    clock = next(iter(_shard_zero("solo-clock")))
    namespace = f"cns{unique}"
    prepare(infra, namespace)
    send(infra, namespace, sorted(_story([customer], clock), key=_time))
    run_to_end(
        infra,
        namespace,
        allowed_lateness=dt.timedelta(seconds=60),
        model_registry=tmp_path / "empty",
    )
    (offer,) = _cart_offers(infra, namespace)
    assert offer["content"]["items"] == [{"product_id": "P1", "role": "subject"}]
