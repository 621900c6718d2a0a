"""Writing history files and turning items into Kafka records."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

import events
from shopkeeper.generator._malformed import Malformed
from shopkeeper.generator._run import Item
from shopkeeper.generator._world import World

__all__ = ["to_record", "write_history"]


def to_record(item: Item) -> tuple[str, bytes | None, bytes]:
    """Return ``(topic, key, value)`` for producing ``item`` to Kafka."""
    if isinstance(item, Malformed):
        return item.topic, item.key, item.value
    return events.topic_for(item), events.partition_key(item), events.encode(item)


def write_history(
    world: World, path: Path, *, start: dt.datetime, days: int, progress: bool = True
) -> dict[str, Any]:
    """Write ``days`` of history to ``path``, one payload a line, and the ground truth beside it.

    The ground truth goes to ``path.with_suffix(".truth.json")``.

    Returns:
        A summary: counts by event name, malformed by kind, customers, products, lines,
        and the first and last event timestamps.
    """
    names: Counter[str] = Counter()
    malformed: Counter[str] = Counter()
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    lines = 0
    total = 1 + days  # the preamble, then one step a day
    with (
        path.open("wb") as out,
        tqdm(total=total, unit="day", disable=not progress, desc="history") as bar,
    ):
        write = out.write
        encode = events.encode
        for item in world.history(start, days):
            if isinstance(item, Malformed):
                write(item.value + b"\n")
                malformed[item.kind] += 1
            else:
                write(encode(item) + b"\n")
                names[item.name] += 1
                if first is None:
                    first = item.timestamp
                    bar.update(1)
                elif item.timestamp.date() != last.date():  # type: ignore[union-attr]
                    bar.update(1)
                last = item.timestamp
            lines += 1
        bar.update(total - bar.n)
    truth = world.ground_truth()
    path.with_suffix(".truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return {
        "path": str(path),
        "lines": lines,
        "events": dict(sorted(names.items())),
        "malformed": dict(sorted(malformed.items())),
        "customers": truth["customers"],
        "products": truth["products"],
        "first_timestamp": first.isoformat() if first else None,
        "last_timestamp": last.isoformat() if last else None,
    }
