"""Loyalty accounts: exact points and tiers, refunds, duplicates, ageing on event time,
tier-drop timers, any arrival order within the lateness, and pickling mid-stream."""

from __future__ import annotations

import copy
import datetime as dt
import math
import pickle
import random
from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.loyalty import DEFAULT_TIERS, LoyaltyAccount, LoyaltyPolicy, TierChange

DAY = 86_400.0
YEAR = 365 * DAY
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()
_T = TypeVar("_T")


def _snapshot(value: _T) -> _T:
    """Pickle and unpickle, as a Bytewax snapshot and recovery do."""
    restored: _T = pickle.loads(pickle.dumps(value))  # noqa: S301  # bytes we just wrote
    return restored


def _up(old: str, new: str, t: float) -> TierChange:
    return TierChange(old, new, t, "upgrade")


def _down(old: str, new: str, t: float) -> TierChange:
    return TierChange(old, new, t, "downgrade")


# ------------------------------------------------------------------ a known sequence


def test_known_sequence_of_points_tiers_and_changes() -> None:
    account = LoyaltyAccount()
    assert (account.tier, account.points, account.spend) == ("Bronze", 0, 0.0)
    assert account.next_change_at() is None

    assert account.purchase("O-1", T0, 300.00) is None
    assert account.purchase("O-2", T0 + 10 * DAY, 250.75) == _up("Bronze", "Silver", T0 + 10 * DAY)
    assert account.purchase("O-3", T0 + 20 * DAY, 1_000.00) == _up("Silver", "Gold", T0 + 20 * DAY)
    assert (account.points, account.spend) == (1_550, 1_550.75)
    assert account.purchase("O-2", T0 + 10 * DAY, 250.75) is None  # duplicate
    assert account.purchase("O-2", T0 + 21 * DAY, 999.0) is None  # same order id: first wins
    assert (account.points, account.spend) == (1_550, 1_550.75)

    change = account.refund("O-3", T0 + 25 * DAY, 100.00, refund_id="R-1")
    assert change == _down("Gold", "Silver", T0 + 25 * DAY)
    assert account.refund("O-3", T0 + 26 * DAY, 100.00, refund_id="R-1") is None  # duplicate
    assert (account.points, account.spend, account.tier) == (1_450, 1_450.75, "Silver")

    # Silver needs 500: O-1 leaving keeps 1,150.75, O-2 leaving 900, O-3 leaving 0.
    assert account.next_change_at() == T0 + 20 * DAY + YEAR
    assert account.advance(T0 + YEAR) is None
    assert account.spend == 1_150.75
    assert account.advance(T0 + 20 * DAY + YEAR - 1) is None
    assert account.advance(T0 + 20 * DAY + YEAR) == _down("Silver", "Bronze", T0 + 20 * DAY + YEAR)
    assert (account.points, account.spend, account.tier) == (1_450, 0.0, "Bronze")
    assert account.next_change_at() is None
    assert account.clock == T0 + 20 * DAY + YEAR


def test_a_timer_at_next_change_sees_each_step_down_at_its_time() -> None:
    account = LoyaltyAccount()
    account.purchase("O-1", T0, 3_600.00)
    account.purchase("O-2", T0 + 30 * DAY, 1_000.00)
    account.purchase("O-3", T0 + 60 * DAY, 600.00)
    assert account.tier == "Platinum"
    changes = []
    while (due := account.next_change_at()) is not None:
        assert account.advance(due - 1) is None  # one second early: nothing yet
        changes.append(account.advance(due))
    # 5,200 -> 1,600 (Gold) -> 600 (Silver) -> 0 (Bronze).
    assert changes == [
        _down("Platinum", "Gold", T0 + YEAR),
        _down("Gold", "Silver", T0 + 30 * DAY + YEAR),
        _down("Silver", "Bronze", T0 + 60 * DAY + YEAR),
    ]
    assert account.points == 5_200


def test_one_call_after_a_long_silence_reports_the_net_change() -> None:
    account = LoyaltyAccount()
    account.purchase("O-1", T0, 2_000.00)
    assert account.tier == "Gold"
    # Two years later: O-1 is gone (Bronze) and the new order makes Silver: one change.
    change = account.purchase("O-2", T0 + 2 * YEAR, 700.00)
    assert change == _down("Gold", "Silver", T0 + 2 * YEAR)
    assert account.points == 2_700


# --------------------------------------------------------------------- points, exactly


def test_points_are_floored_exactly_on_decimal_amounts() -> None:
    hundred = LoyaltyAccount(LoyaltyPolicy(points_per_unit=100))
    hundred.purchase("O-1", T0, 0.29)  # 0.29 * 100 is 28.999999999999996 in floats
    assert hundred.points == 29
    tenth = LoyaltyAccount(LoyaltyPolicy(points_per_unit=0.1))
    tenth.purchase("O-1", T0, 19.99)
    tenth.purchase("O-2", T0, 30.00)
    assert tenth.points == 1 + 3
    assert LoyaltyPolicy().points_for(54.999) == 54
    # Rates that are not binary fractions are exact too (floats give 41, 5 and 11).
    assert LoyaltyPolicy(points_per_unit=0.7).points_for(60.00) == 42
    assert LoyaltyPolicy(points_per_unit=1.5).points_for(4.00) == 6
    assert LoyaltyPolicy(points_per_unit=3).points_for(4.00) == 12
    assert LoyaltyPolicy(points_per_unit=0).points_for(1_000) == 0


def test_partial_refunds_take_back_exactly_the_points_of_what_is_left() -> None:
    account = LoyaltyAccount()
    account.purchase("O-1", T0, 100.50)
    assert account.points == 100
    account.refund("O-1", T0 + DAY, 0.50, refund_id="R-1")
    assert account.points == 100  # 100.00 left
    account.refund("O-1", T0 + DAY, 0.01, refund_id="R-2")
    assert account.points == 99  # 99.99 left
    small = LoyaltyAccount()
    small.purchase("O-1", T0, 1.00)
    small.refund("O-1", T0 + DAY, 0.50, refund_id="a")
    small.refund("O-1", T0 + DAY, 0.50, refund_id="b")
    assert (small.points, small.spend) == (0, 0.0)  # two halves refund the whole point


def test_over_refunds_and_a_second_full_refund_never_go_below_zero() -> None:
    account = LoyaltyAccount()
    account.purchase("O-1", T0, 80.00)
    account.purchase("O-2", T0, 20.00)
    account.refund("O-1", T0 + DAY, 80.00, refund_id="R-1")
    account.refund("O-1", T0 + 2 * DAY, 80.00, refund_id="R-2")  # a second full refund
    account.refund("O-2", T0 + 2 * DAY, 500.00, refund_id="R-3")  # more than was paid
    assert (account.points, account.spend) == (0, 0.0)
    account.purchase("O-3", T0 + 3 * DAY, 10.00)
    assert account.points == 10  # earlier refunds do not eat into other orders


def test_refunds_without_an_id_are_deduplicated_by_time_and_amount() -> None:
    account = LoyaltyAccount()
    account.purchase("O-1", T0, 90.00)
    account.refund("O-1", T0 + DAY, 10.00)
    account.refund("O-1", T0 + DAY, 10.00)  # the same refund again
    assert account.points == 80
    account.refund("O-1", T0 + 2 * DAY, 10.00)  # another one, a day later
    assert account.points == 70


def test_a_refund_before_its_order_waits_for_it() -> None:
    account = LoyaltyAccount()
    assert account.refund("O-1", T0 + DAY, 40.00, refund_id="R-1") is None
    assert (account.points, account.spend) == (0, 0.0)  # unknown order: nothing to take
    account.purchase("O-1", T0, 600.00)
    assert (account.points, account.spend, account.tier) == (560, 560.0, "Silver")


def test_a_refund_a_window_or_more_after_the_order_does_not_apply() -> None:
    account = LoyaltyAccount(lateness=dt.timedelta(days=30))
    account.purchase("O-1", T0, 100.00)
    account.refund("O-1", T0 + YEAR, 100.00, refund_id="R-1")
    assert account.points == 100


def test_a_refund_exactly_a_window_before_its_order_does_not_apply() -> None:
    account = LoyaltyAccount()
    account.refund("O-1", T0, 50.00, refund_id="R-1")
    account.purchase("O-1", T0 + YEAR, 100.00)
    assert account.points == 100
    nearly = LoyaltyAccount()
    nearly.refund("O-1", T0 + 60, 50.00, refund_id="R-1")
    nearly.purchase("O-1", T0 + YEAR, 100.00)
    assert nearly.points == 50


def test_a_late_refund_still_reaches_an_order_that_just_left_the_window() -> None:
    account = LoyaltyAccount(lateness=dt.timedelta(days=30))
    account.purchase("O-1", T0, 600.00)
    assert account.advance(T0 + YEAR + 5 * DAY) == _down("Silver", "Bronze", T0 + YEAR + 5 * DAY)
    # Issued the day before O-1 left the window, it arrives six days late.
    assert account.refund("O-1", T0 + YEAR - DAY, 100.00, refund_id="R-1") is None
    assert (account.points, account.spend) == (500, 0.0)
    in_order = LoyaltyAccount(lateness=dt.timedelta(days=30))
    in_order.purchase("O-1", T0, 600.00)
    in_order.refund("O-1", T0 + YEAR - DAY, 100.00, refund_id="R-1")
    in_order.advance(T0 + YEAR + 5 * DAY)
    assert account == in_order


def test_a_late_order_still_finds_a_refund_issued_almost_a_window_before_it() -> None:
    account = LoyaltyAccount(lateness=dt.timedelta(days=30))
    account.refund("O-1", T0, 100.00, refund_id="R-1")  # its order is not known yet
    account.purchase("O-2", T0 + DAY, 10.00)  # leaves the window before O-1 arrives
    account.advance(T0 + YEAR + 5 * DAY)
    account.purchase("O-1", T0 + YEAR - DAY, 600.00)  # six days late
    assert (account.points, account.spend, account.tier) == (510, 500.0, "Silver")
    in_order = LoyaltyAccount(lateness=dt.timedelta(days=30))
    in_order.refund("O-1", T0, 100.00, refund_id="R-1")
    in_order.purchase("O-2", T0 + DAY, 10.00)
    in_order.purchase("O-1", T0 + YEAR - DAY, 600.00)
    in_order.advance(T0 + YEAR + 5 * DAY)
    assert account == in_order


def test_an_order_is_remembered_for_the_window_plus_the_lateness() -> None:
    account = LoyaltyAccount(lateness=dt.timedelta(days=30))
    account.advance(T0 + YEAR + 10 * DAY)
    account.purchase("O-1", T0, 200.00)  # 375 days late: out of the spend, still remembered
    account.purchase("O-1", T0, 200.00)
    assert (account.points, account.spend) == (200, 0.0)
    account.advance(T0 + YEAR + 30 * DAY)  # forgotten now: its points stay
    assert account.points == 200
    account.purchase("O-1", T0, 200.00)  # a duplicate this late is not recognised
    assert account.points == 400


def test_what_is_forgotten_leaves_no_trace_in_the_state() -> None:
    lateness = dt.timedelta(hours=1)
    account = LoyaltyAccount(lateness=lateness)
    account.refund("O-9", T0, 30.00, refund_id="R-1")  # an order never seen
    empty = LoyaltyAccount(lateness=lateness)
    for each in (account, empty):
        each.advance(T0 + YEAR + 3_600)
    assert account == empty
    account.refund("O-8", T0, 10.00, refund_id="R-1")  # later than window + lateness
    assert account == empty
    account.purchase("O-1", T0 + DAY, 40.00)  # late, but within window + lateness
    account.advance(T0 + DAY + YEAR + 3_600)
    assert account.points == 40
    account.refund("O-1", T0 + DAY + YEAR, 40.00, refund_id="R-2")
    assert account.points == 40  # O-1 is forgotten: an unknown order now


def test_an_order_exactly_a_window_old_has_left_the_spend() -> None:
    account = LoyaltyAccount(lateness=dt.timedelta(days=1))
    account.advance(T0 + YEAR)
    assert account.purchase("O-1", T0, 800.00) is None
    assert (account.points, account.spend, account.tier) == (800, 0.0, "Bronze")
    assert account.purchase("O-2", T0 + 1, 800.00) == _up("Bronze", "Silver", T0 + YEAR)
    assert account.advance(T0 + YEAR + 1) == _down("Silver", "Bronze", T0 + YEAR + 1)


def test_spend_exactly_at_a_threshold_keeps_the_tier() -> None:
    account = LoyaltyAccount()
    account.purchase("O-1", T0, 500.00)
    account.purchase("O-2", T0 + 10 * DAY, 500.00)
    assert account.next_change_at() == T0 + 10 * DAY + YEAR  # 500 left at O-1's end: Silver
    assert account.advance(T0 + YEAR) is None
    assert account.tier == "Silver"


def test_a_purchase_later_than_any_guarantee_still_earns_points_but_no_spend() -> None:
    account = LoyaltyAccount()
    account.advance(T0 + 2 * YEAR)
    assert account.purchase("O-1", T0, 900.00) is None
    assert (account.points, account.spend, account.tier) == (900, 0.0, "Bronze")


# ------------------------------------------------------------------- memory and inputs


def test_memory_stays_bounded_over_years_of_daily_orders() -> None:
    account = LoyaltyAccount()
    sizes = {}
    for day in range(4 * 365):
        account.purchase(f"O-{day}", T0 + day * DAY, 12.34)
        if day % 100 == 0:
            account.refund(f"O-{day}", T0 + day * DAY + 60, 2.00, refund_id=f"R-{day}")
        if day in (500, 1_400):
            sizes[day] = len(pickle.dumps(account))
    assert sizes[1_400] < sizes[500] * 1.05
    # 12 points an order; the 15 refunded ones keep floor(10.34) = 10.
    assert account.points == 4 * 365 * 12 - 15 * 2
    assert math.isclose(account.spend, 365 * 12.34 - 4 * 2.00)


def test_bad_input_is_refused_and_changes_nothing() -> None:
    account = LoyaltyAccount()
    account.purchase("O-1", T0, 600.00)
    before = copy.deepcopy(account)
    calls: list[Callable[[], object]] = [
        lambda: account.purchase("O-2", T0 + DAY, -1.00),
        lambda: account.purchase("O-2", T0 + DAY, math.nan),
        lambda: account.purchase("O-2", math.inf, 1.00),
        lambda: account.refund("O-1", T0 + DAY, -5.00),
        lambda: account.advance(dt.datetime(2025, 6, 1)),  # noqa: DTZ001  # naive on purpose
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"finite|naive"):
            call()
    assert account == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"points_per_unit": -1.0}, "points_per_unit"),
        ({"points_per_unit": math.inf}, "points_per_unit"),
        ({"tiers": ()}, "at least one tier"),
        ({"tiers": (("Bronze", 10.0), ("Silver", 500.0))}, "first tier threshold must be 0"),
        ({"tiers": (("Bronze", 0.0), ("Silver", 500.0), ("Gold", 500.0))}, "must increase"),
        ({"tiers": (("Bronze", 0.0), ("Gold", 900.0), ("Silver", 500.0))}, "must increase"),
        ({"tiers": (("Bronze", 0.0), ("Bronze", 500.0))}, "unique"),
        ({"tiers": (("", 0.0),)}, "non-empty"),
        ({"window": dt.timedelta(0)}, "window"),
    ],
)
def test_policies_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoyaltyPolicy(**kwargs)  # type: ignore[arg-type]


def test_default_policy_and_a_custom_one() -> None:
    policy = LoyaltyPolicy()
    assert policy.tiers == DEFAULT_TIERS
    assert [policy.tier_for(x) for x in (0, 499.99, 500, 1_500, 4_999.99, 5_000)] == [
        "Bronze", "Bronze", "Silver", "Gold", "Gold", "Platinum",
    ]  # fmt: skip
    club = LoyaltyPolicy(points_per_unit=2, tiers=[("Member", 0), ("VIP", 100)])  # type: ignore[arg-type]
    assert club.tiers == (("Member", 0.0), ("VIP", 100.0))
    assert _snapshot(club) == club
    account = LoyaltyAccount(club)
    assert account.purchase("O-1", T0, 120.00) == _up("Member", "VIP", T0)
    assert account.points == 240


def test_datetimes_and_epoch_seconds_agree() -> None:
    by_seconds, by_datetime = LoyaltyAccount(), LoyaltyAccount()
    start = dt.datetime.fromtimestamp(T0, dt.UTC)
    by_seconds.purchase("O-1", T0, 700.00)
    by_datetime.purchase("O-1", start, 700.00)
    by_seconds.refund("O-1", T0 + DAY, 300.00)
    by_datetime.refund("O-1", start + dt.timedelta(days=1), 300.00)
    assert by_seconds == by_datetime
    assert by_seconds.advance(T0 + YEAR) == by_datetime.advance(start + dt.timedelta(days=365))


# ------------------------------------------------------------ any order, same account


class Event(NamedTuple):
    kind: str  # "purchase" or "refund"
    order_id: str
    t: float
    cents: int
    refund_id: str | None


def _apply(account: LoyaltyAccount, event: Event) -> TierChange | None:
    if event.kind == "purchase":
        return account.purchase(event.order_id, event.t, event.cents / 100)
    return account.refund(event.order_id, event.t, event.cents / 100, refund_id=event.refund_id)


def _run(events: Iterable[Event], lateness: dt.timedelta, window: float = YEAR) -> LoyaltyAccount:
    policy = LoyaltyPolicy(window=dt.timedelta(seconds=window))
    account = LoyaltyAccount(policy, lateness=lateness)
    for event in events:
        _apply(account, event)
    return account


def _oracle(events: list[Event], window: float = YEAR) -> tuple[int, int, str]:
    """Points, spend in cents and tier, straight from the rules in the module docstring."""
    clock = max(e.t for e in events)
    purchases: dict[str, Event] = {}
    refunds: dict[tuple[str, object], Event] = {}
    for e in sorted(events, key=lambda e: e.t):
        if e.kind == "purchase":
            purchases.setdefault(e.order_id, e)
        else:
            refunds[e.order_id, e.refund_id or (e.t, e.cents)] = e
    points = spend = 0
    for order_id, p in purchases.items():
        back = sum(
            r.cents
            for (oid, _), r in refunds.items()
            if oid == order_id and abs(r.t - p.t) < window
        )
        net = p.cents - min(p.cents, back)
        points += net // 100
        if p.t + window > clock:
            spend += net
    tier = next(name for name, limit in reversed(DEFAULT_TIERS) if spend >= limit * 100)
    return points, spend, tier


@st.composite
def _histories(draw: st.DrawFn, span: float, window: float = YEAR) -> list[Event]:
    """Orders with refunds (some before their order, some unknown orders) and duplicates.

    Refunds land anywhere from a window before their order to beyond a window after it,
    and often right at the edges, where ageing and lateness meet.
    """
    edges = [-window, -DAY, 0.0, window - DAY, window - 60, window, window + 60]
    events: list[Event] = []
    for i in range(draw(st.integers(min_value=1, max_value=10))):
        order_id = f"O-{i}"
        t = T0 + draw(st.floats(min_value=0, max_value=span)) // 60 * 60
        cents = draw(st.integers(min_value=0, max_value=300_000))
        if draw(st.booleans()) or i == 0:
            events.append(Event("purchase", order_id, t, cents, None))
        for j in range(draw(st.integers(min_value=0, max_value=3))):
            offset = draw(
                st.one_of(
                    st.floats(min_value=-0.1 * window, max_value=1.2 * window),
                    st.sampled_from(edges),
                )
            )
            when = min(T0 + span, max(T0, t + offset // 60 * 60))
            amount = draw(st.integers(min_value=0, max_value=200_000))
            refund_id = draw(st.sampled_from([None, f"R-{i}-{j}"]))
            events.append(Event("refund", order_id, when, amount, refund_id))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=4))
    return events + duplicates


@given(_histories(span=300 * DAY), st.randoms(use_true_random=False))
def test_any_order_within_one_window_gives_the_in_order_account(
    events: list[Event], rng: random.Random
) -> None:
    in_order = _run(sorted(events, key=lambda e: e.t), dt.timedelta(0))
    shuffled = list(events)
    rng.shuffle(shuffled)
    out_of_order = _run(shuffled, dt.timedelta(0))
    assert out_of_order == in_order
    assert (in_order.points, round(in_order.spend * 100), in_order.tier) == _oracle(events)
    assert out_of_order.next_change_at() == in_order.next_change_at()


def _late_by_at_most(events: list[Event], lateness: float, rng: random.Random) -> list[Event]:
    """An arrival order in which no event is ``lateness`` or more behind the clock."""
    delay = [rng.uniform(0, lateness * 0.999) for _ in events]
    return [e for _, e in sorted(zip(delay, events, strict=True), key=lambda p: p[1].t + p[0])]


@given(_histories(span=3 * YEAR), st.randoms(use_true_random=False))
def test_any_arrival_within_the_lateness_gives_the_in_order_account(
    events: list[Event], rng: random.Random
) -> None:
    lateness = dt.timedelta(days=40)
    arrival = _late_by_at_most(events, lateness.total_seconds(), rng)
    in_order = _run(sorted(events, key=lambda e: e.t), lateness)
    out_of_order = _run(arrival, lateness)
    assert out_of_order == in_order
    assert (in_order.points, round(in_order.spend * 100), in_order.tier) == _oracle(events)


@given(_histories(span=80 * DAY, window=30 * DAY), st.randoms(use_true_random=False))
def test_a_short_window_with_late_events_gives_the_in_order_account(
    events: list[Event], rng: random.Random
) -> None:
    """Many orders age out during the stream, while late refunds and duplicates arrive."""
    window, lateness = 30 * DAY, dt.timedelta(days=6)
    arrival = _late_by_at_most(events, lateness.total_seconds(), rng)
    in_order = _run(sorted(events, key=lambda e: e.t), lateness, window)
    out_of_order = _run(arrival, lateness, window)
    assert out_of_order == in_order
    expected = _oracle(events, window)
    assert (in_order.points, round(in_order.spend * 100), in_order.tier) == expected
    assert out_of_order.next_change_at() == in_order.next_change_at()


@given(_histories(span=2 * YEAR), st.integers(min_value=0, max_value=60))
def test_pickled_mid_stream_accounts_continue_the_same(events: list[Event], cut: int) -> None:
    ordered = sorted(events, key=lambda e: e.t)
    cut = min(cut, len(ordered))
    straight = LoyaltyAccount()
    straight_changes = [_apply(straight, e) for e in ordered]
    paused = _snapshot(_run(ordered[:cut], dt.timedelta(hours=1)))
    changes = [_apply(paused, e) for e in ordered[cut:]]
    assert paused == straight
    assert changes == straight_changes[cut:]
    assert paused.next_change_at() == straight.next_change_at()


def test_changes_are_the_same_whether_or_not_the_account_was_pickled() -> None:
    events = [
        Event("purchase", "O-1", T0, 60_000, None),
        Event("purchase", "O-2", T0 + DAY, 120_000, None),
        Event("refund", "O-2", T0 + 2 * DAY, 50_000, "R-1"),
        Event("purchase", "O-3", T0 + 100 * DAY, 400_000, None),
    ]
    straight = LoyaltyAccount()
    straight_changes = [_apply(straight, e) for e in events]
    paused = LoyaltyAccount()
    paused_changes = [_apply(paused, events[0])]
    paused = _snapshot(paused)
    paused_changes += [_apply(paused, e) for e in events[1:]]
    assert (
        paused_changes
        == straight_changes
        == [
            _up("Bronze", "Silver", T0),
            _up("Silver", "Gold", T0 + DAY),
            _down("Gold", "Silver", T0 + 2 * DAY),
            _up("Silver", "Platinum", T0 + 100 * DAY),
        ]
    )
