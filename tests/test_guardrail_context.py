"""The guardrails read consent, time zone and tickets as of a trigger's time, whatever
the profile folded since: a live run decides before later events, a replay after."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.profile import CustomerProfile, guardrail_context
from tests.flowkit import event

T0 = dt.datetime(2025, 5, 6, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _consent(at: dt.datetime, push: bool) -> object:
    return event("Customer Updated", at, customer="c-1", consent={"marketing_push": push})


def _profile(*updates: object) -> CustomerProfile:
    profile = CustomerProfile()
    for update in updates:
        assert profile.apply(update)  # type: ignore[arg-type]
    return profile


def _push(profile: CustomerProfile, at: dt.datetime) -> bool | None:
    return guardrail_context(profile, at.timestamp()).consent.get("marketing_push")


def test_a_value_seen_again_unchanged_still_holds_since_it_was_first_seen() -> None:
    # Consent given, then the same consent again later: a trigger between the two had it.
    profile = _profile(_consent(T0, True), _consent(T0 + 10 * HOUR, True))
    assert _push(profile, T0 - HOUR) is None
    assert _push(profile, T0 + HOUR) is True
    assert _push(profile, T0 + 11 * HOUR) is True


def test_a_change_is_read_on_either_side_of_it() -> None:
    profile = _profile(
        _consent(T0, True), _consent(T0 + 2 * HOUR, True), _consent(T0 + 5 * HOUR, False)
    )
    assert _push(profile, T0 + HOUR) is True  # held since T0, through the repeat
    assert _push(profile, T0 + 3 * HOUR) is True
    assert _push(profile, T0 + 6 * HOUR) is False


@pytest.mark.parametrize("late", [True, False])
def test_a_late_observation_lands_in_its_place(late: bool) -> None:
    # The same value seen late moves its start earlier; a different one is logged.
    profile = _profile(_consent(T0, True), _consent(T0 - 3 * HOUR, late))
    assert _push(profile, T0 - 4 * HOUR) is None
    assert _push(profile, T0 - 2 * HOUR) is late
    assert _push(profile, T0 + HOUR) is True


def test_the_history_survives_a_snapshot() -> None:
    import pickle

    profile = _profile(_consent(T0, True), _consent(T0 + 10 * HOUR, True))
    restored = pickle.loads(pickle.dumps(profile))  # noqa: S301 - our own
    assert _push(restored, T0 + HOUR) is True
