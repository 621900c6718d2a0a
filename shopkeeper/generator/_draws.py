"""Seeded random streams: one per concern, buffered for cheap scalar draws."""

from __future__ import annotations

import bisect
import math
from typing import Final

import numpy as np

__all__ = ["STREAMS", "Draws", "Ids", "streams"]

STREAMS: Final = ("catalog", "customers", "planted", "behaviour", "schedule", "ids", "malformed")
"""Concerns with their own generator; the order fixes the spawn keys, so never reorder it."""

_BLOCK = 1 << 14


def streams(seed: int, run: int = 0) -> dict[str, np.random.Generator]:
    """Return one generator per concern, independent and reproducible from ``seed``.

    Args:
        seed: The configuration seed.
        run: 0 for the world itself, 1 for ``history``, 2 for ``live``.
    """
    children = np.random.SeedSequence(entropy=seed, spawn_key=(run,)).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


class Draws:
    """Scalar draws from a numpy generator, pulled in blocks (a numpy scalar call costs ~1 us)."""

    __slots__ = ("_gen", "_i", "_n", "_ni", "_normals", "_u")

    def __init__(self, gen: np.random.Generator) -> None:
        self._gen = gen
        self._u: list[float] = []
        self._i = 0
        self._normals: list[float] = []
        self._n = 0
        self._ni = 0

    def u(self) -> float:
        """Return a uniform float in [0, 1)."""
        if self._i >= len(self._u):
            self._u = self._gen.random(_BLOCK).tolist()
            self._i = 0
        value = self._u[self._i]
        self._i += 1
        return value

    def normal(self) -> float:
        """Return a standard normal float."""
        if self._ni >= len(self._normals):
            self._normals = self._gen.standard_normal(_BLOCK).tolist()
            self._ni = 0
        value = self._normals[self._ni]
        self._ni += 1
        return value

    def below(self, n: int) -> int:
        """Return an int uniform in [0, n)."""
        return min(int(self.u() * n), n - 1)

    def chance(self, p: float) -> bool:
        """Return True with probability ``p``."""
        return self.u() < p

    def pick(self, cumulative: list[float]) -> int:
        """Return an index drawn with the weights whose running sum is ``cumulative``."""
        index = bisect.bisect_right(cumulative, self.u() * cumulative[-1])
        return min(index, len(cumulative) - 1)

    def expo(self, mean: float) -> float:
        """Return an exponential draw of the given mean."""
        return -mean * math.log(1.0 - self.u())

    def lognormal(self, median: float, sigma: float) -> float:
        """Return a log-normal draw of the given median."""
        return median * math.exp(sigma * self.normal())

    def geometric(self, mean: float) -> int:
        """Return an int >= 1 with the given mean (geometric)."""
        p = 1.0 / mean
        return 1 + int(math.log(1.0 - self.u()) / math.log(1.0 - p)) if p < 1.0 else 1


class Ids:
    """Deterministic UUID-shaped message ids cut from a seeded byte stream."""

    __slots__ = ("_gen", "_hex", "_i")

    def __init__(self, gen: np.random.Generator) -> None:
        self._gen = gen
        self._hex = ""
        self._i = 0

    def next(self) -> str:
        """Return the next id, e.g. ``"1b4e28ba-2fa1-41d2-883f-0016d3cca427"``."""
        if self._i >= len(self._hex):
            self._hex = self._gen.bytes(16 * _BLOCK).hex()
            self._i = 0
        h = self._hex[self._i : self._i + 32]
        self._i += 32
        # Version 4 and variant bits, so the ids pass any UUID check downstream.
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
