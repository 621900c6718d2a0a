"""Per-key state of the profile flow: customers and catalogue items, folded on event time.

Pure logic: no clock, no I/O, no Bytewax. The flow keeps one ``CustomerProfile`` per
customer and one ``ItemState`` per product in its stateful steps, and writes their
``features()`` to Redis as absolute values guarded by ``_seq``.
"""

from flows.profile._churn import (
    RESCORE_AFTER_DAYS,
    ChurnTracker,
    Example,
    Resolved,
    churn_due_offsets,
)
from flows.profile._churn_features import CHURN_FEATURES, churn_features
from flows.profile._customer import CustomerProfile
from flows.profile._features import GROUPS
from flows.profile._item import ItemState, Signal, SignalKind, item_signals
from flows.profile._triggers import (
    TIMER_TRIGGERS,
    TRIGGERS,
    Seed,
    TriggerRules,
    back_in_stock,
    browse_abandonment,
    cart_abandonment,
    churn_risk,
    event_triggers,
    guardrail_context,
    offer_seed,
    price_drop,
    replenishment,
    tier_expiry,
    winback,
)

__all__ = [
    "CHURN_FEATURES",
    "GROUPS",
    "RESCORE_AFTER_DAYS",
    "TIMER_TRIGGERS",
    "TRIGGERS",
    "ChurnTracker",
    "CustomerProfile",
    "Example",
    "ItemState",
    "Resolved",
    "Seed",
    "Signal",
    "SignalKind",
    "TriggerRules",
    "back_in_stock",
    "browse_abandonment",
    "cart_abandonment",
    "churn_due_offsets",
    "churn_features",
    "churn_risk",
    "event_triggers",
    "guardrail_context",
    "item_signals",
    "offer_seed",
    "price_drop",
    "replenishment",
    "tier_expiry",
    "winback",
]
