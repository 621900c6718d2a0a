"""The stateful steps: one ``CustomerProfile`` per customer, one ``ItemState`` per product."""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

import msgspec
from bytewax.operators import StatefulBatchLogic

import events
from feature_store import PopularityCount, PopularityKind, PopularityResolution
from flows._accepted import Accepted
from flows._clock import OFFER_TIMERS, Progress, Tick
from flows._decode import Clocked, Keyed, Rejected
from flows.metrics import FlowMetrics
from flows.profile import (
    TRIGGERS,
    CustomerProfile,
    ItemState,
    Seed,
    Signal,
    SignalKind,
    TriggerRules,
    back_in_stock,
    browse_abandonment,
    cart_abandonment,
    churn_features,
    churn_risk,
    event_triggers,
    guardrail_context,
    item_signals,
    offer_seed,
    price_drop,
    replenishment,
    tier_expiry,
    winback,
)
from flows.profile._features import OFFERS
from flows.profile._format import iso
from flows.settings import FlowSettings
from models.clv import CLVParams
from models.offers import Candidate, Decision, Policy

__all__ = ["CustomerLogic", "ItemLogic", "ItemOut", "Learn", "ProfileOut", "ScoreRequest"]

MODEL_KEY: Final = "churn-model"
"""The one key of the churn model step (see ``flows._model``)."""

Message = tuple[str, "Learn | ScoreRequest"]
"""A customer and what the churn model should do for them."""

Touched = tuple[SignalKind, int, int, str | None]
"""A popularity signal's kind, hour bucket, day bucket and category."""

_HOUR = 3_600
_DAY = 86_400
_NAMES: Final[dict[type, str]] = {t: t.__struct_config__.tag for t in events.EVENT_TYPES}  # type: ignore[misc]
_SIGNALLING: Final = frozenset({events.ProductViewed, events.OrderCompleted})
"""The event types ``item_signals`` turns into popularity signals."""


class Learn(msgspec.Struct, frozen=True, gc=False):
    """A labelled churn example for the model (made at ``made_at``, labelled at
    ``resolved_at``)."""

    features: dict[str, float]
    churned: bool
    made_at: float
    resolved_at: float


class ScoreRequest(msgspec.Struct, frozen=True, gc=False):
    """Score a customer's churn as of event time ``at``; ``example``: the moment is a
    training example, whose prediction the model keeps for its prequential health."""

    at: float
    features: dict[str, float]
    example: bool = False


_TRIGGERING: Final = frozenset(
    {events.OrderCompleted, events.NPSSurveyResponded, events.SatisfactionRated}
)  # the events that may raise an offer trigger as they are folded


class ProfileOut(msgspec.Struct, frozen=True, gc=False):
    """A customer's features after one batch of their events (key: the customer)."""

    fields: dict[str, str] | None  # the groups changed since the last one; None: erased
    seq: int
    event_times: list[float]
    signals: list[Signal]
    learned: list[Learn] = []
    score: ScoreRequest | None = None
    examples: list[ScoreRequest] = []
    tier_changes: list[tuple[str, str, str, float]] = []  # (old, new, direction, time)
    decisions: list[Decision] = []  # offers fired or suppressed at this batch's ticks
    seeds: list[Seed] = []  # what the fired ones' content is made from


class ItemOut(msgspec.Struct, frozen=True, gc=False):
    """A product's features after one batch, and its changed popularity buckets."""

    fields: dict[str, str]
    seq: int
    popularity: list[PopularityCount]
    event_times: list[float]


State = TypeVar("State", CustomerProfile, ItemState)


class CustomerLogic(StatefulBatchLogic[list[Accepted] | Tick, ProfileOut, bytes | CustomerProfile]):
    """Fold a batch of one customer's events into their profile; emit one update.

    With recovery the snapshot is the pickled profile: immutable, as Bytewax requires,
    one copy per touched customer per epoch. Without recovery Bytewax still asks for
    snapshots at every epoch but never reads them, so the profile is handed over as it
    is: copying thousands of profiles at each epoch's end stalled the flow.
    """

    def __init__(
        self,
        profile: CustomerProfile,
        metrics: FlowMetrics,
        *,
        copy: bool,
        score: bool,
        clv: CLVParams | None = None,
        policy: Policy | None = None,
        rules: TriggerRules | None = None,
    ) -> None:
        self._profile = profile
        self._metrics = metrics
        self._copy = copy
        self._score = score
        self._clv = clv
        self._policy = policy  # None: triggers off
        self._rules = rules or TriggerRules()
        self._seeds: list[Seed] = []  # of the offers fired in this batch

    @classmethod
    def builder(
        cls, settings: FlowSettings, metrics: FlowMetrics
    ) -> Callable[[bytes | CustomerProfile | None], CustomerLogic]:
        """The ``stateful_batch`` builder: a new profile, or one restored from a snapshot."""
        clv = settings.clv()

        policy = settings.offer_policy() if settings.intelligence and settings.offers else None
        rules = settings.trigger_rules()

        def build(resume: bytes | CustomerProfile | None) -> CustomerLogic:
            if resume is None:
                profile = CustomerProfile(
                    lateness=settings.allowed_lateness,
                    dedupe_horizon=settings.dedupe_horizon,
                    churn_horizon_days=settings.churn_horizon_days,
                    loyalty=settings.loyalty_policy(),
                )
            else:
                profile = _restore(resume)
            return cls(
                profile,
                metrics,
                copy=settings.recovery,
                score=settings.intelligence,
                clv=clv,
                policy=policy,
                rules=rules,
            )

        return build

    def on_batch(self, values: list[list[Accepted] | Tick]) -> tuple[Iterable[ProfileOut], bool]:
        profile = self._profile
        self._seeds = []
        times, signals, ticks, decisions = self._fold_and_trigger(values)
        # Events first, then the clock's other ticks: they read the profile as of their
        # own time, and labels depend on event times only (see ChurnTracker).
        changed = False
        for tick in ticks:
            if tick.kind == "loyalty":
                changed |= profile.loyalty_tick(tick.at)
            elif tick.kind == "churn":
                changed |= profile.churn_tick(tick.at, tick.window)
        tier_changes = [(c.old, c.new, str(c.direction), c.t) for c in profile.take_tier_changes()]
        for change in tier_changes:
            self._metrics.tier_changes.labels(change[2]).inc()
        if self._clv is not None and any(tick.kind == "churn" for tick in ticks):
            at = max(tick.at for tick in ticks if tick.kind == "churn")
            changed |= _score_clv(profile, self._clv, at)
        if not (times or ticks or decisions):
            return ((), StatefulBatchLogic.RETAIN)
        if profile.erased:
            if not (times or decisions):
                return ((), StatefulBatchLogic.RETAIN)
            # The signals of events before the deletion still count: popularity is an
            # anonymous aggregate, and dropping them would depend on batch boundaries. So
            # do offer decisions made before it (a live run made them before it came).
            out = ProfileOut(
                None, profile.seq, times, signals, decisions=decisions, seeds=self._seeds
            )
            return ([out], StatefulBatchLogic.RETAIN)
        learned = [
            Learn(dict(r.example.features), r.churned, r.example.at, r.resolved_at)
            for r in profile.take_learned()
        ]
        made = [ScoreRequest(e.at, dict(e.features), example=True) for e in profile.take_made()]
        score = None
        timed = [k.at for k in ticks if k.kind not in OFFER_TIMERS]  # these change no score
        if self._score and profile.has_purchased and (times or timed):
            # One score per customer per batch, as of the latest event or tick: scores in
            # between would be overwritten before anyone read them.
            at = max(max(times, default=-math.inf), max(timed, default=-math.inf))
            score = ScoreRequest(at, churn_features(profile, at))
        if not (times or changed or learned or made or decisions) and score is None:
            return ((), StatefulBatchLogic.RETAIN)
        out = ProfileOut(
            profile.changed_features(), profile.seq, times, signals, learned, score, made,
            tier_changes, decisions, self._seeds,
        )  # fmt: skip
        return ([out], StatefulBatchLogic.RETAIN)

    def _offer(self, candidate: Candidate | None) -> list[Decision]:
        """Put a trigger's candidate through the guardrails; count the decision."""
        if candidate is None or self._policy is None:
            return []
        if candidate.trigger not in self._rules.enabled:
            return []
        profile = self._profile
        context = guardrail_context(profile, candidate.at)
        book = profile.offers
        before = (book.fired_at(), book.states())
        decision = book.decide(candidate, context, self._policy)
        if (book.fired_at(), book.states()) != before:
            profile._touch(OFFERS, candidate.at)  # the contact history moved (or aged)
        if decision.fired:
            self._seeds.append(offer_seed(profile, candidate, decision.offer_id))
        self._metrics.offer_decisions.labels(
            candidate.trigger, "fired" if decision.fired else "suppressed", decision.reason
        ).inc()
        return [decision]

    def _sent(self, event: events.OfferSent, t: float) -> None:
        """An offer made outside the flow (the next best offer) joins the contact book:
        it counts toward the caps, cool-downs and once-per-state of later decisions."""
        assert self._policy is not None  # noqa: S101 - offers are on
        props = event.properties
        if self._profile.offers.record(t, props.trigger, props.state, self._policy):
            self._profile._touch(OFFERS, t)
            known = props.trigger in _RECORDED_TRIGGERS
            self._metrics.offers_recorded.labels(props.trigger if known else "other").inc()

    def _ask(self, candidate: Candidate) -> list[Decision]:
        """Hold an event's offer for its ``decide`` tick; decide it at once if that tick
        has passed (it overtook the event)."""
        profile = self._profile
        if candidate.at <= profile._decided:
            return self._offer(candidate)
        if profile._asked is None:
            profile._asked = []
        profile._asked.append(candidate)
        return []

    def _fold_and_trigger(
        self, values: list[list[Accepted] | Tick]
    ) -> tuple[list[float], list[Signal], list[Tick], list[Decision]]:
        """Fold the batch's events and decide its offer triggers; return the events' times
        and signals, the ticks, and the decisions.

        A trigger decides on the profile as of its own time, so the batch's events after
        it are folded after it: a replay that reads days of events in one batch decides
        as the live run did.
        """
        rules = self._rules
        self._profile._cart.track(self._policy is not None and "cart_abandonment" in rules.enabled)
        pending: list[Accepted] = []
        ticks: list[Tick] = []
        for value in values:
            if type(value) is Tick:
                ticks.append(value)
            else:
                pending += value  # type: ignore[arg-type]
        times: list[float] = []
        signals: list[Signal] = []
        decisions: list[Decision] = []
        profile = self._profile
        due = sorted(
            (k for k in ticks if k.kind in OFFER_TIMERS), key=lambda k: (k.at, k.window, k.kind)
        )
        if not due:
            self._fold(pending, times, signals, decisions)
            return times, signals, ticks, decisions
        for tick in due:
            at = tick.at
            ready = [a for a in pending if _event_time(a) <= at]  # in arrival order
            if ready:
                pending = [a for a in pending if _event_time(a) > at]
                self._fold(ready, times, signals, decisions)
            if any(
                type(a.event) is events.DeletionRequested and _event_time(a) <= at + rules.lateness
                for a in pending
            ):
                # A live run, ticking a trigger lateness after ``at``, has the deletion by
                # then: no decision for someone who asked to be forgotten, in a replay either.
                profile._asked = None
                continue
            timer = None if tick.kind == "decide" else self._timer(tick)
            decisions += self._decide_until(at, timer)
        self._fold(pending, times, signals, decisions)
        return times, signals, ticks, decisions

    def _decide_until(self, at: float, timer: Candidate | None) -> list[Decision]:
        """Decide the offers raised up to ``at`` and a timer's, in event-time order."""
        profile = self._profile
        profile._decided = max(profile._decided, at)
        asked = profile._asked
        if not asked:
            return self._offer(timer)
        now = [c for c in asked if c.at <= at]
        if not now:
            return self._offer(timer)
        profile._asked = [c for c in asked if c.at > at] or None
        if timer is not None:
            now.append(timer)
        now.sort(key=lambda c: (c.at, c.trigger, c.state_key))
        return [decision for c in now for decision in self._offer(c)]

    def _timer(self, tick: Tick) -> Candidate | None:
        """The candidate of an offer timer's tick (see ``flows._clock``)."""
        profile, rules = self._profile, self._rules
        at, window, kind = tick.at, tick.window, tick.kind
        if kind == "cart":
            # The change reached this step ahead of its tick (both come through the
            # shard's clock); unknown, it was left out of the cart as too late.
            if not profile._cart.knows(window):
                return None
            candidate = cart_abandonment(profile, at, window, rules.cart_after)
        elif kind == "browse":
            browsed = tick.browsed
            candidate = None if browsed is None else browse_abandonment(profile, at, browsed, rules)
        elif kind == "churn_risk":
            risk = tick.risk
            candidate = None if risk is None else churn_risk(profile, at, window, risk, rules)
        elif kind == "replenishment":
            if tick.product is None or tick.cycle is None:
                return None
            candidate = replenishment(
                profile, at, window, tick.product, tick.cycle, successor=tick.successor
            )
        elif kind in ("price_drop", "back_in_stock"):
            candidate = _catalog_candidate(profile, tick)
        elif kind == "winback":
            candidate = winback(profile, at, window, rules)
        else:
            candidate = tier_expiry(profile, at, window, rules)
        return candidate

    def _fold(
        self,
        accepted: list[Accepted],
        times: list[float],
        signals: list[Signal],
        decisions: list[Decision],
    ) -> None:
        """Fold events in arrival order; add their times, signals and the decisions of the
        triggers they raise to the lists."""
        profile = self._profile
        outcomes: dict[tuple[str, str, str], int] = {}
        triggers = self._policy is not None
        for value in accepted:
            event = value.event
            if profile.erased:
                outcome = "ignored_erased"
            else:
                tiers = len(profile._tier_changes) if triggers else 0
                t = profile.fold(event)
                if t is None:
                    outcome = "duplicate"
                else:
                    outcome = "applied"
                    times.append(t)
                    if type(event) in _SIGNALLING:
                        signals += item_signals(event)
                    if triggers and type(event) is events.OfferSent:
                        self._sent(event, t)
                    if triggers and type(event) in _TRIGGERING:
                        raised = profile._tier_changes[tiers:]
                        for candidate in event_triggers(profile, event, t, raised, self._rules):
                            decisions += self._ask(candidate)
            key = (value.topic, _NAMES[type(event)], outcome)
            outcomes[key] = outcomes.get(key, 0) + 1
        count_outcomes(self._metrics, outcomes)

    def snapshot(self) -> bytes | CustomerProfile:
        return _snapshot(self._profile, copy=self._copy)


class ItemLogic(StatefulBatchLogic[list[Accepted] | list[Signal], ItemOut, bytes | ItemState]):
    """Fold catalogue updates and popularity signals of one product; emit one update."""

    def __init__(self, item: ItemState, metrics: FlowMetrics, *, copy: bool) -> None:
        self._item = item
        self._metrics = metrics
        self._copy = copy

    @classmethod
    def builder(
        cls, settings: FlowSettings, metrics: FlowMetrics
    ) -> Callable[[bytes | ItemState | None], ItemLogic]:
        """The ``stateful_batch`` builder: a new item, or one restored from a snapshot."""

        def build(resume: bytes | ItemState | None) -> ItemLogic:
            item = (
                ItemState(lateness=settings.allowed_lateness)
                if resume is None
                else _restore(resume)
            )
            return cls(item, metrics, copy=settings.recovery)

        return build

    def on_batch(
        self, values: list[list[Accepted] | list[Signal]]
    ) -> tuple[Iterable[ItemOut], bool]:
        item = self._item
        times: list[float] = []
        touched: set[Touched] = set()
        outcomes: dict[tuple[str, str, str], int] = {}
        flat: Iterable[Accepted | Signal] = itertools.chain.from_iterable(values)
        for value in flat:
            if isinstance(value, Signal):
                ts = value.ts.timestamp()
                item.apply_signal_epoch(value.kind, ts, value.quantity)
                t = int(ts)
                touched.add((value.kind, t // _HOUR * _HOUR, t // _DAY * _DAY, value.category))
                continue
            event = value.event
            applied = item.apply(event)
            key = (value.topic, _NAMES[type(event)], "applied" if applied else "duplicate")
            outcomes[key] = outcomes.get(key, 0) + 1
            if applied:
                times.append(event.timestamp.timestamp())
        count_outcomes(self._metrics, outcomes)
        if not times and not touched:
            return ((), StatefulBatchLogic.RETAIN)
        popularity = self._popularity(touched)
        return (
            [ItemOut(item.grouped_features(), item.seq, popularity, times)],
            StatefulBatchLogic.RETAIN,
        )

    def _popularity(self, touched: set[Touched]) -> list[PopularityCount]:
        item = self._item
        counts: dict[tuple[str, str, int, str], PopularityCount] = {}
        for kind, hour, day, signal_category in touched:
            category = item.category or signal_category
            scopes = ("all", category) if category else ("all",)
            name: PopularityKind = "views" if kind == "view" else "purchases"
            buckets: tuple[tuple[PopularityResolution, int], ...] = (("1h", hour), ("1d", day))
            for resolution, start in buckets:
                count = item.popularity(kind, resolution, start)
                for scope in scopes:
                    counts[(name, resolution, start, scope)] = PopularityCount(
                        name, resolution, start, scope, count
                    )
        return list(counts.values())

    def snapshot(self) -> bytes | ItemState:
        return _snapshot(self._item, copy=self._copy)


def _event_time(accepted: Accepted) -> float:
    return accepted.event.timestamp.timestamp()


def _snapshot(state: State, *, copy: bool) -> bytes | State:
    """The state pickled (an immutable copy) with recovery; without it, Bytewax discards
    snapshots unread, so the state itself is handed over at no cost."""
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL) if copy else state


def _restore(resume: bytes | State) -> State:
    if isinstance(resume, bytes):
        return pickle.loads(resume)  # type: ignore[no-any-return]  # noqa: S301 - our own snapshot
    return resume


def _score_clv(profile: CustomerProfile, params: CLVParams, at: float) -> bool:
    """Score a customer's CLV as of ``at`` from their own purchase history."""
    inputs = profile.clv_inputs(at)
    if inputs is None:
        return False
    frequency, recency, age, monetary = inputs
    per = 7.0 if params.unit == "weeks" else 1.0
    recency, age = recency / per, age / per
    in_90d = params.expected_purchases(90 / per, frequency, recency, age)
    in_365d = params.expected_purchases(365 / per, frequency, recency, age)
    fields = {
        "clv_expected_purchases_90d": f"{in_90d:.4f}",
        "clv_expected_purchases_365d": f"{in_365d:.4f}",
        "clv_p_alive": f"{params.probability_alive(frequency, recency, age):.4f}",
        "clv_12m": f"{params.customer_lifetime_value(frequency, recency, age, monetary):.2f}",
        "clv_model_version": params.version,
        "clv_scored_at": iso(at),
    }
    profile.set_clv(fields, at)
    return True


def count_outcomes(metrics: FlowMetrics, outcomes: dict[tuple[str, str, str], int]) -> None:
    """Move the event counters once per batch, not once per event."""
    for (topic, name, outcome), n in outcomes.items():
        metrics.events.labels(topic, name, outcome).inc(n)


_RECORDED_TRIGGERS: Final = frozenset({*TRIGGERS, "cross_sell"})
"""The triggers of recorded offers counted under their own label (the next best offer's
actions are the flow's triggers and ``cross_sell``)."""


def _catalog_candidate(profile: CustomerProfile, tick: Tick) -> Candidate | None:
    """The candidate of a price-drop or back-in-stock tick (see ``flows._clock``)."""
    if tick.product is None:
        return None
    if tick.kind == "back_in_stock":
        return back_in_stock(profile, tick.at, tick.window, tick.product)
    if tick.price is None or tick.previous is None:
        return None
    return price_drop(
        profile, tick.at, tick.window, tick.product, price=tick.price, previous=tick.previous
    )


def is_accepted(item: Keyed | Clocked | Rejected) -> bool:
    """Whether a decoded item is a key's accepted events (else it goes to the dead letters)."""
    return type(item) is tuple


def is_progress(item: Keyed | Clocked) -> bool:
    """Whether a decoded item is a shard's progress (else a key's events)."""
    return type(item[1]) is Progress


def churn_messages(updates: list[tuple[str, ProfileOut]]) -> list[tuple[str, Message]]:
    """The churn model's inputs in a batch of customer updates: labelled examples and
    score requests, all to the model's one key."""
    out: list[tuple[str, Message]] = []
    for customer, update in updates:
        out += ((MODEL_KEY, (customer, made)) for made in update.examples)
        out += ((MODEL_KEY, (customer, learn)) for learn in update.learned)
        if update.score is not None:
            out.append((MODEL_KEY, (customer, update.score)))
    return out


def is_customer_events(item: Keyed) -> bool:
    """Whether a key's events are about a customer (else they are catalogue events)."""
    return item[1][0].event.customer_key is not None


def signals_by_product(updates: list[tuple[str, ProfileOut]]) -> list[tuple[str, list[Signal]]]:
    """The popularity signals of a batch of customer updates, grouped by product."""
    grouped: dict[str, list[Signal]] = {}
    for _, out in updates:
        for signal in out.signals:
            group = grouped.get(signal.product_id)
            if group is None:
                grouped[signal.product_id] = [signal]
            else:
                group.append(signal)
    return list(grouped.items())
