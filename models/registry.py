"""A directory of versioned model artifacts, one of them promoted (the one serving uses).

Layout::

    <root>/<version>/...      an artifact (written once, never changed)
    <root>/CURRENT            the promoted version (replaced atomically)
    <root>/history.json       promotions, oldest first (for rollback)

Serving processes poll ``current()`` and swap models when it changes.

Example:
    >>> import tempfile, pathlib
    >>> registry = ModelRegistry(pathlib.Path(tempfile.mkdtemp()))
    >>> for v in ("als-1", "als-2"):
    ...     (registry.root / v).mkdir()
    >>> registry.promote("als-1"); registry.promote("als-2"); registry.current()
    'als-2'
    >>> registry.rollback()
    'als-1'
    >>> registry.current(), registry.versions()
    ('als-1', ['als-1', 'als-2'])
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["ModelRegistry", "RegistryError"]


class RegistryError(Exception):
    """A version that does not exist, or nothing to roll back to."""


class ModelRegistry:
    """Versions under ``root``; ``promote`` and ``rollback`` move ``CURRENT``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def versions(self) -> list[str]:
        """Every stored version, oldest first (versions sort by creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def current(self) -> str | None:
        """The promoted version, if any."""
        try:
            return (self.root / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def path(self, version: str) -> Path:
        """Where a version's artifact lives.

        Raises:
            RegistryError: No such version.
        """
        path = self.root / version
        if not path.is_dir() or "/" in version or version.startswith("."):
            raise RegistryError(f"no model version {version!r} in {self.root}")
        return path

    def promote(self, version: str) -> None:
        """Make ``version`` the current one."""
        self.path(version)
        history = self._history()
        history.append(version)
        self._write("history.json", json.dumps(history))
        self._write("CURRENT", version)

    def rollback(self) -> str:
        """Go back to the version promoted before the current one; return it.

        Raises:
            RegistryError: Nothing was promoted before.
        """
        history = self._history()
        if len(history) < 2:
            raise RegistryError("nothing to roll back to")
        history.pop()
        self._write("history.json", json.dumps(history))
        self._write("CURRENT", history[-1])
        return history[-1]

    def _history(self) -> list[str]:
        try:
            return list(json.loads((self.root / "history.json").read_text()))
        except FileNotFoundError:
            return []

    def _write(self, name: str, text: str) -> None:
        # Write aside, then rename: a reader sees the old file or the new one, never half.
        self.root.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(dir=self.root, prefix=f".{name}.")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(scratch, self.root / name)
