"""RFM segments in real time: population quintiles, R/F/M scores and ten named segments.

Pure and event-time driven: no clock, no I/O. A flow keeps one ``RfmQuantiles`` per shard
(merged across shards when boundaries are needed) and one ``SegmentTracker`` per customer:

1. When a customer's values change (an order, a refund), ``RfmQuantiles.replace`` swaps the
   old ``RfmValues`` for the new ones, so the structure always describes the *current*
   population, never its history.
2. ``RfmQuantiles.boundaries(now)`` gives the quintile cut points; ``RfmBoundaries.score``
   turns a customer's values into R, F and M scores 1..5; ``segment`` names the cell.
3. ``SegmentTracker.update`` returns the segment and a transition when it changed, and
   ``next_recency_drop`` says when a silent customer's R score falls, for a timer.

Recency is held as the last purchase *time*, not as days since it: every customer's recency
grows with the clock, so stored recency values would go stale, while last purchase times
change only when the customer buys. ``boundaries(now)`` turns them into recency cut points
in days as of ``now``.

Scores: the cut points are the 20/40/60/80 % quantiles (the value of the ``ceil(q n)``-th
customer). F and M count the cut points strictly below the value: ``score = 1 + #{c < v}``.
R counts, from the freshest, the cut points the recency has reached:
``score = 5 - #{c <= recency}``, so a timer set at ``next_recency_drop`` sees the lower
score. Ties never split: customers in the same histogram bucket always get the same score,
so with heavy ties (most customers have one order) some scores go unused. An empty
population has no cut points, and every score is then 3.

Segments use R and ``FM = (F + M) / 2``, after the widely published RFM segment table
(Putler; also the R ``rfm`` package). Its ranges overlap: the first matching row wins, and
the order below differs from the published one only where a narrower row would otherwise be
unreachable (New, Promising and Need Attention before Potential Loyalist; Can't Lose before
At Risk; Lost, the bottom corner, before Hibernating). Every (R, F, M) in 1..5 maps to
exactly one of the ten:

==  ==================  =====  ========
#   segment             R      FM
==  ==================  =====  ========
1   Champions           4-5    4-5
2   Loyal               2-5    3-5
3   New                 4-5    1
4   Promising           3-4    1
5   Need Attention      2-3    2-3
6   Potential Loyalist  3-5    1-3
7   Can't Lose          1      4-5
8   At Risk             1-2    2-5
9   Lost                1      1-1.5
10  Hibernating         1-2    1-2
==  ==================  =====  ========

Which gives, by R (rows) and FM (columns)::

         1    1.5  2    2.5  3    3.5  4    4.5  5
    R5   New  PL   PL   PL   Loy  Loy  Cha  Cha  Cha
    R4   New  PL   PL   PL   Loy  Loy  Cha  Cha  Cha
    R3   Pro  PL   NA   NA   Loy  Loy  Loy  Loy  Loy
    R2   Hib  Hib  NA   NA   Loy  Loy  Loy  Loy  Loy
    R1   Los  Los  AR   AR   AR   AR   CL   CL   CL

Example:
    >>> day = 86_400.0
    >>> now = 1_746_100_800.0  # 2025-05-01T12:00:00Z
    >>> population = RfmQuantiles()
    >>> for days_ago, orders, revenue in [(1, 9, 900.0), (10, 4, 300.0), (40, 2, 80.0),
    ...                                   (90, 1, 40.0), (200, 1, 15.0)]:
    ...     population.add(RfmValues(now - days_ago * day, orders, revenue))
    >>> cuts = population.boundaries(now)
    >>> scores = cuts.score(RfmValues(now - 1 * day, 9, 900.0), now)
    >>> scores, scores.segment
    (RfmScores(r=5, f=5, m=5), <Segment.CHAMPIONS: 'Champions'>)
    >>> cuts.score(RfmValues(now - 200 * day, 1, 15.0), now).segment
    <Segment.LOST: 'Lost'>
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = [
    "SEGMENT_RULES",
    "RfmBoundaries",
    "RfmQuantiles",
    "RfmScores",
    "RfmValues",
    "Segment",
    "SegmentRule",
    "SegmentTracker",
    "SegmentTransition",
    "SegmentUpdate",
    "next_recency_drop",
    "segment",
]

Moment = float | dt.datetime
"""An event time: epoch seconds, or a timezone-aware datetime."""

_NEVER: Final = float("-inf")
_QUINTILES: Final = (1, 2, 3, 4)  # cut points at j/5 of the population
_TINY: Final = 1e-9  # values below this count as zero
_HUGE: Final = 1e100  # larger values are refused: the bucket edges would overflow
_ZERO_KEY: Final = -(2**31)  # the bucket of zero, below every log-spaced bucket


def _seconds(moment: Moment) -> float:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment.isoformat()}: use timezone-aware UTC")
        return moment.timestamp()
    seconds = float(moment)
    if not math.isfinite(seconds):
        raise ValueError(f"event time {moment!r} is not finite")
    return seconds


def _magnitude(value: float, name: str) -> float:
    """Validate a frequency or monetary value; below ``_TINY`` (a net refund too) is 0."""
    v = float(value)
    if not (math.isfinite(v) and v < _HUGE):
        raise ValueError(f"{name} {value!r} is not a finite number below 1e100")
    return v if v >= _TINY else 0.0


class Segment(enum.StrEnum):
    """The ten named RFM segments (a ``str``: ``Segment.LOYAL == "Loyal"``)."""

    CHAMPIONS = "Champions"
    LOYAL = "Loyal"
    POTENTIAL_LOYALIST = "Potential Loyalist"
    NEW = "New"
    PROMISING = "Promising"
    NEED_ATTENTION = "Need Attention"
    AT_RISK = "At Risk"
    CANT_LOSE = "Can't Lose"
    HIBERNATING = "Hibernating"
    LOST = "Lost"


class SegmentRule(NamedTuple):
    """A row of the segment table: R and ``FM = (F + M) / 2`` ranges, bounds inclusive."""

    segment: Segment
    r_low: int
    r_high: int
    fm_low: float
    fm_high: float

    def matches(self, r: int, f: int, m: int) -> bool:
        """Whether scores ``(r, f, m)`` fall in this row's ranges."""
        fm = (f + m) / 2
        return self.r_low <= r <= self.r_high and self.fm_low <= fm <= self.fm_high


SEGMENT_RULES: Final[tuple[SegmentRule, ...]] = (
    SegmentRule(Segment.CHAMPIONS, 4, 5, 4.0, 5.0),
    SegmentRule(Segment.LOYAL, 2, 5, 3.0, 5.0),
    SegmentRule(Segment.NEW, 4, 5, 1.0, 1.0),
    SegmentRule(Segment.PROMISING, 3, 4, 1.0, 1.0),
    SegmentRule(Segment.NEED_ATTENTION, 2, 3, 2.0, 3.0),
    SegmentRule(Segment.POTENTIAL_LOYALIST, 3, 5, 1.0, 3.0),
    SegmentRule(Segment.CANT_LOSE, 1, 1, 4.0, 5.0),
    SegmentRule(Segment.AT_RISK, 1, 2, 2.0, 5.0),
    SegmentRule(Segment.LOST, 1, 1, 1.0, 1.5),
    SegmentRule(Segment.HIBERNATING, 1, 2, 1.0, 2.0),
)
"""The segment table of the module docstring, in the order it is applied (first match wins)."""


def _first_match(r: int, f: int, m: int) -> Segment:
    for rule in SEGMENT_RULES:
        if rule.matches(r, f, m):
            return rule.segment
    raise AssertionError(f"no segment for {(r, f, m)}")  # pragma: no cover - table is total


_SCORES: Final = range(1, 6)
_GRID: Final[dict[tuple[int, int, int], Segment]] = {
    (r, f, m): _first_match(r, f, m) for r in _SCORES for f in _SCORES for m in _SCORES
}


def segment(r: int, f: int, m: int) -> Segment:
    """Return the named segment of R, F and M scores, each 1..5 (see the module table).

    Raises:
        ValueError: a score is not an integer from 1 to 5.

    Example:
        >>> segment(5, 1, 1)
        <Segment.NEW: 'New'>
        >>> print(segment(1, 5, 4), segment(3, 2, 3), sep=", ")
        Can't Lose, Need Attention
    """
    found = _GRID.get((r, f, m))
    if found is None or not all(type(s) is int for s in (r, f, m)):
        raise ValueError(f"scores must be integers 1..5, got {(r, f, m)!r}")
    return found


class RfmValues(NamedTuple):
    """A customer's raw RFM values.

    Attributes:
        last_purchase: Event time of the latest order, epoch seconds.
        frequency: Order count.
        monetary: Revenue (net of refunds); a negative value counts as 0.
    """

    last_purchase: float
    frequency: float
    monetary: float


class RfmScores(NamedTuple):
    """R, F and M scores, each 1..5 (5 is best: most recent, most orders, most revenue)."""

    r: int
    f: int
    m: int

    @property
    def segment(self) -> Segment:
        """The named segment of these scores."""
        return segment(self.r, self.f, self.m)


def _rank_score(cuts: tuple[float, ...], value: float, name: str) -> int:
    if not cuts:
        return 3
    v = _magnitude(value, name)
    return 1 + sum(1 for c in cuts if v > c)


@dataclass(frozen=True, slots=True)
class RfmBoundaries:
    """Quintile cut points of a population at one event time, and the scores they give.

    Each tuple holds four ascending cut points, or none for an empty population.

    Attributes:
        as_of: The event time (epoch seconds) the recency cut points were measured at.
        population: How many customers the cut points describe.
        recency_seconds: Recency cut points, in seconds since the last purchase.
        frequency: Order-count cut points.
        monetary: Revenue cut points.

    Example:
        >>> cuts = RfmBoundaries(0.0, 10, (86_400.0, 7 * 86_400.0, 30 * 86_400.0,
        ...                      90 * 86_400.0), (1.0, 1.0, 2.0, 4.0), (20.0, 50.0, 90.0, 300.0))
        >>> cuts.recency_days
        (1.0, 7.0, 30.0, 90.0)
        >>> t = 100 * 86_400.0
        >>> cuts.score(RfmValues(last_purchase=t - 7 * 86_400.0, frequency=2, monetary=50.0), t)
        RfmScores(r=3, f=3, m=2)
    """

    as_of: float
    population: int
    recency_seconds: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]

    @property
    def recency_days(self) -> tuple[float, ...]:
        """Recency cut points in days since the last purchase."""
        return tuple(c / 86_400.0 for c in self.recency_seconds)

    def recency_score(self, last_purchase: Moment, t: Moment) -> int:
        """R at event time ``t``: ``5 - #{cut <= t - last_purchase}``; 3 with no population."""
        cuts = self.recency_seconds
        if not cuts:
            return 3
        recency = _seconds(t) - _seconds(last_purchase)
        return 5 - sum(1 for c in cuts if recency >= c)

    def frequency_score(self, frequency: float) -> int:
        """F: ``1 + #{cut < frequency}``; 3 with no population."""
        return _rank_score(self.frequency, frequency, "frequency")

    def monetary_score(self, monetary: float) -> int:
        """M: ``1 + #{cut < monetary}``; 3 with no population."""
        return _rank_score(self.monetary, monetary, "monetary")

    def score(self, values: RfmValues, t: Moment) -> RfmScores:
        """Score a customer's values at event time ``t``.

        Raises:
            ValueError: a value or time is not finite, or a datetime is naive.
        """
        return RfmScores(
            self.recency_score(values.last_purchase, t),
            self.frequency_score(values.frequency),
            self.monetary_score(values.monetary),
        )


def next_recency_drop(boundaries: RfmBoundaries, last_purchase: Moment, t: Moment) -> float | None:
    """Return the first event time after ``t`` at which the R score is lower, if ever.

    With the boundaries held fixed and no new purchase, recency grows with the clock and R
    drops when it reaches the next cut point. At the returned time (epoch seconds)
    ``boundaries.recency_score`` already gives the lower score, so a timer set for it
    re-evaluates exactly once. ``None`` when R is already 1 or the population is empty.

    Example:
        >>> day = 86_400.0
        >>> cuts = RfmBoundaries(0.0, 5, (day, 7 * day, 30 * day, 90 * day), (), ())
        >>> due = next_recency_drop(cuts, last_purchase=0.0, t=3 * day)
        >>> due / day, cuts.recency_score(0.0, due - 1), cuts.recency_score(0.0, due)
        (7.0, 4, 3)
    """
    start = _seconds(last_purchase)
    now = _seconds(t)
    recency = now - start
    later = [c for c in boundaries.recency_seconds if c > recency]
    if not later:
        return None
    cut = min(later)
    due = start + cut
    # Float rounding of ``start + cut`` may land a hair early: step up until the score drops.
    while due - start < cut or due <= now:
        due = math.nextafter(due, math.inf)
    return due


def _bump(counts: dict[int, int], key: int, n: int) -> None:
    count = counts.get(key, 0) + n
    if count:
        counts[key] = count
    else:
        del counts[key]


def _cut_keys(counts: dict[int, int], population: int, *, freshest_first: bool) -> list[int]:
    """Return the bucket keys holding the ``ceil(j n / 5)``-th value, j = 1..4."""
    ranks = [-(-j * population // 5) for j in _QUINTILES]
    keys: list[int] = []
    seen = 0
    for key in sorted(counts, reverse=freshest_first):
        seen += counts[key]
        while len(keys) < len(ranks) and seen >= ranks[len(keys)]:
            keys.append(key)
    return keys


class RfmQuantiles:
    """Mergeable quintiles of a population's recency, frequency and monetary values.

    A histogram of counts in fixed buckets, so ``add``, ``remove`` and ``merge`` commute:
    any order of the same updates, on one structure or spread over shards and merged, gives
    the same structure and the same ``boundaries``. Counts may go negative in between (a
    ``remove`` before its ``add``, or a delta shipped between shards); ``boundaries`` needs
    them all non-negative.

    Buckets and error:

    * Frequency and monetary: log-spaced buckets ``(g**(k-1), g**k]`` with
      ``g = 1 + relative_error``, plus one bucket for 0 (values below 1e-9, and negative
      values, count as 0). A cut point is the upper edge of the bucket holding the exact
      quantile, so it is never below the exact quantile and less than ``relative_error``
      (default 1 %) above it. Order counts below ``1 / relative_error`` (100) each get a
      bucket of their own, so they are ranked exactly.
    * Recency: last purchase times in UTC-aligned buckets ``(kb - b, kb]`` of
      ``b = recency_resolution`` (default 1 hour). A recency cut point is the recency of
      its bucket's older edge: never below the exact quantile and at most ``b`` above it.

    Memory: one ``int -> int`` entry per occupied bucket, at most about
    ``ln(max / min) / relative_error`` per log-spaced dimension and one per hour of
    distinct last purchase times, whatever the population size.

    Args:
        relative_error: Relative width of the frequency and monetary buckets.
        recency_resolution: Width of the last-purchase-time buckets.

    Example:
        >>> east, west = RfmQuantiles(), RfmQuantiles()
        >>> east.add(RfmValues(last_purchase=1_746_000_000.0, frequency=3, monetary=120.0))
        >>> west.add(RfmValues(last_purchase=1_745_000_000.0, frequency=1, monetary=30.0))
        >>> west.replace(RfmValues(1_745_000_000.0, 1, 30.0), RfmValues(1_746_050_000.0, 2, 75.0))
        >>> both = RfmQuantiles()
        >>> both.merge(west)
        >>> both.merge(east)
        >>> both.population
        2
        >>> cuts = both.boundaries(1_746_100_800.0)
        >>> cuts.frequency[0] == both.bucket_edge(2)
        True
    """

    __slots__ = (
        "_frequency",
        "_gamma",
        "_log_gamma",
        "_monetary",
        "_population",
        "_recency",
        "_relative_error",
        "_resolution",
    )

    def __init__(
        self,
        *,
        relative_error: float = 0.01,
        recency_resolution: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        if not 0.0 < relative_error < 1.0:
            raise ValueError(f"relative_error must be in (0, 1), got {relative_error!r}")
        resolution = recency_resolution.total_seconds()
        if resolution <= 0:
            raise ValueError("recency_resolution must be positive")
        self._relative_error = float(relative_error)
        self._gamma = 1.0 + self._relative_error
        self._log_gamma = math.log(self._gamma)
        self._resolution = resolution
        self._population = 0
        self._recency: dict[int, int] = {}
        self._frequency: dict[int, int] = {}
        self._monetary: dict[int, int] = {}

    @property
    def population(self) -> int:
        """Customers added minus customers removed."""
        return self._population

    def bucket_edge(self, value: float) -> float:
        """The upper edge of the frequency/monetary bucket holding ``value``: its cut point.

        Raises:
            ValueError: ``value`` is not finite or is 1e100 or more.
        """
        key = self._log_key(_magnitude(value, "value"))
        return 0.0 if key == _ZERO_KEY else self._gamma**key

    def _log_key(self, v: float) -> int:
        if v == 0.0:
            return _ZERO_KEY
        gamma = self._gamma
        key = math.ceil(math.log(v) / self._log_gamma)
        # The logarithm may be off by an ulp: settle the key so that the edges computed as
        # ``gamma ** key`` (the cut points) bracket the value exactly.
        while gamma**key < v:
            key += 1
        while gamma ** (key - 1) >= v:
            key -= 1
        return key

    def _recency_key(self, last_purchase: float) -> int:
        size = self._resolution
        key = math.ceil(last_purchase / size)
        while key * size < last_purchase:
            key += 1
        while (key - 1) * size >= last_purchase:
            key -= 1
        return key

    def _keys(self, values: RfmValues) -> tuple[int, int, int]:
        return (
            self._recency_key(_seconds(values.last_purchase)),
            self._log_key(_magnitude(values.frequency, "frequency")),
            self._log_key(_magnitude(values.monetary, "monetary")),
        )

    def _apply(self, keys: tuple[int, int, int], n: int) -> None:
        _bump(self._recency, keys[0], n)
        _bump(self._frequency, keys[1], n)
        _bump(self._monetary, keys[2], n)
        self._population += n

    def add(self, values: RfmValues) -> None:
        """Count a customer with these values.

        Raises:
            ValueError: a value is not finite (nothing is counted then).
        """
        self._apply(self._keys(values), 1)

    def remove(self, values: RfmValues) -> None:
        """Uncount a customer with these values (the values it was added with).

        Raises:
            ValueError: a value is not finite (nothing is uncounted then).
        """
        self._apply(self._keys(values), -1)

    def replace(self, old: RfmValues | None, new: RfmValues | None) -> None:
        """Swap a customer's old values (``None``: new customer) for new ones (``None``: gone).

        Raises:
            ValueError: a value is not finite (nothing changes then).
        """
        old_keys = None if old is None else self._keys(old)
        new_keys = None if new is None else self._keys(new)
        if old_keys is not None:
            self._apply(old_keys, -1)
        if new_keys is not None:
            self._apply(new_keys, 1)

    def merge(self, other: RfmQuantiles) -> None:
        """Add ``other``'s counts to this structure (``other`` is left as it is).

        Raises:
            ValueError: the two have different bucket settings.
        """
        if (other._relative_error, other._resolution) != (self._relative_error, self._resolution):
            raise ValueError("cannot merge RfmQuantiles with different bucket settings")
        for mine, theirs in (
            (self._recency, other._recency),
            (self._frequency, other._frequency),
            (self._monetary, other._monetary),
        ):
            for key, count in theirs.items():
                _bump(mine, key, count)
        self._population += other._population

    def boundaries(self, now: Moment) -> RfmBoundaries:
        """Return the quintile cut points, with recency measured at event time ``now``.

        Raises:
            ValueError: a bucket count is negative (more removed than added).
        """
        as_of = _seconds(now)
        dims = (self._recency, self._frequency, self._monetary)
        if any(count < 0 for counts in dims for count in counts.values()):
            raise ValueError("a bucket count is negative: values removed that were not added")
        n = self._population
        if n == 0:
            return RfmBoundaries(as_of, 0, (), (), ())
        size = self._resolution
        recency = tuple(
            as_of - (key - 1) * size for key in _cut_keys(self._recency, n, freshest_first=True)
        )
        return RfmBoundaries(
            as_of, n, recency, self._edges(self._frequency, n), self._edges(self._monetary, n)
        )

    def _edges(self, counts: dict[int, int], n: int) -> tuple[float, ...]:
        return tuple(
            0.0 if key == _ZERO_KEY else self._gamma**key
            for key in _cut_keys(counts, n, freshest_first=False)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RfmQuantiles):
            return NotImplemented
        return (
            self._relative_error == other._relative_error
            and self._resolution == other._resolution
            and self._population == other._population
            and self._recency == other._recency
            and self._frequency == other._frequency
            and self._monetary == other._monetary
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"RfmQuantiles(population={self._population}, buckets="
            f"{len(self._recency)}/{len(self._frequency)}/{len(self._monetary)})"
        )


class SegmentTransition(NamedTuple):
    """A customer moved from one segment to another at event time ``t`` (epoch seconds).

    ``previous`` is ``None`` when the customer entered the population, ``current`` is
    ``None`` when they left it: exit ``previous`` and enter ``current``. It names no
    customer, so it can be emitted or counted as it is.
    """

    previous: Segment | None
    current: Segment | None
    t: float


class SegmentUpdate(NamedTuple):
    """What ``SegmentTracker.update`` returns: the segment now, and the change if any."""

    segment: Segment | None
    transition: SegmentTransition | None


class SegmentTracker:
    """One customer's segment over event time, and the transitions between segments.

    The latest event time wins: an update older than the latest one seen (by ``update``
    or ``leave``) changes nothing and returns the segment held. At the same event time the
    later call wins. Tiny and picklable: a segment and two floats.

    Example:
        >>> tracker = SegmentTracker()
        >>> now, change = tracker.update(RfmScores(5, 1, 1), 100.0)
        >>> print(now, "|", change.previous, "->", change.current, "at", change.t)
        New | None -> New at 100.0
        >>> tracker.update(RfmScores(5, 1, 1), 200.0).transition is None
        True
        >>> now, change = tracker.update(RfmScores(4, 5, 4), 300.0)
        >>> print(now, "|", change.previous, "->", change.current, "at", change.t)
        Champions | New -> Champions at 300.0
        >>> tracker.update(RfmScores(1, 1, 1), 250.0)  # older than the latest: no change
        SegmentUpdate(segment=<Segment.CHAMPIONS: 'Champions'>, transition=None)
    """

    __slots__ = ("_at", "_segment", "_since")

    def __init__(self) -> None:
        self._segment: Segment | None = None
        self._since = _NEVER
        self._at = _NEVER

    @property
    def segment(self) -> Segment | None:
        """The current segment; ``None`` before the first update and after ``leave``."""
        return self._segment

    @property
    def since(self) -> float:
        """Event time the current segment (or absence) started; ``-inf`` if never updated."""
        return self._since

    def update(self, scores: RfmScores, t: Moment) -> SegmentUpdate:
        """Place the customer by their scores at event time ``t``.

        Raises:
            ValueError: a score is not an integer 1..5, or ``t`` is not a valid time.
        """
        at = _seconds(t)
        current = scores.segment
        if at < self._at:
            return SegmentUpdate(self._segment, None)
        return SegmentUpdate(current, self._move(current, at))

    def leave(self, t: Moment) -> SegmentTransition | None:
        """Take the customer out of every segment (erased, or no longer a buyer)."""
        at = _seconds(t)
        if at < self._at:
            return None
        return self._move(None, at)

    def _move(self, current: Segment | None, at: float) -> SegmentTransition | None:
        self._at = at
        previous = self._segment
        if current == previous:
            return None
        self._segment = current
        self._since = at
        return SegmentTransition(previous, current, at)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SegmentTracker):
            return NotImplemented
        return (self._segment, self._since, self._at) == (other._segment, other._since, other._at)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"SegmentTracker(segment={self._segment!r}, since={self._since!r})"
