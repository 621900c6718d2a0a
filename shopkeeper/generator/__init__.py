"""Synthetic retail traffic: seeded, realistic, with planted structure and its ground truth.

A :class:`World` holds a catalogue and customers. ``history`` replays a period day by day
in event-time order; ``live`` streams endlessly at a rate. Both run the same visit
behaviour. A small share of items are :class:`Malformed` payloads that the decoder must
reject. ``ground_truth`` says what later models should find: complement pairs, price
ladders, churners and their dates, replenishment cycles, tastes. ``plant_responses``
answers the engine's offer decisions with a known uplift per trigger (``PlantedEffect``),
for the offer report to recover.

Example:
    >>> import datetime as dt
    >>> world = World.build(GeneratorConfig(customers=50, products=200))
    >>> item = next(world.history(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), days=1))
    >>> to_record(item)[0]
    'shopkeeper.catalog'
"""

from shopkeeper.generator._config import GeneratorConfig
from shopkeeper.generator._history import to_record, write_history
from shopkeeper.generator._malformed import KINDS as MALFORMED_KINDS
from shopkeeper.generator._malformed import Malformed
from shopkeeper.generator._responses import PlantedEffect, PlantedResponses, plant_responses
from shopkeeper.generator._run import Item
from shopkeeper.generator._world import World

__all__ = [
    "MALFORMED_KINDS",
    "GeneratorConfig",
    "Item",
    "Malformed",
    "PlantedEffect",
    "PlantedResponses",
    "World",
    "plant_responses",
    "to_record",
    "write_history",
]
