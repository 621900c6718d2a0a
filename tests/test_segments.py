"""RFM segments: the segment table, quintile boundaries and their error, scores, merging
shards in any order, transitions, recency timers, and pickling mid-stream."""

from __future__ import annotations

import copy
import datetime as dt
import math
import pickle
import random
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.segments import (
    SEGMENT_RULES,
    RfmBoundaries,
    RfmQuantiles,
    RfmScores,
    RfmValues,
    Segment,
    SegmentTracker,
    SegmentTransition,
    next_recency_drop,
    segment,
)

DAY = 86_400.0
HOUR = 3_600.0
NOW = dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC).timestamp()  # on an hour boundary
_T = TypeVar("_T")


def _snapshot(value: _T) -> _T:
    """Pickle and unpickle, as a Bytewax snapshot and recovery do."""
    restored: _T = pickle.loads(pickle.dumps(value))  # noqa: S301  # bytes we just wrote
    return restored


# ---------------------------------------------------------------------------- the table

_ABBREVIATIONS = {
    "Cha": Segment.CHAMPIONS,
    "Loy": Segment.LOYAL,
    "PL": Segment.POTENTIAL_LOYALIST,
    "New": Segment.NEW,
    "Pro": Segment.PROMISING,
    "NA": Segment.NEED_ATTENTION,
    "AR": Segment.AT_RISK,
    "CL": Segment.CANT_LOSE,
    "Hib": Segment.HIBERNATING,
    "Los": Segment.LOST,
}
# Written out by hand from the published table (module docstring): rows R, columns
# FM = (F + M) / 2 from 1 to 5 in steps of 0.5.
_GRID = {
    5: "New PL  PL  PL  Loy Loy Cha Cha Cha",
    4: "New PL  PL  PL  Loy Loy Cha Cha Cha",
    3: "Pro PL  NA  NA  Loy Loy Loy Loy Loy",
    2: "Hib Hib NA  NA  Loy Loy Loy Loy Loy",
    1: "Los Los AR  AR  AR  AR  CL  CL  CL",
}


def test_every_score_triple_maps_to_exactly_the_expected_segment() -> None:
    seen: set[Segment] = set()
    for r in range(1, 6):
        row = [_ABBREVIATIONS[name] for name in _GRID[r].split()]
        for f in range(1, 6):
            for m in range(1, 6):
                found = segment(r, f, m)
                assert found is row[f + m - 2], (r, f, m)
                assert RfmScores(r, f, m).segment is found
                # The first matching rule decides; later rules may overlap, never contradict.
                first = next(rule for rule in SEGMENT_RULES if rule.matches(r, f, m))
                assert first.segment is found
                seen.add(found)
    assert seen == set(Segment)
    assert len(Segment) == 10
    assert [str(s) for s in Segment] == [
        "Champions", "Loyal", "Potential Loyalist", "New", "Promising", "Need Attention",
        "At Risk", "Can't Lose", "Hibernating", "Lost",
    ]  # fmt: skip


@pytest.mark.parametrize("bad", [(0, 3, 3), (6, 3, 3), (3, 3, 0), (3, 6, 3), (3.0, 3, 3)])
def test_segment_refuses_scores_outside_one_to_five(bad: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"integers 1\.\.5"):
        segment(*bad)


def test_segment_refuses_booleans() -> None:
    with pytest.raises(ValueError, match=r"integers 1\.\.5"):
        segment(True, 1, 1)


# ---------------------------------------------------- a hand-built population of twenty

# R, F and M each take every score exactly four times, so with 20 customers the quintile
# blocks are known in advance. Frequencies tie within a block on purpose.
_DAYS_AGO: dict[int, list[float]] = {
    5: [0.5, 1, 2, 3], 4: [7, 8, 9, 10], 3: [20, 25, 30, 35], 2: [60, 70, 80, 90],
    1: [200, 300, 400, 500],
}  # fmt: skip
_ORDERS = {1: 1, 2: 2, 3: 3, 4: 5, 5: 9}
_REVENUE = {1: [10, 12, 14, 16], 2: [30, 35, 40, 45], 3: [80, 90, 100, 110],
            4: [200, 250, 300, 350], 5: [1_000, 1_500, 2_000, 2_500]}  # fmt: skip
_PLAN = {  # customer: (R, F, M, segment)
    "c01": (5, 5, 5, Segment.CHAMPIONS),
    "c02": (5, 1, 1, Segment.NEW),
    "c03": (5, 2, 2, Segment.POTENTIAL_LOYALIST),
    "c04": (5, 3, 4, Segment.LOYAL),
    "c05": (4, 4, 5, Segment.CHAMPIONS),
    "c06": (4, 2, 3, Segment.POTENTIAL_LOYALIST),
    "c07": (4, 4, 3, Segment.LOYAL),
    "c08": (4, 3, 1, Segment.POTENTIAL_LOYALIST),
    "c09": (3, 1, 1, Segment.PROMISING),
    "c10": (3, 2, 3, Segment.NEED_ATTENTION),
    "c11": (3, 1, 2, Segment.POTENTIAL_LOYALIST),
    "c12": (3, 5, 4, Segment.LOYAL),
    "c13": (2, 1, 2, Segment.HIBERNATING),
    "c14": (2, 3, 2, Segment.NEED_ATTENTION),
    "c15": (2, 4, 4, Segment.LOYAL),
    "c16": (2, 5, 5, Segment.LOYAL),
    "c17": (1, 2, 1, Segment.LOST),
    "c18": (1, 3, 3, Segment.AT_RISK),
    "c19": (1, 5, 4, Segment.CANT_LOSE),
    "c20": (1, 4, 5, Segment.CANT_LOSE),
}


def _population() -> dict[str, RfmValues]:
    days = {score: list(values) for score, values in _DAYS_AGO.items()}
    revenue = {score: list(values) for score, values in _REVENUE.items()}
    return {
        customer: RfmValues(NOW - days[r].pop() * DAY, _ORDERS[f], revenue[m].pop())
        for customer, (r, f, m, _) in _PLAN.items()
    }


def test_hand_built_population_gets_exact_scores_and_segments() -> None:
    population = _population()
    quantiles = RfmQuantiles()
    for values in population.values():
        quantiles.add(values)
    cuts = quantiles.boundaries(NOW)
    assert cuts.population == 20
    # Recency: the 4th, 8th, 12th and 16th freshest, each to its hour bucket's older edge.
    assert cuts.recency_seconds == tuple(d * DAY + HOUR for d in (3, 10, 35, 90))
    assert cuts.frequency == tuple(quantiles.bucket_edge(v) for v in (1, 2, 3, 5))
    assert cuts.monetary == tuple(quantiles.bucket_edge(v) for v in (16, 45, 110, 350))
    assert cuts.frequency[0] == 1.0
    scored = {customer: cuts.score(values, NOW) for customer, values in population.items()}
    assert scored == {customer: RfmScores(*plan[:3]) for customer, plan in _PLAN.items()}
    members: dict[Segment, set[str]] = {}
    for customer, scores in scored.items():
        members.setdefault(scores.segment, set()).add(customer)
    assert members == {
        Segment.CHAMPIONS: {"c01", "c05"},
        Segment.LOYAL: {"c04", "c07", "c12", "c15", "c16"},
        Segment.POTENTIAL_LOYALIST: {"c03", "c06", "c08", "c11"},
        Segment.NEW: {"c02"},
        Segment.PROMISING: {"c09"},
        Segment.NEED_ATTENTION: {"c10", "c14"},
        Segment.AT_RISK: {"c18"},
        Segment.CANT_LOSE: {"c19", "c20"},
        Segment.HIBERNATING: {"c13"},
        Segment.LOST: {"c17"},
    }


def test_a_customer_who_buys_again_moves_and_the_population_follows() -> None:
    population = _population()
    quantiles = RfmQuantiles()
    for values in population.values():
        quantiles.add(values)
    # c17 (Lost) buys now: fresher than everyone, third order, 150.00 more revenue.
    old = population["c17"]
    new = RfmValues(NOW, old.frequency + 1, old.monetary + 150)
    quantiles.replace(old, new)
    assert quantiles.population == 20
    cuts = quantiles.boundaries(NOW)
    # Third order: the 3-order block now runs past the 60 % rank, F falls to 2; 160.00
    # is itself the 60 % cut point: M 3.
    assert cuts.score(new, NOW) == RfmScores(5, 2, 3)
    assert cuts.score(new, NOW).segment is Segment.POTENTIAL_LOYALIST
    # Everyone fresher than c17 was shifts by one rank: the freshest block keeps 4 members.
    assert cuts.recency_seconds[0] == 2 * DAY + HOUR


def test_ties_never_split_and_a_lone_customer_is_new() -> None:
    quantiles = RfmQuantiles()
    values = RfmValues(NOW - 5 * DAY, 1, 20.0)
    quantiles.add(values)
    lone = quantiles.boundaries(NOW)
    assert lone.score(values, NOW) == RfmScores(5, 1, 1)
    assert lone.score(values, NOW).segment is Segment.NEW
    for _ in range(6):
        quantiles.add(values)
    tied = quantiles.boundaries(NOW)
    assert tied.score(values, NOW) == RfmScores(5, 1, 1)  # all seven identical: one block
    assert len(set(tied.frequency)) == 1


def test_empty_population_scores_three_and_never_drops() -> None:
    cuts = RfmQuantiles().boundaries(NOW)
    assert cuts == RfmBoundaries(NOW, 0, (), (), ())
    values = RfmValues(NOW - 400 * DAY, 1, 1.0)
    assert cuts.score(values, NOW) == RfmScores(3, 3, 3)
    assert next_recency_drop(cuts, values.last_purchase, NOW) is None


def test_scores_at_the_cut_points_themselves() -> None:
    cuts = RfmBoundaries(NOW, 5, (DAY, 2 * DAY, 3 * DAY, 4 * DAY), (1, 2, 3, 4), (1, 2, 3, 4))
    assert [cuts.frequency_score(v) for v in (0, 1, 1.5, 2, 4, 4.01)] == [1, 1, 2, 2, 4, 5]
    assert cuts.monetary_score(-30.0) == 1  # a net refund counts as 0
    # Recency that reaches a cut point is in the older block.
    last = NOW - 2 * DAY
    assert cuts.recency_score(last, NOW) == 3
    assert cuts.recency_score(last, NOW - 1) == 4
    assert cuts.recency_days == (1.0, 2.0, 3.0, 4.0)


def test_datetimes_and_epoch_seconds_agree_and_naive_datetimes_are_refused() -> None:
    quantiles = RfmQuantiles()
    for values in _population().values():
        quantiles.add(values)
    at = dt.datetime.fromtimestamp(NOW, dt.UTC)
    assert quantiles.boundaries(at) == quantiles.boundaries(NOW)
    cuts = quantiles.boundaries(NOW)
    last = at - dt.timedelta(days=9)
    assert cuts.recency_score(last, at) == cuts.recency_score(NOW - 9 * DAY, NOW) == 4
    with pytest.raises(ValueError, match="naive"):
        quantiles.boundaries(at.replace(tzinfo=None))


@pytest.mark.parametrize(
    "bad",
    [
        RfmValues(NOW, math.nan, 1.0),
        RfmValues(NOW, 1, math.inf),
        RfmValues(math.nan, 1, 1.0),
        RfmValues(NOW, 1, 1e100),
    ],
)
def test_bad_values_are_refused_and_change_nothing(bad: RfmValues) -> None:
    quantiles = RfmQuantiles()
    good = RfmValues(NOW, 2, 30.0)
    quantiles.add(good)
    before = copy.deepcopy(quantiles)
    with pytest.raises(ValueError, match="finite"):
        quantiles.add(bad)
    with pytest.raises(ValueError, match="finite"):
        quantiles.replace(good, bad)
    assert quantiles == before


def test_removing_more_than_was_added_is_refused_when_reading() -> None:
    quantiles = RfmQuantiles()
    quantiles.add(RfmValues(NOW, 2, 30.0))
    quantiles.remove(RfmValues(NOW - DAY, 2, 30.0))
    quantiles.add(RfmValues(NOW - 3 * DAY, 2, 30.0))
    assert quantiles.population == 1
    with pytest.raises(ValueError, match="negative"):
        quantiles.boundaries(NOW)
    # The missing add arrives: counts commute, the structure is whole again.
    quantiles.add(RfmValues(NOW - DAY, 2, 30.0))
    assert quantiles.boundaries(NOW).population == 2


def test_merge_refuses_different_bucket_settings() -> None:
    with pytest.raises(ValueError, match="bucket settings"):
        RfmQuantiles().merge(RfmQuantiles(relative_error=0.02))
    with pytest.raises(ValueError, match="relative_error"):
        RfmQuantiles(relative_error=0.0)
    with pytest.raises(ValueError, match="recency_resolution"):
        RfmQuantiles(recency_resolution=dt.timedelta(0))


# -------------------------------------------------------- error bounds of the cut points

_amounts = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.01, max_value=1e7, allow_nan=False),
    st.integers(min_value=1, max_value=300).map(float),
)


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=3 * 365 * DAY), _amounts, _amounts),
        min_size=1,
        max_size=60,
    )
)
def test_cut_points_are_within_the_documented_error(
    rows: list[tuple[float, float, float]],
) -> None:
    quantiles = RfmQuantiles()
    for ago, frequency, monetary in rows:
        quantiles.add(RfmValues(NOW - ago, frequency, monetary))
    cuts = quantiles.boundaries(NOW)
    n = len(rows)
    ranks = [-(-j * n // 5) for j in (1, 2, 3, 4)]
    for column, got in ((1, cuts.frequency), (2, cuts.monetary)):
        exact = sorted(row[column] for row in rows)
        for rank, cut in zip(ranks, got, strict=True):
            q = exact[rank - 1]
            assert q <= cut < q * 1.01 or q == cut == 0.0
    recency = sorted(NOW - (NOW - row[0]) for row in rows)
    for rank, cut in zip(ranks, cuts.recency_seconds, strict=True):
        q = recency[rank - 1]
        assert q < cut + 1e-6
        assert cut <= q + HOUR + 1e-6


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=800 * DAY), _amounts, _amounts),
        min_size=1,
        max_size=40,
    )
)
def test_scores_follow_rank_blocks_and_equal_values_score_equally(
    rows: list[tuple[float, float, float]],
) -> None:
    quantiles = RfmQuantiles()
    values = [RfmValues(NOW - ago, f, m) for ago, f, m in rows]
    for v in values:
        quantiles.add(v)
    cuts = quantiles.boundaries(NOW)
    scores = [cuts.score(v, NOW) for v in values]
    for a, sa in zip(values, scores, strict=True):
        for b, sb in zip(values, scores, strict=True):
            if a.frequency < b.frequency:
                assert sa.f <= sb.f
            if a.monetary == b.monetary:
                assert sa.m == sb.m
            if a.last_purchase > b.last_purchase:  # fresher
                assert sa.r >= sb.r
    assert max(s.r for s in scores) == 5  # the freshest block always exists


# ------------------------------------------------------------- merging, in any order


_customer_histories = st.lists(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=2 * 365 * DAY),
            st.integers(min_value=1, max_value=40),
            st.floats(min_value=0, max_value=5e4),
        ),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=12,
)


def _operations(
    histories: list[list[tuple[float, int, float]]],
) -> list[tuple[int, int, RfmValues]]:
    """Every customer's updates as (customer, +1 or -1, values): add, then replace..."""
    ops: list[tuple[int, int, RfmValues]] = []
    for customer, history in enumerate(histories):
        previous: RfmValues | None = None
        for ago, frequency, monetary in history:
            values = RfmValues(NOW - ago, frequency, monetary)
            if previous is not None:
                ops.append((customer, -1, previous))
            ops.append((customer, 1, values))
            previous = values
    return ops


def _apply(quantiles: RfmQuantiles, op: tuple[int, int, RfmValues]) -> None:
    _, sign, values = op
    if sign > 0:
        quantiles.add(values)
    else:
        quantiles.remove(values)


@given(_customer_histories, st.randoms(use_true_random=False))
def test_shards_merged_in_any_order_equal_one_structure(
    histories: list[list[tuple[float, int, float]]], rng: random.Random
) -> None:
    ops = _operations(histories)
    whole = RfmQuantiles()
    for op in ops:
        _apply(whole, op)
    assert whole.population == len(histories)
    # Each customer lives on one shard; each shard sees its updates interleaved at random,
    # and even removals before their additions (a delta) commute.
    shuffled = list(ops)
    rng.shuffle(shuffled)
    shards = [RfmQuantiles(), RfmQuantiles(), RfmQuantiles()]
    for op in shuffled:
        _apply(shards[op[0] % 3], op)
    forward, backward = RfmQuantiles(), RfmQuantiles()
    for shard in shards:
        forward.merge(shard)
    for shard in reversed(shards):
        backward.merge(shard)
    assert forward == backward == whole
    assert forward.boundaries(NOW) == whole.boundaries(NOW)


def test_merge_does_not_mutate_its_argument_and_repr_is_short() -> None:
    east, west = RfmQuantiles(), RfmQuantiles()
    for i, values in enumerate(_population().values()):
        (east if i % 2 else west).add(values)
    frozen = copy.deepcopy(west)
    east.merge(west)
    assert west == frozen
    assert east.population == 20
    assert repr(east).startswith("RfmQuantiles(population=20, buckets=")


def test_pickled_mid_stream_quantiles_continue_the_same() -> None:
    values = list(_population().values())
    straight, paused = RfmQuantiles(), RfmQuantiles()
    for v in values[:10]:
        straight.add(v)
        paused.add(v)
    paused = _snapshot(paused)
    for v in values[10:]:
        straight.add(v)
        paused.add(v)
    paused.replace(values[0], values[0]._replace(frequency=7))
    straight.replace(values[0], values[0]._replace(frequency=7))
    assert paused == straight
    assert paused.boundaries(NOW) == straight.boundaries(NOW)


# ------------------------------------------------------------------ segment transitions


def test_tracker_reports_entries_and_exits_at_their_event_times() -> None:
    tracker = SegmentTracker()
    steps = [
        (RfmScores(5, 1, 1), 100.0),  # first order: New
        (RfmScores(5, 1, 2), 150.0),  # FM 1.5: Potential Loyalist
        (RfmScores(4, 1, 2), 200.0),  # still Potential Loyalist
        (RfmScores(5, 4, 5), 300.0),  # Champions
        (RfmScores(3, 1, 1), 250.0),  # older than the latest: ignored
        (RfmScores(1, 4, 5), 400.0),  # Can't Lose
    ]
    results = [tracker.update(scores, t) for scores, t in steps]
    assert [r.segment for r in results] == [
        Segment.NEW,
        Segment.POTENTIAL_LOYALIST,
        Segment.POTENTIAL_LOYALIST,
        Segment.CHAMPIONS,
        Segment.CHAMPIONS,
        Segment.CANT_LOSE,
    ]
    assert [r.transition for r in results] == [
        SegmentTransition(None, Segment.NEW, 100.0),
        SegmentTransition(Segment.NEW, Segment.POTENTIAL_LOYALIST, 150.0),
        None,
        SegmentTransition(Segment.POTENTIAL_LOYALIST, Segment.CHAMPIONS, 300.0),
        None,
        SegmentTransition(Segment.CHAMPIONS, Segment.CANT_LOSE, 400.0),
    ]
    assert tracker.segment is Segment.CANT_LOSE
    assert tracker.since == 400.0
    assert tracker.leave(500.0) == SegmentTransition(Segment.CANT_LOSE, None, 500.0)
    assert tracker.leave(600.0) is None
    assert tracker.update(RfmScores(5, 5, 5), 550.0) == (None, None)  # stale after leaving
    back = tracker.update(RfmScores(5, 5, 5), 700.0)
    assert back.transition == SegmentTransition(None, Segment.CHAMPIONS, 700.0)


def test_membership_sets_follow_transitions_of_many_customers() -> None:
    """A flow keeps ``segment -> customers`` from transitions alone; it matches the truth."""
    population = _population()
    quantiles = RfmQuantiles()
    for values in population.values():
        quantiles.add(values)
    trackers = {customer: SegmentTracker() for customer in population}
    members: dict[Segment, set[str]] = {s: set() for s in Segment}

    def evaluate(at: float) -> None:
        cuts = quantiles.boundaries(at)
        for customer, values in sorted(population.items()):
            change = trackers[customer].update(cuts.score(values, at), at).transition
            if change is not None:
                if change.previous is not None:
                    members[change.previous].discard(customer)
                if change.current is not None:
                    members[change.current].add(customer)

    evaluate(NOW)
    assert members[Segment.LOST] == {"c17"}
    # A month later c09 and c13 each buy twice more; the population is re-read.
    later = NOW + 30 * DAY
    for customer, revenue in (("c09", 400.0), ("c13", 90.0)):
        old = population[customer]
        new = RfmValues(later, old.frequency + 2, old.monetary + revenue)
        quantiles.replace(old, new)
        population[customer] = new
    evaluate(later)
    truth: dict[Segment, set[str]] = {s: set() for s in Segment}
    cuts = quantiles.boundaries(later)
    for customer, values in population.items():
        truth[cuts.score(values, later).segment].add(customer)
    assert members == truth
    assert "c09" in members[Segment.LOYAL]


def test_pickled_tracker_continues_the_same() -> None:
    straight, paused = SegmentTracker(), SegmentTracker()
    for tracker in (straight, paused):
        tracker.update(RfmScores(5, 1, 1), 10.0)
    paused = _snapshot(paused)
    assert paused == straight
    assert paused.update(RfmScores(1, 1, 1), 20.0) == straight.update(RfmScores(1, 1, 1), 20.0)
    assert paused == straight


# --------------------------------------------------------------------- recency timers


def test_a_silent_customer_drops_at_each_cut_point_and_a_timer_sees_it() -> None:
    cuts = RfmBoundaries(
        NOW, 20, (3 * DAY, 10 * DAY, 35 * DAY, 90 * DAY), (1, 2, 3, 5), (1, 2, 3, 4)
    )
    last = NOW - 0.5 * DAY
    t = NOW
    seen = [(t, cuts.recency_score(last, t))]
    while (due := next_recency_drop(cuts, last, t)) is not None:
        assert due > t
        assert cuts.recency_score(last, due - 1e-3) == seen[-1][1]
        t = due
        seen.append((t, cuts.recency_score(last, t)))
    assert seen == [
        (NOW, 5),
        (last + 3 * DAY, 4),
        (last + 10 * DAY, 3),
        (last + 35 * DAY, 2),
        (last + 90 * DAY, 1),
    ]


@given(
    st.floats(min_value=1e9, max_value=2e9),
    st.floats(min_value=0, max_value=400 * DAY),
    st.lists(st.floats(min_value=1, max_value=500 * DAY), min_size=4, max_size=4).map(sorted),
)
def test_next_recency_drop_lands_exactly_where_the_score_falls(
    last: float, ago: float, recency_cuts: list[float]
) -> None:
    cuts = RfmBoundaries(0.0, 5, tuple(recency_cuts), (1, 2, 3, 4), (1, 2, 3, 4))
    t = last + ago
    now = cuts.recency_score(last, t)
    due = next_recency_drop(cuts, last, t)
    if now == 1:
        assert due is None
        return
    assert due is not None
    assert due > t
    assert cuts.recency_score(last, due) < now
    assert cuts.recency_score(last, due - 1e-3) == now or due - 1e-3 <= t
