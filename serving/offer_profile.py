"""A customer as the next best offer sees them, read from their profile hash.

The flow writes every field (``flows.profile`` lists them); the contact history is two
more: ``offers_contacts``, a JSON list ``[[epoch_seconds, "trigger"], ...]`` of the offers
fired or held out in the last week (and a little more), and ``offers_states``, a JSON
object ``{"trigger": "state_key"}`` of the state each trigger last fired for. Absent
fields count as empty; a value that does not parse counts as absent (a corrupt field costs
its own signal, not the request).

``contact_book`` rebuilds the flow's ``models.offers.ContactBook`` from that history, so
the same guardrails decide here as in the flow.

Example:
    >>> profile = OfferProfile.parse({
    ...     "consent:marketing_push": "1", "trait:timezone": "Europe/Paris",
    ...     "open_tickets": "0", "cart": '{"P1":{"price":12.5,"qty":2}}',
    ...     "offers_contacts": '[[1741780800.0,"cart_abandonment"]]',
    ...     "offers_states": '{"cart_abandonment":"9f2c"}',
    ... })
    >>> profile.cart, profile.context().consent
    ({'P1': (2, 12.5)}, {'marketing_push': True})
    >>> contact_book(profile, now=1_741_784_400.0).fired_at()
    [(1741780800.0, 'cart_abandonment')]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping

import orjson

from models.offers import WEEK, Candidate, ContactBook, Context, Policy
from serving.catalog import as_number
from serving.customers import CustomerView

__all__ = ["OfferProfile", "contact_book"]

_REPLAY = Policy(
    daily_cap=2**31,
    weekly_cap=2**31,
    trigger_daily_cap=2**31,
    trigger_weekly_cap=2**31,
    default_cooldown_s=0.0,
    quiet_hours=(0, 0),
    holdout_share=0.0,
)
"""No guardrail at all: for writing a stored history into a book."""
_NOBODY = Context(consent={}, timezone=None)


@dataclasses.dataclass(frozen=True, slots=True)
class OfferProfile:
    """The profile fields the next best offer reads (all optional)."""

    consent: dict[str, bool] = dataclasses.field(default_factory=dict)
    timezone: str | None = None
    open_tickets: int = 0
    cart: dict[str, tuple[int, float]] = dataclasses.field(default_factory=dict)
    cart_since: str = ""  # when the stored cart last went from empty to holding something
    churn_probability: float | None = None
    clv_12m: float | None = None
    aov: float | None = None
    last_purchase_at: float | None = None
    loyalty_tier: str | None = None
    loyalty_tier_changed_at: str = ""  # when the current tier began ("": never changed)
    loyalty_spend_12m: float | None = None
    contacts: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    states: dict[str, str] = dataclasses.field(default_factory=dict)
    view: CustomerView = dataclasses.field(default_factory=CustomerView)

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> OfferProfile:
        """From the flattened profile hash."""
        consent = {
            name[8:]: value == "1"
            for name, value in fields.items()
            if name.startswith("consent:") and value in ("0", "1")
        }
        tickets = as_number(fields.get("open_tickets"))
        return cls(
            consent=consent,
            timezone=fields.get("trait:timezone") or None,
            open_tickets=int(tickets) if tickets is not None else 0,
            cart=_cart(fields.get("cart")),
            cart_since=fields.get("cart_since", ""),
            churn_probability=_share(as_number(fields.get("churn_probability"))),
            clv_12m=_positive(as_number(fields.get("clv_12m"))),
            aov=_positive(as_number(fields.get("aov"))),
            last_purchase_at=_time(fields.get("last_purchase_at")),
            loyalty_tier=fields.get("loyalty_tier") or None,
            loyalty_tier_changed_at=fields.get("loyalty_tier_changed_at", ""),
            loyalty_spend_12m=_positive(as_number(fields.get("loyalty_spend_12m"))),
            contacts=_contacts(fields.get("offers_contacts")),
            states=_states(fields.get("offers_states")),
            view=CustomerView.parse(fields),
        )

    @property
    def personalization(self) -> bool | None:
        """The personalization consent flag, None if never given."""
        return self.consent.get("personalization")

    def context(self) -> Context:
        """The guardrails' context now: consent flags, time zone, open tickets."""
        return Context(consent=self.consent, timezone=self.timezone, open_tickets=self.open_tickets)

    def recency_days(self, now: float) -> float | None:
        """Days since the last order as of ``now``; None if they never ordered."""
        if self.last_purchase_at is None:
            return None
        return max(0.0, now - self.last_purchase_at) / 86_400.0


def contact_book(profile: OfferProfile, *, now: float) -> ContactBook:
    """The customer's ``ContactBook`` as the flow left it: the stored fires and hold-outs,
    and the state each trigger last fired for.

    The book is written through its own ``decide`` with no guardrail in the way: each
    fire under a state of its own, then each trigger's stored state at a time more than
    two weeks before ``now`` and every fire, which the book forgets or never counts.
    """
    book = ContactBook()
    for i, (at, trigger) in enumerate(sorted(profile.contacts)):
        book.decide(_replayed(trigger, at, f"\x00history:{i}"), _NOBODY, _REPLAY)
    earliest = min([now, *(at for at, _ in profile.contacts)]) - 2 * WEEK - 1.0
    for trigger, state in sorted(profile.states.items()):
        book.decide(_replayed(trigger, earliest, state), _NOBODY, _REPLAY)
    return book


def _replayed(trigger: str, at: float, state: str) -> Candidate:
    return Candidate("", trigger, at, state, "history", {}, promotional=False)


def _json(text: str | None) -> object:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _contacts(text: str | None) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    entries = _json(text)
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, list) and len(entry) == 2:
            at, trigger = entry
            if isinstance(at, int | float) and math.isfinite(at) and isinstance(trigger, str):
                out.append((float(at), trigger))
    return out


def _states(text: str | None) -> dict[str, str]:
    value = _json(text)
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _cart(text: str | None) -> dict[str, tuple[int, float]]:
    value = _json(text)
    out: dict[str, tuple[int, float]] = {}
    for product, line in value.items() if isinstance(value, dict) else []:
        if not isinstance(line, dict):
            continue
        qty, price = as_number(line.get("qty")), as_number(line.get("price"))
        if qty is not None and qty >= 1 and price is not None and price >= 0:
            out[str(product)] = (int(qty), price)
    return out


def _share(value: float | None) -> float | None:
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None
