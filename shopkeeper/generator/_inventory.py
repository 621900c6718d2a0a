"""The catalogue as it changes during one run: prices, stock, lifecycle, and its events."""

from __future__ import annotations

import math
from typing import Any

import msgspec

import events
from shopkeeper.generator._catalog import LIFECYCLES, Catalog
from shopkeeper.generator._draws import Draws

__all__ = ["Inventory"]

_PRICE_CHANGES_PER_DAY = 0.002
_STOCKOUTS_PER_DAY = 0.001
_RETIRED_PER_YEAR = 0.02


class Inventory:
    """Mutable product state of one run, with the product objects events carry.

    Args:
        catalog: The static catalogue; it is copied, never changed.
        currency: Currency of every price.
        protected: Products no change may touch (planted structure stays clean).
    """

    def __init__(self, catalog: Catalog, currency: str, protected: set[int]) -> None:
        self.catalog = catalog
        # Any: validated against the contract's currency codes when the world is built.
        self.currency: Any = currency
        self.price: list[float] = catalog.price.tolist()
        self.list_price: list[float | None] = [
            None if math.isnan(x) else x for x in catalog.list_price.tolist()
        ]
        self.stock: list[int] = catalog.stock.tolist()
        self.lifecycle: list[int] = catalog.lifecycle.tolist()
        self.successor: list[int] = catalog.successor.tolist()
        self._free = [
            p for p in range(len(catalog)) if p not in protected and self.lifecycle[p] == 0
        ]
        self._restock: list[tuple[int, int]] = []
        self._lines: list[events.Product | None] = [None] * len(catalog)

    def _sale_price(self, p: int) -> float | None:
        list_price = self.list_price[p]
        return list_price if list_price is not None and list_price > self.price[p] else None

    def line(self, p: int, quantity: int = 1) -> events.Product:
        """Return the product object of ``p`` at its current price (cached per price)."""
        cached = self._lines[p]
        if cached is None:
            cached = events.Product(**self._priced(p))
            self._lines[p] = cached
        if quantity == 1:
            return cached
        return msgspec.structs.replace(cached, quantity=quantity)

    def _priced(self, p: int) -> dict[str, Any]:
        """The product-object fields every line, view and cart event of ``p`` carries."""
        c = self.catalog
        return {
            "product_id": c.ids[p],
            "sku": c.skus[p],
            "name": c.names[p],
            "brand": c.brands[p],
            "category": c.leaves[int(c.cat[p])].path,
            "price": self.price[p],
            "list_price": self._sale_price(p),
            "currency": self.currency,
        }

    def viewed(self, p: int, view_ms: int) -> events.ProductViewedProperties:
        """Return the properties of a ``Product Viewed`` of ``p``."""
        return events.ProductViewedProperties(
            **self._priced(p),
            inventory_status="in_stock" if self.stock[p] > 0 else "out_of_stock",
            view_ms=view_ms,
        )

    def carted(self, p: int, quantity: int, cart_id: str) -> events.CartProductProperties:
        """Return the properties of a ``Product Added`` or ``Product Removed`` of ``p``."""
        return events.CartProductProperties(
            **self._priced(p),
            quantity=quantity,
            cart_id=cart_id,
        )

    def sellable(self, p: int) -> int | None:
        """Return what a customer who wants ``p`` can buy: ``p``, its successor, or nothing."""
        for _ in range(3):
            if self.lifecycle[p] == 0:
                return p if self.stock[p] > 0 else None
            if self.successor[p] < 0:
                return None
            p = self.successor[p]
        return None

    def full_state(self, p: int) -> events.ProductUpdatedProperties:
        """Return a ``Product Updated`` carrying every attribute of ``p``."""
        c = self.catalog
        cycle = int(c.cycle[p])
        successor = self.successor[p]
        return events.ProductUpdatedProperties(
            product_id=c.ids[p],
            sku=c.skus[p],
            name=c.names[p],
            brand=c.brands[p],
            category=c.leaves[int(c.cat[p])].path,
            price=self.price[p],
            list_price=self.list_price[p] if self.list_price[p] is not None else self.price[p],
            currency=self.currency,
            inventory_quantity=self.stock[p],
            inventory_status="in_stock" if self.stock[p] > 0 else "out_of_stock",
            lifecycle_status=LIFECYCLES[self.lifecycle[p]],  # type: ignore[arg-type]
            successor_product_id=c.ids[successor] if successor >= 0 else None,
            replenishment_days=cycle or None,
            is_consumable=cycle > 0,
            margin_rate=float(c.margin[p]),
        )

    def _count(self, rate: float, draws: Draws) -> int:
        expected = rate * len(self.catalog)
        return int(expected) + draws.chance(expected - int(expected))

    def daily(self, day: int, draws: Draws) -> list[tuple[float, events.ProductUpdatedProperties]]:
        """Apply one day of catalogue changes; return them as (seconds into the day, update)."""
        out: list[tuple[float, events.ProductUpdatedProperties]] = []
        pid = self.catalog.ids
        for p, back in [r for r in self._restock if r[1] <= day]:
            self._restock.remove((p, back))
            self.stock[p] = 20 + draws.below(60)
            out.append(
                (
                    draws.u() * 86_400,
                    events.ProductUpdatedProperties(
                        product_id=pid[p],
                        inventory_quantity=self.stock[p],
                        inventory_status="in_stock",
                    ),
                )
            )
        if not self._free:
            return out
        for _ in range(self._count(_PRICE_CHANGES_PER_DAY, draws)):
            p = self._free[draws.below(len(self._free))]
            regular = self.list_price[p] or self.price[p]
            on_sale = self.price[p] < regular
            # Mostly drops (price-drop triggers need them); a sale ends back at the regular price.
            self.price[p] = regular if on_sale else round(regular * (0.65 + 0.25 * draws.u()), 2)
            self.list_price[p] = regular
            self._lines[p] = None
            out.append(
                (
                    draws.u() * 86_400,
                    events.ProductUpdatedProperties(
                        product_id=pid[p],
                        price=self.price[p],
                        list_price=regular,
                        currency=self.currency,
                    ),
                )
            )
        for _ in range(self._count(_STOCKOUTS_PER_DAY, draws)):
            p = self._free[draws.below(len(self._free))]
            if self.stock[p] == 0 or self.lifecycle[p] != 0:
                continue
            self.stock[p] = 0
            self._restock.append((p, day + 3 + draws.below(12)))
            out.append(
                (
                    draws.u() * 86_400,
                    events.ProductUpdatedProperties(
                        product_id=pid[p], inventory_quantity=0, inventory_status="out_of_stock"
                    ),
                )
            )
        for _ in range(self._count(_RETIRED_PER_YEAR / 365, draws)):
            out.extend(self._retire(draws))
        return out

    def _retire(self, draws: Draws) -> list[tuple[float, events.ProductUpdatedProperties]]:
        p = self._free[draws.below(len(self._free))]
        cat = self.catalog.cat
        peers = [
            q for q in self.catalog.by_cat[int(cat[p])][0] if q != p and self.lifecycle[q] == 0
        ]
        if self.lifecycle[p] != 0 or not peers:
            return []
        successor = peers[draws.below(len(peers))]
        self.lifecycle[p] = 1
        self.successor[p] = successor
        self.stock[p] = 0
        self._restock = [r for r in self._restock if r[0] != p]
        return [
            (
                draws.u() * 86_400,
                events.ProductUpdatedProperties(
                    product_id=self.catalog.ids[p],
                    lifecycle_status="discontinued",
                    successor_product_id=self.catalog.ids[successor],
                    inventory_quantity=0,
                    inventory_status="out_of_stock",
                ),
            )
        ]
