"""A retailer's CSV export of order lines, read as it is through a column mapping.

Each row is one order line: a customer bought a quantity of a product at a time. Rows of
the same order (the ``order`` column; without one, the same customer at the same time)
make one ``Order Completed`` event, so the order is one basket for the complements. A row
with a bad value (no customer, an unreadable time, a quantity under 1, as cancellations
and returns carry) is counted by reason and skipped; the rest of the file still counts.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "export.csv"
    >>> _ = path.write_text(
    ...     "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\\n"
    ...     "536365,85123A,6,12/1/2010 8:26,2.55,17850\\n"
    ...     "536365,71053,6,12/1/2010 8:26,3.39,17850\\n"
    ...     "C536379,D,-1,12/1/2010 9:41,27.50,14527\\n"
    ...     "536414,22139,56,12/1/2010 11:52,0.00,\\n")
    >>> columns = ColumnMap.parse("customer=CustomerID,product=StockCode,time=InvoiceDate,"
    ...                           "quantity=Quantity,order=InvoiceNo,price=UnitPrice")
    >>> history = read_transactions(path, columns, time_format="%m/%d/%Y %H:%M", currency="GBP")
    >>> [(e.customer_id, e.properties.order_id, e.properties.revenue) for e in history.events]
    [('17850', '536365', 35.64)]
    >>> history.rejected
    {'non_positive_quantity': 1, 'missing_customer': 1}
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import math
import zoneinfo
from collections import Counter
from pathlib import Path
from typing import Final

import msgspec

import events
from shopkeeper.history._history import History, HistoryError

__all__ = ["ColumnMap", "read_transactions"]

_MAX_LINES: Final = 500  # the contract's limit of lines per order


@dataclasses.dataclass(frozen=True)
class ColumnMap:
    """Which CSV column holds each field of an order line.

    ``customer``, ``product`` and ``time`` are required. Without ``quantity`` every line
    is one unit, without ``price`` every price is 0, without ``order`` the lines of a
    customer at the same time make one order.
    """

    customer: str
    product: str
    time: str
    quantity: str | None = None
    order: str | None = None
    price: str | None = None

    @classmethod
    def parse(cls, text: str) -> ColumnMap:
        """Read ``field=Column,field=Column,...``.

        Raises:
            HistoryError: An unknown field, a pair without ``=``, or a required field missing.

        Example:
            >>> ColumnMap.parse("customer=CustomerID, product=StockCode, time=InvoiceDate")
            ColumnMap(customer='CustomerID', product='StockCode', time='InvoiceDate', \
quantity=None, order=None, price=None)
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        pairs: dict[str, str] = {}
        for part in text.split(","):
            name, sep, column = (s.strip() for s in part.partition("="))
            if not sep or not column:
                raise HistoryError(f"column mapping {part.strip()!r} is not field=Column")
            if name not in fields:
                raise HistoryError(
                    f"unknown field {name!r} in the column mapping; fields: {', '.join(fields)}"
                )
            pairs[name] = column
        missing = [name for name in ("customer", "product", "time") if name not in pairs]
        if missing:
            raise HistoryError(f"the column mapping needs {', '.join(missing)}")
        return cls(**pairs)

    def columns(self) -> list[str]:
        """The CSV columns this mapping reads."""
        return [c for c in dataclasses.astuple(self) if c is not None]


@dataclasses.dataclass
class _Order:
    customer: str
    order_id: str
    time: dt.datetime
    lines: dict[str, list[float]]  # product -> [quantity, unit price, CSV rows]


def read_transactions(
    path: Path,
    columns: ColumnMap,
    *,
    time_format: str | None = None,
    timezone: str = "UTC",
    currency: str = "EUR",
    channel: str = "web",
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
) -> History:
    """Read a CSV of order lines into ``Order Completed`` events, one per order.

    Args:
        path: The CSV file, with a header row.
        columns: Which column holds which field.
        time_format: A ``strptime`` format of the time column; ``None`` reads ISO-8601.
        timezone: The zone of times that carry no offset (an IANA name).
        currency: The ISO 4217 currency of the prices.
        channel: The channel the orders are recorded under.
        encoding: The file's text encoding (exports are often ``latin-1``).
        delimiter: The field separator.

    Raises:
        HistoryError: A mapped column is not in the header, the encoding is wrong, or the
            currency or time zone is unknown.
    """
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise HistoryError(f"unknown time zone {timezone!r}") from None
    decoder = events.EventDecoder()
    _check_currency(currency, channel, decoder)
    orders: dict[tuple[str, str], _Order] = {}
    rejected: Counter[str] = Counter()
    try:
        with path.open(newline="", encoding=encoding) as file:
            reader = csv.DictReader(file, delimiter=delimiter)
            missing = [c for c in columns.columns() if c not in (reader.fieldnames or [])]
            if missing:
                raise HistoryError(
                    f"{path}: no column {', '.join(map(repr, missing))} in the header "
                    f"{reader.fieldnames}"
                )
            for row in reader:
                reason = _add_row(orders, row, columns, time_format, zone)
                if reason is not None:
                    rejected[reason] += 1
    except UnicodeDecodeError as exc:
        raise HistoryError(
            f"{path} is not {encoding} text ({exc.reason}); set the encoding"
        ) from None
    decoded: list[events.Event] = []
    for order in orders.values():
        for event, lines in _events(order, currency, channel):
            try:
                decoded.append(decoder.decode(msgspec.json.encode(event)))
            except events.DecodeError as exc:
                rejected[f"order_{exc.code}"] += lines
    decoded.sort(key=lambda e: e.timestamp)
    return History(decoded, dict(rejected), str(path))


def _add_row(  # noqa: PLR0911 - one early return per reason a row is rejected
    orders: dict[tuple[str, str], _Order],
    row: dict[str, str | None],
    columns: ColumnMap,
    time_format: str | None,
    zone: zoneinfo.ZoneInfo,
) -> str | None:
    """Add one CSV row to its order; return why it was rejected, if it was."""
    customer = (row.get(columns.customer) or "").strip()
    product = (row.get(columns.product) or "").strip()
    if not customer:
        return "missing_customer"
    if not product:
        return "missing_product"
    at = _time((row.get(columns.time) or "").strip(), time_format, zone)
    if at is None:
        return "bad_time"
    quantity = _number(row, columns.quantity, 1.0)
    if quantity is None or not quantity.is_integer():
        return "bad_quantity"
    if quantity < 1:
        return "non_positive_quantity"  # cancellations and returns
    price = _number(row, columns.price, 0.0)
    if price is None or price < 0:
        return "bad_price"
    order_id = (row.get(columns.order) or "").strip() if columns.order else ""
    key = (customer, order_id or at.isoformat())
    order = orders.get(key)
    if order is None:
        order = orders[key] = _Order(customer, order_id or _digest(*key), at, {})
    line = order.lines.setdefault(product, [0.0, price, 0])
    line[0] += quantity  # a product listed twice in one order is one line
    line[2] += 1
    return None


def _time(text: str, time_format: str | None, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """The time of ``text``, in ``zone`` if it carries no offset; ``None`` if unreadable."""
    try:
        if time_format is None:
            at = dt.datetime.fromisoformat(text)
        else:
            at = dt.datetime.strptime(text, time_format)  # noqa: DTZ007 - zoned just below
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=zone)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _number(row: dict[str, str | None], column: str | None, default: float) -> float | None:
    """The column's number, ``default`` if unmapped, ``None`` if unreadable."""
    if column is None:
        return default
    try:
        value = float((row.get(column) or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _events(order: _Order, currency: str, channel: str) -> list[tuple[dict[str, object], int]]:
    """The order as JSON-ready events (more than one past the contract's line limit), each
    with the number of CSV rows it holds."""
    lines = list(order.lines.items())
    out: list[tuple[dict[str, object], int]] = []
    for part, start in enumerate(range(0, len(lines), _MAX_LINES)):
        chunk = lines[start : start + _MAX_LINES]
        products = [
            {"product_id": p, "price": price, "currency": currency, "quantity": int(quantity)}
            for p, (quantity, price, _) in chunk
        ]
        revenue = round(sum(quantity * price for _, (quantity, price, _) in chunk), 2)
        suffix = f"-{part + 1}" if len(lines) > _MAX_LINES else ""
        event = {
            "event": "Order Completed",
            "message_id": _digest(order.customer, order.order_id, suffix),
            "timestamp": order.time,
            "channel": channel,
            "customer_id": order.customer,
            "properties": {
                "order_id": f"{order.order_id}{suffix}",
                "revenue": revenue,
                "currency": currency,
                "products": products,
            },
        }
        out.append((event, int(sum(rows for _, (_, _, rows) in chunk))))
    return out


def _check_currency(currency: str, channel: str, decoder: events.EventDecoder) -> None:
    """Fail at once on a currency or channel the contract refuses, not on every order."""
    probe = {
        "event": "Order Completed",
        "message_id": "probe",
        "timestamp": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        "channel": channel,
        "customer_id": "probe",
        "properties": {
            "order_id": "probe",
            "revenue": 0.0,
            "currency": currency,
            "products": [{"product_id": "probe", "price": 0.0, "currency": currency}],
        },
    }
    try:
        decoder.decode(msgspec.json.encode(probe))
    except events.DecodeError as exc:
        raise HistoryError(f"currency {currency!r} or channel {channel!r}: {exc.detail}") from None
