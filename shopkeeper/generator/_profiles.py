"""Customer profile events: full traits at the start, consent changes, deletion requests."""

from __future__ import annotations

import datetime as dt

import events
from shopkeeper.generator._customers import CHANNELS, Customers
from shopkeeper.generator._draws import Draws
from shopkeeper.generator._taxonomy import COUNTRIES

__all__ = ["consent_change", "profile"]

_FLAGS = ("analytics", "personalization", "marketing_email", "marketing_push", "marketing_sms")


def profile(customers: Customers, c: int, start: dt.datetime) -> events.CustomerUpdatedProperties:
    """Return every trait and consent flag of customer ``c`` as of ``start``."""
    country, zone, language, _, _ = COUNTRIES[int(customers.country[c])]
    granted = customers.consent[c].tolist()
    return events.CustomerUpdatedProperties(
        traits=events.Traits(
            email_sha256=customers.email_sha256[c],
            birthday=customers.birthday[c],
            gender=customers.gender[c],  # type: ignore[arg-type]
            country=country,
            timezone=zone,
            language=language,
            created_at=start - dt.timedelta(days=int(customers.created_days_before[c])),
            loyalty_member_id=customers.loyalty_member[c],
            preferred_store_id=customers.store[c] if customers.channel[c] == 3 else None,
            preferred_channel=CHANNELS[int(customers.channel[c])],  # type: ignore[arg-type]
        ),
        consent=events.Consent(**dict(zip(_FLAGS, granted, strict=True))),
    )


def consent_change(draws: Draws) -> events.CustomerUpdatedProperties:
    """Return a consent change: mostly marketing opt-outs, sometimes opt-ins."""
    flag = _FLAGS[2 + draws.below(3)] if draws.u() < 0.85 else "personalization"
    granted = draws.u() < 0.3
    return events.CustomerUpdatedProperties(consent=events.Consent(**{flag: granted}))
