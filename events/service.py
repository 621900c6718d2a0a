"""Service and feedback events (topic ``shopkeeper.customers``)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from events._envelope import EventBase, Properties
from events._types import Id, ShortText

__all__ = [
    "NPSSurveyResponded",
    "NPSSurveyRespondedProperties",
    "SatisfactionRated",
    "SatisfactionRatedProperties",
    "SupportTicketCreated",
    "SupportTicketProperties",
    "SupportTicketUpdated",
]

TicketStatus = Literal["new", "open", "pending", "hold", "solved", "closed"]


class SupportTicketProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """A support ticket (Zendesk vocabulary)."""

    ticket_id: Id
    status: TicketStatus = "new"
    previous_status: TicketStatus | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    type: Literal["question", "incident", "problem", "task"] | None = None
    category: (
        Literal["delivery", "return", "product_quality", "billing", "account", "other"] | None
    ) = None
    order_id: Id | None = None
    product_ids: Annotated[list[Id], Meta(max_length=100)] = msgspec.field(default_factory=list)


class SupportTicketCreated(EventBase, tag="Support Ticket Created", frozen=True):
    """A ticket opened; promotions are suppressed while it is open."""

    properties: SupportTicketProperties


class SupportTicketUpdated(EventBase, tag="Support Ticket Updated", frozen=True):
    """A ticket changed status; ``solved`` and ``closed`` end it."""

    properties: SupportTicketProperties


class SatisfactionRatedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """CSAT after a ticket, 1 (bad) to 5 (good)."""

    ticket_id: Id
    rating: Annotated[int, Meta(ge=1, le=5)]
    comment: ShortText | None = None


class SatisfactionRated(EventBase, tag="Satisfaction Rated", frozen=True):
    """A CSAT answer."""

    properties: SatisfactionRatedProperties


class NPSSurveyRespondedProperties(Properties, frozen=True, kw_only=True, omit_defaults=True):
    """An NPS answer, 0-10: promoter 9-10, passive 7-8, detractor 0-6."""

    score: Annotated[int, Meta(ge=0, le=10)]
    survey_id: Id | None = None
    touchpoint: ShortText | None = None
    comment: ShortText | None = None


class NPSSurveyResponded(EventBase, tag="NPS Survey Responded", frozen=True):
    """An NPS answer."""

    properties: NPSSurveyRespondedProperties
