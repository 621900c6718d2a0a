"""Identity and privacy events (topic ``shopkeeper.customers``)."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Annotated, Literal

from msgspec import Meta, Struct

from events._envelope import EventBase, Properties
from events._types import Id, ShortText, Timestamp

__all__ = [
    "Consent",
    "CustomerUpdated",
    "CustomerUpdatedProperties",
    "DeletionRequested",
    "DeletionRequestedProperties",
    "Traits",
]

Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class Consent(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Consent flags; a missing flag leaves the stored one unchanged."""

    analytics: bool | None = None
    personalization: bool | None = None
    marketing_email: bool | None = None
    marketing_push: bool | None = None
    marketing_sms: bool | None = None


class Traits(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Profile traits. Contact points travel hashed; raw PII stays out of events."""

    email_sha256: Sha256 | None = None
    phone_sha256: Sha256 | None = None
    first_name: ShortText | None = None
    birthday: dt.date | None = None
    gender: Literal["female", "male", "other", "unknown"] | None = None
    country: Annotated[str, Meta(pattern=r"^[A-Z]{2}$")] | None = None
    city: ShortText | None = None
    timezone: Annotated[str, Meta(max_length=64)] | None = None
    language: Annotated[str, Meta(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")] | None = None
    created_at: Timestamp | None = None
    loyalty_member_id: Id | None = None
    preferred_store_id: Id | None = None
    preferred_channel: Literal["web", "ios", "android", "pos"] | None = None

    def __post_init__(self) -> None:
        if self.timezone is not None and self.timezone not in _time_zones():
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone")


class CustomerUpdatedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """New traits and consent for a customer (Segment ``identify``)."""

    traits: Traits = Traits()
    consent: Consent | None = None


class CustomerUpdated(EventBase, tag="Customer Updated", frozen=True):
    """Traits and consent changed (Segment ``identify`` as a track event)."""

    properties: CustomerUpdatedProperties


class DeletionRequestedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """A privacy request (Segment regulation vocabulary)."""

    regulation: Literal["suppress", "suppress_with_delete", "delete_only"] = "suppress_with_delete"


class DeletionRequested(EventBase, tag="Deletion Requested", frozen=True):
    """Erase the customer everywhere; a replay must not bring them back."""

    properties: DeletionRequestedProperties = DeletionRequestedProperties()
