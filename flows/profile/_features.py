"""The Redis hash of a customer: which fields each feature group writes, and how.

Every value is a string: ints in decimal, money with 2 decimals, rates with 4, datetimes
ISO-8601 UTC with ``Z``, lists and maps compact JSON with sorted keys. ``_seq`` counts
events applied; ``_ts:<group>`` is the latest event time that changed the group (absent
until one did); an erased customer is only the tombstone ``{"_erased": "1", "_seq": n}``.
Fields that only exist once known (``last_*_at``, ``consent:*``, ``trait:*``,
``last_nps``...) are absent until then.

========================  ==================================================================
group                     fields
========================  ==================================================================
activity                  ``first_seen``, ``last_seen``, ``channel_mix`` ({channel: events}),
                          ``win:views``, ``win:adds``, ``win:sessions`` (bucket counts, see
                          ``feature_store._windows``; readers fold them at read time)
orders                    ``orders_total``, ``revenue_total``, ``aov``, ``last_purchase_at``,
                          ``orders_365d`` and ``revenue_365d`` (as of ``last_seen``: readers
                          should fold ``orders_log`` at their own time with
                          ``feature_store._windows.fold_log``), ``orders_log``,
                          ``win:orders``
cart                      ``cart`` ({product_id: {price, qty}}), ``cart_value``,
                          ``cart_items``, ``cart_since`` (when it last went from empty to
                          holding something), ``cart_updated_at`` (latest add, remove, cart
                          view or order)
affinity                  ``affinity:category``, ``affinity:brand``: top 5 [name, score],
                          decayed to ``last_seen`` (half-life 30 d; view 1, add 3,
                          purchase 5 per unit)
returns                   ``refunds_total``, ``refunded_amount``, ``return_rate`` (distinct
                          refunded orders / orders, at most 1)
service                   ``open_tickets``, ``last_nps``, ``last_nps_at``, ``last_csat``,
                          ``last_csat_at``
consent                   ``consent:<flag>``: ``"1"`` / ``"0"``
traits                    ``trait:<name>`` (latest by event time; hashed contact points are
                          identity keys and stay out)
interactions              ``recent``: last 50 [product_id, type, time], newest first
churn                     ``churn_windows`` (purchase windows labelled), ``churn_windows_churned``
                          (of which no purchase followed within the horizon), ``churn_deadline``
                          (when the open window is labelled churned if no purchase comes)
loyalty                   ``loyalty_points`` (lifetime, less refunds), ``loyalty_tier`` (by
                          trailing 12-month spend), ``loyalty_spend_12m``,
                          ``loyalty_tier_change`` ([old, new, upgrade|downgrade]) and
                          ``loyalty_tier_changed_at``: the latest change
clv                       with fitted parameters (``SHOPKEEPER_CLV_PARAMS``), on each purchase
                          and rescoring tick: ``clv_expected_purchases_90d``, ``_365d``,
                          ``clv_p_alive``, ``clv_12m``, ``clv_model_version``,
                          ``clv_scored_at``
offers                    the offer guardrails' memory, after each offer decision:
                          ``offers_contacts`` ([[epoch seconds, trigger], ...]: offers fired
                          or held out in the last 7 days and more, oldest first) and
                          ``offers_states`` ({trigger: the state it last fired for}); the
                          next-best-offer route applies the same caps with them
========================  ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from feature_store import encode_log
from flows.profile._format import MONEY_SCALE, NEVER, flag, iso, json_text, money

if TYPE_CHECKING:
    from flows.profile._customer import CustomerProfile

__all__ = [
    "ACTIVITY",
    "AFFINITY",
    "CART",
    "CHURN",
    "CLV",
    "CONSENT",
    "GROUPS",
    "INTERACTIONS",
    "LOYALTY",
    "OFFERS",
    "ORDERS",
    "RETURNS",
    "SERVICE",
    "TRAITS",
    "build_group",
]

GROUPS: Final = (
    "activity",
    "orders",
    "cart",
    "affinity",
    "returns",
    "service",
    "consent",
    "traits",
    "interactions",
    "churn",
    "loyalty",
    "clv",
    "offers",
)
(ACTIVITY, ORDERS, CART, AFFINITY, RETURNS, SERVICE, CONSENT, TRAITS, INTERACTIONS, CHURN,
 LOYALTY, CLV, OFFERS) = range(13)  # fmt: skip
_YEAR: Final = 365 * 86_400.0
_WINDOW_FIELDS: Final = ("win:views", "win:adds", "win:orders", "win:sessions")
_TOP: Final = 5


def _window(p: CustomerProfile, which: int) -> str:
    text = p._win_text[which]
    if text is None:
        text = p._win_text[which] = p._windows()[which].encode()
    return text


def _activity(p: CustomerProfile) -> dict[str, str]:
    out = {"channel_mix": json_text(p._channels)}
    if p._last != NEVER:
        out["first_seen"] = iso(p._first)
        out["last_seen"] = iso(p._last)
    for which in (0, 1, 3):
        out[_WINDOW_FIELDS[which]] = _window(p, which)
    return out


def _orders(p: CustomerProfile) -> dict[str, str]:
    if p._o365 is None:
        since = p._last - _YEAR
        recent = [(t, units) for t, units in p._orders.values() if t > since]
        p._o365 = (len(recent), sum(units for _, units in recent))
        # The 365-day values only change when an order leaves the year (or one arrives).
        p._o365_until = min(recent)[0] if recent else math.inf
    if p._log_text is None:
        entries = sorted(
            ((t, units / MONEY_SCALE, order_id) for order_id, (t, units) in p._orders.items()),
            key=lambda entry: (entry[0], entry[2]),
        )
        p._log_text = encode_log(entries)
        p._log_last = (entries[-1][0], entries[-1][2]) if entries else None
    count, revenue = p._o365
    out = {
        "orders_total": str(p._orders_total),
        "revenue_total": money(p._revenue),
        "aov": money(round(p._revenue / p._orders_total) if p._orders_total else 0),
        "orders_365d": str(count),
        "revenue_365d": money(revenue),
        "orders_log": p._log_text,
        "win:orders": _window(p, 2),
    }
    if p._last_purchase != NEVER:
        out["last_purchase_at"] = iso(p._last_purchase)
    return out


def _cart(p: CustomerProfile) -> dict[str, str]:
    return p._cart.fields()


def _affinity(p: CustomerProfile) -> dict[str, str]:
    at = p._last
    return {
        "affinity:category": json_text(p._categories.top(_TOP, at) if p._categories else []),
        "affinity:brand": json_text(p._brands.top(_TOP, at) if p._brands else []),
    }


def _returns(p: CustomerProfile) -> dict[str, str]:
    rate = min(1.0, p._refunded_orders / p._orders_total) if p._orders_total else 0.0
    return {
        "refunds_total": str(p._refunds),
        "refunded_amount": money(p._refunded),
        "return_rate": f"{rate:.4f}",
    }


def _service(p: CustomerProfile) -> dict[str, str]:
    out = {"open_tickets": str(sum(1 for _, _, is_open in p._tickets.values() if is_open))}
    if p._nps is not None:
        out["last_nps"] = str(p._nps[2])
        out["last_nps_at"] = iso(p._nps[0])
    if p._csat is not None:
        out["last_csat"] = str(p._csat[2])
        out["last_csat_at"] = iso(p._csat[0])
    return out


def _consent(p: CustomerProfile) -> dict[str, str]:
    return {f"consent:{name}": flag(v[2]) for name, v in sorted(p._consent.items())}


def _traits(p: CustomerProfile) -> dict[str, str]:
    return {f"trait:{name}": v[2] for name, v in sorted(p._traits.items())}


def _interactions(p: CustomerProfile) -> dict[str, str]:
    # Entries hold their JSON already, so this is a join, not 50 encodings.
    text = p._recent_text
    if text is None:
        text = p._recent_text = ",".join(entry[3] for entry in reversed(p._recent))
    return {"recent": f"[{text}]"}


def _churn(p: CustomerProfile) -> dict[str, str]:
    churn = p._churn
    out = {"churn_windows": str(churn.resolved), "churn_windows_churned": str(churn.churned)}
    deadline = churn.deadline
    if deadline is not None and not churn.is_closed:
        out["churn_deadline"] = iso(deadline)
    return out


def _loyalty(p: CustomerProfile) -> dict[str, str]:
    account = p._loyalty
    out = {
        "loyalty_points": str(account.points),
        "loyalty_tier": account.tier,
        "loyalty_spend_12m": f"{account.spend:.2f}",
    }
    change = p._tier_change
    if change is not None:
        out["loyalty_tier_change"] = json_text([change.old, change.new, change.direction])
        out["loyalty_tier_changed_at"] = iso(change.t)
    return out


def _clv(p: CustomerProfile) -> dict[str, str]:
    return dict(p._clv)


def _offers(p: CustomerProfile) -> dict[str, str]:
    book = p._offers
    if book is None or not (book.fired_at() or book.states()):
        return {}
    return {
        "offers_contacts": json_text([[round(t, 3), trigger] for t, trigger in book.fired_at()]),
        "offers_states": json_text(book.states()),
    }


_BUILDERS: Final[tuple[Callable[[CustomerProfile], dict[str, str]], ...]] = (
    _activity,
    _orders,
    _cart,
    _affinity,
    _returns,
    _service,
    _consent,
    _traits,
    _interactions,
    _churn,
    _loyalty,
    _clv,
    _offers,
)


def build_group(p: CustomerProfile, group: int) -> dict[str, str]:
    """Return the fields of feature group ``group`` (an index into ``GROUPS``)."""
    out = _BUILDERS[group](p)
    changed = p._gts[group]
    if changed != NEVER:
        out[f"_ts:{GROUPS[group]}"] = iso(changed)
    return out
