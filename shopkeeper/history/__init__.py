"""History to train and evaluate on: events from a file, a Parquet table, a Kafka replay, or
a retailer's CSV export of transactions.

Every reader returns a :class:`History`: the decoded events in event-time order and what
could not be read, counted by reason. A bad line, row or message is never fatal (a year
of history always holds a few); a source that cannot be read at all (no such topic, a
column missing from the header) raises :class:`HistoryError`. Events pass the same strict
decoder as the flow's, so a model never learns from what the flow would have rejected.

Sources:

- ``read_jsonl``: one JSON event a line, as ``shopkeeper generate --days`` writes.
- ``read_parquet``: one event a row, the columns mirroring the JSON (``event``,
  ``message_id``, ``timestamp`` with a time zone, ``channel``, ``customer_id``, ...;
  ``properties`` and ``context`` as structs); a null is an absent field.
  ``write_parquet`` writes that layout.
- ``read_transactions``: a CSV of order lines with a column mapping (a retailer's export
  as it is); each order becomes an ``Order Completed`` event.
- ``replay_topics``: Kafka topics from their start to their end when the replay starts.

``read_topics`` is the raw read under ``replay_topics``: the messages themselves, for
topics that do not hold events (the offer decisions).
"""

from shopkeeper.history._files import read_jsonl, read_parquet, write_parquet
from shopkeeper.history._history import History, HistoryError
from shopkeeper.history._kafka import read_topics, replay_topics
from shopkeeper.history._transactions import ColumnMap, read_transactions

__all__ = [
    "ColumnMap",
    "History",
    "HistoryError",
    "read_jsonl",
    "read_parquet",
    "read_topics",
    "read_transactions",
    "replay_topics",
    "write_parquet",
]
