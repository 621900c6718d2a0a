"""What serving knows of each product: name, price, category, stock, lifecycle, successor.

The model's catalogue snapshot (taken at training) is the base; the live catalogue fields
the flow keeps in Redis override it field by field, so a product out of stock a minute
ago is not recommended even though the model was trained last week. For the model's items
the rules are also numpy arrays (one row per model item), so a request masks 10,000
scores in one vectorised step instead of a loop.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Catalog", "ItemInfo", "as_number"]

_RETIRED = frozenset({"discontinued", "end_of_life"})
_UNAVAILABLE = frozenset({"out_of_stock"})


@dataclasses.dataclass(frozen=True, slots=True)
class ItemInfo:
    """One product as the recommendation rules see it."""

    name: str | None = None
    price: float | None = None
    category: str | None = None
    in_stock: bool = True
    retired: bool = False
    successor: str | None = None
    replenishment_days: float | None = None

    @property
    def available(self) -> bool:
        """Whether it may be recommended as it is (in stock and not retired)."""
        return self.in_stock and not self.retired

    @classmethod
    def parse(cls, fields: Mapping[str, Any]) -> ItemInfo:
        """From catalogue fields as stored (strings) or snapshotted (JSON values);
        a field that does not parse counts as unknown."""
        status = fields.get("inventory_status")
        quantity = as_number(fields.get("inventory_quantity"))
        in_stock = status not in _UNAVAILABLE and not (status is None and quantity == 0)
        consumable = str(fields.get("is_consumable", "")).lower() in ("1", "true")
        successor = fields.get("successor_product_id")
        return cls(
            name=_text(fields.get("name")),
            price=as_number(fields.get("price")),
            category=_text(fields.get("category")),
            in_stock=in_stock,
            retired=fields.get("lifecycle_status") in _RETIRED,
            successor=_text(successor),
            replenishment_days=as_number(fields.get("replenishment_days")) if consumable else None,
        )


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Item facts by product id, and as arrays aligned with a model's item index."""

    info: Mapping[str, ItemInfo]
    available: np.ndarray  # bool, per model item
    price: np.ndarray  # float64, NaN when unknown
    category: np.ndarray  # int32 code, -1 when unknown
    successor: Mapping[int, int]  # retired model item -> its available successor item
    codes: Mapping[str, int]  # category -> code in ``category``

    @classmethod
    def build(cls, items: Sequence[str], info: Mapping[str, ItemInfo]) -> Catalog:
        """Arrays for the model's ``items`` from ``info`` (unknown items count as available:
        the model saw them sold, and nothing says otherwise)."""
        n = len(items)
        index = {item: i for i, item in enumerate(items)}
        codes: dict[str, int] = {}
        available = np.ones(n, dtype=bool)
        price = np.full(n, np.nan)
        category = np.full(n, -1, dtype=np.int32)
        successor: dict[int, int] = {}
        for i, item in enumerate(items):
            facts = info.get(item)
            if facts is None:
                continue
            available[i] = facts.available
            if facts.price is not None:
                price[i] = facts.price
            if facts.category is not None:
                category[i] = codes.setdefault(facts.category, len(codes))
        for i, item in enumerate(items):
            facts = info.get(item)
            if facts is not None and facts.retired and facts.successor is not None:
                follow = index.get(facts.successor)
                if follow is not None and available[follow]:
                    successor[i] = follow
        return cls(info, available, price, category, successor, codes)

    def get(self, product_id: str) -> ItemInfo | None:
        """The facts of one product, if known."""
        return self.info.get(product_id)

    def category_code(self, product_id: str) -> int:
        """The code of a product's category, -1 when unknown."""
        facts = self.info.get(product_id)
        if facts is None or facts.category is None:
            return -1
        return self.codes.get(facts.category, -1)

    def is_available(self, product_id: str) -> bool:
        """In stock and not retired (unknown products count as available)."""
        facts = self.info.get(product_id)
        return facts is None or facts.available


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def as_number(value: object) -> float | None:
    """A finite number read from a stored value, or None (booleans are not numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
