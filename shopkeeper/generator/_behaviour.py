"""One behaviour model of a visit, shared by the history and the live schedulers.

A visit is planned as a list of steps with offsets in seconds; a scheduler only decides
when the visit starts (history) or when each step is emitted (live).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import events
from shopkeeper.generator._catalog import Catalog
from shopkeeper.generator._customers import CHANNELS, Customers, choose_category, choose_product
from shopkeeper.generator._draws import Draws
from shopkeeper.generator._inventory import Inventory
from shopkeeper.generator._orders import FollowUp, follow_ups, order_properties
from shopkeeper.generator._taxonomy import COUNTRIES

__all__ = ["Behaviour", "Envelope", "Plan", "Step"]

Step = tuple[float, type[events.Event], Any]
"""(seconds after the visit starts, event class, properties)."""

# The channel is typed Any: it is always one of the contract's Channel literals, which the
# contract does not export as a name.
Envelope = tuple[Any, str | None, str | None, str | None, events.Context | None]
"""(channel, customer_id, anonymous_id, session_id, context) shared by a visit's events."""

_BUY = {"shop": 0.8, "browse": 0.06, "replenish": 0.95, "intent": 0.9, "anonymous": 0.0}
_ADD = {"shop": 0.95, "browse": 0.22, "replenish": 1.0, "intent": 1.0, "anonymous": 0.15}
_DAY = 86_400.0


@dataclass(slots=True)
class Plan:
    """A planned visit: its steps, and what it implies for later."""

    customer: int
    envelope: Envelope
    steps: list[Step] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    purchases: list[tuple[float, int]] = field(default_factory=list)
    intents: list[tuple[float, int]] = field(default_factory=list)


class Behaviour:
    """Plans visits of customers from their taste, the catalogue and the planted structure."""

    def __init__(
        self,
        catalog: Catalog,
        customers: Customers,
        inventory: Inventory,
        draws: Draws,
        *,
        pair_same_order: float,
        pair_follow_up: float,
        upsell: float,
        tax_rate: float,
    ) -> None:
        self.catalog = catalog
        self.customers = customers
        self.inventory = inventory
        self.draws = draws
        self._pair_same_order = pair_same_order
        self._pair_follow_up = pair_follow_up
        self._upsell = upsell
        self._tax_rate = tax_rate
        self._visits = 0
        self._contexts = [events.Context(locale=lang) for _, _, lang, _, _ in COUNTRIES]
        self._plan: Plan = Plan(-1, ("web", None, None, None, None))
        self._t = 0.0

    def _next_id(self) -> int:
        self._visits += 1
        return self._visits

    def _emit(self, cls: type[events.Event], props: Any, dwell: float) -> None:
        self._plan.steps.append((self._t, cls, props))
        self._t += dwell

    def plan(self, kind: str, c: int, *, product: int = -1, near_churn: bool = False) -> Plan:
        """Plan one visit.

        Args:
            kind: ``shop``, ``browse``, ``replenish``, ``intent``, ``pos`` or ``anonymous``.
            c: Customer index (ignored for ``anonymous``).
            product: The product a ``replenish`` or ``intent`` visit is for.
            near_churn: The customer churns within weeks (service issues get likelier).
        """
        visit = self._next_id()
        d = self.draws
        self._t = 0.0
        if kind == "anonymous":
            channel = CHANNELS[d.below(3)]
            self._plan = Plan(-1, (channel, None, f"a-{visit:08x}", f"s-{visit:08x}", None))
            # Visitors browse like someone of a known taste; they never log in to buy.
            self._browse(c % len(self.customers), kind, -1, near_churn=False, visit=visit)
            return self._plan
        cust = self.customers
        context = self._contexts[int(cust.country[c])]
        if kind == "pos":
            store = cust.store[c]
            self._plan = Plan(c, ("pos", cust.ids[c], None, None, events.Context(store_id=store)))
            self._pos(c, product, visit, store, near_churn)
            return self._plan
        preferred = int(cust.channel[c])
        channel = CHANNELS[preferred if preferred < 3 and d.u() < 0.8 else d.below(3)]
        self._plan = Plan(c, (channel, cust.ids[c], None, f"s-{visit:08x}", context))
        self._browse(c, kind, product, near_churn=near_churn, visit=visit)
        return self._plan

    def _pos(self, c: int, product: int, visit: int, store: str, near_churn: bool) -> None:
        d = self.draws
        wanted = [product] if product >= 0 else []
        for _ in range(d.geometric(2.0)):
            wanted.append(
                choose_product(
                    self.catalog, self.customers, c, choose_category(self.customers, c, d), d
                )
            )
        lines = self._lines(wanted)
        if lines:
            self._order(lines, f"o-{visit:08x}", near_churn, store)

    def _lines(self, wanted: list[int]) -> list[tuple[int, int]]:
        out: dict[int, int] = {}
        for p in wanted:
            q = self.inventory.sellable(p)
            if q is not None:
                out[q] = out.get(q, 0) + self._quantity(q)
        return list(out.items())

    def _quantity(self, p: int) -> int:
        # Consumables come in multiples; durable goods one at a time.
        if self.catalog.cycle[p] and self.draws.u() < 0.35:
            return 2 + self.draws.below(2)
        return 1

    def _browse(self, c: int, kind: str, product: int, *, near_churn: bool, visit: int) -> None:
        d = self.draws
        inv = self.inventory
        cat = (
            int(self.catalog.cat[product])
            if product >= 0
            else choose_category(self.customers, c, d)
        )
        leaf = self.catalog.leaves[cat]
        list_id = f"cat-{cat:02d}"
        if d.u() < 0.4:
            query = self.catalog.names[product] if product >= 0 else leaf.name.lower()
            count = len(self.catalog.by_cat[cat][0])
            self._emit(
                events.ProductsSearched,
                events.ProductsSearchedProperties(query=query, results_count=count),
                4 + d.expo(8),
            )
        else:
            shown = [choose_product(self.catalog, self.customers, c, cat, d) for _ in range(8)]
            self._emit(
                events.ProductListViewed,
                events.ProductListViewedProperties(
                    list_id=list_id,
                    category=leaf.path,
                    products=[inv.line(p) for p in dict.fromkeys(shown)],
                ),
                8 + d.expo(20),
            )
        viewed: list[int] = [product] if product >= 0 else []
        for _ in range(d.geometric(1.2 if product >= 0 else 2.5)):
            viewed.append(choose_product(self.catalog, self.customers, c, cat, d))
        seen: list[int] = []
        for p in viewed:
            self._view(p, list_id, len(seen))
            seen.append(p)
            ladder = self.catalog.ladder_of.get(p)
            if ladder is not None and d.u() < 0.6:
                rungs = self.catalog.ladders[ladder[0]]
                if ladder[1] + 1 < len(rungs):
                    self._view(rungs[ladder[1] + 1], list_id, len(seen))
                    seen.append(rungs[ladder[1] + 1])
        if d.u() >= _ADD[kind]:
            return
        self._cart(c, kind, seen, product, near_churn=near_churn, visit=visit)

    def _view(self, p: int, list_id: str, position: int) -> None:
        d = self.draws
        if d.u() < 0.5:
            line = self.inventory.line(p)
            self._emit(
                events.ProductClicked,
                events.ProductClickedProperties(
                    product_id=line.product_id,
                    price=line.price,
                    currency=line.currency,
                    name=line.name,
                    category=line.category,
                    list_id=list_id,
                    position=position,
                ),
                1 + d.u() * 2,
            )
        dwell = d.lognormal(25.0, 0.8)
        self._emit(events.ProductViewed, self.inventory.viewed(p, int(dwell * 1000)), dwell + 1)

    def _upsold(self, p: int) -> int:
        ladder = self.catalog.ladder_of.get(p)
        if ladder is None or not self.draws.chance(self._upsell):
            return p
        rungs = self.catalog.ladders[ladder[0]]
        step = 1 + (self.draws.u() < 0.25)
        return rungs[min(len(rungs) - 1, ladder[1] + step)]

    def _cart(
        self,
        c: int,
        kind: str,
        seen: list[int],
        product: int,
        *,
        near_churn: bool,
        visit: int,
    ) -> None:
        cart_id = f"cart-{visit:08x}"
        d = self.draws
        inv = self.inventory
        picks = [product] if product >= 0 else []
        for _ in range(1 + (d.u() < 0.3) + (d.u() < 0.1)):
            picks.append(seen[d.below(len(seen))])
        cart: dict[int, int] = {}
        for wanted in dict.fromkeys(picks):
            p = inv.sellable(self._upsold(wanted) if wanted != product else wanted)
            if p is None or p in cart:
                continue
            cart[p] = self._quantity(p)
            self._emit(events.ProductAdded, inv.carted(p, cart[p], cart_id), 3 + d.expo(10))
            complement = self.catalog.complement_of.get(p)
            if complement is not None and d.u() < self._pair_same_order:
                q = inv.sellable(complement)
                if q is not None and q not in cart:
                    self._view(q, "complements", 0)
                    cart[q] = self._quantity(q)
                    self._emit(events.ProductAdded, inv.carted(q, cart[q], cart_id), 3)
        if not cart:
            return
        if len(cart) > 1 and d.u() < 0.1:
            p = next(iter(cart))
            self._emit(events.ProductRemoved, inv.carted(p, cart.pop(p), cart_id), 5)
        lines = [inv.line(p, q) for p, q in cart.items()]
        if d.u() < 0.6:
            self._emit(
                events.CartViewed,
                events.CartViewedProperties(cart_id=cart_id, products=lines),
                10 + d.expo(15),
            )
        buy = d.u() < _BUY[kind]
        if buy or d.u() < 0.3:
            value = round(sum(line.price * line.quantity for line in lines), 2)
            self._emit(
                events.CheckoutStarted,
                events.CheckoutStartedProperties(
                    currency=inv.currency, checkout_id=f"k-{visit:08x}", value=value, products=lines
                ),
                30 + d.expo(60),
            )
        if buy:
            self._order(list(cart.items()), f"o-{visit:08x}", near_churn, None)

    def _order(
        self, cart: list[tuple[int, int]], order_id: str, near_churn: bool, store: str | None
    ) -> None:
        d = self.draws
        lines = [self.inventory.line(p, q) for p, q in cart]
        props = order_properties(
            lines,
            order_id=order_id,
            currency=self.inventory.currency,
            tax_rate=self._tax_rate,
            draws=d,
            pos_store=store,
        )
        t = self._t
        self._emit(events.OrderCompleted, props, 1)
        bought = {p for p, _ in cart}
        for p in bought:
            self._plan.purchases.append((t, p))
            complement = self.catalog.complement_of.get(p)
            if (
                complement is not None
                and complement not in bought
                and d.chance(self._pair_follow_up)
            ):
                self._plan.intents.append((t + (1 + 13 * d.u()) * _DAY, complement))
        for delay, channel, cls, fprops in follow_ups(props, near_churn=near_churn, draws=d):
            self._plan.follow_ups.append((t + delay, channel, cls, fprops))
