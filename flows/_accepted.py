"""A decoded event on its way through the flow."""

from __future__ import annotations

import msgspec

import events

__all__ = ["Accepted"]


class Accepted(msgspec.Struct, frozen=True, gc=False):
    """A valid event and the topic it came from.

    Never tracked by the garbage collector (it cannot be part of a cycle): tens of
    thousands are in flight between steps, and tracked they would trigger full
    collections that walk every profile in the state.
    """

    event: events.Event
    topic: str
