"""The customer's current cart, rebuilt exactly when cart events arrive out of order."""

from __future__ import annotations

import bisect
from typing import Final, Literal, cast

from flows.profile._format import NEVER, iso, json_text, money, to_units

__all__ = ["Cart", "CartOp"]

OpKind = Literal["add", "remove", "replace", "purchase"]
Lines = dict[str, tuple[int, float]]
"""product_id -> (quantity, unit price)."""

CartOp = tuple[float, int, OpKind, object]
"""(event time, tie-break hash, kind, payload); payloads are documented on ``Cart.apply``."""

MAX_OPS: Final = 200
"""Ops kept for out-of-order replay; a burst beyond this folds its oldest ops early."""

MAX_HISTORY: Final = 5_000
"""Past states kept at most. Abandonment ticks settle them as they pass; a replay may fold
a heavy customer's whole year before the first tick arrives, so the bound is generous
(about 100 bytes a state), and only caps a cart no tick ever settles (triggers off)."""

Snapshot = tuple[float, int, tuple[tuple[str, tuple[int, float]], ...]]
"""The cart after one op: (event time, tie-break hash, its lines sorted by product); the
text is made only when a trigger reads it (``between``)."""


def _state(t: float, tie: int, lines: Lines) -> Snapshot:
    return (t, tie, tuple(sorted(lines.items())))


def _op_order(op: CartOp) -> tuple[float, int]:
    return (op[0], op[1])


def _play(lines: Lines, kind: OpKind, payload: object) -> None:
    if kind == "add":
        product_id, quantity, price = cast(tuple[str, int, float], payload)
        held = lines.get(product_id)
        lines[product_id] = (quantity + (held[0] if held else 0), price)
    elif kind == "remove":
        product_id, quantity = cast(tuple[str, int], payload)
        held = lines.get(product_id)
        if held is not None:
            if held[0] > quantity:
                lines[product_id] = (held[0] - quantity, held[1])
            else:
                del lines[product_id]
    elif kind == "replace":
        lines.clear()
        for product_id, quantity, price in cast(tuple[tuple[str, int, float], ...], payload):
            held = lines.get(product_id)
            lines[product_id] = (quantity + (held[0] if held else 0), price)
    else:  # purchase
        for product_id in cast(tuple[str, ...], payload):
            lines.pop(product_id, None)


def _filled(filled: float | None, was_empty: bool, lines: Lines, t: float) -> float | None:
    """When the cart went from empty to holding something, after an op at ``t``."""
    if not lines:
        return None
    return t if was_empty else filled


class Cart:
    """A cart as ``base`` (all ops before the watermark) plus a sorted log of recent ops.

    An op inside the allowed lateness is inserted at its event-time place and the cart is
    replayed from ``base``, so any arrival order inside the lateness gives the same cart.
    An op older than the watermark is dropped: replaying it onto a cart that has moved on
    would be wrong either way, and an hour-late cart change is no longer the customer's
    current cart.

    Example:
        >>> cart = Cart()
        >>> cart.apply((20.0, 2, "remove", ("P1", 1)), watermark=0.0)
        True
        >>> cart.apply((10.0, 1, "add", ("P1", 3, 18.0)), watermark=0.0)  # arrives late
        True
        >>> cart.lines
        {'P1': (2, 18.0)}
    """

    __slots__ = (
        "_base", "_base_filled", "_filled", "_history", "_lines", "_ops", "_settled", "_track",
        "_updated",
    )  # fmt: skip

    def __init__(self) -> None:
        self._base: Lines = {}
        self._ops: list[CartOp] = []
        self._lines: Lines = {}
        self._updated = NEVER
        self._history: list[Snapshot] = []  # the cart after each op, in event-time order
        self._track = False  # keep ``_history`` (only the abandonment trigger reads it)
        # When the cart of the first state kept had been holding something since (None:
        # empty then, or unknown): the states before it were settled away.
        self._settled: float | None = None
        # When the cart (and its base) last went from empty to holding something.
        self._filled: float | None = None
        self._base_filled: float | None = None

    @property
    def lines(self) -> Lines:
        """The current cart (do not mutate)."""
        return self._lines

    @property
    def updated_at(self) -> float:
        """Event time of the latest cart op applied, or ``NEVER``."""
        return self._updated

    def apply(self, op: CartOp, watermark: float) -> bool:
        """Fold one op in; return False if it is older than ``watermark`` and was dropped.

        Payloads: ``add`` ``(product_id, quantity, price)``, ``remove``
        ``(product_id, quantity)``, ``replace`` a tuple of ``(product_id, quantity, price)``
        (Cart Viewed), ``purchase`` a tuple of purchased product ids (Order Completed).
        """
        if op[0] < watermark:
            return False
        ops = self._ops
        history = self._history
        if not ops or _op_order(op) >= _op_order(ops[-1]):
            ops.append(op)
            was_empty = not self._lines
            _play(self._lines, op[2], op[3])
            self._filled = _filled(self._filled, was_empty, self._lines, op[0])
            if self._track:
                history.append(_state(op[0], op[1], self._lines))
        else:
            bisect.insort(ops, op, key=_op_order)
            lines = dict(self._base)
            filled = self._base_filled
            if self._track:
                # The states after the ops still in the log are replayed with them.
                since = _op_order(ops[0])
                del history[bisect.bisect_left(history, since, key=lambda h: (h[0], h[1])) :]
            for t, tie, kind, payload in ops:
                was_empty = not lines
                _play(lines, kind, payload)
                filled = _filled(filled, was_empty, lines, t)
                if self._track:
                    history.append(_state(t, tie, lines))
            self._lines = lines
            self._filled = filled
        self._updated = max(self._updated, op[0])
        if len(history) > MAX_HISTORY:
            cut = len(history) - MAX_HISTORY
            self._settled = self.since(history[cut][0])
            del history[:cut]
        # Ops before the watermark can no longer be preceded by an accepted op: fold them.
        while ops and (ops[0][0] < watermark or len(ops) > MAX_OPS):
            first = ops.pop(0)
            was_empty = not self._base
            _play(self._base, first[2], first[3])
            self._base_filled = _filled(self._base_filled, was_empty, self._base, first[0])
        return True

    def between(self, start: float, end: float) -> tuple[str, str, bool] | None:
        """The contents and value as of ``start``, and whether the cart changed in
        ``(start, end]``, read from its past states (so the answer does not depend on
        what arrived since); ``None`` if no state at ``start`` is known."""
        history = self._history
        i = bisect.bisect_right(history, start, key=lambda h: h[0])
        if i == 0:
            return None
        changed = i < len(history) and history[i][0] <= end
        lines = history[i - 1][2]
        contents = ",".join(f"{p}:{q}" for p, (q, _) in lines)
        value = sum(to_units(price) * quantity for _, (quantity, price) in lines)
        return contents, money(value), changed

    def track(self, on: bool) -> None:
        """Keep the cart's past states (for the abandonment trigger) or not."""
        self._track = on
        if not on:
            self._history.clear()
            self._settled = None

    def knows(self, t: float) -> bool:
        """Whether a cart op at exactly ``t`` was folded (the change a tick is about)."""
        history = self._history
        i = bisect.bisect_left(history, t, key=lambda h: h[0])
        return i < len(history) and history[i][0] == t

    def since(self, t: float) -> float | None:
        """When the cart as of ``t`` last went from empty to holding something (None: it
        is empty then): what tells one filling of a cart from a later one with the same
        contents."""
        history = self._history
        i = bisect.bisect_right(history, t, key=lambda h: h[0]) - 1
        if i < 0 or not history[i][2]:
            return None
        while i > 0 and history[i - 1][2]:
            i -= 1
        if i == 0 and self._settled is not None:
            return self._settled
        return history[i][0]

    def settle(self, until: float) -> None:
        """Forget the states before ``until``: the abandonment ticks come in event-time
        order, so no later one asks about them. (Not by age: a replay may fold days of
        events before the tick of the first one.)"""
        history = self._history
        keep = bisect.bisect_left(history, until, key=lambda h: h[0])
        if keep:
            self._settled = self.since(history[keep][0]) if keep < len(history) else None
        del history[:keep]

    def fields(self) -> dict[str, str]:
        """Return ``cart``, ``cart_value``, ``cart_items`` and ``cart_updated_at`` (if any)."""
        lines = self._lines
        value = sum(to_units(price) * quantity for quantity, price in lines.values())
        out = {
            "cart": json_text(
                {p: {"price": price, "qty": qty} for p, (qty, price) in lines.items()}
            ),
            "cart_value": money(value),
            "cart_items": str(sum(quantity for quantity, _ in lines.values())),
        }
        if self._updated != NEVER:
            out["cart_updated_at"] = iso(self._updated)
        if self._filled is not None:
            out["cart_since"] = iso(self._filled)
        return out

    @property
    def filled_at(self) -> float | None:
        """When the current cart last went from empty to holding something (None: empty)."""
        return self._filled

    def __getstate__(self) -> tuple[object, ...]:
        return (
            self._base, self._ops, self._lines, self._updated, self._history, self._settled,
            self._filled, self._base_filled,
        )  # fmt: skip

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (
            self._base,
            self._ops,
            self._lines,
            self._updated,
            self._history,
            self._settled,
            self._filled,
            self._base_filled,
        ) = state  # type: ignore[assignment]
        self._track = False
