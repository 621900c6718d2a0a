"""Windowed counts: bucketed counts that are folded into sliding windows at read time.

The flow writes a customer's (or an item's) activity as counts per UTC-aligned epoch bucket;
readers fold the buckets into windows against *their* clock. A window is therefore right
when it is read even if no event arrived since: "orders in 7 d" reads 0 seven days after
the last order, although nothing rewrote the key.

Windows and the resolution that serves each:

======  ===============  ===========
window  bucket size      resolution
======  ===============  ===========
``1h``  5 minutes        ``5m``
``24h`` 1 hour           ``1h``
``7d``  1 day            ``1d``
``30d`` 1 day            ``1d``
======  ===============  ===========

Edge tolerance, exactly: with window length ``W`` and bucket size ``b``, ``fold(v, now)``
counts every event whose bucket start ``s = t - t mod b`` satisfies
``now - W - b < s <= now``. So every event in ``(now - W, now]`` is counted, and an event is
counted only if it lies in ``(now - W - b, floor_b(now) + b)``: a window is exact to its
bucket size at its far edge (it may reach up to ``b`` further into the past), and, when
events later than ``now`` exist, the bucket holding ``now`` may include them.

Encoding (one Redis hash field), deterministic and compact JSON; buckets sorted by start::

    {"1d":[[start,count],...],"1h":[[start,count],...],"5m":[[start,count],...]}

with ``start`` in epoch seconds. The orders log (``encode_log`` / ``fold_log``) is a JSON
list ``[[time, amount, id], ...]`` sorted by time then id, ``time`` ISO-8601 UTC with ``Z``.

Example:
    >>> import datetime as dt
    >>> t0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
    >>> counts = BucketCounts()
    >>> counts.add(t0)
    >>> counts.add(t0 - dt.timedelta(days=3), n=2)
    >>> fold(counts.encode(), t0)
    {'1h': 1, '24h': 1, '7d': 3, '30d': 3}
    >>> fold(counts.encode(), t0 + dt.timedelta(days=8))
    {'1h': 0, '24h': 0, '7d': 0, '30d': 3}
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any, Final

__all__ = [
    "RESOLUTIONS",
    "WINDOWS",
    "BucketCounts",
    "encode_log",
    "fold",
    "fold_log",
]

_M5: Final = 300
_H1: Final = 3_600
_D1: Final = 86_400

RESOLUTIONS: Final[dict[str, tuple[int, int]]] = {
    "5m": (_M5, 3_600),
    "1h": (_H1, 86_400),
    "1d": (_D1, 30 * 86_400),
}
"""Resolution name -> (bucket size, longest window it serves), in seconds."""

WINDOWS: Final[dict[str, tuple[int, int]]] = {
    "1h": (3_600, _M5),
    "24h": (86_400, _H1),
    "7d": (7 * 86_400, _D1),
    "30d": (30 * 86_400, _D1),
}
"""Window name -> (window length, bucket size), in seconds."""

_ZERO: Final = dt.timedelta(0)

_Memo = tuple[str, int]
"""Encoding of every bucket but the latest, and the latest bucket's start."""


def _epoch(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: use timezone-aware UTC")
    return moment.timestamp()


def _bump(buckets: dict[int, int], key: int, n: int, held: _Memo | None) -> _Memo | None:
    """Add ``n`` to bucket ``key``; return the memo of ``buckets`` updated for it."""
    count = buckets.get(key, 0) + n
    if count > 0:
        buckets[key] = count
        if held is not None and key != held[1]:
            prefix, last = held
            if key > last:  # the usual case: time moved on to a new bucket
                piece = f"[{last},{buckets[last]}]"
                return (f"{prefix},{piece}" if prefix else piece, key)
            return None
        return held
    if buckets.pop(key, None) is not None:
        # An undo (n < 0) of a bucket that was pruned meanwhile leaves it absent.
        return None
    return held


def _drop_before(buckets: dict[int, int], size: int, cutoff: float) -> bool:
    if not buckets or min(buckets) + size > cutoff:  # the common case, at C speed
        return False
    stale = [start for start in buckets if start + size <= cutoff]
    for start in stale:
        del buckets[start]
    return bool(stale)


def _memo(buckets: dict[int, int]) -> _Memo | None:
    if not buckets:
        return None
    starts = sorted(buckets)
    last = starts.pop()
    return (",".join(f"[{s},{buckets[s]}]" for s in starts), last)


def _pairs(buckets: dict[int, int], held: _Memo | None) -> str:
    if held is None:
        return ""
    prefix, last = held
    piece = f"[{last},{buckets[last]}]"
    return f"{prefix},{piece}" if prefix else piece


def _load(pairs: Any, size: int) -> dict[int, int]:
    if not isinstance(pairs, list):
        raise ValueError("a resolution must be a list of [start, count] pairs")
    buckets: dict[int, int] = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ValueError(f"bad bucket {pair!r}: expected [start, count]")
        start, count = pair
        if type(start) is not int or type(count) is not int or count <= 0 or start % size:
            raise ValueError(f"bad bucket {pair!r}: aligned int start, positive int count")
        buckets[start] = count
    return buckets


class BucketCounts:
    """Counts per 5-minute, 1-hour and 1-day UTC bucket, folded into windows when read.

    Small and cheap to copy: three ``dict[int, int]``; after ``prune`` at most about
    ``12 + 24 + 31`` buckets plus the allowed lateness's worth. Order of ``add`` calls
    does not matter: counts commute.

    Example:
        >>> import datetime as dt
        >>> now = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
        >>> views = BucketCounts()
        >>> views.add(now - dt.timedelta(minutes=2))
        >>> views.add(now - dt.timedelta(hours=30))  # out of order is fine
        >>> views.fold(now)
        {'1h': 1, '24h': 1, '7d': 2, '30d': 2}
        >>> BucketCounts.decode(views.encode()) == views
        True
    """

    __slots__ = ("_d1", "_h1", "_m5", "_memo_d1", "_memo_h1", "_memo_m5")

    def __init__(self) -> None:
        self._m5: dict[int, int] = {}
        self._h1: dict[int, int] = {}
        self._d1: dict[int, int] = {}
        self._forget()

    def _forget(self) -> None:
        # Events mostly land in the latest bucket, so ``encode`` keeps the text of the
        # others and formats one pair instead of ~80; not pickled. ``None``: rebuild.
        # (Plain attributes, not a list: millions of windows stay cheap for the GC.)
        self._memo_m5: _Memo | None = None
        self._memo_h1: _Memo | None = None
        self._memo_d1: _Memo | None = None

    def count(self, resolution: str, start: int) -> int:
        """The count in one bucket: ``resolution`` is ``"5m"``, ``"1h"`` or ``"1d"``.

        Raises:
            KeyError: ``resolution`` is not one of those.
        """
        buckets = {"5m": self._m5, "1h": self._h1, "1d": self._d1}[resolution]
        return buckets.get(start, 0)

    def add(self, ts: dt.datetime, n: int = 1) -> None:
        """Count ``n`` events at event time ``ts`` (a negative ``n`` undoes an earlier add)."""
        self.add_epoch(_epoch(ts), n)

    def add_epoch(self, seconds: float, n: int = 1, *, earliest_read: float = -math.inf) -> None:
        """Like ``add``, with the event time in epoch seconds (the flow's fast path).

        ``earliest_read`` (epoch seconds) is the ``horizon - lateness`` of the last
        ``prune``: buckets that prune would drop are not created, so the buckets held never
        depend on whether a late event arrived before or after a prune.
        """
        if n == 0:
            return
        i = math.floor(seconds)
        start = i - i % _M5
        if start + _M5 > earliest_read - 3_600:
            self._memo_m5 = _bump(self._m5, start, n, self._memo_m5)
        start = i - i % _H1
        if start + _H1 > earliest_read - 86_400:
            self._memo_h1 = _bump(self._h1, start, n, self._memo_h1)
        start = i - i % _D1
        if start + _D1 > earliest_read - 30 * 86_400:
            self._memo_d1 = _bump(self._d1, start, n, self._memo_d1)

    def prune(self, horizon: dt.datetime, *, lateness: dt.timedelta = _ZERO) -> None:
        """Drop the buckets no window read at or after ``horizon - lateness`` can overlap.

        A bucket ``[s, s + b)`` is kept while ``s + b > horizon - lateness - longest``, where
        ``longest`` is the longest window its resolution serves (1 h, 24 h, 30 d). Pass the
        latest event time as ``horizon`` and the allowed lateness: reads happen at or after
        the watermark, so whatever is dropped could never be counted again.
        """
        self.prune_epoch(_epoch(horizon) - lateness.total_seconds())

    def prune_epoch(self, earliest_read: float, *, since: float = -math.inf) -> bool:
        """Like ``prune``, with ``horizon - lateness`` in epoch seconds; True if any dropped.

        ``since`` is the ``earliest_read`` of a previous prune. A resolution of bucket size
        ``b`` keeps ``s`` while ``s + b - longest > earliest_read``, a multiple of ``b``, so
        its buckets can only change once ``earliest_read // b`` does: until then it is
        skipped (hourly buckets are looked at once an hour, not at every event).
        """
        dropped = False
        if since // _M5 != earliest_read // _M5 and _drop_before(
            self._m5, _M5, earliest_read - 3_600
        ):
            self._memo_m5 = None
            dropped = True
        if since // _H1 != earliest_read // _H1 and _drop_before(
            self._h1, _H1, earliest_read - 86_400
        ):
            self._memo_h1 = None
            dropped = True
        if since // _D1 != earliest_read // _D1 and _drop_before(
            self._d1, _D1, earliest_read - 30 * 86_400
        ):
            self._memo_d1 = None
            dropped = True
        return dropped

    def fold(self, now: dt.datetime) -> dict[str, int]:
        """Return ``{"1h": n, "24h": n, "7d": n, "30d": n}`` as read at ``now``."""
        t = _epoch(now)
        by_size = {_M5: self._m5, _H1: self._h1, _D1: self._d1}
        result: dict[str, int] = {}
        for name, (length, size) in WINDOWS.items():
            low = t - length - size
            result[name] = sum(c for s, c in by_size[size].items() if low < s <= t)
        return result

    def encode(self) -> str:
        """Return the compact, deterministic JSON of the buckets (see the module doc)."""
        if self._memo_d1 is None:
            self._memo_d1 = _memo(self._d1)
        if self._memo_h1 is None:
            self._memo_h1 = _memo(self._h1)
        if self._memo_m5 is None:
            self._memo_m5 = _memo(self._m5)
        d1 = _pairs(self._d1, self._memo_d1)
        h1 = _pairs(self._h1, self._memo_h1)
        m5 = _pairs(self._m5, self._memo_m5)
        return f'{{"1d":[{d1}],"1h":[{h1}],"5m":[{m5}]}}'

    @classmethod
    def decode(cls, text: str) -> BucketCounts:
        """Parse what ``encode`` wrote.

        Raises:
            ValueError: ``text`` is not an encoding of bucket counts.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != {"1d", "1h", "5m"}:
            raise ValueError("bucket counts need exactly the keys 1d, 1h and 5m")
        counts = cls()
        counts._m5 = _load(data["5m"], _M5)
        counts._h1 = _load(data["1h"], _H1)
        counts._d1 = _load(data["1d"], _D1)
        return counts

    def __bool__(self) -> bool:
        return bool(self._m5 or self._h1 or self._d1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BucketCounts):
            return NotImplemented
        return self._m5 == other._m5 and self._h1 == other._h1 and self._d1 == other._d1

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"BucketCounts({self.encode()})"

    def __getstate__(self) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
        return (self._m5, self._h1, self._d1)

    def __setstate__(self, state: tuple[dict[int, int], dict[int, int], dict[int, int]]) -> None:
        self._m5, self._h1, self._d1 = state
        self._forget()


def fold(value: str | BucketCounts, now: dt.datetime) -> dict[str, int]:
    """Fold encoded (or live) bucket counts into ``{"1h", "24h", "7d", "30d"}`` at ``now``.

    Raises:
        ValueError: ``value`` is a string that is not an encoding of bucket counts.
    """
    counts = BucketCounts.decode(value) if isinstance(value, str) else value
    return counts.fold(now)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def _by_time_then_id(entry: tuple[float, float, str]) -> tuple[float, str]:
    return entry[0], entry[2]


def encode_log(entries: Iterable[tuple[float, float, str]]) -> str:
    """Encode ``(epoch seconds, amount, id)`` entries as the sorted JSON log readers fold.

    Example:
        >>> encode_log([(1746100800.0, 54.0, "O-2"), (1746014400.0, 10.5, "O-1")])
        '[["2025-04-30T12:00:00Z",10.5,"O-1"],["2025-05-01T12:00:00Z",54.0,"O-2"]]'
    """
    rows = [
        [_iso(t), float(amount), key] for t, amount, key in sorted(entries, key=_by_time_then_id)
    ]
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False)


def fold_log(text: str, now: dt.datetime, window: dt.timedelta) -> tuple[int, float]:
    """Return ``(count, total amount)`` of log entries with time in ``(now - window, now]``.

    Exact (no bucket edge): the log keeps each entry's own time.

    Raises:
        ValueError: ``text`` is not a log written by ``encode_log``.
    """
    high = _epoch(now)
    low = high - window.total_seconds()
    count, total = 0, 0.0
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError("a log is a JSON list of [time, amount, id]")
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
            raise ValueError(f"bad log entry {row!r}: expected [time, amount, id]")
        t = dt.datetime.fromisoformat(row[0]).timestamp()
        if low < t <= high:
            count += 1
            total += float(row[1])
    return count, total
