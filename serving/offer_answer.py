"""The next best offer as JSON: the answer's shape, documented in ``serving.openapi``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

from models.offer_value import Discount
from serving.next_best_offer import Plan, Scored
from serving.recommend import Suggestion

__all__ = ["NO_PLAN", "offer_body", "outcome"]

NO_PLAN = Plan(offer=None, holdout=False, suppressed=None, alternatives=[])
"""What an answer holds when nothing could be planned (unknown customer, no consent)."""


_OUTCOMES: Final[dict[str | None, str]] = {
    "holdout": "holdout",
    "negative_expected_value": "not_worth_it",
    "no_eligible_action": "no_action",
    None: "no_action",
}


def outcome(plan: Plan, fallback: str | None) -> tuple[str, str]:
    """The answer's outcome and trigger, as metric labels: ``offered`` and its trigger;
    else why not (the fallback, ``holdout``, ``suppressed`` by a guardrail,
    ``not_worth_it``, ``no_action``) and the best action held back (``none``)."""
    if plan.offer is not None:
        return "offered", plan.offer.action.trigger
    top = plan.alternatives[0].action.trigger if plan.alternatives else "none"
    return fallback or _OUTCOMES.get(plan.suppressed, "suppressed"), top


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def _discount(d: Discount) -> dict[str, Any]:
    return {"rate": d.rate, "amount": d.amount, "limited_by": d.limited_by}


def _scored(s: Scored) -> dict[str, Any]:
    return {
        "offer_id": s.offer_id,
        "trigger": s.action.trigger,
        "reason": s.action.reason,
        "discount": _discount(s.discount),
        "basket_value": s.numbers.basket_value,
        "expected_value": s.discount.expected_value,
        "conversion_probability": s.discount.conversion_probability,
    }


def offer_body(
    plan: Plan,
    *,
    customer_id: str,
    channel: str,
    context: str,
    now: float,
    ttl_seconds: float,
    model_version: str | None,
    fallback: str | None,
    degraded: bool,
    item: Callable[[Suggestion], dict[str, Any]],
) -> dict[str, Any]:
    """The answer: the offer (or null and why), and every other action with why not.

    ``fallback`` says why the answer is not personal (``unknown_customer``,
    ``no_consent``, ``redis_unavailable``, ``corrupt_profile``); it is then also why
    there is no offer.
    """
    offer = None
    if plan.offer is not None:
        s = plan.offer
        offer = {
            **_scored(s),
            "channel": channel,
            "items": [item(suggestion) for suggestion in s.action.items],
            "expires_at": _iso(now + ttl_seconds),
        }
    return {
        "customer_id": customer_id,
        "as_of": _iso(now),
        "channel": channel,
        "context": context,
        "model_version": model_version,
        "personalized": fallback is None,
        "degraded": degraded,
        "fallback": fallback,
        "offer": offer,
        "holdout": plan.holdout,
        "suppressed": fallback if fallback is not None else plan.suppressed,
        "alternatives": [{**_scored(s), "why": s.why} for s in plan.alternatives],
    }
