"""Files of events: JSONL (one JSON event a line) and Parquet (one event a row).

Example:
    >>> import datetime as dt, pathlib, tempfile, events
    >>> view = events.ProductViewed(
    ...     message_id="m-1", timestamp=dt.datetime(2025, 5, 1, tzinfo=dt.UTC), channel="web",
    ...     customer_id="c-1",
    ...     properties=events.ProductViewedProperties(product_id="P1", price=1.0, currency="EUR"))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.parquet"
    >>> write_parquet([view], path)
    >>> history = read_parquet(path)
    >>> history.events == [view], history.rejected
    (True, {})
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import msgspec
from tqdm import tqdm

import events
from shopkeeper.churn_backtest import read_events
from shopkeeper.history._history import History, HistoryError

__all__ = ["read_jsonl", "read_parquet", "write_parquet"]

_BATCH_ROWS: Final = 10_000


def read_jsonl(path: Path) -> History:
    """Read a JSONL file of events (what ``shopkeeper generate --days`` writes)."""
    stream, rejected = read_events(path)
    return History(stream, {"invalid_event": rejected} if rejected else {}, str(path))


def read_parquet(path: Path, *, progress: bool = False) -> History:
    """Read a Parquet file of events, one a row, in the layout ``write_parquet`` writes.

    Columns mirror the JSON envelope (``event``, ``message_id``, ``timestamp``,
    ``channel``, ``customer_id``, ...); ``properties`` and ``context`` are structs; a null
    is an absent field. ``timestamp`` is a timestamp with a time zone (or an ISO-8601
    string with an offset): a naive one is rejected, as in JSON.

    Args:
        path: The file.
        progress: Show a progress bar over the rows.

    Raises:
        HistoryError: The file is not Parquet.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    decoder = events.EventDecoder()
    encoder = msgspec.json.Encoder()
    decoded: list[events.Event] = []
    rejected: Counter[str] = Counter()
    try:
        table = pq.ParquetFile(path)
    except pa.ArrowException as exc:
        raise HistoryError(f"{path} is not a Parquet file: {exc}") from None
    with tqdm(
        total=table.metadata.num_rows, unit="row", desc="parquet", disable=not progress
    ) as bar:
        for batch in table.iter_batches(batch_size=_BATCH_ROWS):
            for row in batch.to_pylist():
                # Back to JSON, so that the one strict decoder judges every source alike.
                try:
                    decoded.append(decoder.decode(encoder.encode(_without_nulls(row))))
                except events.DecodeError as exc:
                    rejected[exc.code] += 1
                except (TypeError, msgspec.EncodeError):
                    rejected["unsupported_type"] += 1
            bar.update(batch.num_rows)
    decoded.sort(key=lambda e: e.timestamp)
    return History(decoded, dict(rejected), str(path))


def _without_nulls(value: Any) -> Any:
    """``value`` without its null fields: a column that other event types fill."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def write_parquet(stream: Iterable[events.Event], path: Path) -> None:
    """Write events to a Parquet file, one a row, in the layout ``read_parquet`` reads.

    Raises:
        HistoryError: ``stream`` is empty (a table needs a schema).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [msgspec.to_builtins(e, builtin_types=(dt.datetime,)) for e in stream]
    if not rows:
        raise HistoryError("no event to write")
    # Each event type fills its own fields: the columns are the union of them all.
    names = list(dict.fromkeys(name for row in rows for name in row))
    table = pa.table({name: pa.array([row.get(name) for row in rows]) for name in names})
    pq.write_table(table, path, compression="zstd")
