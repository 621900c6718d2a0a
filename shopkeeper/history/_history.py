"""What every reader returns, and the one error of a source that cannot be read."""

from __future__ import annotations

import dataclasses

import events

__all__ = ["History", "HistoryError"]


class HistoryError(ValueError):
    """A source that cannot be read at all: no such topic, a column not in the header."""


@dataclasses.dataclass(frozen=True)
class History:
    """Decoded events in event-time order, and how many records were rejected, by reason.

    Example:
        >>> History([], {"missing_customer": 3, "bad_time": 1}, "export.csv").describe()
        '0 events from export.csv; 4 rejected (missing_customer 3, bad_time 1)'
    """

    events: list[events.Event]
    rejected: dict[str, int]
    source: str

    @property
    def rejected_total(self) -> int:
        """Records that did not become events."""
        return sum(self.rejected.values())

    def describe(self) -> str:
        """One line for the terminal: events, source, rejects by reason (most first)."""
        line = f"{len(self.events):,} events from {self.source}"
        if self.rejected:
            ranked = sorted(self.rejected.items(), key=lambda entry: (-entry[1], entry[0]))
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in ranked)
            line += f"; {self.rejected_total:,} rejected ({reasons})"
        return line
