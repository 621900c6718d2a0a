"""The daily discount budget on the real Redis: grants within the budget, idempotent by
offer id, atomic under concurrent reservations, exact in cents, expiring."""

from __future__ import annotations

import threading

import pytest
import redis

from feature_store import DiscountBudget, FeatureStoreUnavailable, KeyLayout

DAY = "2025-05-01"


@pytest.fixture
def budget(redis_client: redis.Redis, unique: str) -> DiscountBudget:
    return DiscountBudget(redis_client, KeyLayout(f"t{unique}"))


def test_an_offer_gets_what_it_wants_while_the_budget_lasts_then_what_is_left(
    budget: DiscountBudget,
) -> None:
    assert budget.reserve(DAY, "of-1", wanted=8.0, budget=10.0) == 8.0
    assert budget.reserve(DAY, "of-2", wanted=5.0, budget=10.0) == 2.0
    assert budget.reserve(DAY, "of-3", wanted=1.0, budget=10.0) == 0.0
    assert budget.spent(DAY) == 10.0


def test_a_retry_returns_the_stored_grant_and_never_spends_twice(budget: DiscountBudget) -> None:
    first = budget.reserve(DAY, "of-1", wanted=4.5, budget=10.0)
    assert [budget.reserve(DAY, "of-1", wanted=w, budget=10.0) for w in (4.5, 9.0, 0.0)] == [
        first
    ] * 3
    assert budget.spent(DAY) == 4.5
    # A refused offer stays refused: its zero grant is remembered too.
    assert budget.reserve(DAY, "of-2", wanted=6.0, budget=5.0) == 0.5
    assert budget.reserve(DAY, "of-3", wanted=1.0, budget=5.0) == 0.0
    assert budget.reserve(DAY, "of-3", wanted=1.0, budget=50.0) == 0.0
    assert budget.spent(DAY) == 5.0


def test_days_are_separate_and_a_day_expires(
    budget: DiscountBudget, redis_client: redis.Redis
) -> None:
    assert budget.reserve(DAY, "of-1", wanted=3.0, budget=3.0) == 3.0
    assert budget.reserve("2025-05-02", "of-1", wanted=3.0, budget=3.0) == 3.0
    assert budget.spent("2025-05-03") == 0.0
    ttl = redis_client.ttl(budget.keys.budget(DAY))
    assert 0 < ttl <= 3 * 86_400


def test_money_is_exact_in_cents(budget: DiscountBudget) -> None:
    for i in range(10):
        budget.reserve(DAY, f"of-{i}", wanted=0.1, budget=0.29)
    assert budget.spent(DAY) == 0.29  # ten reservations of 0.10 from 0.29: 0.10, 0.10, 0.09
    assert budget.reserve(DAY, "of-2", wanted=0.1, budget=0.29) == 0.09


def test_concurrent_reservations_never_exceed_the_budget(infra_redis_url: str, unique: str) -> None:
    layout = KeyLayout(f"t{unique}")
    grants: dict[str, float] = {}
    lock = threading.Lock()
    start = threading.Barrier(8)

    def reserve(worker: int) -> None:
        client = redis.Redis.from_url(infra_redis_url)
        mine = DiscountBudget(client, layout)
        start.wait()
        for i in range(50):
            # Every worker asks for the same 20 offers (retries) and 30 of its own.
            offer = f"shared-{i}" if i < 20 else f"w{worker}-{i}"
            got = mine.reserve(DAY, offer, wanted=3.37, budget=250.0)
            with lock:
                assert grants.setdefault(offer, got) == got  # every caller sees one grant
        client.close()

    threads = [threading.Thread(target=reserve, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = redis.Redis.from_url(infra_redis_url)
    spent = DiscountBudget(client, layout).spent(DAY)
    client.close()
    assert len(grants) == 20 + 8 * 30
    assert round(sum(grants.values()), 2) == spent == 250.0
    assert all(0.0 <= g <= 3.37 for g in grants.values())
    assert sum(1 for g in grants.values() if 0 < g < 3.37) == 1  # the one that met the end


@pytest.mark.parametrize(
    ("day", "wanted", "amount"),
    [("2025-5-1", 1.0, 1.0), ("2025-02-30", 1.0, 1.0), (DAY, -1.0, 1.0), (DAY, 1.0, float("nan"))],
)
def test_bad_arguments_are_refused(
    budget: DiscountBudget, day: str, wanted: float, amount: float
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case names a different argument
        budget.reserve(day, "of-1", wanted=wanted, budget=amount)


def test_redis_down_is_a_feature_store_error() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.05)
    down = DiscountBudget(client, KeyLayout("down"))
    with pytest.raises(FeatureStoreUnavailable):
        down.reserve(DAY, "of-1", wanted=1.0, budget=1.0)
    with pytest.raises(FeatureStoreUnavailable):
        down.spent(DAY)
    client.close()


def test_a_batch_of_reservations_is_drawn_in_order_and_is_idempotent_too(
    budget: DiscountBudget,
) -> None:
    other = "2025-05-02"
    wanted = [(DAY, "of-1", 6.0), (DAY, "of-2", 6.0), (other, "of-3", 6.0), (DAY, "of-4", 1.0)]
    assert budget.reserve_many(wanted, budget=10.0) == [6.0, 4.0, 6.0, 0.0]
    assert budget.spent_many([DAY, other]) == {DAY: 10.0, other: 6.0}
    # The same batch again (a replay): the same grants, nothing more spent.
    assert budget.reserve_many(wanted, budget=10.0) == [6.0, 4.0, 6.0, 0.0]
    assert budget.spent_many([DAY, other]) == {DAY: 10.0, other: 6.0}
    assert budget.reserve_many([], budget=10.0) == []
