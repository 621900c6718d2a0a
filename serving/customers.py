"""A customer as a recommendation sees them: recent interactions, consent, tastes.

Read from the customer's hash in Redis (only the groups used: ``interactions``,
``consent``, ``affinity``); see ``flows.profile`` for how the flow writes them.

Example:
    >>> view = CustomerView.parse({
    ...     "recent": '[["P2","purchase","2025-05-02T10:00:00Z"],'
    ...               '["P1","view","2025-05-01T09:00:00Z"]]',
    ...     "consent:personalization": "0",
    ...     "affinity:category": '[["Grocery/Coffee",4.5]]',
    ... })
    >>> [(r.product_id, r.kind) for r in view.recent], view.personalization, view.categories
    ([('P2', 'purchase'), ('P1', 'view')], False, ['Grocery/Coffee'])
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

import orjson

__all__ = ["READ_GROUPS", "CustomerView", "Interaction"]

READ_GROUPS = ("interactions", "consent", "affinity")


class Interaction(NamedTuple):
    """One recent interaction: product, kind (view, click, add, remove, purchase), time."""

    product_id: str
    kind: str
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerView:
    """What the recommendation rules read of one customer."""

    recent: list[Interaction] = dataclasses.field(default_factory=list)  # newest first
    personalization: bool | None = None  # the consent flag, None if never given
    categories: list[str] = dataclasses.field(default_factory=list)  # best first
    erased: bool = False

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> CustomerView:
        """From the flattened groups; entries that do not parse are skipped (a corrupt
        entry costs its own signal, not the request)."""
        if fields.get("_erased") == "1":
            return cls(erased=True)
        recent: list[Interaction] = []
        for entry in _json_list(fields.get("recent")):
            if not isinstance(entry, list) or len(entry) != 3:
                continue
            product, kind, stamp = entry
            try:
                at = dt.datetime.fromisoformat(str(stamp)).timestamp()
            except ValueError:
                continue
            recent.append(Interaction(str(product), str(kind), at))
        flag = fields.get("consent:personalization")
        categories = [
            str(pair[0])
            for pair in _json_list(fields.get("affinity:category"))
            if isinstance(pair, list) and pair
        ]
        return cls(recent, None if flag is None else flag == "1", categories)


def _json_list(text: str | None) -> list[object]:
    if not text:
        return []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return value if isinstance(value, list) else []
