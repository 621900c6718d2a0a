"""How profile values become Redis hash strings, and the small value helpers they share."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Final

import msgspec

__all__ = [
    "MONEY_SCALE",
    "NEVER",
    "flag",
    "id_hash",
    "iso",
    "json_text",
    "money",
    "to_units",
]

MONEY_SCALE: Final = 10_000
"""Money is kept in integer 1/10,000 units so that sums are exact in any order."""

NEVER: Final = float("-inf")
"""The event time of something that has not happened."""

# Sorted keys make the JSON of equal values byte-identical, whatever the insertion order.
_ENCODER: Final = msgspec.json.Encoder(order="sorted")


_ISO_MEMO: dict[float, str] = {}
_ISO_MEMO_MAX: Final = 256
_YEAR_10000: Final = 253_402_300_800.0


def iso(seconds: float) -> str:
    """Format epoch seconds as ISO-8601 UTC with a ``Z``: ``2025-05-01T10:00:00Z``.

    Microseconds appear only when non-zero (``datetime.isoformat``).
    """
    # One event's time is formatted for several fields (last_seen, _ts:*, recent), and
    # formatting costs about a microsecond: remember the latest few.
    text = _ISO_MEMO.get(seconds)
    if text is None:
        if len(_ISO_MEMO) >= _ISO_MEMO_MAX:
            _ISO_MEMO.clear()
        if 0 <= seconds < _YEAR_10000 and int(seconds) == seconds:
            text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))  # 40% faster
        else:
            text = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")
        _ISO_MEMO[seconds] = text
    return text


def to_units(amount: float) -> int:
    """Convert an amount in major units to exact integer 1/10,000 units."""
    return round(amount * MONEY_SCALE)


def money(units: int) -> str:
    """Format 1/10,000 units as a decimal string with 2 places: ``54.00``."""
    return f"{units / MONEY_SCALE:.2f}"


def flag(value: bool) -> str:
    """Format a boolean as ``"1"`` or ``"0"``."""
    return "1" if value else "0"


def json_text(value: object) -> str:
    """Encode compact JSON with sorted keys: same value, same string."""
    return _ENCODER.encode(value).decode()


def id_hash(message_id: str) -> int:
    """Return a stable 64-bit hash of an id (unlike ``hash``, the same in every process).

    Used as the dedupe key and as the tie-break between events with the same time;
    64 bits keep a false duplicate among 2,000 remembered ids below 1e-13.
    """
    return int.from_bytes(hashlib.blake2b(message_id.encode(), digest_size=8).digest(), "big")
