"""Offer triggers read off a customer's profile, and the context the guardrails need
(consent, time zone, open tickets). Pure: no clock, no I/O.

Timer triggers: the shard's clock ticks a customer when a deadline passes its trigger
watermark (``flows._clock``); the trigger reads the profile *as of the deadline* (the
cart's past states, the interactions and orders with their times), so a replay that has
folded later events decides as the live run did.

======================  ==========================================  =======================
trigger                 when                                        state (fires once per)
======================  ==========================================  =======================
``cart_abandonment``    the cart holds something and has not        cart contents, per
                        changed for ``cart_after`` (an order would  filling of the cart
                        have moved it)
``browse_abandonment``  ``browse_min_views`` views of one product   product
                        in the last ``browse_after`` before the
                        last view, then none for ``browse_after``;
                        nothing added to the cart or bought since
``winback``             a repeat customer (2+ orders) silent for    silence (its last
                        twice their mean interval (30 days at       order)
                        least), 12-month revenue of at least
                        ``winback_min_revenue``; email
``tier_expiry``         an order leaves the trailing 12 months in   tier and the day it
                        ``tier_notice_s`` and the spend left would  would drop
                        drop the tier
======================  ==========================================  =======================

Triggers on the event itself (``event_triggers``), decided as it is folded:

======================  ==========================================  =======================
``post_purchase``       Order Completed; email                      order
``tier_upgrade``        the order lifts the loyalty tier            tier reached
``near_tier``           after the order, the spend is within        next tier, per year
                        ``near_tier_share`` of the next tier's
                        threshold
``service_recovery``    an NPS detractor (0-6) or a CSAT of 1-2;    survey answer / ticket
                        a service message, not a promotion
======================  ==========================================  =======================
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import msgspec

import events
from flows.profile._features import CLV
from flows.profile._format import MONEY_SCALE, NEVER, iso, money, to_units
from models.loyalty import LoyaltyPolicy, TierChange
from models.offers import Candidate, Context, near_tier_state

_DETRACTOR: Final = 6  # NPS 0-6
_BAD_CSAT: Final = 2  # CSAT 1-2 of 5

if TYPE_CHECKING:
    from flows._clock import Browsed
    from flows.profile._customer import CustomerProfile

__all__ = [
    "TIMER_TRIGGERS",
    "TRIGGERS",
    "ContextLog",
    "Seed",
    "TriggerRules",
    "back_in_stock",
    "browse_abandonment",
    "cart_abandonment",
    "churn_risk",
    "event_triggers",
    "guardrail_context",
    "offer_seed",
    "price_drop",
    "replenishment",
    "tier_expiry",
    "winback",
]

TRIGGERS: Final = (
    "cart_abandonment",
    "browse_abandonment",
    "churn_risk",
    "winback",
    "replenishment",
    "post_purchase",
    "tier_upgrade",
    "near_tier",
    "tier_expiry",
    "price_drop",
    "back_in_stock",
    "service_recovery",
)
"""Every offer trigger the flow knows (a bounded metric label)."""

TIMER_TRIGGERS: Final = (
    "cart_abandonment", "browse_abandonment", "churn_risk", "winback", "tier_expiry",
    "replenishment", "price_drop", "back_in_stock",
)  # fmt: skip
"""The triggers decided when the trigger watermark passes a deadline (the others, when it
passes the event that raised them)."""

_YEAR: Final = 365 * 86_400.0
_DAY: Final = 86_400.0


class Seed(msgspec.Struct, frozen=True, gc=False):
    """What a fired offer's content is made from, read off the profile as of the offer:
    the basket it is about, the customer's value and risk, and the products it names.

    ``clv_12m`` is the CLV model's 12-month value when CLV parameters are loaded, else
    the customer's revenue per year to date (``clv_source`` says which); ``churn`` is
    ``1 - P(alive)`` from the CLV model, when scored by then.
    """

    offer_id: str
    basket_value: float | None
    clv_12m: float | None
    clv_source: str
    churn: float | None
    recency_days: float | None
    products: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class TriggerRules:
    """Which triggers fire and their thresholds (``FlowSettings.trigger_rules``)."""

    enabled: frozenset[str] = frozenset(TRIGGERS)
    lateness: float = 0.25  # the trigger watermark's lateness (seconds)
    cart_after: float = 1_800.0
    browse_after: float = 1_800.0
    browse_min_views: int = 2
    winback_min_revenue: float = 150.0
    near_tier_share: float = 0.1
    tier_notice_s: float = 14 * 86_400.0
    churn_risk: float = 0.5


_MAX_ENTRIES = 200  # context changes kept with their times; older ones fold into a base


class ContextLog:
    """The guardrails' inputs (consent flags, time zone, tickets) that a newer value
    replaced, with their event times, so a trigger reads them as of its own time (see
    ``guardrail_context``): a live run has folded later events by then, a replay may not
    have, and both must decide alike. A value seen again unchanged moves its register's
    time forward: ``since`` keeps when it began to hold.

    Example:
        >>> log = ContextLog()
        >>> log.record(20.0, 1, "consent:marketing_push", False)
        >>> log.record(10.0, 2, "consent:marketing_push", True)  # arrives late
        >>> [(t, value) for t, _, _, value in log.entries]
        [(10.0, True), (20.0, False)]
    """

    __slots__ = ("_base", "_entries", "_since")

    def __init__(self) -> None:
        self._base: dict[str, object] = {}
        self._entries: list[tuple[float, int, str, object]] = []
        self._since: dict[str, tuple[float, int]] = {}

    def record(self, t: float, tie: int, key: str, value: object) -> None:
        """Note that ``key`` became ``value`` at event time ``t``."""
        entries = self._entries
        bisect.insort(entries, (t, tie, key, value), key=lambda e: (e[0], e[1], e[2]))
        if len(entries) > _MAX_ENTRIES:
            _, _, old_key, old_value = entries.pop(0)
            self._base[old_key] = old_value

    def hold(self, key: str, t: float, tie: int) -> None:
        """The register ``key`` moves forward with its value unchanged, held since ``t``."""
        self._since.setdefault(key, (t, tie))

    def release(self, key: str) -> tuple[float, int] | None:
        """The register ``key`` changed value: when its old value began to hold, if that
        is earlier than its register says."""
        return self._since.pop(key, None)

    @property
    def base(self) -> dict[str, object]:
        """The values folded out of the log (older than every entry), by key."""
        return self._base

    @property
    def entries(self) -> list[tuple[float, int, str, object]]:
        """The logged values with their times, in time order."""
        return self._entries

    @property
    def since(self) -> dict[str, tuple[float, int]]:
        """When each register's current value began to hold, where earlier than its time."""
        return self._since

    def __getstate__(self) -> tuple[object, ...]:
        return (self._base, self._entries, self._since)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        self._base, self._entries, self._since = state  # type: ignore[assignment]


def cart_abandonment(
    p: CustomerProfile, at: float, changed: float, delay_s: float
) -> Candidate | None:
    """The cart-abandonment candidate at ``at`` for the cart change at ``changed``, or
    ``None`` when the cart was empty then or changed again by ``at`` (a later change has
    its own tick). Read from the cart's past states, so a replay that has already folded
    later events decides as a live run did."""
    if p.erased:
        return None
    state = p._cart.between(changed, at)
    since = p._cart.since(changed)
    p._cart.settle(changed)
    if state is None or state[2] or not state[0]:
        return None
    contents, value, _ = state
    lines = [entry.rpartition(":") for entry in contents.split(",")]
    features = {
        "cart_value": value,
        "cart_items": str(sum(int(quantity) for _, _, quantity in lines)),
        "cart_products": ",".join(product for product, _, _ in lines),
        "cart_updated_at": iso(changed),
        "idle_minutes": str(round(delay_s / 60)),
    }
    # One state per filling of the cart: the same contents months later are a new cart.
    filled = "" if since is None else iso(since)  # as the hash's ``cart_since`` has it
    key = hashlib.sha256(f"{contents}|{filled}".encode()).hexdigest()[:16]
    reason = f"cart_idle_{round(delay_s / 60)}m"
    return Candidate(p._customer, "cart_abandonment", at, key, reason, features)


def browse_abandonment(
    p: CustomerProfile, at: float, browsed: Browsed, rules: TriggerRules
) -> Candidate | None:
    """The browse-abandonment candidate at ``at`` for the product a session viewed most
    (the clock followed the session in arrival order: ``browse_min_views`` views of it,
    nothing put in the cart or bought, no view for ``browse_after``)."""
    if p.erased:
        return None
    features = {
        "product_id": browsed.product_id,
        "views": str(browsed.views),
        "first_viewed_at": iso(browsed.first),
        "last_viewed_at": iso(browsed.last),
        "idle_minutes": str(round(rules.browse_after / 60)),
    }
    reason = f"viewed_{browsed.views}x_no_add"
    # One state per session: the same product browsed again next month is a new one.
    state = f"{browsed.product_id}:{iso(browsed.first)}"
    return Candidate(p._customer, "browse_abandonment", at, state, reason, features)


def churn_risk(
    p: CustomerProfile, at: float, window: float, risk: float, rules: TriggerRules
) -> Candidate | None:
    """The retention candidate at ``at``: the churn risk of a customer silent since their
    order at ``window`` reached the threshold (the clock found when, from the CLV
    model's P(alive)); none if they ordered since."""
    if p.erased or any(t <= at for t, _ in _orders_after(p, window)):
        return None
    features = {
        "churn_risk": f"{risk:.4f}",
        "threshold": f"{rules.churn_risk:.2f}",
        "last_order_at": iso(window),
        "days_silent": f"{(at - window) / _DAY:.0f}",
    }
    reason = f"churn_risk_over_{round(rules.churn_risk * 100)}"
    return Candidate(p._customer, "churn_risk", at, f"risk:{iso(window)}", reason, features)


def replenishment(
    p: CustomerProfile,
    at: float,
    window: float,
    product: str,
    cycle: float,
    *,
    successor: str | None = None,
) -> Candidate | None:
    """The replenishment candidate at ``at`` for ``product``, last bought at ``window``
    and bought every ``cycle`` seconds before (the clock checked it was not bought
    since, in the order events came); a retired product is offered as its
    ``successor``."""
    if p.erased:
        return None
    days = round(cycle / _DAY)
    features = {
        "product_id": product,
        "cycle_days": str(days),
        "last_bought_at": iso(window),
        "due_at": iso(window + cycle),
    }
    if successor is not None:
        features["successor_product_id"] = successor
    state = f"{product}:{iso(window)}"
    return Candidate(p._customer, "replenishment", at, state, f"due_every_{days}d", features)


def price_drop(
    p: CustomerProfile, at: float, viewed: float, product: str, *, price: float, previous: float
) -> Candidate | None:
    """The price-drop candidate at ``at``: ``product``, viewed at ``viewed``, now sells
    at ``price``, down from ``previous`` (the clock checked the view and that it was not
    bought since)."""
    if p.erased:
        return None
    down = round(100 * (1 - price / previous))
    features = {
        "product_id": product,
        "price": money(to_units(price)),
        "previous_price": money(to_units(previous)),
        "last_viewed_at": iso(viewed),
    }
    # One state per change: the same product cheaper again next month is a new one.
    state = f"{product}:{iso(at)}"
    return Candidate(p._customer, "price_drop", at, state, f"price_down_{down}pct", features)


def back_in_stock(p: CustomerProfile, at: float, viewed: float, product: str) -> Candidate | None:
    """The back-in-stock candidate at ``at``: ``product``, viewed at ``viewed`` and out of
    stock since, is in stock again (the clock checked it was not bought since)."""
    if p.erased:
        return None
    features = {"product_id": product, "last_viewed_at": iso(viewed)}
    state = f"{product}:{iso(at)}"
    return Candidate(p._customer, "back_in_stock", at, state, "back_in_stock", features)


def _orders_after(p: CustomerProfile, since: float) -> list[tuple[float, int]]:
    """The orders after ``since`` (time, revenue units), by time. The profile's order log
    keeps a year behind its latest event, so these are all there for a ``since`` days
    behind it, as in a replay that folded days ahead of a trigger."""
    return sorted(v for v in p._orders.values() if v[0] > since)


def winback(p: CustomerProfile, at: float, window: float, rules: TriggerRules) -> Candidate | None:
    """The win-back candidate at ``at`` for a customer whose last order was at ``window``
    (the clock timed the silence from their mean interval): none if they ordered since,
    or their revenue as of ``at`` is below ``winback_min_revenue``."""
    if p.erased:
        return None
    later = _orders_after(p, window)
    if any(t <= at for t, _ in later):
        return None  # ordered since
    # The totals as of ``at``: today's, less the orders folded since.
    revenue = p._revenue - sum(units for _, units in later)
    if revenue < to_units(rules.winback_min_revenue):
        return None
    days = (at - window) / 86_400
    features = {
        "last_order_at": iso(window),
        "days_silent": f"{days:.0f}",
        "orders_total": str(p._orders_total - len(later)),
        "revenue_total": money(revenue),
    }
    state = f"lapsed:{iso(window)}"
    return Candidate(
        p._customer, "winback", at, state, f"silent_{days:.0f}d", features, channel="email"
    )


def offer_seed(p: CustomerProfile, candidate: Candidate, offer_id: str) -> Seed:
    """The content seed of a fired offer, as of its time (see ``Seed``)."""
    at, features = candidate.at, candidate.features
    later = _orders_after(p, at)
    revenue = (p._revenue - sum(units for _, units in later)) / MONEY_SCALE
    orders = p._orders_total - len(later)
    known = [t for t, _ in _orders_after(p, at - _YEAR) if t <= at]
    last = max(known, default=p._last_purchase if NEVER < p._last_purchase <= at else None)
    clv_12m: float | None = None
    source = "none"
    churn: float | None = None
    if p._clv and p._gts[CLV] <= at:  # scored by then
        clv_12m, source = float(p._clv["clv_12m"]), "clv"
        churn = round(1.0 - float(p._clv["clv_p_alive"]), 4)
    elif orders > 0 and p._first <= at:
        clv_12m, source = revenue * _YEAR / max(at - p._first, _YEAR), "revenue_per_year"
    if "cart_value" in features:
        basket: float | None = float(features["cart_value"])
    elif "revenue" in features:
        basket = float(features["revenue"])
    elif "price" in features:  # the one product the offer is about
        basket = float(features["price"])
    else:
        basket = revenue / orders if orders else None
    products = features.get("cart_products") or features.get("products") or ""
    named = [x for x in products.split(",") if x] or [
        features[name] for name in ("successor_product_id", "product_id") if name in features
    ][:1]
    return Seed(
        offer_id,
        basket_value=basket,
        clv_12m=None if clv_12m is None else round(clv_12m, 2),
        clv_source=source,
        churn=churn,
        recency_days=None if last is None else round((at - last) / _DAY, 2),
        products=named,
    )


def _tier(policy: LoyaltyPolicy, spend_units: int) -> int:
    """The index of the tier a trailing spend reaches."""
    spend = spend_units / MONEY_SCALE
    return max(i for i, (_, threshold) in enumerate(policy.tiers) if spend >= threshold)


def tier_expiry(
    p: CustomerProfile, at: float, window: float, rules: TriggerRules
) -> Candidate | None:
    """The tier-expiry notice at ``at``: the order at ``window`` leaves the trailing 12
    months in ``tier_notice_s``, and the spend left then (the orders after it, known as
    of ``at``) would drop the tier it holds with it. Refunds are not netted here."""
    if p.erased:
        return None
    policy = p._loyalty.policy
    orders = [(t, units) for t, units in _orders_after(p, window - 1.0) if t <= at]
    if not orders or orders[0][0] != window:
        return None  # not known (a duplicate, or erased since)
    now = _tier(policy, sum(units for _, units in orders))
    left = sum(units for t, units in orders if t > window)
    then = _tier(policy, left)
    if then >= now:
        return None
    name, threshold = policy.tiers[now]
    drops_at = window + _YEAR
    features = {
        "tier": name,
        "tier_drops_to": policy.tiers[then][0],
        "drops_at": iso(drops_at),
        "spend_to_keep": money(max(to_units(threshold) - left, 0)),
    }
    state = f"{name}:{iso(drops_at)[:10]}"
    reason = f"tier_{name.lower()}_expires"
    return Candidate(p._customer, "tier_expiry", at, state, reason, features)


def _near_tier(p: CustomerProfile, t: float, rules: TriggerRules) -> Candidate | None:
    account = p._loyalty
    tiers = account.policy.tiers
    current = next(i for i, (name, _) in enumerate(tiers) if name == account.tier)
    if current + 1 >= len(tiers):
        return None
    name, threshold = tiers[current + 1]
    gap = threshold - account.spend
    if not 0 < gap <= rules.near_tier_share * threshold:
        return None
    features = {"tier": account.tier, "next_tier": name, "spend_to_next": f"{gap:.2f}"}
    since = iso(p._tier_change.t) if p._tier_change is not None else ""  # as the hash has it
    state = near_tier_state(name, int(iso(t)[:4]), since)
    return Candidate(p._customer, "near_tier", t, state, f"near_{name.lower()}", features)


def event_triggers(
    p: CustomerProfile,
    event: events.Event,
    t: float,
    tiers: Sequence[TierChange],
    rules: TriggerRules,
) -> list[Candidate]:
    """The candidates an event just folded raises (``tiers``: the tier changes it made),
    of the enabled triggers."""
    customer = p._customer
    out: list[Candidate] = []
    if type(event) is events.OrderCompleted:
        props = event.properties
        features = {
            "order_id": props.order_id,
            "revenue": f"{props.revenue:.2f}",
            "products": ",".join(line.product_id for line in props.products),
        }
        out.append(
            Candidate(
                customer,
                "post_purchase",
                t,
                props.order_id,
                "order_completed",
                features,
                channel="email",
            )
        )
    elif type(event) is events.NPSSurveyResponded and event.properties.score <= _DETRACTOR:
        features = {"nps": str(event.properties.score)}
        out.append(
            Candidate(
                customer,
                "service_recovery",
                t,
                f"nps:{event.message_id}",
                "nps_detractor",
                features,
                channel="email",
                promotional=False,
            )
        )
    elif type(event) is events.SatisfactionRated and event.properties.rating <= _BAD_CSAT:
        features = {"csat": str(event.properties.rating), "ticket_id": event.properties.ticket_id}
        out.append(
            Candidate(
                customer,
                "service_recovery",
                t,
                f"csat:{event.properties.ticket_id}",
                "csat_bad",
                features,
                channel="email",
                promotional=False,
            )
        )
    if type(event) is events.OrderCompleted and not tiers:
        nudge = _near_tier(p, t, rules)
        if nudge is not None:
            out.append(nudge)
    for change in tiers:
        if str(change.direction) == "upgrade":
            features = {"tier": change.new, "previous_tier": change.old}
            out.append(
                Candidate(
                    customer,
                    "tier_upgrade",
                    change.t,
                    f"{change.new}:{iso(change.t)}",  # each upgrade its own state
                    f"tier_{change.new.lower()}",
                    features,
                )
            )
    return [c for c in out if c.trigger in rules.enabled]


def guardrail_context(p: CustomerProfile, at: float) -> Context:
    """Consent flags, time zone and open support tickets as of event time ``at``: each
    register's latest value if set by then, else the latest earlier one in the log."""
    best: dict[str, tuple[float, int, object]] = {}

    def offer(key: str, t: float, tie: int, value: object) -> None:
        known = best.get(key)
        if t <= at and (known is None or (t, tie) > known[:2]):
            best[key] = (t, tie, value)

    registers: dict[str, tuple[float, int, object]] = {
        **{f"consent:{name}": flag for name, flag in p._consent.items()},
        **{f"ticket:{ticket}": status for ticket, status in p._tickets.items()},
    }
    timezone = p._traits.get("timezone")
    if timezone is not None:
        registers["timezone"] = timezone
    for key, (t, tie, value) in registers.items():
        offer(key, t, tie, value)
    log = p._context
    if log is not None:
        for key, old in log.base.items():  # folded out of the log: older than all in it
            best.setdefault(key, (-math.inf, 0, old))
        for entry in log.entries:
            offer(entry[2], entry[0], entry[1], entry[3])
    if log is not None:
        for key, (t, tie) in log.since.items():  # the register's value, held since then
            register = registers.get(key)
            if register is not None:
                offer(key, t, tie, register[2])
    state = {key: entry[2] for key, entry in best.items()}
    consent = {k[8:]: bool(v) for k, v in state.items() if k.startswith("consent:")}
    zone = state.get("timezone")
    return Context(
        consent=consent,
        timezone=zone if isinstance(zone, str) else None,
        open_tickets=sum(1 for k, v in state.items() if k.startswith("ticket:") and v),
    )
