"""Garbage-collector tuning for a process that holds a large, long-lived state.

The flow keeps tens of thousands of profiles alive for its whole life and allocates
short-lived containers for every event. With the default thresholds, collections walked
the whole state every few thousand events: 9% of a replay's time, and full collections
of the state are pauses of hundreds of milliseconds that show up in freshness.

So young collections are rare (every ``threshold`` allocations), and what survives one
is frozen: moved to the permanent generation, never walked again. Each collection then
walks only what was allocated since the last one (milliseconds), where the first walk
of the older generations used to stall the flow for hundreds of milliseconds. What
becomes cyclic garbage after freezing is only found when the frozen objects are
released, every ``release_every`` collections (a full collection then runs as usual).
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["tune_collector"]


class _Freezer:
    def __init__(self, release_every: int) -> None:
        self._release_every = release_every
        self._freezes = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop":
            return
        self._freezes += 1
        if self._freezes % self._release_every == 0:
            gc.unfreeze()
        else:
            gc.freeze()


def tune_collector(*, threshold: int = 300_000, release_every: int = 1_000) -> None:
    """Collect young objects every ``threshold`` allocations; freeze the survivors.

    With the flow's allocation rate, the default releases frozen objects about hourly.

    Call once at start-up, after the long-lived objects of start-up exist.
    """
    gc.freeze()
    gc.set_threshold(threshold, 10, 10)
    gc.callbacks.append(_Freezer(release_every))
