"""Real retail data available offline, converted to our events.

CDNOW: the purchases of the 23,570 customers who first bought at the online music shop
CDNOW in the first quarter of 1997, until the end of June 1998 (69,659 purchase rows:
customer, day, number of CDs, dollars), and the 1/10th sample of 2,357 customers
(6,919 rows) on which Fader, Hardie and Lee (2005) fitted BG/NBD. Both files ship inside
the ``lifetimes`` wheel as data (``pip install lifetimes``, in the ``dev`` extra); they are
read as text and ``lifetimes`` is never imported.

Each row becomes one ``Order Completed`` event: customer ``cdnow-<id>``, at noon UTC of the
purchase day, channel ``web``, revenue the dollar value in USD, and one product line of
``quantity`` CDs (product ``cdnow-cd``) at the mean unit price, rounded to the cent (CDNOW
has no line detail; ``revenue`` is exact). Ids are deterministic: the ``n``-th row of a
customer on a day is ``cdnow-<id>-<yyyymmdd>-<n>`` (message) and ``cdnow-o-...`` (order).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

import events

__all__ = [
    "CDNOWPurchase",
    "DatasetUnavailable",
    "cdnow_events",
    "cdnow_path",
    "read_cdnow",
    "to_order",
    "write_cdnow_events",
]

_NOON = dt.time(12, tzinfo=dt.UTC)


class DatasetUnavailable(FileNotFoundError):
    """The data set's files are not installed."""


class CDNOWPurchase(NamedTuple):
    """One row of a CDNOW file."""

    customer_id: str
    """The CDNOW customer id, e.g. ``"00004"`` (the master file's id, in both files)."""
    day: dt.date
    cds: int
    dollars: float


def cdnow_path(*, sample: bool = False) -> Path:
    """Where ``CDNOW_master.txt`` (or ``CDNOW_sample.txt``) is.

    Raises:
        DatasetUnavailable: ``lifetimes`` is not installed.
    """
    spec = importlib.util.find_spec("lifetimes")
    name = "CDNOW_sample.txt" if sample else "CDNOW_master.txt"
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(f"{name} ships in the lifetimes wheel: pip install lifetimes")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / name
    if not path.is_file():
        raise DatasetUnavailable(f"{path} is missing: reinstall lifetimes")
    return path


def read_cdnow(*, sample: bool = False) -> list[CDNOWPurchase]:
    """Read the CDNOW purchases in file order.

    The master file has columns ``customer_id date number_of_cds dollar_value`` under a
    header; the sample has no header and the sample's own customer number after the id.

    Example:
        >>> rows = read_cdnow(sample=True)
        >>> len(rows), len({row.customer_id for row in rows})
        (6919, 2357)
        >>> rows[0]
        CDNOWPurchase(customer_id='00004', day=datetime.date(1997, 1, 1), cds=2, dollars=29.33)
    """
    purchases: list[CDNOWPurchase] = []
    for number, line in enumerate(cdnow_path(sample=sample).read_text().splitlines(), 1):
        fields = line.split()
        if not fields or not fields[0].isdigit():  # the header, blank lines
            continue
        if sample:
            del fields[1]
        if len(fields) != 4:
            raise ValueError(f"CDNOW line {number}: expected 4 columns, got {line!r}")
        customer, day, cds, dollars = fields
        purchases.append(
            CDNOWPurchase(customer, dt.date.fromisoformat(day), int(cds), float(dollars))
        )
    return purchases


def to_order(purchase: CDNOWPurchase, n: int = 1) -> events.OrderCompleted:
    """The ``Order Completed`` event of the ``n``-th purchase of a customer on a day.

    Example:
        >>> row = CDNOWPurchase("00004", dt.date(1997, 1, 1), cds=2, dollars=29.33)
        >>> order = to_order(row)
        >>> order.message_id, order.customer_id, order.timestamp.isoformat()
        ('cdnow-00004-19970101-1', 'cdnow-00004', '1997-01-01T12:00:00+00:00')
        >>> order.properties.revenue, order.properties.products[0].quantity
        (29.33, 2)
        >>> events.decode(events.encode(order)) == order
        True
    """
    key = f"{purchase.customer_id}-{purchase.day:%Y%m%d}-{n}"
    quantity = max(purchase.cds, 1)
    line = events.Product(
        product_id="cdnow-cd",
        name="CD",
        category="Music",
        price=round(purchase.dollars / quantity, 2),
        currency="USD",
        quantity=quantity,
    )
    return events.OrderCompleted(
        message_id=f"cdnow-{key}",
        timestamp=dt.datetime.combine(purchase.day, _NOON),
        channel="web",
        customer_id=f"cdnow-{purchase.customer_id}",
        properties=events.OrderCompletedProperties(
            order_id=f"cdnow-o-{key}", revenue=purchase.dollars, currency="USD", products=[line]
        ),
    )


def cdnow_events(*, sample: bool = False) -> Iterator[events.OrderCompleted]:
    """The CDNOW purchases as ``Order Completed`` events, in file order."""
    return _orders(read_cdnow(sample=sample))


def write_cdnow_events(
    path: Path, *, sample: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Write the CDNOW events to ``path`` as JSONL, one ``events.encode(event)`` a line.

    Returns:
        A summary: the path, events, customers, and the first and last timestamps.
    """
    rows = read_cdnow(sample=sample)
    customers: set[str] = set()
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    written = 0
    with (
        path.open("wb") as out,
        tqdm(total=len(rows), unit="ev", disable=not progress, desc="cdnow") as bar,
    ):
        for event in _orders(rows):
            out.write(events.encode(event) + b"\n")
            customers.add(event.customer_id or "")
            first = event.timestamp if first is None else min(first, event.timestamp)
            last = event.timestamp if last is None else max(last, event.timestamp)
            written += 1
            bar.update(1)
    return {
        "path": str(path),
        "events": written,
        "customers": len(customers),
        "first_timestamp": first.isoformat() if first else None,
        "last_timestamp": last.isoformat() if last else None,
    }


def _orders(rows: list[CDNOWPurchase]) -> Iterator[events.OrderCompleted]:
    seen: dict[tuple[str, dt.date], int] = {}
    for row in rows:
        n = seen[row.customer_id, row.day] = seen.get((row.customer_id, row.day), 0) + 1
        yield to_order(row, n)
