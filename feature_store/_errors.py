"""Errors of the feature store.

Hierarchy::

    FeatureStoreError
    ├── FeatureStoreUnavailable   Redis cannot be reached or timed out
    └── CorruptFeature            a stored value does not parse
"""

from __future__ import annotations

__all__ = ["CorruptFeature", "FeatureStoreError", "FeatureStoreUnavailable"]


class FeatureStoreError(Exception):
    """Root of every error raised by the feature store."""


class FeatureStoreUnavailable(FeatureStoreError):
    """Redis could not be reached, or did not answer in time."""


class CorruptFeature(FeatureStoreError):
    """A stored value does not parse; the key and field are in the message."""
