"""Constrained field types shared by every event."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

from msgspec import Meta

from events._currencies import CurrencyCode

__all__ = [
    "FREE_TEXT",
    "ID_MAX_LENGTH",
    "Channel",
    "Count",
    "Currency",
    "Id",
    "Money",
    "Quantity",
    "Rate",
    "ShortText",
    "Timestamp",
]

ID_MAX_LENGTH = 128

FREE_TEXT: Final = "free_text"
"""Marks text fields, where tab, newline and carriage return are allowed."""

# Control characters are checked by the codec in one pass over the payload (they can
# only arrive as JSON escapes), not by a regex per field: that would triple decode time.
Id = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        description="An identifier: 1-128 characters, no control characters.",
    ),
]
ShortText = Annotated[
    str,
    Meta(
        max_length=512,
        description="Free text: no control characters but tab, newline, carriage return.",
        extra={FREE_TEXT: True},
    ),
]
Timestamp = Annotated[
    dt.datetime,
    Meta(tz=True, description="ISO-8601 with an offset; normalised to UTC on decode."),
]
Money = Annotated[
    float,
    Meta(ge=0, le=1e9, description="A non-negative amount in major units of `currency`."),
]
Currency = CurrencyCode
Quantity = Annotated[int, Meta(ge=1, le=100_000)]
Count = Annotated[int, Meta(ge=0, le=1_000_000_000)]
Rate = Annotated[float, Meta(ge=0, le=1)]

Channel = Literal["web", "ios", "android", "pos", "call_center", "email", "sms", "push", "server"]
