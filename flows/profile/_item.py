"""``ItemState``: one catalogue product's attributes and popularity, on event time."""

from __future__ import annotations

import datetime as dt
import math
from typing import Final, Literal, NamedTuple

import events
from feature_store import BucketCounts
from flows.profile._format import NEVER, flag, id_hash, iso, json_text

__all__ = ["ItemState", "Signal", "SignalKind", "item_signals"]

SignalKind = Literal["view", "purchase"]
_BLOCK: Final = 300  # finest bucket size: pruning only changes at multiples of it
_FIELDS: Final = events.ProductUpdatedProperties.__struct_fields__


def _text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return flag(value)
    if name in ("price", "list_price"):
        return f"{value:.2f}"
    return str(value)  # ints in decimal; margin_rate keeps its repr


class Signal(NamedTuple):
    """A popularity signal: a customer viewed a product, or bought ``quantity`` units."""

    product_id: str
    kind: SignalKind
    ts: dt.datetime
    quantity: int
    category: str | None


def item_signals(event: events.Event) -> list[Signal]:
    """Return the popularity signals of an event, with the category the event names.

    The flow routes them to the item keys only for events ``CustomerProfile.apply``
    accepted, so a duplicate event never counts twice.

    Example:
        >>> import datetime as dt, events
        >>> view = events.ProductViewed(
        ...     message_id="m-1", timestamp=dt.datetime(2025, 5, 1, tzinfo=dt.UTC),
        ...     channel="web", customer_id="c-1",
        ...     properties=events.ProductViewedProperties(
        ...         product_id="P1", price=18.0, currency="EUR", category="Grocery/Coffee"))
        >>> [(s.product_id, s.kind, s.quantity, s.category) for s in item_signals(view)]
        [('P1', 'view', 1, 'Grocery/Coffee')]
    """
    if type(event) is events.ProductViewed:
        p = event.properties
        return [Signal(p.product_id, "view", event.timestamp, 1, p.category)]
    if type(event) is events.OrderCompleted:
        return [
            Signal(line.product_id, "purchase", event.timestamp, line.quantity, line.category)
            for line in event.properties.products
        ]
    return []


# State that is pickled, in this order; the encoded catalogue is rebuilt after a restore.
_STATE: Final = (
    "_block", "_fields", "_last", "_lateness", "_popular", "_purchases", "_seq", "_updated",
    "_views",
)  # fmt: skip


class ItemState:
    """A product's catalogue fields (latest event time wins per field) and popularity.

    ``Product Updated`` leaves out what did not change, so each field keeps its own event
    time; ties between two updates at the same time go to the higher ``message_id`` hash,
    so any arrival order gives the same fields. Popularity is bucketed counts of views and
    purchased units, pruned like the customer windows.

    Args:
        lateness: How late a signal may arrive; buckets are kept this much longer.

    Example:
        >>> import datetime as dt, events
        >>> at = dt.datetime(2025, 5, 1, 10, tzinfo=dt.UTC)
        >>> update = events.ProductUpdated(
        ...     message_id="m-1", timestamp=at, channel="server",
        ...     properties=events.ProductUpdatedProperties(
        ...         product_id="P1", price=16.5, currency="EUR", is_consumable=True))
        >>> item = ItemState()
        >>> item.apply(update), item.apply(update)
        (True, False)
        >>> item.apply_signal("purchase", at, 3)
        >>> f = item.features()
        >>> f["price"], f["is_consumable"], f["_seq"], f["_ts:catalog"]
        ('16.50', '1', '2', '2025-05-01T10:00:00Z')
    """

    __slots__ = (*_STATE, "_catalog")

    def __init__(self, *, lateness: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self._lateness = lateness.total_seconds()
        self._fields: dict[str, tuple[float, int, str]] = {}
        self._seq = 0
        self._updated = NEVER  # latest catalogue change
        self._popular = NEVER  # latest popularity signal
        self._last = NEVER
        self._block = -math.inf
        self._views = BucketCounts()
        self._purchases = BucketCounts()
        self._catalog: str | None = None  # the encoded ``catalog`` group; never pickled

    @property
    def seq(self) -> int:
        """Events and signals applied so far (monotonic)."""
        return self._seq

    @property
    def category(self) -> str | None:
        """The catalogue category, once known."""
        field = self._fields.get("category")
        return field[2] if field is not None else None

    def popularity(self, kind: SignalKind, resolution: str, start: int) -> int:
        """The count of views (or purchased units) in one ``1h`` or ``1d`` bucket."""
        counts = self._views if kind == "view" else self._purchases
        return counts.count(resolution, start)

    def apply(self, event: events.Event) -> bool:
        """Fold a ``Product Updated`` in; False if it changed nothing (or is another event)."""
        if type(event) is not events.ProductUpdated:
            return False
        t = event.timestamp.timestamp()
        tie = id_hash(event.message_id)
        props = event.properties
        fields = self._fields
        changed = False
        for name in _FIELDS:
            value = getattr(props, name)
            if value is None or name == "product_id":
                continue
            old = fields.get(name)
            if old is None or (old[0], old[1]) < (t, tie):
                fields[name] = (t, tie, _text(name, value))
                changed = True
        if changed:
            self._seq += 1
            self._updated = max(self._updated, t)
            self._catalog = None
        return changed

    def apply_signal(self, kind: SignalKind, ts: dt.datetime, quantity: int = 1) -> None:
        """Count a customer's view (or ``quantity`` purchased units) of this product."""
        self.apply_signal_epoch(kind, ts.timestamp(), quantity)

    def apply_signal_epoch(self, kind: SignalKind, t: float, quantity: int = 1) -> None:
        """Like ``apply_signal``, with the event time in epoch seconds (the flow's fast path)."""
        if t > self._last:
            self._last = t
            earliest_read = t - self._lateness
            block = earliest_read // _BLOCK
            if block > self._block:
                since = self._block * _BLOCK  # same 5-minute block as the last prune's
                self._block = block
                self._views.prune_epoch(earliest_read, since=since)
                self._purchases.prune_epoch(earliest_read, since=since)
        counts = self._views if kind == "view" else self._purchases
        counts.add_epoch(t, quantity, earliest_read=self._last - self._lateness)
        self._popular = max(self._popular, t)
        self._seq += 1

    def features(self) -> dict[str, str]:
        """Return the item's Redis hash: catalogue fields once known, ``win:views``,
        ``win:purchases``, ``_seq``, ``_ts:catalog`` and ``_ts:popularity``."""
        out = {name: v[2] for name, v in sorted(self._fields.items())}
        out["win:views"] = self._views.encode()
        out["win:purchases"] = self._purchases.encode()
        out["_seq"] = str(self._seq)
        if self._updated != NEVER:
            out["_ts:catalog"] = iso(self._updated)
        if self._popular != NEVER:
            out["_ts:popularity"] = iso(self._popular)
        return out

    def grouped_features(self) -> dict[str, str]:
        """Return the Redis hash as stored: ``_seq``, ``catalog`` and ``popularity``, each
        group the compact JSON object of its ``features()`` entries."""
        catalog = self._catalog
        if catalog is None:
            # Catalogue updates are rare next to popularity signals: encode them once.
            fields = {name: v[2] for name, v in self._fields.items()}
            if self._updated != NEVER:
                fields["_ts:catalog"] = iso(self._updated)
            catalog = self._catalog = json_text(fields)
        popularity = {
            "win:views": self._views.encode(),
            "win:purchases": self._purchases.encode(),
        }
        if self._popular != NEVER:
            popularity["_ts:popularity"] = iso(self._popular)
        return {"_seq": str(self._seq), "catalog": catalog, "popularity": json_text(popularity)}

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _STATE)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(_STATE, state, strict=True):
            object.__setattr__(self, name, value)
        self._catalog = None
