"""Offer guardrails: each rule alone and their order, once per state, local days and quiet
hours in the customer's time zone, the hold-out group, offer ids, out-of-order candidates,
memory, pickling mid-stream and determinism."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import itertools
import pickle
import random
import zoneinfo
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.offers import (
    SUPPRESSION_REASONS,
    WEEK,
    Candidate,
    ContactBook,
    Context,
    Decision,
    Policy,
    offer_id,
)

HOUR = 3600.0
DAY = 86_400.0
CART = "cart_abandonment"
TRIGGERS = (CART, "browse_abandonment", "win_back")
CONSENTED = Context(consent={"marketing_push": True}, timezone="UTC")
LAX = Policy(
    daily_cap=100,
    weekly_cap=100,
    trigger_daily_cap=100,
    trigger_weekly_cap=100,
    default_cooldown_s=0.0,
    quiet_hours=(0, 0),
    holdout_share=0.0,
)
"""No guardrail but consent: for writing a history."""

Stream = list[tuple[Candidate, Context]]


def _at(zone: str, local: str) -> float:
    """Epoch seconds of a local wall-clock time such as ``"2025-03-12 23:30"``."""
    return dt.datetime.fromisoformat(local).replace(tzinfo=zoneinfo.ZoneInfo(zone)).timestamp()


NOON = _at("UTC", "2025-03-12 12:00")


def _candidate(
    at: float = NOON,
    trigger: str = CART,
    state_key: str = "cart-1",
    *,
    customer_id: str = "C-1",
    channel: str = "push",
    promotional: bool = True,
) -> Candidate:
    return Candidate(
        customer_id=customer_id,
        trigger=trigger,
        at=at,
        state_key=state_key,
        reason="cart_idle_30m",
        features={"cart_items": "2"},
        channel=channel,
        promotional=promotional,
    )


def _history(book: ContactBook, *fires: tuple[float, str, str]) -> None:
    """Record fires ``(time, trigger, state_key)``."""
    for at, trigger, state_key in fires:
        assert book.decide(_candidate(at, trigger, state_key), CONSENTED, LAX).fired


def _snapshot(book: ContactBook, protocol: int = pickle.DEFAULT_PROTOCOL) -> ContactBook:
    """Pickle and unpickle, as a Bytewax snapshot and recovery do."""
    restored: ContactBook = pickle.loads(pickle.dumps(book, protocol))  # noqa: S301  # ours
    return restored


# ------------------------------------------------------------------ each rule, and the order


def _scenario(active: frozenset[str], *, promotional: bool = True) -> Decision:
    """A cart candidate at noon UTC, an hour after the cart last fired for ``cart-1``, with
    exactly the guardrails named in ``active`` applying."""
    book = ContactBook()
    _history(book, (NOON - HOUR, CART, "cart-1"))
    policy = Policy(
        holdout_share=1.0 if "holdout" in active else 0.0,
        quiet_hours=(12, 13) if "quiet_hours" in active else (0, 0),
        cooldown_s={CART: 2 * HOUR if "cooldown" in active else 60.0},
        trigger_daily_cap=1 if "trigger_cap" in active else 5,
        daily_cap=1 if "frequency_cap" in active else 5,
    )
    context = Context(
        consent={"marketing_push": "no_consent" not in active},
        timezone="UTC",
        open_tickets=1 if "open_ticket" in active else 0,
    )
    state_key = "cart-1" if "already_fired" in active else "cart-2"
    return book.decide(_candidate(state_key=state_key, promotional=promotional), context, policy)


def test_fires_when_no_guardrail_applies() -> None:
    decision = _scenario(frozenset())
    assert decision.fired
    assert decision.reason == "cart_idle_30m"
    assert decision.offer_id == offer_id("C-1", CART, "cart-2")


@pytest.mark.parametrize("reason", SUPPRESSION_REASONS)
def test_each_guardrail_suppresses_with_its_reason_alone(reason: str) -> None:
    decision = _scenario(frozenset({reason}))
    assert (decision.fired, decision.reason) == (False, reason)


@given(active=st.frozensets(st.sampled_from(SUPPRESSION_REASONS)), promotional=st.booleans())
def test_the_first_applicable_guardrail_in_order_wins(
    active: frozenset[str], promotional: bool
) -> None:
    promotions_only = {"no_consent", "open_ticket", "quiet_hours"}
    applies = [r for r in SUPPRESSION_REASONS if r in active]
    if not promotional:
        applies = [r for r in applies if r not in promotions_only]
    decision = _scenario(active, promotional=promotional)
    assert decision.fired == (not applies)
    assert decision.reason == (applies[0] if applies else "cart_idle_30m")


def test_a_held_out_customer_without_consent_gets_no_consent() -> None:
    # The control group holds only offers that would have fired: every other guardrail
    # comes first.
    book, policy = ContactBook(), Policy(holdout_share=1.0)
    refused = Context(consent={"marketing_push": False}, timezone="UTC")
    assert book.decide(_candidate(), refused, policy).reason == "no_consent"
    # The refusal consumed nothing: once consent is given, the state is held out.
    assert book.decide(_candidate(), CONSENTED, policy).reason == "holdout"
    assert book.decide(_candidate(), CONSENTED, policy).reason == "already_fired"


@pytest.mark.parametrize(
    ("channel", "consent", "explicit", "reason"),
    [
        ("push", {"marketing_push": True}, True, None),
        ("push", {}, True, "no_consent"),
        ("push", {}, False, None),
        ("push", {"marketing_push": False}, False, "no_consent"),
        ("in_app", {"marketing_push": True}, True, None),
        ("email", {"marketing_push": True}, True, "no_consent"),
        ("email", {"marketing_email": True}, True, None),
        ("fax", {"marketing_push": True}, False, "no_consent"),  # no flag for the channel
    ],
)
def test_consent_follows_the_channel_flag(
    channel: str, consent: dict[str, bool], explicit: bool, reason: str | None
) -> None:
    policy = Policy(holdout_share=0.0, require_explicit_consent=explicit)
    context = Context(consent=consent, timezone="UTC")
    decision = ContactBook().decide(_candidate(channel=channel), context, policy)
    assert decision.reason == (reason or "cart_idle_30m")


def test_service_messages_skip_consent_tickets_and_quiet_hours_but_not_cooldowns() -> None:
    book, policy = ContactBook(), Policy(holdout_share=0.0)
    context = Context(consent={}, timezone="UTC", open_tickets=2)
    night = _at("UTC", "2025-03-12 23:00")
    sorry = _candidate(night, "service_recovery", "ticket-2", promotional=False)
    assert book.decide(sorry, context, policy).fired
    again = dataclasses.replace(sorry, at=night + 600, state_key="ticket-3")
    assert book.decide(again, context, policy).reason == "cooldown"


# ------------------------------------------------------------------ once per state


def test_the_same_cart_fires_once_and_a_new_cart_after_the_cooldown() -> None:
    book, policy = ContactBook(), Policy(holdout_share=0.0, trigger_daily_cap=5, daily_cap=5)
    assert book.decide(_candidate(NOON, state_key="A"), CONSENTED, policy).fired
    assert book.decide(_candidate(NOON + 2 * DAY, state_key="A"), CONSENTED, policy).reason == (
        "already_fired"
    )
    assert book.decide(_candidate(NOON + 1800, state_key="B"), CONSENTED, policy).reason == (
        "cooldown"
    )
    assert book.decide(_candidate(NOON + HOUR, state_key="B"), CONSENTED, policy).fired
    # Only the last state is remembered: a cart changed back is a new state.
    assert book.decide(_candidate(NOON + 3 * HOUR, state_key="A"), CONSENTED, policy).fired


def test_a_suppression_for_another_reason_does_not_consume_the_state() -> None:
    book, policy = ContactBook(), Policy(holdout_share=0.0)
    evening, morning = _at("UTC", "2025-03-12 22:00"), _at("UTC", "2025-03-13 09:00")
    assert book.decide(_candidate(evening), CONSENTED, policy).reason == "quiet_hours"
    assert book.decide(_candidate(morning), CONSENTED, policy).fired
    assert book.decide(_candidate(morning + DAY), CONSENTED, policy).reason == "already_fired"


def test_a_holdout_consumes_the_state_the_cooldown_and_the_caps_as_a_fire_would() -> None:
    # Both arms then meet the same later guardrails: the control group stays comparable.
    book, held = ContactBook(), Policy(holdout_share=1.0, cooldown_s={CART: HOUR})
    assert book.decide(_candidate(), CONSENTED, held).reason == "holdout"
    assert book.decide(_candidate(), CONSENTED, held).reason == "already_fired"
    assert book.fired_at() == [(NOON, CART)]
    later = _candidate(NOON + 60, state_key="cart-2")
    assert book.decide(later, CONSENTED, held).reason == "cooldown"


# ------------------------------------------------------------------ local days and caps


@pytest.mark.parametrize("kind", ["trigger_cap", "frequency_cap"])
@pytest.mark.parametrize(
    ("zone", "first", "second", "fired"),
    [
        # 23:30 and 00:45 in New York, the same UTC day (13 March).
        ("America/New_York", "2025-03-12 23:30", "2025-03-13 00:45", True),
        ("UTC", "2025-03-13 03:30", "2025-03-13 04:45", False),
        # 23:30 and 00:45 in UTC, the same New York day (12 March).
        ("UTC", "2025-03-12 23:30", "2025-03-13 00:45", True),
        ("America/New_York", "2025-03-12 19:30", "2025-03-12 20:45", False),
        # The day the clocks go back has 25 hours in New York.
        ("America/New_York", "2025-11-02 00:30", "2025-11-02 23:30", False),
        ("UTC", "2025-11-02 04:30", "2025-11-03 04:30", True),
    ],
)
def test_daily_caps_roll_over_at_local_midnight(
    kind: str,
    zone: str,
    first: str,
    second: str,
    fired: bool,
) -> None:
    policy = Policy(quiet_hours=(0, 0), holdout_share=0.0, trigger_daily_cap=1, daily_cap=1)
    if kind == "trigger_cap":
        policy = dataclasses.replace(policy, daily_cap=5)
    context = Context(consent={"marketing_push": True}, timezone=zone)
    book = ContactBook()
    assert book.decide(_candidate(_at(zone, first), CART, "A"), context, policy).fired
    trigger = CART if kind == "trigger_cap" else "win_back"
    decision = book.decide(_candidate(_at(zone, second), trigger, "B"), context, policy)
    assert decision.reason == ("cart_idle_30m" if fired else kind)


@pytest.mark.parametrize("kind", ["trigger_cap", "frequency_cap"])
def test_weekly_caps_count_a_rolling_7_days(kind: str) -> None:
    policy = Policy(
        quiet_hours=(0, 0), holdout_share=0.0, trigger_weekly_cap=3, weekly_cap=4, daily_cap=5
    )
    book = ContactBook()
    if kind == "trigger_cap":
        _history(book, *((NOON - d * DAY, CART, f"s{d}") for d in (6, 4, 2)))
        trigger = CART
    else:
        _history(book, *((NOON - d * DAY, f"t{d}", "s") for d in (6, 5, 4, 3)))
        trigger = "win_back"
    assert book.decide(_candidate(NOON, trigger, "new"), CONSENTED, policy).reason == kind
    # A second after the oldest fire leaves the 7 days.
    later = _candidate(NOON + DAY + 1, trigger, "new")
    assert book.decide(later, CONSENTED, policy).fired


# ------------------------------------------------------------------ quiet hours


@pytest.mark.parametrize(
    ("window", "hour", "quiet"),
    [
        ((21, 8), 20, False),
        ((21, 8), 21, True),
        ((21, 8), 23, True),
        ((21, 8), 0, True),
        ((21, 8), 7, True),
        ((21, 8), 8, False),
        ((21, 8), 12, False),
        ((13, 15), 12, False),
        ((13, 15), 13, True),
        ((13, 15), 14, True),
        ((13, 15), 15, False),
        ((0, 0), 0, False),
        ((0, 0), 23, False),
    ],
)
def test_quiet_hours_in_local_time_wrap_midnight(
    window: tuple[int, int], hour: int, quiet: bool
) -> None:
    policy = Policy(quiet_hours=window, holdout_share=0.0)
    context = Context(consent={"marketing_push": True}, timezone="Asia/Tokyo")
    at = _at("Asia/Tokyo", f"2025-03-12 {hour:02d}:30")
    decision = ContactBook().decide(_candidate(at), context, policy)
    assert decision.reason == ("quiet_hours" if quiet else "cart_idle_30m")


@pytest.mark.parametrize("zone", [None, "", "Not/AZone", "America", "../etc/passwd"])
def test_quiet_hours_use_the_default_timezone_when_unknown_or_invalid(zone: str | None) -> None:
    policy = Policy(holdout_share=0.0, default_timezone="Asia/Tokyo")
    at = _at("Asia/Tokyo", "2025-03-12 22:30")  # 13:30 UTC
    context = Context(consent={"marketing_push": True}, timezone=zone)
    assert ContactBook().decide(_candidate(at), context, policy).reason == "quiet_hours"
    assert ContactBook().decide(_candidate(at), CONSENTED, policy).fired


# ------------------------------------------------------------------ hold-out and ids


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 1.0])
def test_holdout_share_is_about_right_and_stable(share: float) -> None:
    ids = [f"C-{i}" for i in range(10_000)]
    held = {c for c in ids if Policy(holdout_share=share).in_holdout(c)}
    assert abs(len(held) / len(ids) - share) <= 0.01
    assert held == {c for c in ids if Policy(holdout_share=share).in_holdout(c)}
    assert held <= {c for c in ids if Policy(holdout_share=min(1.0, share + 0.1)).in_holdout(c)}
    salted = {c for c in ids if Policy(holdout_share=share, holdout_salt="2").in_holdout(c)}
    assert abs(len(salted) / len(ids) - share) <= 0.01
    assert salted != held or share in {0.0, 1.0}


def test_holdout_is_a_known_hash_of_salt_and_customer() -> None:
    policy = Policy(holdout_share=0.5)
    for customer in ("C-1", "C-2", "C-3", "ünïcode"):
        digest = hashlib.sha256(f"shopkeeper-holdout-1:{customer}".encode()).digest()
        assert policy.in_holdout(customer) == (int.from_bytes(digest[:8], "big") < 2**63)


def test_offer_id_is_deterministic() -> None:
    expected = "of-" + hashlib.sha256(b"C-1|cart_abandonment|cart-1").hexdigest()[:24]
    assert offer_id("C-1", CART, "cart-1") == expected
    book, policy = ContactBook(), Policy(holdout_share=0.0)
    fired = book.decide(_candidate(), CONSENTED, policy)
    repeated = book.decide(_candidate(NOON + DAY), CONSENTED, policy)
    assert (fired.fired, repeated.fired) == (True, False)
    assert fired.offer_id == repeated.offer_id == expected
    assert offer_id("C-1", CART, "cart-2") != expected
    assert offer_id("C-2", CART, "cart-1") != expected


# ------------------------------------------------------------------ out of order, memory


def test_out_of_order_candidates_count_fires_on_both_sides() -> None:
    book, policy = ContactBook(), Policy(holdout_share=0.0, quiet_hours=(0, 0), daily_cap=1)
    assert book.decide(_candidate(NOON, CART, "A"), CONSENTED, policy).fired
    early = _candidate(NOON - 2 * HOUR, "win_back", "W")
    assert book.decide(early, CONSENTED, policy).reason == "frequency_cap"
    assert book.decide(_candidate(NOON - 1800, CART, "B"), CONSENTED, policy).reason == "cooldown"
    assert book.decide(dataclasses.replace(early, at=NOON - DAY), CONSENTED, policy).fired
    assert book.fired_at() == [(NOON - DAY, "win_back"), (NOON, CART)]


def test_out_of_order_candidates_see_later_fires_in_the_weekly_caps() -> None:
    book, policy = ContactBook(), Policy(holdout_share=0.0, quiet_hours=(0, 0), weekly_cap=1)
    assert book.decide(_candidate(NOON, CART, "A"), CONSENTED, policy).fired
    early = _candidate(NOON - 3 * DAY, "win_back", "W")
    assert book.decide(early, CONSENTED, policy).reason == "frequency_cap"
    assert book.decide(dataclasses.replace(early, at=NOON - WEEK), CONSENTED, policy).fired


def test_fires_are_forgotten_7_days_behind_the_latest_time() -> None:
    book = ContactBook()
    _history(book, (NOON, CART, "A"), (NOON + DAY, CART, "B"), (NOON + WEEK, "win_back", "W"))
    assert book.fired_at() == [(NOON + DAY, CART), (NOON + WEEK, "win_back")]
    _history(book, (NOON + 9 * DAY, CART, "C"))
    assert book.fired_at() == [(NOON + WEEK, "win_back"), (NOON + 9 * DAY, CART)]


def test_rejects_a_non_finite_time_and_changes_nothing() -> None:
    book = ContactBook()
    with pytest.raises(ValueError, match="not finite"):
        book.decide(_candidate(float("nan")), CONSENTED, LAX)
    assert book.fired_at() == []
    assert book.decide(_candidate(), CONSENTED, LAX).fired


@pytest.mark.parametrize(
    "changes",
    [
        {"daily_cap": -1},
        {"trigger_weekly_cap": -1},
        {"default_cooldown_s": -1.0},
        {"cooldown_s": {CART: WEEK + 1}},
        {"cooldown_s": {CART: float("nan")}},
        {"quiet_hours": (21, 24)},
        {"holdout_share": 1.5},
        {"holdout_share": float("nan")},
        {"default_timezone": "Mars/Olympus"},
    ],
)
def test_rejects_invalid_policies(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|zone"):
        Policy(**changes)


def test_the_policy_keeps_its_own_copies_of_mappings() -> None:
    cooldowns = {CART: 60.0}
    policy = Policy(cooldown_s=cooldowns)
    cooldowns[CART] = 2 * DAY
    assert policy.cooldown_s == {CART: 60.0}
    assert hash(policy) == hash(Policy(cooldown_s={CART: 60.0}))


# ------------------------------------------------------------------ pickling and determinism

POLICY = Policy(
    daily_cap=2,
    weekly_cap=4,
    trigger_daily_cap=1,
    trigger_weekly_cap=2,
    cooldown_s={CART: 2 * HOUR},
    holdout_share=0.2,
)


def _random_stream(seed: int, n: int) -> Stream:
    rng = random.Random(seed)
    stream: Stream = []
    for _ in range(n):
        candidate = _candidate(
            NOON + rng.uniform(-DAY, 9 * DAY),
            rng.choice(TRIGGERS),
            rng.choice(["a", "b", "c"]),
            customer_id=rng.choice(["C-1", "C-2", "C-3"]),
            channel=rng.choice(["push", "email", "sms"]),
            promotional=rng.random() < 0.8,
        )
        context = Context(
            consent={"marketing_push": rng.random() < 0.8, "marketing_email": True},
            timezone=rng.choice([None, "UTC", "America/New_York"]),
            open_tickets=int(rng.random() < 0.1),
        )
        stream.append((candidate, context))
    return stream


def _decide_all(book: ContactBook, stream: Stream, policy: Policy = POLICY) -> list[Decision]:
    return [book.decide(candidate, context, policy) for candidate, context in stream]


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickles_mid_stream_and_decides_the_same_afterwards(protocol: int) -> None:
    stream = _random_stream(seed=7, n=200)
    book = ContactBook()
    decisions = _decide_all(book, stream[:100])
    assert any(d.fired for d in decisions)
    assert {d.reason for d in decisions if not d.fired} >= {"already_fired", "cooldown"}
    restored = _snapshot(book, protocol)
    assert restored.fired_at() == book.fired_at()
    assert _decide_all(restored, stream[100:]) == _decide_all(book, stream[100:])
    assert restored.fired_at() == book.fired_at()


@st.composite
def _streams(draw: st.DrawFn, *, span: float, zones: bool = True) -> Stream:
    """Candidates of one customer in any order within ``span`` seconds; one time zone
    unless ``zones``."""
    zone = draw(st.sampled_from([None, "UTC", "America/New_York", "Asia/Kolkata"]))
    stream: Stream = []
    for _ in range(draw(st.integers(0, 30))):
        candidate = _candidate(
            NOON + draw(st.floats(0.0, span)),
            draw(st.sampled_from(TRIGGERS)),
            draw(st.sampled_from(["a", "b", "c"])),
            channel=draw(st.sampled_from(["push", "email", "fax"])),
            promotional=draw(st.booleans()),
        )
        context = Context(
            consent={"marketing_push": draw(st.booleans()), "marketing_email": True},
            timezone=draw(st.sampled_from([None, "UTC", "Europe/Paris"])) if zones else zone,
            open_tickets=draw(st.integers(0, 1)),
        )
        stream.append((candidate, context))
    return stream


@given(stream=_streams(span=20 * DAY), split=st.integers(0, 30))
def test_the_same_sequence_gives_the_same_decisions_in_a_fresh_book(
    stream: Stream, split: int
) -> None:
    expected = _decide_all(ContactBook(), stream)
    assert _decide_all(ContactBook(), stream) == expected
    book = ContactBook()
    before = _decide_all(book, stream[:split])
    assert before + _decide_all(_snapshot(book), stream[split:]) == expected


@given(stream=_streams(span=WEEK - 1, zones=False))
def test_caps_and_cooldowns_hold_whatever_the_arrival_order(stream: Stream) -> None:
    book, policy = ContactBook(), dataclasses.replace(POLICY, holdout_share=0.0)
    fired = [d.candidate for d in _decide_all(book, stream, policy) if d.fired]
    assert book.fired_at() == sorted((c.at, c.trigger) for c in fired)
    assert len(fired) <= POLICY.weekly_cap  # every fire lies within one 7-day span
    zone = zoneinfo.ZoneInfo((stream[0][1].timezone if stream else None) or "UTC")
    days = collections.Counter(dt.datetime.fromtimestamp(c.at, zone).date() for c in fired)
    trigger_days = collections.Counter(
        (c.trigger, dt.datetime.fromtimestamp(c.at, zone).date()) for c in fired
    )
    assert max(days.values(), default=0) <= POLICY.daily_cap
    assert max(trigger_days.values(), default=0) <= POLICY.trigger_daily_cap
    for trigger in TRIGGERS:
        times = sorted(c.at for c in fired if c.trigger == trigger)
        assert len(times) <= POLICY.trigger_weekly_cap
        cooldown = POLICY.cooldown_s.get(trigger, POLICY.default_cooldown_s)
        assert all(b - a >= cooldown for a, b in itertools.pairwise(times))


def test_fires_are_remembered_longer_when_candidates_come_out_of_order() -> None:
    # A stream's timers decide a lateness after its events: a candidate may come after
    # one 8 days later and must still see the fire of its own day.
    for disorder, expected in ((0.0, "cart_idle_30m"), (2 * DAY, "trigger_cap")):
        policy = Policy(holdout_share=0.0, quiet_hours=(0, 0), disorder_s=disorder)
        book = ContactBook()
        assert book.decide(_candidate(NOON), CONSENTED, policy).fired
        book.decide(_candidate(NOON + 8 * DAY, "post_purchase", "o-1"), CONSENTED, policy)
        late = book.decide(_candidate(NOON + 5 * HOUR, state_key="cart-2"), CONSENTED, policy)
        assert late.reason == expected
