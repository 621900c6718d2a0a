"""Decide whether a real-time offer fires: the guardrails, one ``ContactBook`` per customer.

Pure: no clock, no I/O beyond reading the time-zone database; times are event times in
epoch seconds. A flow keeps one ``ContactBook`` per customer in its state and asks it to
``decide`` each ``Candidate`` with the customer's ``Context`` (consent, time zone, open
tickets) and the ``Policy``. Every candidate gets a ``Decision``: fired, or suppressed
with the first reason that applies, checked in this order:

1. ``already_fired``: the trigger last fired (or was held out) with this ``state_key``:
   once per state. Only a fire or a hold-out consumes the state; a suppression for any
   other reason does not, so the same state may fire when it is evaluated again later.
2. ``no_consent``: the channel's marketing-consent flag (``Policy.consent_flags``) is not
   True (or, with ``require_explicit_consent=False``, is False). A channel with no flag
   never has consent. Service messages (``promotional=False``) skip this check.
3. ``open_ticket``: the customer has an open support ticket (promotions only).
4. ``quiet_hours``: the candidate's local hour lies in ``[start, end)`` of the quiet
   hours, which may wrap midnight (promotions only). The local time zone is the
   customer's, or ``Policy.default_timezone`` when unknown or invalid.
5. ``cooldown``: the same trigger fired less than its cool-down away.
6. ``trigger_cap``: the trigger's fires on the candidate's local calendar day, or within
   7 days of it, reach the trigger's daily or weekly cap.
7. ``frequency_cap``: the same, over all triggers.
8. ``holdout``: the customer is in the control group (deterministic by customer id).

The hold-out comes last, so the control group holds exactly the offers that would have
fired: treated minus control conversion is then the offers' uplift, with no guardrail
biasing one arm. A hold-out is a fire that was not sent: it consumes the state, the
cool-down and the caps as a fire does, so both arms meet the same later guardrails.

Order: candidates may arrive out of event-time order. Cool-downs and caps count the
recorded fires on either side of the candidate's time, so whatever the arrival order no
two fires of a trigger are closer than its cool-down, no local day holds more fires than
a daily cap and no 7-day span more than a weekly cap (within the memory below). Local
days are computed in the time zone of the current ``Context``. The same candidates and
contexts in the same order give the same decisions in any process.

Memory: a fire is remembered while it is less than 7 days behind the latest candidate
time seen (so cool-downs are at most 7 days), and the last fired or held-out state key per
trigger. A late candidate is checked against the fires still remembered, so the
guarantees above hold for candidates less than 7 days apart, in any order; a candidate
later than that may miss fires already forgotten.

Example:
    >>> t = 1_741_780_800.0  # 2025-03-12 12:00 UTC
    >>> book, policy = ContactBook(), Policy(holdout_share=0.0)
    >>> context = Context(consent={"marketing_push": True}, timezone="Europe/Paris")
    >>> cart = Candidate("C-1", "cart_abandonment", t, "cart-9f2c", "cart_idle_30m", {})
    >>> first = book.decide(cart, context, policy)
    >>> first.fired, first.reason, first.offer_id
    (True, 'cart_idle_30m', 'of-680bf9b04bab51fd11a43446')
    >>> book.decide(cart, context, policy).reason  # the same cart again
    'already_fired'
    >>> evening = dataclasses.replace(cart, at=t + 9 * 3600, state_key="cart-77aa")
    >>> book.decide(evening, context, policy).reason  # 22:00 in Paris
    'quiet_hours'
    >>> book.fired_at()
    [(1741780800.0, 'cart_abandonment')]
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
import hashlib
import math
import zoneinfo
from collections.abc import Mapping
from typing import Final, Literal, get_args

__all__ = [
    "SUPPRESSION_REASONS",
    "WEEK",
    "Candidate",
    "ContactBook",
    "Context",
    "Decision",
    "Policy",
    "SuppressionReason",
    "TriggerName",
    "near_tier_state",
    "offer_id",
]

TriggerName = str
SuppressionReason = Literal[
    "already_fired",
    "no_consent",
    "open_ticket",
    "quiet_hours",
    "cooldown",
    "trigger_cap",
    "frequency_cap",
    "holdout",
]
SUPPRESSION_REASONS: Final[tuple[SuppressionReason, ...]] = get_args(SuppressionReason)
"""Every suppression reason, in the order they are checked (a bounded metric label)."""

WEEK: Final = 7 * 86_400.0
"""The rolling window of the weekly caps, and how long fire times are remembered."""


def offer_id(customer_id: str, trigger: TriggerName, state_key: str) -> str:
    """Return the deterministic id of an offer: one per customer, trigger and state."""
    digest = hashlib.sha256(f"{customer_id}|{trigger}|{state_key}".encode()).hexdigest()
    return "of-" + digest[:24]


def near_tier_state(tier: str, year: int, tier_since: str) -> str:
    """The state of a near-tier nudge towards ``tier``: one per (UTC) ``year`` and spell
    in the current tier (``tier_since``: when it began, as the profile's
    ``loyalty_tier_changed_at`` has it; "": the customer's tier never changed), so a
    customer who falls back near a tier they had left is nudged again."""
    return f"{tier}:{year}:{tier_since}"


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """A trigger became due for a customer at event time ``at`` (epoch seconds).

    ``state_key`` names the state it fired for (say a hash of the cart contents), ``reason``
    is a reason code and ``features`` the feature values behind it, for the audit trail.
    Service messages (service recovery) are not promotional.
    """

    customer_id: str
    trigger: TriggerName
    at: float
    state_key: str
    reason: str
    features: dict[str, str]
    channel: str = "push"
    promotional: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """The customer's guardrail context at the candidate's time.

    ``consent`` holds the profile's consent flags (``{"marketing_push": True}``; absent means
    unknown), ``timezone`` its IANA time zone (None when unknown).
    """

    consent: Mapping[str, bool]
    timezone: str | None
    open_tickets: int = 0


def _default_consent_flags() -> dict[str, str]:
    return {
        "push": "marketing_push",
        "email": "marketing_email",
        "sms": "marketing_sms",
        "in_app": "marketing_push",
    }


@dataclasses.dataclass(frozen=True)
class Policy:
    """The guardrails' settings.

    Attributes:
        daily_cap: Fires per customer per local calendar day, all triggers.
        weekly_cap: Fires per customer per rolling 7 days, all triggers.
        trigger_daily_cap: Fires per trigger per local calendar day.
        trigger_weekly_cap: Fires per trigger per rolling 7 days.
        cooldown_s: Minimum seconds between two fires of a trigger, by trigger.
        default_cooldown_s: The cool-down of a trigger not in ``cooldown_s``.
        quiet_hours: Local ``[start, end)`` hours when nothing promotional fires; it wraps
            midnight when ``start > end``; equal hours mean none.
        holdout_share: Share of customers in the control group.
        holdout_salt: Salt of the control-group hash; a new salt draws a new group.
        consent_flags: The consent flag each channel needs.
        require_explicit_consent: Fire only when the flag is True; if False, unless it is
            False.
        default_timezone: The time zone of customers whose own is unknown or invalid.
        disorder_s: How far out of event-time order candidates may come (a stream's
            allowed lateness plus its longest timer): fires are remembered a week plus
            this, so a late candidate still sees every fire near it.

    Raises:
        ValueError: a cap is negative, a cool-down is negative or longer than 7 days, an
            hour is outside 0-23, the share is outside [0, 1] or the default time zone is
            not an IANA name.

    Example:
        >>> half = Policy(holdout_share=0.5)
        >>> [half.in_holdout(customer) for customer in ("C-1", "C-2", "C-3")]
        [True, True, False]
    """

    daily_cap: int = 2
    weekly_cap: int = 5
    trigger_daily_cap: int = 1
    trigger_weekly_cap: int = 3
    cooldown_s: Mapping[str, float] = dataclasses.field(default_factory=dict, hash=False)
    default_cooldown_s: float = 3600.0
    quiet_hours: tuple[int, int] = (21, 8)
    holdout_share: float = 0.1
    holdout_salt: str = "shopkeeper-holdout-1"
    consent_flags: Mapping[str, str] = dataclasses.field(
        default_factory=_default_consent_flags, hash=False
    )
    require_explicit_consent: bool = True
    default_timezone: str = "UTC"
    disorder_s: float = 0.0

    def __post_init__(self) -> None:
        caps = (self.daily_cap, self.weekly_cap, self.trigger_daily_cap, self.trigger_weekly_cap)
        if any(cap < 0 for cap in caps):
            raise ValueError(f"caps must be >= 0, got {caps!r}")
        # Private copies: a caller's dict changed later cannot change the policy.
        object.__setattr__(self, "cooldown_s", dict(self.cooldown_s))
        object.__setattr__(self, "consent_flags", dict(self.consent_flags))
        for seconds in (self.default_cooldown_s, *self.cooldown_s.values()):
            if not 0.0 <= seconds <= WEEK:
                raise ValueError(f"cool-downs must be within [0, 7 days], got {seconds!r}")
        start, end = self.quiet_hours
        if not (0 <= start <= 23 and 0 <= end <= 23):
            raise ValueError(f"quiet hours must be within 0-23, got {self.quiet_hours!r}")
        if not 0.0 <= self.holdout_share <= 1.0:
            raise ValueError(f"holdout_share must be within [0, 1], got {self.holdout_share!r}")
        if _zone(self.default_timezone) is None:
            raise ValueError(f"default_timezone {self.default_timezone!r} is not an IANA zone")

    def in_holdout(self, customer_id: str) -> bool:
        """Whether the customer is in the control group: a hash of salt and id below the share."""
        digest = hashlib.sha256(f"{self.holdout_salt}:{customer_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.holdout_share

    def _consents(self, context: Context, channel: str) -> bool:
        flag = self.consent_flags.get(channel)
        if flag is None:
            return False
        value = context.consent.get(flag)
        return value is True if self.require_explicit_consent else value is not False

    def _quiet(self, hour: int) -> bool:
        start, end = self.quiet_hours
        if start <= end:
            return start <= hour < end
        return hour >= start or hour < end

    def _zone(self, context: Context) -> zoneinfo.ZoneInfo:
        zone = _zone(context.timezone) if context.timezone else None
        return zone or zoneinfo.ZoneInfo(self.default_timezone)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What became of a candidate.

    ``offer_id`` is deterministic (see ``offer_id``), the same whether the offer fired or
    not. ``reason`` is the candidate's reason code when it fired, else the
    ``SuppressionReason``.
    """

    offer_id: str
    candidate: Candidate
    fired: bool
    reason: str


class ContactBook:
    """One customer's contact history: what fired (or was held out) per trigger and state,
    and the recent fires. The module docstring gives the rules and their order.

    Picklable and small: fires of the last 7 days, one state key per trigger.

    Example:
        >>> book, policy = ContactBook(), Policy(holdout_share=1.0, quiet_hours=(0, 0))
        >>> context = Context(consent={"marketing_email": True}, timezone=None)
        >>> welcome = Candidate("C-2", "welcome", 0.0, "v1", "signed_up", {}, channel="email")
        >>> book.decide(welcome, context, policy).reason
        'holdout'
        >>> book.decide(welcome, context, policy).reason, book.fired_at()
        ('already_fired', [(0.0, 'welcome')])
    """

    __slots__ = ("_clock", "_fires", "_states")

    def __init__(self) -> None:
        self._clock = -math.inf  # the latest candidate time seen
        self._fires: list[tuple[float, TriggerName]] = []  # sorted, for determinism
        self._states: dict[TriggerName, str] = {}

    def states(self) -> dict[TriggerName, str]:
        """Return the state each trigger last fired (or was held out) for."""
        return dict(self._states)

    def fired_at(self) -> list[tuple[float, TriggerName]]:
        """Return the remembered fires and hold-outs as ``(time, trigger)``, oldest first."""
        return list(self._fires)

    def decide(self, candidate: Candidate, context: Context, policy: Policy) -> Decision:
        """Decide on a candidate and record what it consumed.

        Raises:
            ValueError: the candidate's time is not finite (nothing changes then).
        """
        at = candidate.at
        if not math.isfinite(at):
            raise ValueError(f"candidate time {at!r} is not finite")
        suppressed = self._suppression(candidate, context, policy)
        consumed = suppressed is None or suppressed == "holdout"
        self._note(at, policy, (candidate.trigger, candidate.state_key) if consumed else None)
        return Decision(
            offer_id=offer_id(candidate.customer_id, candidate.trigger, candidate.state_key),
            candidate=candidate,
            fired=suppressed is None,
            reason=candidate.reason if suppressed is None else suppressed,
        )

    def record(self, at: float, trigger: TriggerName, state_key: str, policy: Policy) -> bool:
        """Record an offer made outside ``decide`` (the next best offer): it consumes its
        state, cool-down and caps as a fire does. Return whether it was new (the same
        offer recorded again changes nothing).

        Raises:
            ValueError: ``at`` is not finite.
        """
        if not math.isfinite(at):
            raise ValueError(f"offer time {at!r} is not finite")
        if self._states.get(trigger) == state_key and (at, trigger) in self._fires:
            return False
        self._note(at, policy, (trigger, state_key))
        return True

    def _note(self, at: float, policy: Policy, fire: tuple[TriggerName, str] | None) -> None:
        """Move the clock to ``at``; a ``(trigger, state)`` that fired (or was held out)
        consumes its state and joins the fires; fires beyond the memory are forgotten."""
        if fire is not None:
            trigger, state_key = fire
            self._states[trigger] = state_key
            bisect.insort(self._fires, (at, trigger))
        self._clock = max(self._clock, at)
        horizon = self._clock - WEEK - policy.disorder_s
        self._fires = [f for f in self._fires if f[0] > horizon]

    def _suppression(
        self, c: Candidate, context: Context, policy: Policy
    ) -> SuppressionReason | None:
        zone = policy._zone(context)
        local = dt.datetime.fromtimestamp(c.at, zone)
        return (
            self._gate(c, context, policy, local.hour)
            or self._limit(c, policy, zone, local.date())
            or ("holdout" if policy.in_holdout(c.customer_id) else None)
        )

    def _gate(
        self, c: Candidate, context: Context, policy: Policy, hour: int
    ) -> SuppressionReason | None:
        """Rules 1-4: may this customer get this offer now at all?"""
        if self._states.get(c.trigger) == c.state_key:
            return "already_fired"
        if c.promotional and not policy._consents(context, c.channel):
            return "no_consent"
        if c.promotional and context.open_tickets > 0:
            return "open_ticket"
        if c.promotional and policy._quiet(hour):
            return "quiet_hours"
        return None

    def _limit(
        self, c: Candidate, policy: Policy, zone: zoneinfo.ZoneInfo, today: dt.date
    ) -> SuppressionReason | None:
        """Rules 5-7: the cool-down and caps, counted over the remembered fires (hold-outs
        included)."""
        cooldown = policy.cooldown_s.get(c.trigger, policy.default_cooldown_s)
        if any(abs(t - c.at) < cooldown for t, trigger in self._fires if trigger == c.trigger):
            return "cooldown"
        day = [trigger for t, trigger in self._fires if _date(t, zone) == today]
        week = [trigger for t, trigger in self._fires if abs(t - c.at) < WEEK]
        if (
            day.count(c.trigger) >= policy.trigger_daily_cap
            or week.count(c.trigger) >= policy.trigger_weekly_cap
        ):
            return "trigger_cap"
        if len(day) >= policy.daily_cap or len(week) >= policy.weekly_cap:
            return "frequency_cap"
        return None


def _date(t: float, zone: zoneinfo.ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(t, zone).date()
