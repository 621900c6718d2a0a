"""The mutable state of one generation run, shared by the history and live schedulers."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

import events
from shopkeeper.generator._behaviour import Behaviour, Envelope
from shopkeeper.generator._draws import Draws, Ids, streams
from shopkeeper.generator._inventory import Inventory
from shopkeeper.generator._malformed import Malformed, Malformer
from shopkeeper.generator._profiles import profile

if TYPE_CHECKING:
    from shopkeeper.generator._world import World

__all__ = ["Item", "Run"]

Item = events.Event | Malformed
"""What the generator emits: a valid event, or a payload that must be rejected."""

_UTC = dt.UTC
_DAY = 86_400.0


class Run:
    """Fresh random streams and catalogue state, so every run of a config is identical.

    Args:
        world: The static world.
        start: Period start (UTC).
        days: Period length; places the churn and deletion dates.
        run: Stream family: 1 for history, 2 for live.
    """

    def __init__(self, world: World, start: dt.datetime, days: int, run: int) -> None:
        if start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        config = world.config
        rngs = streams(config.seed, run)
        self.world = world
        self.start = start.astimezone(_UTC)
        self.days = days
        self.t0 = self.start.timestamp()
        protected = {int(p) for p in np.flatnonzero(world.catalog.planted)}
        protected |= {p for _, p, _ in world.customers.replenishment}
        self.inventory = Inventory(world.catalog, config.currency, protected)
        self.schedule_rng = rngs["schedule"]
        self.schedule = Draws(rngs["schedule"])
        self.ids = Ids(rngs["ids"])
        self.malformer = Malformer(Draws(rngs["malformed"]))
        self._malformed_draws = Draws(rngs["malformed"].spawn(1)[0])
        self.behaviour = Behaviour(
            world.catalog,
            world.customers,
            self.inventory,
            Draws(rngs["behaviour"]),
            pair_same_order=config.pair_same_order,
            pair_follow_up=config.pair_follow_up,
            upsell=config.upsell,
            tax_rate=config.tax_rate,
        )
        customers = world.customers
        period = days * _DAY
        # Whole seconds, so the ISO dates in the ground truth are exact.
        self.churn_at = np.round(self.t0 + customers.churn_frac * period)
        self.deleted_at = np.round(self.t0 + customers.deletion_frac * period)
        silent = np.fmin(self.churn_at, self.deleted_at)
        self.silent_at: list[float] = np.where(np.isnan(silent), math.inf, silent).tolist()
        share = config.malformed_share
        self._malformed_odds = share / (1.0 - share) if share < 1 else 1.0
        self.counts: Counter[type[events.Event]] = Counter()

    def event(self, t: float, envelope: Envelope, cls: type[events.Event], props: Any) -> Any:
        """Build one event at epoch second ``t`` (rounded to the millisecond)."""
        channel, customer_id, anonymous_id, session_id, context = envelope
        return cls(
            message_id=self.ids.next(),
            timestamp=dt.datetime.fromtimestamp(round(t, 3), _UTC),
            channel=channel,
            customer_id=customer_id,
            anonymous_id=anonymous_id,
            session_id=session_id,
            context=context,
            properties=props,
        )

    def preamble(self) -> Iterator[events.Event]:
        """Yield the whole catalogue, then every customer's profile, all at ``start``."""
        for p in range(len(self.world.catalog)):
            yield self.event(
                self.t0,
                ("server", None, None, None, None),
                events.ProductUpdated,
                self.inventory.full_state(p),
            )
        customers = self.world.customers
        for c in range(len(customers)):
            yield self.event(
                self.t0,
                ("server", customers.ids[c], None, None, None),
                events.CustomerUpdated,
                profile(customers, c, self.start),
            )

    def malformed(self, event: events.Event) -> Malformed:
        """Return a broken copy of ``event``."""
        return self.malformer.make(event)

    def malformed_due(self) -> bool:
        """Draw whether a malformed item follows the current one (so the share is as set)."""
        return self._malformed_draws.u() < self._malformed_odds

    def emit(self, stream: Iterable[events.Event]) -> Iterator[Item]:
        """Yield the events, count them, and slip in malformed copies at the configured share."""
        counts = self.counts
        for event in stream:
            counts[type(event)] += 1
            yield event
            if self.malformed_due():
                yield self.malformer.make(event)

    def event_counts(self) -> dict[str, int]:
        """Return the valid events emitted so far, by event name."""
        return {
            cls.__struct_config__.tag: n  # type: ignore[misc]
            for cls, n in sorted(
                self.counts.items(), key=lambda kv: str(kv[0].__struct_config__.tag)
            )
        }
