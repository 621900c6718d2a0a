"""``CustomerProfile``: one customer's state, folded from events on event time."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import events
from feature_store import BucketCounts
from flows.profile._affinity import DecayedScores
from flows.profile._cart import Cart
from flows.profile._churn import ChurnTracker, Example, Resolved
from flows.profile._churn_features import churn_features
from flows.profile._features import (
    ACTIVITY,
    AFFINITY,
    CART,
    CHURN,
    CLV,
    GROUPS,
    INTERACTIONS,
    LOYALTY,
    ORDERS,
    build_group,
)
from flows.profile._format import MONEY_SCALE, NEVER, id_hash, iso, json_text
from flows.profile._handlers import HANDLERS, YEAR
from flows.profile._triggers import ContextLog
from models.loyalty import LoyaltyAccount, LoyaltyPolicy, TierChange
from models.offers import Candidate, ContactBook

__all__ = ["CustomerProfile"]


def _example(
    at: float, x: dict[str, float], score: Callable[[dict[str, float]], tuple[float, str]] | None
) -> Example:
    p, version = score(x) if score is not None else (math.nan, "")
    return Example(at, x, p, version)


_ALL_DIRTY: Final = [None] * len(GROUPS)

RECENT_MAX: Final = 50
SESSIONS_MAX: Final = 200
_SESSION_MEMORY: Final = 86_400.0
_BLOCK: Final = 300  # finest bucket size: pruning only changes at multiples of it

_UINT32: Final = 2**32 - 1
# State that is pickled, in this order; the feature caches are rebuilt after a restore.
_STATE: Final = (
    "_lateness", "_dedupe_horizon", "_dedupe_max", "_erased", "_seq", "_seen", "_first",
    "_last", "_block", "_gts", "_channels", "_sessions", "_views", "_adds", "_orders_win",
    "_session_win", "_orders", "_orders_oldest", "_orders_total", "_revenue",
    "_last_purchase", "_cart", "_categories", "_brands", "_recent", "_refunds", "_refunded",
    "_refunded_ids", "_refunded_orders", "_tickets", "_nps", "_csat", "_consent", "_traits",
    "_churn", "_loyalty", "_tier_change", "_clv_days", "_clv", "_customer", "_offers",
    "_context", "_asked", "_decided",
)  # fmt: skip
_SEEN: Final = _STATE.index("_seen")
_SESSIONS: Final = _STATE.index("_sessions")
# Nested state objects are pickled as their own state tuples (the pickler then writes
# builtins only, no class lookups and reduce calls per object): index -> class.
_NESTED: Final[tuple[tuple[int, type[BucketCounts | Cart | DecayedScores]], ...]] = tuple(
    (i, cls)
    for cls, names in (
        (BucketCounts, ("_views", "_adds", "_orders_win", "_session_win")),
        (Cart, ("_cart",)),
        (DecayedScores, ("_categories", "_brands")),
    )
    for i in (_STATE.index(name) for name in names)
)
_WINDOW_GROUPS: Final = (ACTIVITY, ACTIVITY, ORDERS, ACTIVITY)  # group of each of _windows()


class CustomerProfile:
    """One customer's live features, folded from events on event time; no clock, no I/O.

    ``apply`` folds an event in; ``features`` returns the Redis hash (every value a string;
    the field list is in ``flows.profile._features``). Any arrival order of the same events
    within the allowed lateness gives the same features. Most features (counts, sums,
    windows, latest-wins values, ``recent``) are order-independent whatever the lateness;
    the exceptions beyond it: a cart event older than the watermark (latest event time minus
    ``lateness``) is left out of the cart, a session is remembered for a day beyond the
    lateness, and more than 20 categories or brands make the kept top 20 approximate.
    Ties in event time are broken by a hash of ``message_id``, never by arrival.

    Dedupe: ``message_id`` s are remembered (as 64-bit hashes) for ``dedupe_horizon`` of
    event time behind the latest event and at most ``dedupe_max`` of them, oldest forgotten
    first; a duplicate beyond that bound is applied again. An ``Order Completed`` whose
    ``order_id`` is already in the 365-day orders log is a duplicate too (the first copy
    wins).

    Erasure: ``Deletion Requested`` clears the state and sets ``erased``; the flow deletes
    the customer's keys and must keep this (tiny) profile in its state, because an erased
    profile ignores every later event, including a replay of earlier ones.

    Args:
        lateness: How late an event may arrive and still be placed exactly (cart replay);
            window buckets and the orders log are also kept this much longer.
        dedupe_horizon: How far behind the latest event time ids are remembered.
        dedupe_max: At most this many ids are remembered.

    Example:
        >>> import datetime as dt
        >>> import events
        >>> order = events.OrderCompleted(
        ...     message_id="m-1", timestamp=dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC),
        ...     channel="web", customer_id="c-1",
        ...     properties=events.OrderCompletedProperties(
        ...         order_id="O-1", revenue=54.0, currency="EUR",
        ...         products=[events.Product(product_id="P1", price=18.0, currency="EUR",
        ...                                  quantity=3, category="Coffee")]))
        >>> profile = CustomerProfile()
        >>> profile.apply(order), profile.apply(order)
        (True, False)
        >>> features = profile.features()
        >>> features["orders_total"], features["revenue_total"], features["last_purchase_at"]
        ('1', '54.00', '2025-05-01T12:00:00Z')
        >>> features["affinity:category"]
        '[["Coffee",15.0]]'
    """

    __slots__ = (
        *_STATE,
        "_cache",
        "_group_text",
        "_churn_horizon_days",
        "_learned",
        "_loyalty_policy",
        "_made",
        "_tier_changes",
        "_log_last",
        "_log_text",
        "_o365",
        "_o365_until",
        "_recent_text",
        "_unsent",
        "_win_text",
    )

    def __init__(
        self,
        *,
        lateness: dt.timedelta = dt.timedelta(hours=1),
        dedupe_horizon: dt.timedelta = dt.timedelta(days=7),
        dedupe_max: int = 2_000,
        churn_horizon_days: float = 60,
        loyalty: LoyaltyPolicy | None = None,
    ) -> None:
        self._churn_horizon_days = churn_horizon_days
        self._loyalty_policy = loyalty
        self._learned: list[Resolved] = []  # resolved churn examples not yet taken
        self._made: list[Example] = []  # churn examples made, not yet taken
        self._tier_changes: list[TierChange] = []  # tier changes not yet taken
        self._lateness = lateness.total_seconds()
        self._dedupe_horizon = dedupe_horizon.total_seconds()
        self._dedupe_max = dedupe_max
        self._erased = False
        self._seq = 0
        self._customer = ""  # the key of the customer's events, once one is folded
        self._reset()

    def _reset(self) -> None:
        self._churn = ChurnTracker(horizon_days=self._churn_horizon_days)
        self._loyalty = LoyaltyAccount(
            self._loyalty_policy, lateness=dt.timedelta(seconds=self._lateness)
        )
        self._tier_change: TierChange | None = None  # the latest
        # CLV inputs, in purchase days: (first day, last day, distinct days, repeat units)
        self._clv_days: tuple[int, int, int, int] | None = None
        self._clv: dict[str, str] = {}  # the latest CLV scores
        # Made on first use: most customers never raise a trigger, and every container
        # a profile holds is one more object for the collector to walk.
        self._offers: ContactBook | None = None  # offers fired or held out
        # Cart ticks (at, change time) that came before the change itself was folded.
        self._context: ContextLog | None = None  # consent, time zone, tickets, timed
        # Offers raised by events, waiting for their ``decide`` tick; and the latest
        # tick time decided (a candidate raised at or before it is decided at once).
        self._asked: list[Candidate] | None = None
        self._decided = -math.inf
        # message_id hash -> event time in whole seconds (packs into 12 bytes when pickled)
        self._seen: OrderedDict[int, int] = OrderedDict()
        self._first = math.inf
        self._last = NEVER
        self._block = -math.inf  # the finest-bucket block of the last prune
        self._gts = [NEVER] * len(GROUPS)  # event time of each group's last change
        self._channels: dict[str, int] = {}
        self._sessions: OrderedDict[str, float] = OrderedDict()  # session -> first event time
        self._views = BucketCounts()
        self._adds = BucketCounts()
        self._orders_win = BucketCounts()
        self._session_win = BucketCounts()
        self._orders: dict[str, tuple[float, int]] = {}  # order_id -> (time, revenue units)
        self._orders_oldest = math.inf  # the earliest time in _orders
        self._orders_total = 0
        self._revenue = 0
        self._last_purchase = NEVER
        self._cart = Cart()
        self._categories = DecayedScores()
        self._brands = DecayedScores()
        self._recent: list[tuple[float, int, int, str]] = []  # (t, tie, line, JSON), oldest 1st
        self._refunds = 0
        self._refunded = 0
        self._refunded_ids: dict[str, None] = {}
        self._refunded_orders = 0
        self._tickets: dict[str, tuple[float, int, bool]] = {}  # id -> (t, tie, is open)
        self._nps: tuple[float, int, int] | None = None
        self._csat: tuple[float, int, int] | None = None
        self._consent: dict[str, tuple[float, int, bool]] = {}
        self._traits: dict[str, tuple[float, int, str]] = {}
        self._dirty_all()

    def _dirty_all(self) -> None:
        # Encoded features per group and piece, rebuilt only when stale; never pickled.
        self._cache: list[dict[str, str] | None] = list(_ALL_DIRTY)
        self._group_text: list[str | None] = [None] * len(GROUPS)
        # Groups re-encoded since ``changed_features`` last returned them: every group
        # after a restore, so the first write of a resumed profile is a whole one.
        self._unsent: list[bool] = [True] * len(GROUPS)
        self._log_text: str | None = None
        self._log_last: tuple[float, str] | None = None  # (time, id) of its last entry
        self._o365: tuple[int, int] | None = None  # orders and revenue units in 365 d
        self._win_text: list[str | None] = [None] * 4
        self._recent_text: str | None = None  # ``recent`` without its brackets
        self._o365_until = NEVER  # orders_365d holds while last_seen - 365 d < this

    @property
    def erased(self) -> bool:
        """True once ``Deletion Requested`` was applied; every later event is ignored."""
        return self._erased

    @property
    def seq(self) -> int:
        """Events applied so far (monotonic): the sink's guard against older writes."""
        return self._seq

    @property
    def has_purchased(self) -> bool:
        """Whether any ``Order Completed`` was folded (churn is scored from then on)."""
        return self._last_purchase != NEVER

    @property
    def last_seen(self) -> dt.datetime | None:
        """The latest event time applied, if any."""
        return None if self._last == NEVER else dt.datetime.fromtimestamp(self._last, dt.UTC)

    def apply(self, event: events.Event) -> bool:
        """Fold one event in.

        Returns:
            True if applied; False for a duplicate ``message_id`` (or a known ``order_id``),
            for any event once erased, and for events about no customer (catalogue).
        """
        return self.fold(event) is not None

    def fold(self, event: events.Event) -> float | None:
        """Like ``apply``; return the event time (epoch seconds) if applied, else None."""
        handler = HANDLERS.get(type(event))
        if handler is None or self._erased:
            return None
        key = id_hash(event.message_id)
        seen = self._seen
        if key in seen:
            return None
        if type(event) is events.OrderCompleted and event.properties.order_id in self._orders:
            return None
        t = event.timestamp.timestamp()
        self._seq += 1
        if not self._customer:
            self._customer = event.customer_key or ""
        if type(event) is events.DeletionRequested:
            self._erased = True
            self._reset()
            return t
        if type(event) is events.OfferSent:
            # The engine's own message, not the customer's activity: remembered for
            # dedupe only; the customer step records it in the contact book.
            seen[key] = int(t)
            return t
        if t > self._last:
            self._advance(t)
        self._first = min(self._first, t)
        seen[key] = int(t)
        tie = key >> 33  # orders events with equal times; 31 bits pickle in 5 bytes, not 10
        if len(seen) > self._dedupe_max:
            seen.popitem(last=False)
        horizon = self._last - self._dedupe_horizon
        while seen and seen[next(iter(seen))] < horizon:
            seen.popitem(last=False)
        channels = self._channels
        channels[event.channel] = channels.get(event.channel, 0) + 1
        session = event.session_id
        if session is not None:
            self._count_session(session, t)
        self._cache[ACTIVITY] = None  # _touch(ACTIVITY, t), inlined: every event does it
        gts = self._gts
        gts[ACTIVITY] = max(gts[ACTIVITY], t)
        handler(self, event, t, tie)
        return t

    def _advance(self, t: float) -> None:
        """Move the latest event time: the time-relative fields change with it."""
        self._last = t
        cache = self._cache
        cache[AFFINITY] = None  # decayed to last_seen
        if t - YEAR >= self._o365_until:
            cache[ORDERS] = self._o365 = None
        earliest_read = t - self._lateness
        block = earliest_read // _BLOCK
        if block > self._block:
            since = self._block * _BLOCK  # same 5-minute block as the last prune's
            self._block = block
            for i, counts in enumerate(self._windows()):
                if counts.prune_epoch(earliest_read, since=since):
                    self._win_text[i] = None
                    # The group holding the window must be rebuilt too, or features()
                    # would keep serving its text from before the prune.
                    cache[_WINDOW_GROUPS[i]] = None
        cutoff = earliest_read - YEAR
        if self._orders_oldest <= cutoff:
            orders = self._orders
            for order_id in [k for k, v in orders.items() if v[0] <= cutoff]:
                del orders[order_id]
            self._orders_oldest = min((v[0] for v in orders.values()), default=math.inf)
            self._log_text = self._o365 = cache[ORDERS] = None
        sessions = self._sessions
        cutoff = earliest_read - _SESSION_MEMORY
        while sessions and sessions[next(iter(sessions))] < cutoff:
            sessions.popitem(last=False)

    def _windows(self) -> tuple[BucketCounts, BucketCounts, BucketCounts, BucketCounts]:
        return (self._views, self._adds, self._orders_win, self._session_win)

    def _count(self, which: int, t: float, n: int = 1) -> None:
        counts = (
            self._views
            if which == 0
            else self._adds
            if which == 1
            else self._orders_win
            if which == 2
            else self._session_win
        )
        counts.add_epoch(t, n, earliest_read=self._last - self._lateness)
        self._win_text[which] = None

    def _touch(self, group: int, t: float) -> None:
        self._cache[group] = None
        gts = self._gts
        gts[group] = max(gts[group], t)

    # -- churn windows ---------------------------------------------------------------------

    @property
    def churn(self) -> ChurnTracker:
        """The churn window of this customer (labels on event time)."""
        return self._churn

    def churn_tick(
        self,
        at: float,
        window: float,
        score: Callable[[dict[str, float]], tuple[float, str]] | None = None,
    ) -> bool:
        """A due time of the purchase at ``window`` passed the watermark: at the purchase
        itself, label the previous window and open this one; after days of silence,
        score the customer again as of ``at``; at the deadline, label the window churned.

        Purchases reach the churn window through these ticks, in event-time order once
        the watermark has passed them, so late events change no label. Ticks come in
        time order; a repeated one (a duplicate purchase event) changes nothing.

        Args:
            at: The due time (event time, epoch seconds).
            window: The time of the purchase that opened the window.
            score: Predict a churn probability and model version for the features of a new
                example (a backtest's model); without it, examples carry NaN.

        Returns:
            Whether the features changed (``_seq`` then moves on).
        """
        churn = self._churn
        if self._erased or not churn.take_tick(at, window):
            return False
        before = (churn.resolved, churn.deadline)
        if at == window:
            self._count_purchase_day(at)
            self._learned += churn.purchase(at)
            if churn.last_purchase == at:
                example = _example(at, churn_features(self, at), score)
                churn.add(example)
                self._made.append(example)
        elif at >= window + self._churn_horizon_days * 86_400.0:
            if churn.last_purchase == window:
                self._learned += churn.expire(at)
        else:
            example = _example(at, churn_features(self, at), score)
            kept, resolved = churn.pending, churn.rescore(window, example)
            if resolved or churn.pending > kept:
                self._made.append(example)
            self._learned += resolved
        if (churn.resolved, churn.deadline) == before:
            return False
        self._seq += 1
        self._touch(CHURN, at)
        return True

    def _count_purchase_day(self, at: float) -> None:
        # Purchases arrive here in event-time order, once each: a day's orders are one
        # purchase (as BG/NBD counts them), its revenue summed.
        units = sum(u for ts, u in self._orders.values() if ts == at)
        day = int(at // 86_400)
        days = self._clv_days
        if days is None:
            self._clv_days = (day, day, 1, 0)
            return
        first, last, count, repeat = days
        if day != first:
            repeat += units
        if day != last:
            count += 1
        self._clv_days = (first, day, count, repeat)

    def clv_inputs(self, at: float) -> tuple[int, float, float, float] | None:
        """The BG/NBD and Gamma-Gamma inputs as of ``at``, in days: repeat purchase days,
        recency (first to last purchase day), age (first purchase day to ``at``) and the
        mean revenue of the repeat days; None before the first purchase."""
        days = self._clv_days
        if days is None:
            return None
        first, last, count, repeat = days
        frequency = count - 1
        monetary = repeat / MONEY_SCALE / frequency if frequency else 0.0
        return frequency, float(last - first), max(at / 86_400 - first, 0.0), monetary

    def set_clv(self, fields: dict[str, str], at: float) -> None:
        """Keep the latest CLV scores (computed by the flow with the fitted parameters)."""
        self._clv = fields
        self._touch(CLV, at)

    def loyalty_tick(self, at: float) -> bool:
        """Event time passed ``at`` (a purchase's first day out of the loyalty window):
        age the trailing spend, which may lower the tier.

        Returns:
            Whether the features changed (``_seq`` then moves on).
        """
        if self._erased or at <= self._loyalty.clock:
            return False
        change = self._loyalty.advance(at)
        self._seq += 1
        self._tier_changed(change, at)
        return True

    def _tier_changed(self, change: TierChange | None, t: float) -> None:
        if change is not None:
            self._tier_change = change
            self._tier_changes.append(change)
        self._touch(LOYALTY, t)

    def take_tier_changes(self) -> list[TierChange]:
        """The tier changes since the last call (upgrades and downgrades, on event time)."""
        changes, self._tier_changes = self._tier_changes, []
        return changes

    def take_made(self) -> list[Example]:
        """The churn examples made since the last call (to be scored as they are made)."""
        made, self._made = self._made, []
        return made

    def take_learned(self) -> list[Resolved]:
        """The churn examples labelled since the last call."""
        learned, self._learned = self._learned, []
        return learned

    def _count_session(self, session: str, t: float) -> None:
        # A session counts once, at its first event's time, even when that event is late.
        first = self._sessions.get(session)
        if first is None:
            self._sessions[session] = t
            if len(self._sessions) > SESSIONS_MAX:
                self._sessions.popitem(last=False)
            self._count(3, t)
        elif t < first:
            self._sessions[session] = t
            self._count(3, first, -1)
            self._count(3, t)

    def _interact(self, t: float, tie: int, line: int, product_id: str, kind: str) -> None:
        recent = self._recent
        key = (t, tie, line)
        if len(recent) >= RECENT_MAX and key < recent[0][:3]:
            return
        if product_id.isprintable() and '"' not in product_id and "\\" not in product_id:
            # What json_text writes for an id that needs no escapes, without the encoder.
            entry = (t, tie, line, f'["{product_id}","{kind}","{iso(t)}"]')
        else:
            entry = (t, tie, line, json_text([product_id, kind, iso(t)]))
        text = self._recent_text
        if not recent or key > recent[-1][:3]:
            recent.append(entry)
            if text is not None:  # newest first: the new entry goes in front
                text = f"{entry[3]},{text}" if text else entry[3]
        else:
            bisect.insort(recent, entry)
            text = None
        if len(recent) > RECENT_MAX:
            oldest = recent.pop(0)[3]
            if text is not None:
                text = text[: -len(oldest) - 1]
        self._recent_text = text
        self._touch(INTERACTIONS, t)

    def _like(self, product: events.Product, weight: float, t: float) -> None:
        if product.category is not None:
            self._categories.add(product.category, weight, t)
        if product.brand is not None:
            self._brands.add(product.brand, weight, t)
        self._touch(AFFINITY, t)

    @property
    def offers(self) -> ContactBook:
        """The guardrails' memory of this customer (made on first use)."""
        if self._offers is None:
            self._offers = ContactBook()
        return self._offers

    def _latest_noted(
        self, register: dict[str, Any], name: str, t: float, tie: int, value: Any, *, prefix: str
    ) -> bool:
        """``_latest``, keeping what the guardrails need to read the register as of any
        time (see ``ContextLog``): the value it replaces (or a late one) when it differs,
        and when an unchanged value began to hold when the register moves past it. A
        value that never changes costs no history."""
        old = register.get(name)
        newer = self._latest(register, name, t, tie, value)
        if old is None:
            return newer
        key = prefix + name
        if old[2] != value:
            log = self._context_log()
            if newer:
                began = log.release(key) or (old[0], old[1])
                log.record(began[0], began[1], key, old[2])
            else:
                log.record(t, tie, key, value)
        elif newer:
            self._context_log().hold(key, old[0], old[1])
        else:  # the same value, seen late: it held since then (a change between is logged)
            since = self._context_log().since
            since[key] = min(since.get(key, (old[0], old[1])), (t, tie))
        return newer

    def _context_log(self) -> ContextLog:
        if self._context is None:
            self._context = ContextLog()
        return self._context

    def _cart_op(self, t: float, tie: int, kind: Any, payload: object) -> None:
        if self._cart.apply((t, tie, kind, payload), self._last - self._lateness):
            self._touch(CART, t)

    def _latest(self, register: dict[str, Any], name: str, t: float, tie: int, value: Any) -> bool:
        old = register.get(name)
        if old is not None and (old[0], old[1]) >= (t, tie):
            return False
        register[name] = (t, tie, value)
        return True

    def features(self) -> dict[str, str]:
        """Return the flat Redis hash of this customer (see ``flows.profile._features``).

        Only the groups changed since the last call are re-encoded. An erased profile
        returns the tombstone ``{"_erased": "1", "_seq": ...}``.
        """
        if self._erased:
            return {"_erased": "1", "_seq": str(self._seq)}
        out = {"_seq": str(self._seq)}
        for group in range(len(GROUPS)):
            out.update(self._group(group))
        return out

    def grouped_features(self) -> dict[str, str]:
        """Return the Redis hash as stored: ``_seq`` and one field per feature group.

        Each group field is the compact JSON object of that group's ``features()``
        entries, so a hash has ~10 fields instead of ~50 (a Redis write costs per field)
        and flattening the groups gives ``features()`` back. An erased profile returns the
        tombstone.
        """
        if self._erased:
            return {"_erased": "1", "_seq": str(self._seq)}
        out = {"_seq": str(self._seq)}
        texts = self._group_text
        for group, name in enumerate(GROUPS):
            fields = self._group(group)
            text = texts[group]
            if text is None:
                text = texts[group] = json_text(fields)
            out[name] = text
        return out

    def changed_features(self) -> dict[str, str]:
        """Return ``_seq`` and the groups of ``grouped_features`` that may have changed
        since the last call: every group touched since, whatever its value now.

        Writing these over the last returned hash gives ``grouped_features``. A group that
        changed and changed back is still returned, so writing the changes over the
        stored hash of any sequence number in between is right too (a replay after a
        crash overtaking what the crashed run wrote).
        """
        if self._erased:
            return {"_erased": "1", "_seq": str(self._seq)}
        out = {"_seq": str(self._seq)}
        texts = self._group_text
        unsent = self._unsent
        for group, name in enumerate(GROUPS):
            fields = self._group(group)
            if unsent[group]:
                unsent[group] = False
                text = texts[group]
                if text is None:
                    text = texts[group] = json_text(fields)
                out[name] = text
        return out

    def _group(self, group: int) -> dict[str, str]:
        fields = self._cache[group]
        if fields is None:
            fields = self._cache[group] = build_group(self, group)
            self._group_text[group] = None
            self._unsent[group] = True
        return fields

    def __getstate__(self) -> tuple[object, ...]:
        state = [getattr(self, name) for name in _STATE]
        # The dedupe ids are most of a profile: packed they take 12 bytes each, not ~19.
        hashes = array("Q", self._seen.keys())
        try:
            times = array("I", self._seen.values())
        except OverflowError:  # before 1970 or after 2106: clamp, eviction is rough anyway
            times = array("I", [min(max(t, 0), _UINT32) for t in self._seen.values()])
        if sys.byteorder == "big":  # snapshots are little-endian everywhere
            hashes.byteswap()
            times.byteswap()
        state[_SEEN] = (hashes.tobytes(), times.tobytes())
        state[_SESSIONS] = dict(self._sessions)  # a dict pickles faster than an OrderedDict
        for i, _ in _NESTED:
            state[i] = state[i].__getstate__()
        return tuple(state)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(_STATE, state, strict=True):
            object.__setattr__(self, name, value)
        for i, cls in _NESTED:
            nested = cls.__new__(cls)
            nested.__setstate__(state[i])  # type: ignore[arg-type]
            object.__setattr__(self, _STATE[i], nested)
        self._sessions = OrderedDict(self._sessions)
        packed_hashes: bytes
        packed_times: bytes
        packed_hashes, packed_times = state[_SEEN]  # type: ignore[misc]
        hashes, times = array("Q"), array("I")
        hashes.frombytes(packed_hashes)
        times.frombytes(packed_times)
        if sys.byteorder == "big":
            hashes.byteswap()
            times.byteswap()
        self._seen = OrderedDict(zip(hashes, times, strict=True))
        # Configuration that the nested state holds already (for a reset after erasure).
        self._churn_horizon_days = self._churn.horizon_days
        self._loyalty_policy = self._loyalty.policy
        self._learned = []
        self._made = []
        self._tier_changes = []
        self._dirty_all()
